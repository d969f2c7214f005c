/* test_qwen3moe.c: the qwen3moe forward pass against llama.cpp's outputs for every tiny model
 * in the reference data: last-position KL divergence, top-1 agreement, greedy continuations,
 * and batching that does not change results (tolerances from testdata/README.md). */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "engine/model.h"
#include "kernels/qtypes.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_ref.h"

/* One greedy step on sequence 0 (greedy_compare). */
static bool decode_one(void *ctx, int32_t tok, uint32_t pos, float *logits)
{
    char err[256];
    const uint32_t seq = 0;
    const bool want = true;
    return model_decode(ctx, 1, &tok, &pos, &seq, &want, logits, err, sizeof err);
}

/* Runs a whole prompt as one batch on sequence `seq` with logits at every position. */
static bool run_prompt(struct model_ctx *c, const struct prompt *p, uint32_t seq, float *logits, char *err)
{
    uint32_t *pos = malloc(p->n * sizeof *pos), *sq = malloc(p->n * sizeof *sq);
    bool *want = malloc(p->n * sizeof *want);
    for (size_t i = 0; i < p->n; i++) {
        pos[i] = (uint32_t)i;
        sq[i] = seq;
        want[i] = true;
    }
    bool ok = model_decode(c, (uint32_t)p->n, p->tokens, pos, sq, want, logits, err, 256);
    free(pos);
    free(sq);
    free(want);
    return ok;
}

static void check_prompt(const char *name, struct model *m, struct prompt *p, int pi)
{
    char err[256];
    const uint32_t V = m->hp.n_vocab;
    struct model_ctx *c = model_ctx_new(m, 2, 1024, 512, 512, Q_F16, err, sizeof err);
    REQUIRE_VOID(c);
    float *logits = malloc(p->n * V * sizeof *logits);
    CHECK(run_prompt(c, p, 0, logits, err), "%s prompt %d: %s", name, pi, err);
    double kl = kl_div(p->last, logits + (p->n - 1) * V, V);
    double bound = p->n <= 42 ? 5e-4 : 2e-3;
    CHECK(kl <= bound, "%s prompt %d (%zu tokens): KL %.3g > %.1g", name, pi, p->n, kl, bound);
    size_t agree = 0, clear_misses = 0;
    bool in_top5 = true;
    for (size_t i = 0; i < p->n; i++) {
        json_t *top = json_array_get(p->top20, i);
        int32_t ours = argmax(logits + i * V, V);
        bool same = ours == json_integer_value(json_array_get(json_array_get(top, 0), 0));
        double margin = json_number_value(json_array_get(json_array_get(top, 0), 1)) -
                        json_number_value(json_array_get(json_array_get(top, 1), 1));
        agree += same;
        clear_misses += !same && margin >= 0.05;
        bool found = false;
        for (size_t j = 0; j < 5; j++)
            found |= ours == json_integer_value(json_array_get(json_array_get(top, j), 0));
        in_top5 &= found;
    }
    /* the README's bound, as stated: at least 98% of the positions agree */
    CHECK(agree * 100 >= p->n * 98, "%s prompt %d: top-1 agreement %zu/%zu (%zu misses at clear margins)", name, pi,
          agree, p->n, clear_misses);
    CHECK(in_top5, "%s prompt %d: every top-1 within the reference top 5", name, pi);
    /* greedy continuation, one token per step, identical up to the first near-tie */
    size_t steps = json_array_size(p->greedy), same, required;
    greedy_compare(p, argmax(logits + (p->n - 1) * V, V), V, decode_one, c, logits, &same, &required);
    CHECK(same >= required,
          "%s prompt %d: greedy matches %zu steps, required %zu", name, pi, same, required);
    /* Beyond the README's bounds: the SIMD kernels (which are what runs) sum in llama.cpp's own
     * orders, so the logits agree to the reference's printed precision (KL ~1e-12 is the JSON
     * rounding) and greedy decoding stays identical through near-ties. This guards that. */
    if (strcmp(q_kernels_get(Q_Q8_0)->dot_isa, "scalar") != 0) {
        CHECK(kl < 1e-9, "%s prompt %d: KL %.3g, above the 1e-9 of llama.cpp's own float order", name, pi, kl);
        CHECK(same == steps, "%s prompt %d: greedy left llama.cpp's after %zu of %zu steps", name, pi, same, steps);
    }
    fprintf(stderr, "  %-28s prompt %d (%3zu tok): KL %.2e, top-1 %zu/%zu, greedy %zu/%zu (required %zu)\n", name, pi,
            p->n, kl, agree, p->n, same, steps, required);
    free(logits);
    model_ctx_free(c);
}

