/* test_simd_basic.c: every SIMD dot product of the basic (non-grid) types against the scalar one on
 * random blocks, and bit for bit against ggml's vec_dot on testdata/quants.gguf; the table's choices. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "kernels/q_basic_simd.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"
#include "tests/test_vectors.h"

static struct test_rng rng = {0x2545f4914f6cdd1dull};

/* nb random blocks of type t: random bytes (valid for every field but the scales), then sane
 * scales. Q8_0 weights may hold -128 (ggml's quantizer never writes it, other tools might);
 * the activations come from the quantizers, which keep within +-127 as the sign trick needs. */
static void random_weights(uint32_t t, uint8_t *w, int nb)
{
    const uint32_t bytes = q_type_traits(t)->block_bytes;
    for (size_t i = 0; i < (size_t)nb * bytes; i++)
        w[i] = (uint8_t)test_rng_next(&rng);
    if (t == Q_F32 || t == Q_F16 || t == Q_BF16) { /* float weights: through the type's quantizer */
        float *f = malloc((size_t)nb * sizeof *f);
        REQUIRE_VOID(f);
        for (int i = 0; i < nb; i++)
            f[i] = test_rng_normalish(&rng);
        q_kernels_get(t)->quant(f, w, nb);
        free(f);
        return;
    }
    for (int i = 0; i < nb; i++) {
        uint8_t *b = w + (size_t)i * bytes;
        switch (t) {
        case Q_MXFP4:
            b[0] = (uint8_t)(110 + test_rng_next(&rng) % 30); /* 2^-18 .. 2^11 */
            break;
        case Q_Q4_K:
        case Q_Q5_K:
            test_rng_put_half(&rng, b);
            test_rng_put_half(&rng, b + 2);
            break;
        case Q_Q6_K:
            test_rng_put_half(&rng, b + 208);
            break;
        case Q_Q2_K:
            test_rng_put_half(&rng, b + 80);
            test_rng_put_half(&rng, b + 82);
            break;
        case Q_Q3_K:
            test_rng_put_half(&rng, b + 108);
            break;
        case Q_Q4_1:
        case Q_Q5_1:
            test_rng_put_half(&rng, b);
            test_rng_put_half(&rng, b + 2);
            break;
        case Q_TQ2_0:
            test_rng_put_half(&rng, b + 64); /* code 3 (value 2) never comes from ggml, but both dots agree on it */
            break;
        default: /* Q8_0, Q4_0, Q5_0, IQ4_NL, IQ4_XS: f16 scale first */
            test_rng_put_half(&rng, b);
            break;
        }
    }
}


/* Sum of |w_i a_i| over the dequantized rows: the scale that float rounding errors follow, so
 * the tolerance stays meaningful when the dot product itself cancels to near zero. */
static double abs_dot(const struct q_kernels *kw, const struct q_kernels *ka, const void *w, const void *a,
                      int64_t n, float *fw, float *fa)
{
    kw->dequant(w, fw, n);
    ka->dequant(a, fa, n);
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += fabs((double)fw[i] * fa[i]);
    return s;
}

