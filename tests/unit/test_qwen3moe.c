/* test_qwen3moe.c: the qwen3moe forward pass against llama.cpp's reference logits for every tiny
 * model: last-position KL, top-1 agreement, greedy continuation, batching and chunking invariance. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "tests/test.h"

#define N_PROMPTS 3
#define N_GREEDY 32
#define N_SLOTS 3
#define N_CTX 512

struct prompt {
    int32_t *tokens;
    uint32_t n;
    json_t *ref;          /* the prompt object */
    float *last;          /* our last-position logits, whole prompt as one batch */
    int32_t greedy[N_GREEDY];
};

static int32_t argmax(const float *x, uint32_t n)
{
    int32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = (int32_t)i;
    return best;
}

static void log_softmax(const float *x, uint32_t n, double *out)
{
    double max = x[0], sum = 0.0;
    for (uint32_t i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (uint32_t i = 0; i < n; i++)
        sum += exp(x[i] - max);
    double lse = max + log(sum);
    for (uint32_t i = 0; i < n; i++)
        out[i] = x[i] - lse;
}

/* KL(p || q) of the softmaxes of two logit vectors. */
static double kl_div(const float *p_logits, const float *q_logits, uint32_t n)
{
    double *lp = malloc(n * sizeof *lp), *lq = malloc(n * sizeof *lq), kl = 0.0;
    if (!lp || !lq) {
        free(lp);
        free(lq);
        return INFINITY;
    }
    log_softmax(p_logits, n, lp);
    log_softmax(q_logits, n, lq);
    for (uint32_t i = 0; i < n; i++)
        kl += exp(lp[i]) * (lp[i] - lq[i]);
    free(lp);
    free(lq);
    return kl;
}

static bool run_batch(struct model_ctx *c, uint32_t n, const int32_t *tok, const uint32_t *pos,
                      const uint32_t *slot, const bool *want, float *logits)
{
    char err[256] = "";
    bool ok = model_decode(c, n, tok, pos, slot, want, logits, err, sizeof err);
    CHECK(ok, "model_decode: %s", err);
    return ok;
}

/* Whole prompt as one batch in `slot`, logits at every position. */
static bool prefill(struct model_ctx *c, const struct prompt *p, uint32_t slot, float *logits)
{
    uint32_t *pos = malloc(p->n * sizeof *pos), *sl = malloc(p->n * sizeof *sl);
    bool *want = malloc(p->n * sizeof *want), ok = false;
    if (pos && sl && want) {
        for (uint32_t i = 0; i < p->n; i++) {
            pos[i] = i;
            sl[i] = slot;
            want[i] = true;
        }
        model_slot_keep(c, slot, 0);
        ok = run_batch(c, p->n, p->tokens, pos, sl, want, logits);
    }
    free(pos);
    free(sl);
    free(want);
    return ok;
}

/* N_GREEDY greedy steps on several slots at once (one entry per slot per step), starting from
 * each slot's first token in first[s] at position start[s]. */
static void greedy(struct model_ctx *c, uint32_t n_slots, const uint32_t *slots, const int32_t *first,
                   const uint32_t *start, int32_t out[][N_GREEDY], uint32_t n_vocab)
{
    float *logits = malloc((size_t)n_slots * n_vocab * sizeof *logits);
    REQUIRE_VOID(logits);
    int32_t tok[N_SLOTS];
    uint32_t pos[N_SLOTS];
    bool want[N_SLOTS];
    for (uint32_t s = 0; s < n_slots; s++) {
        out[s][0] = first[s];
        tok[s] = first[s];
        pos[s] = start[s];
        want[s] = true;
    }
    for (int step = 1; step < N_GREEDY; step++) {
        if (!run_batch(c, n_slots, tok, pos, slots, want, logits))
            break;
        for (uint32_t s = 0; s < n_slots; s++) {
            tok[s] = out[s][step] = argmax(logits + (size_t)s * n_vocab, n_vocab);
            pos[s]++;
        }
    }
    free(logits);
}

static void check_positions(const char *label, const struct prompt *p, const float *logits, uint32_t n_vocab)
{
    json_t *top20 = json_object_get(p->ref, "top20");
    uint32_t agree = 0, in_top5 = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        int32_t ours = argmax(logits + (size_t)i * n_vocab, n_vocab);
        json_t *row = json_array_get(top20, i);
        if (json_integer_value(json_array_get(json_array_get(row, 0), 0)) == ours)
            agree++;
        else
            fprintf(stderr, "    position %u: ours %d, reference %lld (reference margin %.4f)\n", i, ours,
                    json_integer_value(json_array_get(json_array_get(row, 0), 0)),
                    json_real_value(json_array_get(json_array_get(row, 0), 1)) -
                        json_real_value(json_array_get(json_array_get(row, 1), 1)));
        bool found = false;
        for (size_t r = 0; r < 5 && r < json_array_size(row); r++)
            found |= json_integer_value(json_array_get(json_array_get(row, r), 0)) == ours;
        in_top5 += found;
    }
    double rate = (double)agree / p->n;
    fprintf(stderr, "  %s: top-1 %u/%u (%.1f%%), in ref top-5 %u/%u\n", label, agree, p->n,
            100.0 * rate, in_top5, p->n);
    CHECK(rate >= 0.98, "%s: top-1 agreement %.3f", label, rate);
    CHECK(in_top5 == p->n, "%s: %u of our top-1 outside the reference top 5", label, p->n - in_top5);
}

