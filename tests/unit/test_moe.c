/* test_moe.c: batched matmul (token-tiled kernels included) bit for bit against per-row dot
 * products, and the grouped MoE FFN against a plain per-token loop built from q_matmul. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/synth.h"
#include "kernels/matmul.h"
#include "kernels/moe.h"
#include "kernels/ops.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"

static struct test_rng rng = {88172645463325252ull};

static float frand(void)
{
    const uint64_t v = test_rng_next(&rng);
    return (float)((v >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* rows x cols random values quantized to `type` (malloc'd); weight-only types get random valid
 * blocks instead. */
static void *random_matrix(uint32_t type, int64_t rows, int64_t cols)
{
    uint64_t rb;
    if (!q_row_bytes(type, (uint64_t)cols, &rb))
        return NULL;
    uint8_t *w = malloc((size_t)rows * rb);
    if (w && !q_kernels_get(type)->quant) {
        uint64_t seed = rng.s;
        synth_random_blocks(type, w, (size_t)rows * rb / q_type_traits(type)->block_bytes, &seed);
        return w;
    }
    float *row = malloc((size_t)cols * sizeof *row);
    if (w && row)
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t c = 0; c < cols; c++)
                row[c] = frand();
            q_kernels_get(type)->quant(row, w + (size_t)r * rb, cols);
        }
    free(row);
    return w;
}

static void test_matmul(uint32_t type, int64_t rows, int64_t cols, int64_t n)
{
    void *w = random_matrix(type, rows, cols);
    float *x = malloc((size_t)n * cols * sizeof *x), *y = malloc((size_t)n * rows * sizeof *y);
    REQUIRE_VOID(w && x && y);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand();
    struct q_mat m;
    REQUIRE_VOID(q_mat_init(&m, type, w, rows, cols));
    struct q_scratch s = {0};
    /* tokens of every kind, in runs and alone, as q_row_kinds gives them for a mixed batch */
    uint8_t *kind = malloc((size_t)n);
    REQUIRE_VOID(kind);
    for (int64_t t = 0; t < n; t++)
        kind[t] = (uint8_t)((t / 3) % Q_ROW_KINDS);
    const struct q_kernels *k = q_kernels_get(type);
    /* the dot each token must get: the type's batched order for its kind where the matrix
     * qualifies for llama.cpp's batched kernels, vec_dot's otherwise */
    const bool batched = k->batched_rows && rows % k->batched_rows == 0 && cols % k->batched_cols == 0;
    size_t ab = q_act_bytes(type, cols, 1);
    void *xq = malloc(ab);
    REQUIRE_VOID(xq);
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *kinds = pass ? kind : NULL;
        CHECK(pass ? q_matmul_kinds(&m, x, n, kind, y, &s) : q_matmul(&m, x, n, y, &s), "q_matmul");
        int bad = 0;
        for (int64_t t = 0; t < n; t++) {
            q_kernels_get(k->act_type)->quant(x + t * cols, xq, cols);
            const q_dot_fn dot = batched ? k->batched.by_kind[kinds ? kinds[t] : Q_ROW_ALONE] : k->dot;
            for (int64_t r = 0; r < rows; r++)
                bad += y[t * rows + r] != dot(cols, (const uint8_t *)w + r * m.row_bytes, xq);
        }
        CHECK(bad == 0, "%s %lldx%lld n=%lld %s: %d products differ from the row dot", q_type_traits(type)->name,
              (long long)rows, (long long)cols, (long long)n, pass ? "mixed kinds" : "alone", bad);
    }
    free(kind);
    /* a second call reuses the scratch without growing it */
    size_t cap = s.cap;
    CHECK(q_matmul(&m, x, n, y, &s) && s.cap == cap, "scratch grew on a repeated call");
    q_scratch_free(&s);
    free(xq);
    free(w);
    free(x);
    free(y);
}


/* The dequantize + sgemm path against float sums over the dequantized rows (its numerics are
 * sgemm's float sums on unquantized x, so a relative tolerance, not equality). */