static void check_type(const struct q_basic_simd_dot *c, bool has_avx2, bool has_avx512, double *worst)
{
    const struct q_kernels *kw = q_kernels_get(c->type);
    const struct q_kernels *ka = q_kernels_get(kw->act_type);
    const struct q_traits *tw = q_type_traits(c->type), *ta = q_type_traits(kw->act_type);
    const char *name = tw->name;
    const int64_t sizes[] = {tw->block_size, 2 * tw->block_size, 3 * tw->block_size, 1024, 2816, 4096};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t n = sizes[si];
        if (n % tw->block_size || n % ta->block_size)
            continue;
        const int nb = (int)(n / tw->block_size);
        uint8_t *w = malloc((size_t)nb * tw->block_bytes);
        uint8_t *a = malloc((size_t)(n / ta->block_size) * ta->block_bytes);
        float *src = malloc((size_t)n * sizeof *src), *fw = malloc((size_t)n * sizeof *fw), *fa = malloc((size_t)n * sizeof *fa);
        REQUIRE_VOID(w && a && src && fw && fa);
        for (int rep = 0; rep < 4; rep++) {
            random_weights(c->type, w, nb);
            for (int64_t i = 0; i < n; i++)
                src[i] = test_rng_normalish(&rng);
            ka->quant(src, a, n);
            const double ref = kw->dot_ref(n, w, a);
            const double scale = fmax(fabs(ref), 1e-2 * abs_dot(kw, ka, w, a, n, fw, fa)) + 1e-30;
            const double tol = 1e-5 * scale;
            if (has_avx2) {
                const double got = c->avx2(n, w, a), err = fabs(got - ref);
                CHECK(err <= tol, "%s n=%lld avx2 %.9g scalar %.9g", name, (long long)n, got, ref);
                *worst = fmax(*worst, err / scale);
            }
            if (has_avx512) {
                const double got = c->avx512(n, w, a), err = fabs(got - ref);
                CHECK(err <= tol, "%s n=%lld avx512 %.9g scalar %.9g", name, (long long)n, got, ref);
                *worst = fmax(*worst, err / scale);
            }
        }
        free(w);
        free(a);
        free(src);
        free(fw);
        free(fa);
    }
}

/* The batched orders (repacked Q4_K, tinyBLAS and vec_dot F32) are exact orders, not
 * approximations: every SIMD version must equal its scalar reference bit for bit, for every row
 * kind, including sizes that are not a whole number of SIMD steps. */
static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_batched_orders(bool has_avx2, bool has_avx512)
{
    const int64_t sizes[] = {256, 512, 1024, 1280, 2816, 4096};
    for (size_t i = 0; i < q_basic_simd_batched_count && has_avx2; i++) {
        const struct q_basic_simd_batched *b = &q_basic_simd_batched_dots[i];
        const struct q_kernels *kw = q_kernels_get(b->type), *ka = q_kernels_get(kw->act_type);
        const struct q_traits *tw = q_type_traits(b->type);
        REQUIRE_VOID(kw->batched_rows && kw->batched.by_kind[Q_ROW_GROUP]);
        size_t bad = 0, runs = 0, kinds_differ = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si] + (b->type == Q_F32 ? 13 : 0); /* F32: a tail of 13 */
            const int nb = (int)(n / tw->block_size);
            uint8_t *w = malloc((size_t)nb * tw->block_bytes), *a = malloc((size_t)n * 4);
            float *src = malloc((size_t)n * sizeof *src);
            REQUIRE_VOID(w && a && src);
            for (int rep = 0; rep < 8; rep++, runs++) {
                if (b->type == Q_F32)
                    for (int64_t j = 0; j < n; j++)
                        ((float *)w)[j] = test_rng_normalish(&rng);
                else
                    random_weights(b->type, w, nb);
                for (int64_t j = 0; j < n; j++)
                    src[j] = test_rng_normalish(&rng);
                ka->quant(src, a, n);
                const float alone = kw->batched_ref.by_kind[Q_ROW_ALONE](n, w, a);
                kinds_differ += !same_bits(alone, kw->batched_ref.by_kind[Q_ROW_GROUP](n, w, a));
                for (int k = 0; k < Q_ROW_KINDS; k++) {
                    const float want = kw->batched_ref.by_kind[k](n, w, a);
                    bad += !same_bits(b->avx2.by_kind[k](n, w, a), want);
                    if (has_avx512)
                        bad += !same_bits(b->avx512.by_kind[k](n, w, a), want);
                    /* the several-token kernel on copies of the same activation row */
                    const struct q_batched_dots *isa[2] = {&b->avx2, has_avx512 ? &b->avx512 : NULL};
                    for (int v = 0; v < 2 && b->type != Q_F32; v++)
                        if (isa[v] && isa[v]->tokens_by_kind[k]) {
                            float out[Q_DOT_TOKENS];
                            isa[v]->tokens_by_kind[k](n, w, a, 0, Q_DOT_TOKENS, out);
                            for (int t = 0; t < Q_DOT_TOKENS; t++)
                                bad += !same_bits(out[t], want);
                        }
                }
            }
            free(w);
            free(a);
            free(src);
        }
        CHECK(bad == 0, "%s batched orders: %zu SIMD results differ from the scalar bits", tw->name, bad);
        printf("%-7s batched orders: SIMD = scalar bit for bit on %zu rows x 3 kinds (alone and group differ on %zu)\n",
               tw->name, runs, kinds_differ);
    }
}

