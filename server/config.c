/* config.c: the option table behind config files, flags and --help (server/config.h).
 * Adding a setting is one table row; file keys use underscores, flags the same names with dashes. */
#include "server/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/cli.h"

enum opt_kind { OPT_STR, OPT_U32, OPT_SIZE, OPT_BOOL };

struct opt {
    const char *key;
    char short_flag;
    enum opt_kind kind;
    size_t offset;
    const char *def;
    uint32_t min, max;
    const char *help;
};

#define O(field) offsetof(struct config, field)
static const struct opt options[] = {
    {"model", 'm', OPT_STR, O(model), NULL, 0, 0, "GGUF model file (required)"},
    {"host", 0, OPT_STR, O(host), "127.0.0.1", 0, 0, "address to listen on"},
    {"port", 0, OPT_U32, O(port), "8080", 0, 65535, "TCP port (0: any free port, printed at start)"},
    {"slots", 0, OPT_U32, O(slots), "4", 1, 256, "sequences generated at once"},
    {"ctx_size", 'c', OPT_U32, O(ctx_size), "16384", 64, 1u << 24, "KV pool in tokens, shared by all slots"},
    {"max_ctx", 0, OPT_U32, O(max_ctx), "0", 0, 1u << 24, "longest request in tokens (0: the model's context)"},
    {"kv_type", 0, OPT_STR, O(kv_type), "f16", 0, 0, "KV cache type: f16 or q8_0"},
    {"delta_rule", 0, OPT_STR, O(delta_rule), "exact", 0, 0,
     "qwen3next prompts: exact (ggml's recurrence, llama.cpp's numbers) or chunked (faster on long prompts)"},
    {"threads", 't', OPT_U32, O(threads), "0", 0, 1024, "engine threads (0: all cores)"},
    {"http_threads", 0, OPT_U32, O(http_threads), "4", 1, 64, "HTTP worker threads"},
    {"device", 0, OPT_STR, O(device), "auto", 0, 0, "cpu, vulkan, or auto (Vulkan when a usable GPU exists)"},
    {"gpu", 0, OPT_STR, O(gpu), NULL, 0, 0, "Vulkan device: index or part of its name (default: the best GPU)"},
    {"n_cpu_moe", 0, OPT_STR, O(n_cpu_moe), "auto", 0, 0,
     "layers (from the first) whose routed experts stay on the CPU; auto: as few as make the GPU fit"},
    {"batch_tokens", 'b', OPT_U32, O(batch_tokens), "512", 16, 65536, "tokens per engine step (prompt chunk budget)"},
    {"queue_size", 0, OPT_U32, O(queue_size), "64", 1, 100000, "waiting requests before 503 + Retry-After"},
    {"request_timeout", 0, OPT_U32, O(request_timeout), "600", 1, 86400, "seconds a request may run"},
    {"drain_timeout", 0, OPT_U32, O(drain_timeout), "30", 0, 3600, "seconds SIGTERM waits for running requests"},
    {"idle_timeout", 0, OPT_U32, O(idle_timeout), "120", 1, 86400, "seconds an idle HTTP connection is kept"},
    {"max_body", 0, OPT_SIZE, O(max_body), "8M", 1024, 0, "largest request body"},
    {"max_tokens_default", 0, OPT_U32, O(max_tokens_default), "0", 0, 1u << 24,
     "completion limit when a request sets none (0: until the context is full)"},
    {"api_key", 0, OPT_STR, O(api_key), NULL, 0, 0, "require this Bearer key (also $MOESERVE_API_KEY)"},
    {"api_keys_file", 0, OPT_STR, O(api_keys_file), NULL, 0, 0, "file with accepted keys, one per line"},
    {"cors_origin", 0, OPT_STR, O(cors_origin), NULL, 0, 0, "send CORS headers allowing this origin (e.g. *)"},
    {"chat_template", 0, OPT_STR, O(chat_template), NULL, 0, 0, "Jinja file overriding the model's chat template"},
    {"log_level", 0, OPT_STR, O(log_level), "info", 0, 0, "error, warn, info or debug"},
    {"log_file", 0, OPT_STR, O(log_file), NULL, 0, 0, "append logs here instead of stderr (SIGHUP reopens)"},
    {"mem_budget", 0, OPT_SIZE, O(mem_budget), "0", 0, 0, "memory budget (0: MemAvailable or the GPU heap)"},
    {"fit", 0, OPT_BOOL, O(fit), "false", 0, 0, "shrink ctx_size and slots to fit the budget"},
    {"alias", 'a', OPT_STR, O(alias), NULL, 0, 0, "model id reported by /v1/models (default: file name)"},
};
#undef O
#define N_OPTIONS (sizeof options / sizeof options[0])

