/* cmd_inspect.c: `moeserve inspect`: parses its flags, opens the file (metadata only, no
 * weight loading) and prints the model report, the validation result and/or a memory plan. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/memplan.h"
#include "engine/validate.h"
#include "kernels/qtypes.h"
#include "server/commands.h"
#include "server/inspect_report.h"

struct inspect_opts {
    const char *file;
    bool json, check, no_kernels, plan;
    bool have_budget;
    uint64_t budget;
    const char *budget_flag;
    struct mp_request rq;
    bool have_ctx;
    bool gpu_plan;            /* --vram: plan a Vulkan run */
    uint64_t vram;
};

static void inspect_usage(FILE *out)
{
    fprintf(out,
            "usage: moeserve inspect FILE [--json] [--check [--no-kernels]]\n"
            "                        [--fit SIZE] [--ctx N] [--slots N] [--kv f16|q8_0] [--mem-budget SIZE]\n"
            "                        [--vram SIZE [--n-cpu-moe auto|N]]\n"
            "  --json          print the report as JSON\n"
            "  --check         validate the file as the engine will load it; exit 1 listing every problem\n"
            "  --no-kernels    with --check: skip the check that the CPU has kernels for every type\n"
            "  --fit SIZE      plan memory against SIZE (16G, 16GiB, 512M, bytes) for --ctx/--slots/--kv\n"
            "  --mem-budget S  same as --fit (default budget: MemAvailable)\n"
            "  --ctx N         context per slot (default: the model's context length)\n"
            "  --slots N       parallel sequences (default 1)\n"
            "  --kv TYPE       KV cache type, f16 (default) or q8_0\n"
            "  --vram SIZE     plan a Vulkan run on a GPU with SIZE of free memory (--fit: the host's);\n"
            "                  the routed experts that do not fit stay on the CPU\n"
            "  --n-cpu-moe N   with --vram: keep the experts of layers 0..N-1 on the CPU (default auto:\n"
            "                  as few as make the GPU fit)\n");
}

static int usage_error(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "moeserve inspect: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 2;
}

static bool parse_count(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > (UINT64_C(1) << 40))
        return false;
    *out = v;
    return true;
}

/* Returns 0 when parsed, else the exit status (2 for a usage error, -1 for --help). */
static int parse_args(int argc, char **argv, struct inspect_opts *o)
{
    memset(o, 0, sizeof *o);
    o->rq.n_slots = 1;
    o->rq.kv_type = Q_F16;
    o->rq.n_snapshots = MP_DEFAULT_SNAPSHOTS;
    o->rq.n_cpu_moe = MP_CPU_MOE_AUTO;
    bool have_cpu_moe = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            inspect_usage(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--check") == 0) {
            o->check = true;
        } else if (strcmp(a, "--no-kernels") == 0) {
            o->no_kernels = true;
        } else if (strcmp(a, "--fit") == 0 || strcmp(a, "--mem-budget") == 0) {
            if (!val)
                return usage_error("%s needs a size (e.g. 16G)%s", a, "");
            if (!mp_parse_size(val, &o->budget))
                return usage_error("%s: '%s' is not a size (e.g. 16G, 16GiB, 512M, bytes)", a, val);
            o->have_budget = o->plan = true;
            o->budget_flag = a;
            i++;
        } else if (strcmp(a, "--vram") == 0) {
            if (!val)
                return usage_error("%s needs a size (e.g. 24G)%s", a, "");
            if (!mp_parse_size(val, &o->vram))
                return usage_error("%s: '%s' is not a size (e.g. 24G, 24GiB, 512M, bytes)", a, val);
            o->gpu_plan = o->plan = true;
            i++;
        } else if (strcmp(a, "--n-cpu-moe") == 0) {
            uint64_t n = 0;
            if (!val)
                return usage_error("%s needs auto or a number of layers%s", a, "");
            if (strcmp(val, "auto") != 0 && strcmp(val, "0") != 0 && (!parse_count(val, &n) || n > INT32_MAX))
                return usage_error("%s: '%s' is not auto or a number of layers", a, val);
            o->rq.n_cpu_moe = strcmp(val, "auto") == 0 ? MP_CPU_MOE_AUTO : (int32_t)n;
            have_cpu_moe = true;
            i++;
        } else if (strcmp(a, "--ctx") == 0 || strcmp(a, "--slots") == 0) {
            uint64_t *dst = a[2] == 'c' ? &o->rq.n_ctx : &o->rq.n_slots;
            if (!val)
                return usage_error("%s needs a positive integer%s", a, "");
            if (!parse_count(val, dst))
                return usage_error("%s: '%s' is not a positive integer", a, val);
            o->have_ctx |= a[2] == 'c';
            o->plan = true;
            i++;
        } else if (strcmp(a, "--kv") == 0) {
            if (!val)
                return usage_error("%s needs a type (f16 or q8_0)%s", a, "");
            if (strcmp(val, "f16") == 0)
                o->rq.kv_type = Q_F16;
            else if (strcmp(val, "q8_0") == 0)
                o->rq.kv_type = Q_Q8_0;
            else
                return usage_error("%s: '%s' is not a KV type (f16 or q8_0)", a, val);
            o->plan = true;
            i++;
        } else if (a[0] == '-' && a[1] != 0) {
            return usage_error("unknown option '%s'%s (try moeserve inspect --help)", a, "");
        } else if (o->file) {
            return usage_error("unexpected argument '%s' (one FILE: '%s' given already)", a, o->file);
        } else {
            o->file = a;
        }
    }
    if (!o->file)
        return usage_error("missing FILE%s%s (try moeserve inspect --help)", "", "");
    if (o->no_kernels && !o->check)
        return usage_error("--no-kernels only applies with --check%s%s", "", "");
    if (have_cpu_moe && !o->gpu_plan)
        return usage_error("--n-cpu-moe only applies with --vram%s%s", "", "");
    return 0;
}