static void test_sgemm(uint32_t type, int64_t rows, int64_t cols, int64_t n)
{
    void *w = random_matrix(type, rows, cols);
    float *x = malloc((size_t)n * cols * sizeof *x), *y = malloc((size_t)n * rows * sizeof *y);
    float *row = malloc((size_t)cols * sizeof *row), *scratch = malloc(q_matmul_sgemm_scratch(cols));
    REQUIRE_VOID(w && x && y && row && scratch);
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = frand();
    struct q_mat m;
    REQUIRE_VOID(q_mat_init(&m, type, w, rows, cols));
    q_matmul_sgemm(&m, x, n, y, scratch);
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
        q_kernels_get(type)->dequant((const uint8_t *)w + r * m.row_bytes, row, cols);
        for (int64_t t = 0; t < n; t++) {
            double want = 0, mag = 0;
            for (int64_t c = 0; c < cols; c++) {
                want += (double)row[c] * x[t * cols + c];
                mag += fabs((double)row[c] * x[t * cols + c]);
            }
            bad += !(fabs(y[t * rows + r] - want) <= 1e-5 * mag + 1e-30);
        }
    }
    CHECK(bad == 0, "%s sgemm %lldx%lld n=%lld: %d products off", q_type_traits(type)->name, (long long)rows,
          (long long)cols, (long long)n, bad);
    free(w);
    free(x);
    free(y);
    free(row);
    free(scratch);
}

/* The MoE output of one token the slow way: one q_matmul per expert and product. */
static void moe_reference(const struct q_moe_weights *w, const float *x, int k, const int32_t *ids,
                          const float *wts, float *out)
{
    int64_t d = w->n_embd, ff = w->n_ff;
    float *g = malloc((size_t)ff * sizeof *g), *u = malloc((size_t)ff * sizeof *u);
    float *y = malloc((size_t)d * sizeof *y);
    struct q_scratch s = {0};
    REQUIRE_VOID(g && u && y);
    for (int j = 0; j < k; j++) {
        struct q_mat gm = q_moe_expert(w->gate, w->gate_type, ff, d, ids[j]);
        struct q_mat um = q_moe_expert(w->up, w->up_type, ff, d, ids[j]);
        struct q_mat dm = q_moe_expert(w->down, w->down_type, d, ff, ids[j]);
        CHECK(q_matmul(&gm, x, 1, g, &s) && q_matmul(&um, x, 1, u, &s), "reference matmul");
        op_swiglu(g, u, ff);
        CHECK(q_matmul(&dm, g, 1, y, &s), "reference matmul");
        for (int64_t c = 0; c < d; c++)
            out[c] = j == 0 ? y[c] * wts[j] : out[c] + y[c] * wts[j];
    }
    q_scratch_free(&s);
    free(g);
    free(u);
    free(y);
}

static void test_moe(uint32_t type, uint32_t down_type, int64_t n, int k, int64_t d, int64_t ff)
{
    char err[128];
    const int64_t ne = 8;
    struct q_moe_weights w = {.gate = random_matrix(type, ff * ne, d), .up = random_matrix(type, ff * ne, d),
                              .down = random_matrix(down_type, d * ne, ff), .gate_type = type,
                              .up_type = type, .down_type = down_type, .n_embd = d, .n_ff = ff, .n_expert = ne};
    float *x = malloc((size_t)n * d * sizeof *x), *out = malloc((size_t)n * d * sizeof *out);
    float *ref = malloc((size_t)d * sizeof *ref), *wts = malloc((size_t)n * k * sizeof *wts);
    int32_t *ids = malloc((size_t)n * k * sizeof *ids);
    REQUIRE_VOID(w.gate && w.up && w.down && x && out && ref && wts && ids);
    CHECK(q_moe_check(&w, err, sizeof err), "%s", err);
    for (int64_t i = 0; i < n * d; i++)
        x[i] = frand();
    for (int64_t t = 0; t < n; t++)
        for (int j = 0; j < k; j++) {
            /* distinct experts per token; token 0 avoids expert 7 so some expert may be unused */
            ids[t * k + j] = (int32_t)((t * 3 + j * 2) % (t == 0 ? 7 : ne));
            wts[t * k + j] = 0.5f + frand() * 0.25f;
        }
    struct q_moe_scratch s = {0};
    REQUIRE_VOID(q_moe_forward(&w, n, x, k, ids, wts, out, &s, err, sizeof err));
    double max_diff = 0;
    for (int64_t t = 0; t < n; t++) {
        moe_reference(&w, x + t * d, k, ids + t * k, wts + t * k, ref);
        for (int64_t c = 0; c < d; c++)
            max_diff = fmax(max_diff, fabs(ref[c] - out[t * d + c]));
    }
    /* same products, same SwiGLU, same order of addition: identical */
    CHECK(max_diff == 0, "%s/%s n=%lld k=%d: max diff %g", q_type_traits(type)->name,
          q_type_traits(down_type)->name, (long long)n, k, max_diff);
    /* a bad expert id is refused, not read out of bounds */
    ids[0] = (int32_t)ne;
    CHECK(!q_moe_forward(&w, n, x, k, ids, wts, out, &s, err, sizeof err), "expert id %lld accepted", (long long)ne);
    q_moe_scratch_free(&s);
    free((void *)w.gate);
    free((void *)w.up);
    free((void *)w.down);
    free(x);
    free(out);
    free(ref);
    free(wts);
    free(ids);
}

