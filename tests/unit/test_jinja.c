/* test_jinja.c: the Jinja interpreter against jinja2's own renderings of the Qwen chat templates
 * (testdata/chat-templates/cases.jsonl), plus tricky expressions and malformed templates. */
#include "server/jinja.h"
#include "tests/test.h"

#include <string.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* ------------------------------------------------------- reference cases --- */
typedef struct {
    char name[128];
    jinja_template *t;
} cached_template;

static jinja_template *template_for(cached_template *cache, int *ncache, const char *name)
{
    for (int i = 0; i < *ncache; i++)
        if (!strcmp(cache[i].name, name))
            return cache[i].t;
    char rel[256], path[512], err[256];
    snprintf(rel, sizeof rel, "chat-templates/%s", name);
    size_t len;
    char *src = read_file(testdata_path(path, sizeof path, rel), &len);
    CHECK(src != NULL, "cannot read %s", path);
    jinja_template *t = src ? jinja_parse(src, len, err, sizeof err) : NULL;
    CHECK(!src || t, "%s: %s", name, err);
    free(src);
    if (*ncache < 16) {
        snprintf(cache[*ncache].name, sizeof cache[0].name, "%s", name);
        cache[(*ncache)++].t = t;
    }
    return t;
}

static void test_reference_cases(void)
{
    char path[512];
    FILE *f = fopen(testdata_path(path, sizeof path, "chat-templates/cases.jsonl"), "rb");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f)
        return;
    cached_template cache[16];
    int ncache = 0, total = 0, passed = 0, want_err = 0, got_err = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *cs = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &jerr);
        CHECK(cs != NULL, "bad case line: %s", jerr.text);
        if (!cs)
            continue;
        total++;
        const char *id = json_string_value(json_object_get(cs, "id"));
        jinja_template *t = template_for(cache, &ncache, json_string_value(json_object_get(cs, "template")));
        json_t *vars = jinja_chat_vars(json_object_get(cs, "messages"), json_object_get(cs, "tools"),
                                       json_is_true(json_object_get(cs, "add_generation_prompt")),
                                       json_object_get(cs, "kwargs"));
        json_t *expect = json_object_get(cs, "rendered");
        char err[512] = "";
        size_t len = 0;
        char *out = t ? jinja_render(t, vars, &len, err, sizeof err) : NULL;
        if (json_is_string(expect)) {
            bool same = out && len == json_string_length(expect) &&
                        memcmp(out, json_string_value(expect), len) == 0;
            CHECK(same, "%s: %s\n--- got ---\n%s\n--- want ---\n%s", id, out ? "mismatch" : err,
                  out ? out : "", json_string_value(expect));
            passed += same;
        } else {
            want_err++;
            CHECK(out == NULL, "%s: rendered but jinja2 raised %s", id,
                  json_string_value(json_object_get(cs, "error")));
            CHECK(!out && err[0], "%s: no error message", id);
            got_err += out == NULL;
            passed += out == NULL;
        }
        free(out);
        json_decref(vars);
        json_decref(cs);
    }
    free(line);
    fclose(f);
    for (int i = 0; i < ncache; i++)
        jinja_free(cache[i].t);
    printf("reference cases: %d/%d identical (%d/%d expected errors raised)\n", passed, total,
           got_err, want_err);
    CHECK(total == 434, "expected 434 cases, read %d", total);
}

int main(void)
{
    test_reference_cases();
    return test_finish();
}
