/* test_config.c: settings from defaults, a config file and flags (flags win), and the errors
 * for unknown keys, bad values and missing values, each naming where the fault is. */
#include <string.h>
#include <unistd.h>

#include "server/config.h"
#include "tests/test.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    struct config c;
    char err[512];
    bool help;
    config_init(&c);
    CHECK(c.port == 8080 && strcmp(c.host, "127.0.0.1") == 0 && c.slots == 4 && c.max_body == 8u << 20,
          "defaults");
    char path[] = "/tmp/moeserve-conf-XXXXXX";
    close(mkstemp(path));
    write_file(path, "# comment\nmodel = /m.gguf\nport = 9000\nslots=2\n  fit = yes\nmax_body = 1M\n");
    char *args[] = {"--config", path, "--port", "9001", "-c", "4096", "--kv-type", "q8_0"};
    CHECK(config_parse_args(&c, 8, args, &help, err, sizeof err), "%s", err);
    CHECK(strcmp(c.model, "/m.gguf") == 0 && c.slots == 2 && c.fit && c.max_body == 1u << 20, "file values");
    CHECK(c.port == 9001 && c.ctx_size == 4096 && strcmp(c.kv_type, "q8_0") == 0, "flags override the file");
    config_free(&c);

    config_init(&c);
    write_file(path, "port = 80\nbogus = 1\n");
    CHECK(!config_load_file(&c, path, err, sizeof err) && strstr(err, ":2:") && strstr(err, "bogus"),
          "unknown key names file:line: %s", err);
    write_file(path, "slots = lots\n");
    CHECK(!config_load_file(&c, path, err, sizeof err) && strstr(err, "slots"), "bad value: %s", err);
    write_file(path, "no equals sign\n");
    CHECK(!config_load_file(&c, path, err, sizeof err) && strstr(err, ":1:"), "malformed line: %s", err);
    char *bad1[] = {"--port", "70000"};
    CHECK(!config_parse_args(&c, 2, bad1, &help, err, sizeof err) && strstr(err, "--port"), "range: %s", err);
    char *bad2[] = {"--slots"};
    CHECK(!config_parse_args(&c, 1, bad2, &help, err, sizeof err) && strstr(err, "--slots"), "missing value: %s", err);
    char *bad3[] = {"--frobnicate", "1"};
    CHECK(!config_parse_args(&c, 2, bad3, &help, err, sizeof err) && strstr(err, "--frobnicate"), "unknown flag: %s", err);
    char *bad4[] = {"--max-body", "12Q"};
    CHECK(!config_parse_args(&c, 2, bad4, &help, err, sizeof err) && strstr(err, "--max-body"), "bad size: %s", err);
    char *h[] = {"--help"};
    CHECK(config_parse_args(&c, 1, h, &help, err, sizeof err) && help, "--help");
    char *b[] = {"--fit", "--port", "1"};
    CHECK(config_parse_args(&c, 3, b, &help, err, sizeof err) && c.fit && c.port == 1, "bare boolean flag");
    FILE *out = tmpfile();
    config_print_help(out);
    long len = ftell(out);
    rewind(out);
    char *text = calloc(1, (size_t)len + 1);
    CHECK(fread(text, 1, (size_t)len, out) == (size_t)len, "read help");
    CHECK(strstr(text, "--ctx-size") && strstr(text, "[default: 16384]") && strstr(text, "--drain-timeout"),
          "help lists options with defaults");
    free(text);
    fclose(out);
    config_free(&c);
    unlink(path);
    return test_finish();
}