/* Row kinds as llama.cpp would take each sequence's entries if they were a batch of their own:
 * one entry alone; otherwise all but its last (count % 4) in groups of four, those in the tail. */
static void test_row_kinds(void)
{
    const uint32_t seq[] = {0, 0, 1, 0, 0, 1, 0, 1, 2, 0, 2, 2, 2, 3};
    const uint8_t G = Q_ROW_GROUP, T = Q_ROW_TAIL, A = Q_ROW_ALONE;
    const uint8_t want[] = {G, G, T, G, G, T, T, T, G, T, G, G, G, A};
    const int64_t n = sizeof seq / sizeof seq[0];
    uint32_t counts[4];
    uint8_t kind[sizeof seq / sizeof seq[0]];
    q_row_kinds(n, seq, 4, counts, kind);
    CHECK(memcmp(kind, want, sizeof want) == 0,
          "q_row_kinds: 6 entries group 4 + tail 2, 3 all tail, 4 all grouped, 1 alone");
}

int main(void)
{
    char err[128];
    struct q_mat m;
    CHECK(!q_mat_init(&m, Q_Q8_0, NULL, 4, 33), "partial block accepted");
    struct q_moe_weights bad = {.gate_type = Q_Q8_1, .up_type = Q_Q8_0, .down_type = Q_Q8_0,
                                .n_embd = 32, .n_ff = 32, .n_expert = 2};
    CHECK(!q_moe_check(&bad, err, sizeof err), "MoE with a type without dot accepted");
    test_row_kinds();
    test_matmul(Q_Q8_0, 37, 64, 1);
    test_matmul(Q_Q8_0, 300, 256, 5);
    test_matmul(Q_F32, 40, 48, 3);
    test_matmul(Q_F16, 64, 64, 2);
    /* every type with a several-token kernel, at token counts that leave every remainder (1..3)
     * and a split across threads (rows x cols x tokens past the threading threshold) */
    static const uint32_t tiled[] = {Q_Q8_0, Q_Q4_0, Q_Q5_0, Q_IQ4_NL, Q_MXFP4, Q_Q4_K, Q_Q5_K,
                                     Q_Q6_K, Q_IQ4_XS, Q_IQ2_S, Q_IQ3_S, Q_Q2_K, Q_IQ2_XXS};
    for (size_t i = 0; i < sizeof tiled / sizeof *tiled; i++) {
        test_matmul(tiled[i], 33, 256, 1);
        test_matmul(tiled[i], 40, 512, 6);
        test_matmul(tiled[i], 19, 256, 7);
        test_matmul(tiled[i], 300, 512, 9);
    }
    /* row counts that leave a partial tile; one token and a batch */
    test_sgemm(Q_Q4_K, 70, 512, 1);
    test_sgemm(Q_IQ2_S, 33, 256, 40);
    test_sgemm(Q_Q8_0, 96, 128, 17);
    test_sgemm(Q_F16, 40, 64, 5);
    test_moe(Q_Q8_0, Q_Q8_0, 1, 2, 64, 96);
    test_moe(Q_Q8_0, Q_Q8_0, 9, 3, 64, 96);
    test_moe(Q_F32, Q_Q8_0, 5, 2, 64, 96);
    /* the Qwen3-30B-A3B recipe's expert types; 40 tokens over 8 experts: groups of 4 and more */
    test_moe(Q_IQ2_S, Q_IQ3_S, 40, 4, 256, 512);
    test_moe(Q_Q4_K, Q_Q6_K, 13, 3, 256, 256);
    test_moe(Q_MXFP4, Q_MXFP4, 11, 2, 64, 96);
    return test_finish();
}