static void check_greedy(const char *label, const struct prompt *p)
{
    json_t *g = json_object_get(p->ref, "greedy");
    int matched = 0, required = 0;
    bool diverged = false;
    for (int s = 0; s < N_GREEDY && s < (int)json_array_size(g); s++) {
        json_t *step = json_array_get(g, s);
        double margin = json_real_value(json_array_get(step, 1));
        if (margin < 0.1)
            break;
        required++;
        if (!diverged && json_integer_value(json_array_get(step, 0)) == p->greedy[s])
            matched++;
        else
            diverged = true;
    }
    fprintf(stderr, "  %s: greedy matches %d of %d required steps\n", label, matched, required);
    CHECK(matched == required, "%s: greedy diverges at step %d", label, matched);
}

static bool load_prompts(json_t *root, struct prompt *ps)
{
    json_t *arr = json_object_get(root, "prompts");
    if (json_array_size(arr) != N_PROMPTS)
        return false;
    for (int i = 0; i < N_PROMPTS; i++) {
        ps[i].ref = json_array_get(arr, i);
        json_t *t = json_object_get(ps[i].ref, "tokens");
        ps[i].n = (uint32_t)json_array_size(t);
        ps[i].tokens = malloc(ps[i].n * sizeof(int32_t));
        if (!ps[i].tokens || !ps[i].n)
            return false;
        for (uint32_t j = 0; j < ps[i].n; j++)
            ps[i].tokens[j] = (int32_t)json_integer_value(json_array_get(t, j));
    }
    return true;
}

/* Each prompt alone: KL, top-1 agreement and greedy against the reference. */
static void test_alone(const char *name, struct model_ctx *c, struct prompt *ps, int n_prompts,
                       uint32_t n_vocab)
{
    for (int i = 0; i < n_prompts; i++) {
        struct prompt *p = &ps[i];
        char label[96];
        snprintf(label, sizeof label, "%s prompt %d (%u tokens)", name, i, p->n);
        float *logits = malloc((size_t)p->n * n_vocab * sizeof *logits);
        p->last = malloc(n_vocab * sizeof(float));
        REQUIRE_VOID(logits && p->last);
        if (prefill(c, p, 0, logits)) {
            memcpy(p->last, logits + (size_t)(p->n - 1) * n_vocab, n_vocab * sizeof(float));
            json_t *ref = json_object_get(p->ref, "last_logits");
            float *rl = malloc(n_vocab * sizeof *rl);
            REQUIRE_VOID(rl && json_array_size(ref) == n_vocab);
            for (uint32_t v = 0; v < n_vocab; v++)
                rl[v] = (float)json_real_value(json_array_get(ref, v));
            double kl = kl_div(rl, p->last, n_vocab), max_diff = 0;
            for (uint32_t v = 0; v < n_vocab; v++)
                max_diff = fmax(max_diff, fabs(rl[v] - p->last[v]));
            double bound = p->n <= 42 ? 5e-4 : 2e-3;
            fprintf(stderr, "  %s: KL %.3e (bound %.0e), max |dlogit| %.4f\n", label, kl, bound, max_diff);
            CHECK(kl <= bound, "%s: KL %.3e", label, kl);
            free(rl);
            check_positions(label, p, logits, n_vocab);
            uint32_t slot0 = 0, start = p->n;
            int32_t first = argmax(p->last, n_vocab);
            greedy(c, 1, &slot0, &first, &start, (int32_t(*)[N_GREEDY])p->greedy, n_vocab);
            check_greedy(label, p);
        }
        free(logits);
    }
}

