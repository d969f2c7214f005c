/* cmd_run.c: `moeserve run`: generates from a prompt on the command line, streaming only the
 * generated text to stdout; logs and the tokens/s statistics go to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "engine/sample.h"
#include "engine/tokenizer.h"
#include "server/chat.h"
#include "server/cli.h"
#include "server/commands.h"
#include "server/progress.h"
#include "server/sched.h"

struct run_opts {
    const char *model, *prompt, *device, *gpu, *n_cpu_moe;
    uint32_t n_predict, threads;
    float temp;
    uint64_t seed;
    bool has_seed, chat;
};

static int usage(void)
{
    printf("usage: moeserve run -m MODEL -p PROMPT [-n N] [--temp T] [--seed S] [--chat] [-t THREADS]\n"
           "       [--device cpu|vulkan|auto] [--gpu INDEX|NAME] [--n-cpu-moe auto|N]\n"
           "Streams the generated text to stdout (special tokens in PROMPT are recognised; --chat wraps\n"
           "it in the model's chat template). --temp 0 is greedy. Statistics go to stderr.\n");
    return 0;
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
    *o = (struct run_opts){.n_predict = 128, .temp = 0.8f, .device = "cpu"};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--chat")) {
            o->chat = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        bool ok = v != NULL;
        if (ok && (!strcmp(a, "-m") || !strcmp(a, "--model")))
            o->model = v;
        else if (ok && (!strcmp(a, "-p") || !strcmp(a, "--prompt")))
            o->prompt = v;
        else if (ok && (!strcmp(a, "-n") || !strcmp(a, "--n-predict")))
            ok = cli_parse_u32(v, 1, 1u << 24, &o->n_predict);
        else if (ok && (!strcmp(a, "-t") || !strcmp(a, "--threads")))
            ok = cli_parse_u32(v, 1, 1024, &o->threads);
        else if (ok && !strcmp(a, "--temp"))
            ok = cli_parse_f32(v, &o->temp) && o->temp >= 0;
        else if (ok && !strcmp(a, "--device"))
            o->device = v;
        else if (ok && !strcmp(a, "--gpu"))
            o->gpu = v;
        else if (ok && !strcmp(a, "--n-cpu-moe"))
            o->n_cpu_moe = v;
        else if (ok && !strcmp(a, "--seed"))
            ok = o->has_seed = cli_parse_u64(v, &o->seed);
        else {
            fprintf(stderr, "moeserve run: unknown or incomplete option '%s'\n", a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "moeserve run: %s: invalid value '%s'\n", a, v);
            return 2;
        }
    }
    if (!o->model || !o->prompt) {
        fprintf(stderr, "moeserve run: -m MODEL and -p PROMPT are required\n");
        return 2;
    }
    return 0;
}

/* The prompt as the model's chat template renders a single user message. */
static char *chat_prompt(const struct engine *e, const char *prompt, char *err, size_t errlen)
{
    const char *tmpl = engine_info(e)->chat_template;
    if (!tmpl) {
        snprintf(err, errlen, "--chat: the model has no chat template");
        return NULL;
    }
    struct chat_template ct;
    if (!chat_template_init(&ct, tmpl, strlen(tmpl), err, errlen))
        return NULL;
    struct oai_request r = {.kind = OAI_CHAT, .tool_choice = OAI_TOOLS_NONE};
    r.messages = json_pack("[{s:s,s:s}]", "role", "user", "content", prompt);
    r.template_kwargs = json_object();
    struct chat_prompt cp;
    char *text = chat_render(&ct, &r, &cp, err, errlen) ? strdup(cp.text) : NULL;
    if (text)
        chat_prompt_free(&cp);
    json_decref(r.messages);
    json_decref(r.template_kwargs);
    chat_template_free(&ct);
    return text;
}