static bool set_value(struct config *c, const struct opt *o, const char *v, char *why, size_t whylen)
{
    void *field = (char *)c + o->offset;
    switch (o->kind) {
    case OPT_STR: {
        char *d = v ? strdup(v) : NULL;
        if (v && !d) {
            snprintf(why, whylen, "out of memory");
            return false;
        }
        free(*(char **)field);
        *(char **)field = d;
        return true;
    }
    case OPT_U32:
        if (!cli_parse_u32(v, o->min, o->max, field)) {
            snprintf(why, whylen, "'%s' is not a whole number from %u to %u", v, o->min, o->max);
            return false;
        }
        return true;
    case OPT_SIZE:
        if (!cli_parse_size(v, field) || *(uint64_t *)field < o->min) {
            snprintf(why, whylen, "'%s' is not a size like 8M, 16G or a byte count >= %u", v, o->min);
            return false;
        }
        return true;
    case OPT_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
            *(bool *)field = true;
        else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
            *(bool *)field = false;
        else {
            snprintf(why, whylen, "'%s' is not true or false", v);
            return false;
        }
        return true;
    }
    return false;
}

void config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    char why[128];
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].def)
            set_value(c, &options[i], options[i].def, why, sizeof why);
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].kind == OPT_STR) {
            char **f = (char **)((char *)c + options[i].offset);
            free(*f);
            *f = NULL;
        }
}

/* Finds an option by file key or flag name (dashes and underscores are the same). */
static const struct opt *find_option(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *a = options[i].key, *b = name;
        while (*a && (*a == *b || (*a == '_' && *b == '-'))) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return &options[i];
    }
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

bool config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    char line[4096];
    bool ok = true;
    for (int n = 1; ok && fgets(line, sizeof line, f); n++) {
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, n);
            ok = false;
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1), why[160];
        const struct opt *o = find_option(key);
        if (!o) {
            snprintf(err, errlen, "%s:%d: unknown setting '%s'", path, n, key);
            ok = false;
        } else if (!set_value(c, o, val, why, sizeof why)) {
            snprintf(err, errlen, "%s:%d: %s: %s", path, n, key, why);
            ok = false;
        }
    }
    fclose(f);
    return ok;
}

static const struct opt *flag_option(const char *arg)
{
    if (arg[0] == '-' && arg[1] == '-')
        return find_option(arg + 2);
    if (arg[0] == '-' && arg[1] && !arg[2])
        for (size_t i = 0; i < N_OPTIONS; i++)
            if (options[i].short_flag == arg[1])
                return &options[i];
    return NULL;
}

bool config_parse_args(struct config *c, int argc, char **argv, bool *help, char *err, size_t errlen)
{
    *help = false;
    for (int i = 0; i < argc; i++) /* the config file first, so flags override it */
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config needs a file");
                return false;
            }
            if (!config_load_file(c, argv[i + 1], err, errlen))
                return false;
        }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = true;
            return true;
        }
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        const struct opt *o = flag_option(argv[i]);
        if (!o) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", argv[i]);
            return false;
        }
        const char *v = o->kind == OPT_BOOL && (i + 1 >= argc || argv[i + 1][0] == '-') ? "true" : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s needs a value", argv[i]);
                return false;
            }
            v = argv[++i];
        }
        char why[160];
        if (!set_value(c, o, v, why, sizeof why)) {
            snprintf(err, errlen, "%s: %s", argv[i - (v == argv[i] ? 1 : 0)], why);
            return false;
        }
    }
    return true;
}

void config_print_help(FILE *out)
{
    fprintf(out, "usage: moeserve serve -m MODEL [options]\n\n"
                 "Options (config file keys are the same names with underscores; flags win):\n"
                 "  --config FILE            read settings from FILE first\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char flag[48];
        int n = snprintf(flag, sizeof flag, "--");
        for (const char *k = options[i].key; *k && n < (int)sizeof flag - 1; k++)
            flag[n++] = *k == '_' ? '-' : *k;
        flag[n] = 0;
        char name[64];
        if (options[i].short_flag)
            snprintf(name, sizeof name, "-%c, %s", options[i].short_flag, flag);
        else
            snprintf(name, sizeof name, "    %s", flag);
        fprintf(out, "  %-24s %s%s%s%s\n", name, options[i].help, options[i].def ? " [default: " : "",
                options[i].def ? options[i].def : "", options[i].def ? "]" : "");
    }
}