/* The prompts in one batch on one slot each, then greedy on all of them at once. */
static void test_batched(const char *name, struct model_ctx *c, struct prompt *ps, int n_prompts,
                         uint32_t n_vocab)
{
    uint32_t n = 0;
    for (int i = 0; i < n_prompts; i++)
        n += ps[i].n;
    int32_t *tok = malloc(n * sizeof *tok);
    uint32_t *pos = malloc(n * sizeof *pos), *slot = malloc(n * sizeof *slot);
    bool *want = malloc(n * sizeof *want);
    float *logits = malloc(N_PROMPTS * (size_t)n_vocab * sizeof *logits);
    REQUIRE_VOID(tok && pos && slot && want && logits);
    /* interleave the prompts so entries of different slots alternate */
    uint32_t at = 0, next[N_PROMPTS] = {0};
    while (at < n)
        for (int s = 0; s < n_prompts; s++)
            if (next[s] < ps[s].n) {
                tok[at] = ps[s].tokens[next[s]];
                pos[at] = next[s];
                slot[at] = (uint32_t)s;
                want[at] = ++next[s] == ps[s].n;
                at++;
            }
    for (uint32_t s = 0; s < N_SLOTS; s++)
        model_slot_keep(c, s, 0);
    if (run_batch(c, n, tok, pos, slot, want, logits)) {
        /* logits rows come in entry order: the shortest prompt finishes first */
        uint32_t row = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!want[i])
                continue;
            const struct prompt *p = &ps[slot[i]];
            double max_diff = 0;
            for (uint32_t v = 0; v < n_vocab; v++)
                max_diff = fmax(max_diff, fabs(logits[(size_t)row * n_vocab + v] - p->last[v]));
            double kl = kl_div(p->last, logits + (size_t)row * n_vocab, n_vocab);
            fprintf(stderr, "  %s batched slot %u: KL vs alone %.3e, max |dlogit| %.2e\n", name,
                    slot[i], kl, max_diff);
            CHECK(kl <= 1e-5 && max_diff <= 1e-3, "%s slot %u: batched differs from alone", name, slot[i]);
            row++;
        }
        int32_t out[N_SLOTS][N_GREEDY], first[N_SLOTS];
        uint32_t slots[N_SLOTS] = {0, 1, 2}, start[N_SLOTS];
        for (int s = 0; s < n_prompts; s++) {
            first[s] = argmax(ps[s].last, n_vocab);
            start[s] = ps[s].n;
        }
        greedy(c, (uint32_t)n_prompts, slots, first, start, out, n_vocab);
        for (int s = 0; s < n_prompts; s++)
            CHECK(memcmp(out[s], ps[s].greedy, sizeof out[s]) == 0, "%s slot %d: batched greedy differs", name, s);
    }
    free(tok);
    free(pos);
    free(slot);
    free(want);
    free(logits);
}

/* The longest prompt fed in chunks of 7 must end where one batch ends. */
static void test_chunks(const char *name, struct model_ctx *c, const struct prompt *p, uint32_t n_vocab)
{
    float *logits = malloc(7 * (size_t)n_vocab * sizeof *logits);
    REQUIRE_VOID(logits);
    model_slot_keep(c, 1, 0);
    bool ok = true;
    uint32_t last_rows = 0;
    for (uint32_t at = 0; ok && at < p->n; at += 7) {
        uint32_t k = p->n - at < 7 ? p->n - at : 7, pos[7], slot[7];
        bool want[7];
        for (uint32_t j = 0; j < k; j++) {
            pos[j] = at + j;
            slot[j] = 1;
            want[j] = true;
        }
        ok = run_batch(c, k, p->tokens + at, pos, slot, want, logits);
        last_rows = k;
    }
    CHECK(model_slot_len(c, 1) == p->n, "slot length %u after chunks", model_slot_len(c, 1));
    if (ok) {
        const float *last = logits + (size_t)(last_rows - 1) * n_vocab;
        double kl = kl_div(p->last, last, n_vocab);
        fprintf(stderr, "  %s chunks of 7 (%u tokens): KL vs one batch %.3e\n", name, p->n, kl);
        CHECK(kl <= 1e-5, "%s: chunked prompt KL %.3e", name, kl);
    }
    free(logits);
}