static int generate(struct engine *e, const struct run_opts *o, const int32_t *prompt, size_t n_prompt)
{
    const struct engine_info *info = engine_info(e);
    char err[512];
    sample_params sp;
    sample_params_default(&sp);
    sp.temperature = o->temp;
    sp.has_seed = o->has_seed;
    sp.seed = o->seed;
    sample_state *smp = sample_create(&sp, (int32_t)info->n_vocab, (uint64_t)time(NULL), err, sizeof err);
    float *logits = malloc((size_t)info->n_vocab * sizeof *logits);
    uint32_t *pos = malloc(n_prompt * sizeof *pos), *seq = calloc(n_prompt, sizeof *seq);
    bool *want = calloc(n_prompt, sizeof *want);
    int32_t *hist = malloc((o->n_predict + 1) * sizeof *hist);
    size_t cap = tok_stream_cap(engine_tokenizer(e)), n_hist = 0;
    char *piece = malloc(cap);
    if (!smp || !logits || !pos || !seq || !want || !hist || !piece) {
        fprintf(stderr, "moeserve run: %s\n", smp ? "out of memory" : err);
        return 1;
    }
    for (size_t i = 0; i < n_prompt; i++)
        pos[i] = (uint32_t)i;
    want[n_prompt - 1] = true;
    double t0 = sched_now();
    int rc = engine_decode(e, (uint32_t)n_prompt, prompt, pos, seq, want, logits, err, sizeof err) ? 0 : 1;
    double t1 = sched_now();
    struct tok_stream ts;
    tok_stream_init(&ts, true);
    while (rc == 0 && n_hist < o->n_predict) {
        sample_result r;
        if (sample_next(smp, logits, hist, n_hist, &r, err, sizeof err) != 0 || engine_is_eog(e, r.token))
            break;
        hist[n_hist++] = r.token;
        size_t n = 0;
        if (tok_stream_push(&ts, engine_tokenizer(e), r.token, piece, cap, &n))
            fwrite(piece, 1, n, stdout);
        fflush(stdout);
        uint32_t p = (uint32_t)(n_prompt + n_hist - 1), s = 0;
        bool w = true;
        if (n_prompt + n_hist >= info->max_ctx || !engine_decode(e, 1, &r.token, &p, &s, &w, logits, err, sizeof err))
            break;
    }
    char tail[4];
    fwrite(tail, 1, tok_stream_flush(&ts, tail), stdout);
    printf("\n");
    double t2 = sched_now();
    if (rc)
        fprintf(stderr, "moeserve run: %s\n", err);
    fprintf(stderr, "prompt: %zu tokens in %.2f s (%.1f tokens/s); generation: %zu tokens in %.2f s (%.1f tokens/s)\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0), n_hist, t2 - t1, n_hist ? (double)n_hist / (t2 - t1) : 0.0);
    sample_free(smp);
    free(logits);
    free(pos);
    free(seq);
    free(want);
    free(hist);
    free(piece);
    return rc;
}

static void draw_progress(void *ctx, const char *stage, double fraction)
{
    progress_bar_draw(ctx, stage, fraction);
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o;
    int prc = parse_opts(argc, argv, &o);
    if (prc < 0)
        return usage();
    if (prc)
        return prc;
    char err[4096];
    struct progress_bar bar;
    progress_bar_init(&bar);
    struct engine_params p = {.path = o.model, .threads = o.threads, .slots = 1, .ctx_size = 4096, .max_ctx = 0,
                              .batch_tokens = 4096, .kv_type = "f16", .device = o.device, .gpu = o.gpu, .n_cpu_moe = o.n_cpu_moe, .fit = true,
                              .progress = draw_progress, .progress_ctx = &bar};
    struct engine *e = engine_open(&p, err, sizeof err);
    progress_bar_end(&bar);
    if (!e) {
        fprintf(stderr, "moeserve run: %s\n", err);
        return 1;
    }
    char *text = o.chat ? chat_prompt(e, o.prompt, err, sizeof err) : strdup(o.prompt);
    size_t n = 0;
    int32_t *ids = text ? engine_tokenize(e, text, strlen(text), true, &n) : NULL;
    int rc = 1;
    if (!text)
        fprintf(stderr, "moeserve run: %s\n", err);
    else if (!ids || n == 0 || n >= engine_info(e)->max_ctx)
        fprintf(stderr, "moeserve run: the prompt is empty or longer than the context (%zu tokens)\n", n);
    else
        rc = generate(e, &o, ids, n);
    free(ids);
    free(text);
    engine_close(e);
    return rc;
}