/* The three prompts in one batch on three sequences give the single-run logits. */
static void check_batched(const char *name, struct model *m, struct prompt *ps)
{
    char err[256];
    const uint32_t V = m->hp.n_vocab;
    size_t total = ps[0].n + ps[1].n + ps[2].n;
    struct model_ctx *c = model_ctx_new(m, 3, 2048, 512, (uint32_t)total, Q_F16, err, sizeof err);
    REQUIRE_VOID(c);
    int32_t *tok = malloc(total * sizeof *tok);
    uint32_t *pos = malloc(total * sizeof *pos), *seq = malloc(total * sizeof *seq);
    bool *want = calloc(total, sizeof *want);
    size_t k = 0;
    for (uint32_t s = 0; s < 3; s++)
        for (size_t i = 0; i < ps[s].n; i++, k++) {
            tok[k] = ps[s].tokens[i];
            pos[k] = (uint32_t)i;
            seq[k] = s;
            want[k] = i + 1 == ps[s].n;
        }
    float *logits = malloc(3 * (size_t)V * sizeof *logits), *alone = malloc(ps[2].n * (size_t)V * sizeof *alone);
    REQUIRE_VOID(logits && alone);
    CHECK(model_decode(c, (uint32_t)total, tok, pos, seq, want, logits, err, sizeof err), "%s batched: %s", name, err);
    for (uint32_t s = 0; s < 3; s++) {
        double kl = kl_div(ps[s].last, logits + (size_t)s * V, V);
        CHECK(kl <= (ps[s].n <= 42 ? 5e-4 : 2e-3), "%s: prompt %u batched with the others: KL %.3g", name, s, kl);
        /* each sequence is summed as if alone in its batch, so its neighbours change no bit */
        struct model_ctx *one = model_ctx_new(m, 1, 1024, 512, 512, Q_F16, err, sizeof err);
        REQUIRE_VOID(one);
        CHECK(run_prompt(one, &ps[s], 0, alone, err), "%s prompt %u alone: %s", name, s, err);
        CHECK(memcmp(alone + (ps[s].n - 1) * V, logits + (size_t)s * V, V * sizeof *logits) == 0,
              "%s: prompt %u batched with the others differs from the prompt alone", name, s);
        model_ctx_free(one);
    }
    free(alone);
    free(tok);
    free(pos);
    free(seq);
    free(want);
    free(logits);
    model_ctx_free(c);
}

static void check_model(const char *name)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "models/%s.gguf", name);
    char full[1024];
    struct gguf_file *f = gguf_open(testdata_path(full, sizeof full, path), err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f)
        return;
    struct model m;
    bool ok = model_load(&m, f, err, sizeof err);
    CHECK(ok, "%s", err);
    snprintf(path, sizeof path, "models/%s.ref.json", name);
    json_error_t jerr;
    json_t *ref = ok ? json_load_file(testdata_path(full, sizeof full, path), 0, &jerr) : NULL;
    CHECK(!ok || ref, "%s: %s", path, jerr.text);
    struct prompt ps[3] = {0};
    /* Under the sanitizer the 276-token prompts would take minutes: that build checks the 11- and
     * 42-token prompts, and `make test` runs the release build of this test on all three. */
#if defined(__SANITIZE_ADDRESS__)
    int n_prompts = 2;
#else
    int n_prompts = 3;
#endif
    for (int i = 0; ref && i < 3; i++) {
        CHECK(load_prompt(json_array_get(json_object_get(ref, "prompts"), (size_t)i), &ps[i], 512), "%s prompt %d", name, i);
        if (i < n_prompts)
            check_prompt(name, &m, &ps[i], i);
    }
    if (ref && n_prompts == 3)
        check_batched(name, &m, ps);
    for (int i = 0; i < 3; i++)
        free(ps[i].tokens);
    json_decref(ref);
    if (ok)
        model_free(&m);
    gguf_close(f);
}

int main(void)
{
    const char *models[] = {"tiny-qwen3moe-q8_0", "tiny-qwen3moe-q4_k_m", "tiny-qwen3moe-asym",
                            "tiny-qwen3moe-asym-pruned", "tiny-qwen3moe-mxfp4"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_model(models[i]);
    return test_finish();
}