static void test_model(const char *name, bool batching, bool full)
{
    char path[512], rel[256], err[512] = "";
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    struct model *m = model_load(testdata_path(path, sizeof path, rel), err, sizeof err);
    CHECK(m != NULL, "%s: %s", name, err);
    snprintf(rel, sizeof rel, "models/%s.ref.json", name);
    json_error_t jerr;
    json_t *root = json_load_file(testdata_path(path, sizeof path, rel), 0, &jerr);
    CHECK(root != NULL, "%s: %s", rel, jerr.text);
    struct model_ctx *c = m ? model_ctx_new(m, N_SLOTS, N_CTX, 512, err, sizeof err) : NULL;
    CHECK(!m || c, "%s: %s", name, err);
    struct prompt ps[N_PROMPTS] = {0};
    if (c && root && load_prompts(root, ps)) {
        fprintf(stderr, "%s:\n", name);
        uint32_t n_vocab = m->hp.n_vocab;
        CHECK(json_integer_value(json_object_get(root, "n_vocab")) == n_vocab, "%s: n_vocab", name);
        /* quick mode: the two short prompts, the chunk test on the 42-token one */
        int n_prompts = full ? N_PROMPTS : 2;
        test_alone(name, c, ps, n_prompts, n_vocab);
        if (batching) {
            test_batched(name, c, ps, n_prompts, n_vocab);
            test_chunks(name, c, &ps[n_prompts - 1], n_vocab);
        }
    } else if (root) {
        CHECK(false, "%s: reference prompts unreadable", name);
    }
    for (int i = 0; i < N_PROMPTS; i++) {
        free(ps[i].tokens);
        free(ps[i].last);
    }
    json_decref(root);
    model_ctx_free(c);
    model_free(m);
}

static void test_bad_batches(void)
{
    char path[512], err[256];
    struct model *m = model_load(testdata_path(path, sizeof path, "models/tiny-qwen3moe-q8_0.gguf"), err, sizeof err);
    REQUIRE_VOID(m);
    struct model_ctx *c = model_ctx_new(m, 2, 64, 8, err, sizeof err);
    REQUIRE_VOID(c);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    REQUIRE_VOID(logits);
    int32_t tok = 5, bad_tok = (int32_t)m->hp.n_vocab;
    uint32_t pos0 = 0, pos_gap = 3, pos_far = 64, slot0 = 0, bad_slot = 2;
    bool want = true;
    CHECK(!model_decode(c, 1, &bad_tok, &pos0, &slot0, &want, logits, err, sizeof err), "bad token accepted");
    CHECK(!model_decode(c, 1, &tok, &pos0, &bad_slot, &want, logits, err, sizeof err), "bad slot accepted");
    CHECK(!model_decode(c, 1, &tok, &pos_far, &slot0, &want, logits, err, sizeof err), "position past n_ctx accepted");
    CHECK(!model_decode(c, 1, &tok, &pos_gap, &slot0, &want, logits, err, sizeof err), "gap accepted");
    CHECK(model_decode(c, 1, &tok, &pos0, &slot0, &want, logits, err, sizeof err), "%s", err);
    CHECK(model_slot_len(c, 0) == 1, "slot length %u", model_slot_len(c, 0));
    CHECK(model_slot_copy(c, 0, 1, 1) && model_slot_len(c, 1) == 1, "slot copy");
    model_slot_keep(c, 0, 0);
    CHECK(model_slot_len(c, 0) == 0, "slot cleared");
    free(logits);
    model_ctx_free(c);
    model_free(m);
    /* a file that is not a qwen3moe model is refused with a message */
    m = model_load(testdata_path(path, sizeof path, "models/tiny-qwen3next-q8_0.gguf"), err, sizeof err);
    CHECK(!m && strstr(err, "qwen3moe"), "qwen3next accepted: %s", err);
    model_free(m);
}

/* The scalar kernels run ~20x slower under ASan+UBSan: the sanitizer build checks one model
 * (memory safety of every path); the release build (make test-unit) or MOESERVE_TEST_FULL=1
 * checks every model against its reference. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

int main(void)
{
    const char *full_env = getenv("MOESERVE_TEST_FULL");
    bool full = !SANITIZED || (full_env && *full_env == '1');
    static const char *const models[] = {"tiny-qwen3moe-q8_0", "tiny-qwen3moe-q4_k_m",
                                         "tiny-qwen3moe-asym", "tiny-qwen3moe-asym-pruned",
                                         "tiny-qwen3moe-mxfp4"};
    test_bad_batches();
    if (!full)
        fprintf(stderr, "sanitizer build: reference check of %s only (MOESERVE_TEST_FULL=1 for all)\n", models[0]);
    for (size_t i = 0; i < (full ? sizeof models / sizeof *models : 1); i++)
        test_model(models[i], i == 0 || i == 4, full);
    return test_finish();
}