/* Runs the validator; prints the problems (text) or adds them to root (JSON). */
static int run_check(const struct inspect_opts *o, const struct gguf_file *f, json_t *root)
{
    struct val_report r;
    size_t n = val_check(f, o->no_kernels ? NULL : val_cpu_caps(), NULL, &r);
    if (root) {
        json_object_set_new(root, "check", ir_check_json(&r));
    } else if (n == 0 && !r.oom) {
        printf("%s: ok\n", o->file);
    } else {
        for (size_t i = 0; i < r.n; i++)
            fprintf(stderr, "%s: %s\n", o->file, r.msgs[i]);
        fprintf(stderr, "%s: %zu problem%s%s\n", o->file, n, n == 1 ? "" : "s",
                r.oom ? " (more lost: out of memory)" : "");
    }
    bool ok = n == 0 && !r.oom;
    val_report_free(&r);
    return ok ? 0 : 1;
}

static int run_plan(struct inspect_opts *o, const struct gguf_file *f, const struct arch_hparams *hp,
                    json_t *root)
{
    char err[256];
    const char *src = o->budget_flag;
    if (!o->have_budget) {
        if (!mp_mem_available(&o->budget, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", o->file, err);
            return 1;
        }
        src = "MemAvailable";
    }
    if (!o->have_ctx)
        o->rq.n_ctx = hp->n_ctx_train;
    struct mp_plan p;
    o->rq.metadata_bytes = f->data_offset;
    if (o->gpu_plan) {
        if (hp->arch != ARCH_QWEN3MOE) {
            fprintf(stderr, "%s: --vram: the Vulkan backend runs qwen3moe models only\n", o->file);
            return 1;
        }
        struct mp_expert_layer *ex = calloc(hp->n_layer ? hp->n_layer : 1, sizeof *ex);
        if (!ex || !mp_expert_layers(f, hp->n_layer, ex, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", o->file, ex ? err : "out of memory");
            free(ex);
            return 1;
        }
        const struct mp_weights w = {.total = mp_weight_bytes(f), .experts = ex};
        mp_plan_vulkan(hp, &w, &o->rq, o->vram, o->budget, &p);
        free(ex);
    } else {
        mp_plan_cpu(hp, mp_weight_bytes(f), &o->rq, o->budget, &p);
    }
    if (root)
        json_object_set_new(root, "plan", ir_plan_json(&o->rq, &p, src));
    else
        ir_print_plan(stdout, &o->rq, &p, src);
    return 0;
}

static int print_report(const struct inspect_opts *o, const struct gguf_file *f,
                        const struct arch_hparams *hp, bool known, json_t *root)
{
    struct ir_layout l;
    if (!ir_layout_build(f, &l)) {
        fprintf(stderr, "%s: out of memory\n", o->file);
        return 1;
    }
    if (root) {
        json_object_set_new(root, "model", ir_model_json(f, hp, known));
        json_object_set_new(root, "tokenizer", ir_tokenizer_json(f));
        json_t *layout = ir_layout_json(&l);
        json_object_update(root, layout);
        json_decref(layout);
    } else {
        ir_print_model(stdout, f, hp, known);
        ir_print_tokenizer(stdout, f);
        ir_print_layout(stdout, &l);
    }
    ir_layout_free(&l);
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    struct inspect_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    char err[512];
    struct gguf_file *f = gguf_open(o.file, err, sizeof err);
    if (!f) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct arch_hparams hp;
    bool known = arch_read_hparams(f, &hp);
    json_t *root = o.json ? json_object() : NULL;
    if (o.json && !root) {
        fprintf(stderr, "%s: out of memory\n", o.file);
        gguf_close(f);
        return 1;
    }
    if (o.plan && !known) {
        char *arch = gguf_get_str_dup(f, "general.architecture");
        fprintf(stderr, "%s: cannot plan memory: architecture '%s' is not one moeserve runs\n", o.file,
                arch ? arch : "(none)");
        free(arch);
        json_decref(root);
        gguf_close(f);
        return 1;
    }
    rc = 0;
    if (!o.check && !o.plan)
        rc = print_report(&o, f, &hp, known, root);
    if (o.check)
        rc |= run_check(&o, f, root);
    if (o.plan && (!o.check || rc == 0))
        rc |= run_plan(&o, f, &hp, root);
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(root);
    }
    gguf_close(f);
    return rc;
}
