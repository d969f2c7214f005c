/* bench_models.c: whole-model prompt and generation tokens/s of synthetic qwen3moe and qwen3next
 * (Qwen3-Coder-Next shapes, 4 layers, fewer experts so the files stay small), and qwen3next's
 * prompts with the chunked vs the recurrent delta rule. Files go to $TMPDIR and are removed. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine/model.h"
#include "engine/qwen3next.h"
#include "engine/synth.h"

#define PROMPT 256
#define GEN 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One architecture behind two calls, so both models run the same timing loop. */
struct runner {
    bool (*decode)(void *ctx, uint32_t n, const int32_t *tok, const uint32_t *pos, const uint32_t *seq,
                   const bool *want, float *logits, char *err, size_t errlen);
    void (*reset)(void *ctx);   /* empties sequence 0 */
    void *ctx;
};

static void moe_reset(void *c)
{
    kvpool_truncate(model_ctx_kv(c), 0, 0);
}

static void next_reset(void *c)
{
    q3n_seq_keep(c, 0, 0);
}

static bool moe_decode(void *c, uint32_t n, const int32_t *t, const uint32_t *p, const uint32_t *s, const bool *w,
                       float *l, char *err, size_t errlen)
{
    return model_decode(c, n, t, p, s, w, l, err, errlen);
}

static bool next_decode(void *c, uint32_t n, const int32_t *t, const uint32_t *p, const uint32_t *s, const bool *w,
                        float *l, char *err, size_t errlen)
{
    return q3n_decode(c, n, t, p, s, w, l, err, errlen);
}

/* Prompt of PROMPT tokens in one call on an empty sequence 0, then GEN single-token steps. */
static bool time_once(const struct runner *r, uint32_t n_vocab, double *pp, double *tg)
{
    uint32_t seq = 0;
    static int32_t tok[PROMPT];
    static uint32_t pos[PROMPT], sq[PROMPT];
    static bool want[PROMPT];
    char err[256];
    float *logits = malloc(n_vocab * sizeof *logits);
    for (uint32_t i = 0; i < PROMPT; i++) {
        tok[i] = (int32_t)((i * 7919u) % n_vocab);
        pos[i] = i;
        sq[i] = seq;
        want[i] = i + 1 == PROMPT;
    }
    r->reset(r->ctx);
    double t0 = now();
    bool ok = logits && r->decode(r->ctx, PROMPT, tok, pos, sq, want, logits, err, sizeof err);
    double t1 = now();
    for (uint32_t i = 0; ok && i < GEN; i++) {
        int32_t t = (int32_t)(i % n_vocab);
        uint32_t p = PROMPT + i;
        bool w = true;
        ok = r->decode(r->ctx, 1, &t, &p, &seq, &w, logits, err, sizeof err);
    }
    double t2 = now();
    if (!ok)
        fprintf(stderr, "bench: %s\n", err);
    *pp = PROMPT / (t1 - t0);
    *tg = GEN / (t2 - t1);
    free(logits);
    return ok;
}

/* Best of 2 after a warm-up run (the first touches every mapped weight page). */
static bool time_run(const struct runner *r, uint32_t n_vocab, double *pp, double *tg)
{
    double a, b;
    *pp = *tg = 0;
    if (!time_once(r, n_vocab, &a, &b))
        return false;
    for (int i = 0; i < 2; i++) {
        if (!time_once(r, n_vocab, &a, &b))
            return false;
        *pp = a > *pp ? a : *pp;
        *tg = b > *tg ? b : *tg;
    }
    return true;
}

static bool write_model(struct synth_spec *s, char *path)
{
    char err[512];
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    close(fd);
    s->n_layer = 4;
    s->n_expert = 32;
    s->n_vocab = 32768;
    if (!synth_write(s, path, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return false;
    }
    return true;
}

static void bench_qwen3moe(void)
{
    struct synth_spec s = synth_default_spec();
    s.recipe = *synth_find_recipe("mxfp4");
    char path[] = "/tmp/moeserve-bench-moe-XXXXXX", err[512];
    if (!write_model(&s, path))
        return;
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    struct model m;
    struct model_ctx *c = NULL;
    double pp, tg;
    if (f && model_load(&m, f, err, sizeof err)) {
        c = model_ctx_new(&m, 1, 1024, 1024, PROMPT, err, sizeof err);
        struct runner r = {moe_decode, moe_reset, c};
        if (c && time_run(&r, s.n_vocab, &pp, &tg))
            printf("| qwen3moe (30B-A3B shapes, 4 layers, 32 experts, top-8) | %.1f | %.1f |\n", pp, tg);
        model_ctx_free(c);
        model_free(&m);
    }
    gguf_close(f);
    unlink(path);
}

static void bench_qwen3next(void)
{
    struct synth_spec s = synth_next_spec();
    char path[] = "/tmp/moeserve-bench-next-XXXXXX", err[512];
    if (!write_model(&s, path))
        return;
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    struct q3n_model m;
    if (f && q3n_load(&m, f, err, sizeof err)) {
        struct q3n_ctx *c = q3n_ctx_new(&m, 1, 1024, 1024, PROMPT, 2, Q_F16, err, sizeof err);
        struct runner r = {next_decode, next_reset, c};
        /* alternate the two forms so a change in the machine's load hits both alike */
        double pp = 0, tg = 0, pp_rec = 0, tg_rec = 0, a, t;
        bool ok = c && time_once(&r, s.n_vocab, &a, &t);
        for (int i = 0; ok && i < 4; i++) {
            q3n_ctx_set_chunked(c, i % 2 == 0);
            ok = time_once(&r, s.n_vocab, &a, &t);
            double *p = i % 2 == 0 ? &pp : &pp_rec, *g = i % 2 == 0 ? &tg : &tg_rec;
            *p = a > *p ? a : *p;
            *g = t > *g ? t : *g;
        }
        if (ok) {
            printf("| qwen3next (Coder-Next shapes, 4 layers = 3 DeltaNet + 1 attention, 32 experts, top-10), "
                   "chunked delta rule | %.1f | %.1f |\n", pp, tg);
            printf("| the same, prompt token by token (recurrent delta rule) | %.1f | %.1f |\n", pp_rec, tg_rec);
            printf("chunked / recurrent prompt processing: %.2fx\n", pp / pp_rec);
        }
        q3n_ctx_free(c);
        q3n_free(&m);
    }
    gguf_close(f);
    unlink(path);
}

int main(void)
{
    printf("prompt of %d tokens in one call, then %d generated tokens\n", PROMPT, GEN);
    printf("| model | prompt tokens/s | generation tokens/s |\n|---|---|---|\n");
    bench_qwen3moe();
    bench_qwen3next();
    return 0;
}