/* Each ISA's several-token kernel against its own one-token dot, bit for bit, for every token
 * count, with the activation rows a row apart and further apart. */
static void check_tokens(const struct q_basic_simd_dot *c, bool has_avx2, bool has_avx512)
{
    const struct q_kernels *kw = q_kernels_get(c->type);
    const struct q_traits *tw = q_type_traits(c->type);
    const struct q_kernels *ka = q_kernels_get(kw->act_type);
    const int64_t n = 2048;
    const int nb = (int)(n / tw->block_size);
    uint64_t arb;
    REQUIRE_VOID(q_row_bytes(kw->act_type, (uint64_t)n, &arb));
    const size_t strides[] = {(size_t)arb, (size_t)arb + 100};
    uint8_t *w = malloc((size_t)nb * tw->block_bytes), *a = malloc(Q_DOT_TOKENS * strides[1]);
    float *src = malloc((size_t)n * sizeof *src);
    REQUIRE_VOID(w && a && src);
    struct { bool on; q_dot_fn one; q_dot_tokens_fn many; const char *isa; } isas[] = {
        {has_avx2, c->avx2, c->avx2_tokens, "avx2"}, {has_avx512, c->avx512, c->avx512_tokens, "avx512"}};
    for (size_t si = 0; si < 2; si++) {
        random_weights(c->type, w, nb);
        for (int t = 0; t < Q_DOT_TOKENS; t++) {
            for (int64_t i = 0; i < n; i++)
                src[i] = test_rng_normalish(&rng);
            ka->quant(src, a + t * strides[si], n);
        }
        for (size_t v = 0; v < 2; v++) {
            if (!isas[v].on)
                continue;
            for (int nt = 1; nt <= Q_DOT_TOKENS; nt++) {
                float out[Q_DOT_TOKENS];
                isas[v].many(n, w, a, strides[si], nt, out);
                for (int t = 0; t < nt; t++) {
                    const float want = isas[v].one(n, w, a + t * strides[si]);
                    CHECK(memcmp(&out[t], &want, 4) == 0, "%s %s tokens nt=%d t=%d: %.9g, one-token %.9g",
                          tw->name, isas[v].isa, nt, t, out[t], want);
                }
            }
        }
    }
    free(w);
    free(a);
    free(src);
}

/* One MXFP4 block per E8M0 exponent (the SIMD kernels read the scale from a table): denormal
 * 2^-128 and 2^-127 included, up to where the product would overflow float. */
static void check_mxfp4_exponents(bool has_avx2, bool has_avx512)
{
    const struct q_kernels *k = q_kernels_get(Q_MXFP4), *ka = q_kernels_get(Q_Q8_0);
    uint8_t w[17], act[34];
    float src[32];
    int bad = 0;
    for (int e = 0; e <= 240; e++) {
        random_weights(Q_MXFP4, w, 1);
        w[0] = (uint8_t)e;
        for (int j = 0; j < 32; j++)
            src[j] = test_rng_normalish(&rng);
        ka->quant(src, act, 32);
        const double ref = k->dot_ref(32, w, act), tol = 1e-6 * fabs(ref);
        if (has_avx2 && fabs(q_basic_dot_mxfp4_avx2(32, w, act) - ref) > tol)
            bad++;
        if (has_avx512 && fabs(q_basic_dot_mxfp4_avx512(32, w, act) - ref) > tol)
            bad++;
    }
    CHECK(bad == 0, "mxfp4: %d exponents where a SIMD dot differs from the scalar one", bad);
}

/* The SIMD kernels take ggml-cpu's AVX2 float steps, so on ggml's own test vectors they must
 * return exactly its vec_dot (the float types excepted: their summation order differs). */
static void check_bit_identical(bool has_avx2, bool has_avx512)
{
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    REQUIRE_VOID(f);
    for (size_t i = 0; i < q_basic_simd_dot_count; i++) {
        const uint32_t t = q_basic_simd_dots[i].type;
        if (t == Q_F32 || t == Q_F16 || t == Q_BF16)
            continue;
        const char *tn = q_type_traits(t)->name;
        struct dot_vectors dv;
        const bool found = dot_vectors_find(f, tn, &dv);
        CHECK(found, "%s: test vectors present", tn);
        if (!found)
            continue;
        const struct gguf_tensor *q = dv.q, *act = dv.act;
        for (int64_t r = 0; r < q->ne[1]; r++) {
            const void *w = (const uint8_t *)q->data + (uint64_t)r * dv.row_bytes;
            const float want = (float)gguf_arr_f64(dv.vec_dot, (uint64_t)r);
            if (has_avx2) {
                const float got = q_basic_simd_dots[i].avx2(q->ne[0], w, act->data);
                CHECK(memcmp(&got, &want, 4) == 0, "%s row %lld: avx2 %.9g, ggml %.9g", tn, (long long)r, got, want);
            }
            if (has_avx512) {
                const float got = q_basic_simd_dots[i].avx512(q->ne[0], w, act->data);
                CHECK(memcmp(&got, &want, 4) == 0, "%s row %lld: avx512 %.9g, ggml %.9g", tn, (long long)r, got, want);
            }
        }
    }
    gguf_close(f);
}

int main(void)
{
    const struct q_cpu *cpu = q_cpu_features();
    const bool has_avx2 = cpu->avx2 && cpu->fma && cpu->f16c;
    const bool has_avx512 = has_avx2 && cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni;
    if (!has_avx2)
        printf("note: this CPU has no AVX2; only the table is checked\n");
    else if (!has_avx512)
        printf("note: this CPU has no AVX-512 VNNI; its kernels are not run\n");

    const char *cap = getenv("MOESERVE_ISA");
    const char *want = cap && strcmp(cap, "scalar") == 0 ? "scalar"
                     : has_avx512 && !(cap && strcmp(cap, "avx2") == 0) ? "avx512"
                     : has_avx2 ? "avx2" : "scalar";
    for (size_t i = 0; i < q_basic_simd_dot_count; i++) {
        const struct q_kernels *k = q_kernels_get(q_basic_simd_dots[i].type);
        const char *name = q_type_traits(q_basic_simd_dots[i].type)->name;
        REQUIRE(k && k->dot && k->dot_ref && k->dequant, "%s: kernels registered", name);
        CHECK(strcmp(k->dot_isa, want) == 0, "%s: table picked %s, expected %s", name, k->dot_isa, want);
        double worst = 0;
        check_type(&q_basic_simd_dots[i], has_avx2, has_avx512, &worst);
        if (q_basic_simd_dots[i].avx2_tokens)
            check_tokens(&q_basic_simd_dots[i], has_avx2, has_avx512);
        /* the table's several-token kernel belongs to the one-token kernel it picked */
        CHECK(k->dot == q_basic_simd_dots[i].avx512 ? k->dot_tokens == q_basic_simd_dots[i].avx512_tokens
              : k->dot == q_basic_simd_dots[i].avx2 ? k->dot_tokens == q_basic_simd_dots[i].avx2_tokens
                                                    : !k->dot_tokens,
              "%s: dot_tokens from the table", name);
        printf("%-7s max SIMD/scalar difference %.2e (relative to max(|dot|, 1%% of sum |w a|))\n", name, worst);
    }
    check_mxfp4_exponents(has_avx2, has_avx512);
    check_bit_identical(has_avx2, has_avx512);
    check_batched_orders(has_avx2, has_avx512);
    return test_finish();
}
