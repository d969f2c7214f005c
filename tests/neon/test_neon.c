/* test_neon.c (aarch64 only, `make test-neon`): every NEON dot product against the scalar one on
 * random blocks, bit for bit against ggml's vec_dot on testdata/quants.gguf, and the batched orders. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "kernels/q_basic_neon.h"
#include "kernels/q_iq_simd.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"
#include "tests/test_vectors.h"

static struct test_rng rng = {0x9e3779b97f4a7c15ull};

struct rows {
    uint8_t *w, *a;
    float *src;
};

static bool rows_alloc(struct rows *r, int64_t n)
{
    r->w = malloc((size_t)n * 4);
    r->a = malloc((size_t)n * 4);
    r->src = malloc((size_t)n * sizeof *r->src);
    return r->w && r->a && r->src;
}

static void rows_free(struct rows *r)
{
    free(r->w);
    free(r->a);
    free(r->src);
}

/* Random weights and a quantized random activation row of n values. */
static void rows_fill(struct rows *r, uint32_t t, int64_t n)
{
    const struct q_kernels *kw = q_kernels_get(t), *ka = q_kernels_get(kw->act_type);
    test_rng_blocks(&rng, t, r->w, n / q_type_traits(t)->block_size);
    for (int64_t i = 0; i < n; i++)
        r->src[i] = test_rng_normalish(&rng);
    ka->quant(r->src, r->a, n);
}

/* NEON against the scalar reference (a plain loop, not ggml's order: 1e-5 relative, of the
 * larger of |dot| and 1% of sum |w a|, as test_simd_basic). */
static void check_against_scalar(const struct q_basic_neon_dot *c)
{
    const struct q_kernels *kw = q_kernels_get(c->type), *ka = q_kernels_get(kw->act_type);
    const struct q_traits *tw = q_type_traits(c->type);
    const int64_t sizes[] = {32, 96, 256, 512, 1024, 2816, 4096, 4096 + 13}; /* odd block counts too */
    struct rows r;
    REQUIRE_VOID(rows_alloc(&r, 4096 + 64));
    float *fw = malloc((4096 + 64) * sizeof *fw), *fa = malloc((4096 + 64) * sizeof *fa);
    REQUIRE_VOID(fw && fa);
    double worst = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t n = sizes[si];
        if (n % tw->block_size)
            continue;
        for (int rep = 0; rep < 8; rep++) {
            rows_fill(&r, c->type, n);
            kw->dequant(r.w, fw, n);
            ka->dequant(r.a, fa, n);
            double abs_sum = 0;
            for (int64_t i = 0; i < n; i++)
                abs_sum += fabs((double)fw[i] * fa[i]);
            const double ref = kw->dot_ref(n, r.w, r.a), got = c->dot(n, r.w, r.a);
            const double scale = fmax(fabs(ref), 1e-2 * abs_sum) + 1e-30;
            CHECK(fabs(got - ref) <= 1e-5 * scale, "%s n=%lld neon %.9g scalar %.9g", tw->name, (long long)n, got, ref);
            worst = fmax(worst, fabs(got - ref) / scale);
        }
    }
    printf("%-7s max NEON/scalar difference %.2e\n", tw->name, worst);
    free(fw);
    free(fa);
    rows_free(&r);
}

/* ggml's x86 vec_dot, stored in the testdata: NEON returns its bits (the float types' order is
 * not ggml's vec_dot order on every ISA, as in test_simd_basic). */
static void check_against_ggml(const struct q_basic_neon_dot *dots, size_t count)
{
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    REQUIRE_VOID(f);
    for (size_t i = 0; i < count; i++) {
        const uint32_t t = dots[i].type;
        if (t == Q_F32)
            continue;
        const char *tn = q_type_traits(t)->name;
        struct dot_vectors dv;
        const bool found = dot_vectors_find(f, tn, &dv);
        CHECK(found, "%s: test vectors present", tn);
        if (!found)
            continue;
        int same = 0;
        for (int64_t r = 0; r < dv.q->ne[1]; r++) {
            const void *w = (const uint8_t *)dv.q->data + (uint64_t)r * dv.row_bytes;
            const float want = (float)gguf_arr_f64(dv.vec_dot, (uint64_t)r);
            const float got = dots[i].dot(dv.q->ne[0], w, dv.act->data);
            CHECK(memcmp(&got, &want, 4) == 0, "%s row %lld: neon %.9g, ggml %.9g", tn, (long long)r, got, want);
            same += memcmp(&got, &want, 4) == 0;
        }
        printf("%-7s NEON = ggml vec_dot bit for bit on %d/%lld rows\n", tn, same, (long long)dv.q->ne[1]);
    }
    gguf_close(f);
}

/* The batched orders are exact: NEON equals the scalar reference bit for bit, every row kind. */
static void check_batched(void)
{
    const int64_t sizes[] = {256, 512, 1280, 2816, 4096};
    struct rows r;
    REQUIRE_VOID(rows_alloc(&r, 4096 + 64));
    for (size_t i = 0; i < q_basic_neon_batched_count; i++) {
        const struct q_basic_neon_batched *b = &q_basic_neon_batched_dots[i];
        const struct q_kernels *kw = q_kernels_get(b->type);
        size_t bad = 0, runs = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si] + (b->type == Q_F32 ? 13 : 0);
            for (int rep = 0; rep < 8; rep++, runs++) {
                rows_fill(&r, b->type, n);
                for (int k = 0; k < Q_ROW_KINDS; k++) {
                    const float want = kw->batched_ref.by_kind[k](n, r.w, r.a), got = b->by_kind[k](n, r.w, r.a);
                    bad += memcmp(&want, &got, 4) != 0;
                }
            }
        }
        CHECK(bad == 0, "%s batched orders: %zu NEON results differ from the scalar bits", q_type_traits(b->type)->name, bad);
        printf("%-7s batched orders: NEON = scalar bit for bit on %zu rows x 3 kinds\n", q_type_traits(b->type)->name,
               runs);
    }
    rows_free(&r);
}

/* The grid i-quants with NEON versions (q_iq_neon.c). */
static const struct q_basic_neon_dot iq_dots[] = {{Q_IQ2_S, q_iq_dot_iq2_s_neon}, {Q_IQ3_S, q_iq_dot_iq3_s_neon}};
#define IQ_DOT_COUNT (sizeof iq_dots / sizeof iq_dots[0])

/* The table picks NEON (or scalar under MOESERVE_ISA=scalar) for each of these types. */
static void check_table(void)
{
    const char *cap = getenv("MOESERVE_ISA");
    const bool scalar = cap && strcmp(cap, "scalar") == 0;
    CHECK(q_cpu_features()->neon, "aarch64: NEON detected");
    for (size_t i = 0; i < q_basic_neon_dot_count; i++) {
        const struct q_kernels *k = q_kernels_get(q_basic_neon_dots[i].type);
        CHECK(k->dot == (scalar ? k->dot_ref : q_basic_neon_dots[i].dot) && !k->dot_tokens,
              "%s: table picked %s", q_type_traits(q_basic_neon_dots[i].type)->name, k->dot_isa);
    }
    for (size_t i = 0; i < IQ_DOT_COUNT; i++) {
        const struct q_kernels *k = q_kernels_get(iq_dots[i].type);
        CHECK(k->dot == (scalar ? k->dot_ref : iq_dots[i].dot), "%s: table picked %s", q_type_traits(iq_dots[i].type)->name,
              k->dot_isa);
    }
    for (size_t i = 0; i < q_basic_neon_batched_count; i++) {
        const struct q_kernels *k = q_kernels_get(q_basic_neon_batched_dots[i].type);
        for (int kind = 0; kind < Q_ROW_KINDS; kind++)
            CHECK(k->batched.by_kind[kind] == (scalar ? k->batched_ref.by_kind[kind]
                                                      : q_basic_neon_batched_dots[i].by_kind[kind]),
                  "%s: batched kind %d from the table", q_type_traits(q_basic_neon_batched_dots[i].type)->name, kind);
    }
}

int main(void)
{
    check_table();
    for (size_t i = 0; i < q_basic_neon_dot_count; i++)
        check_against_scalar(&q_basic_neon_dots[i]);
    for (size_t i = 0; i < IQ_DOT_COUNT; i++)
        check_against_scalar(&iq_dots[i]);
    check_against_ggml(q_basic_neon_dots, q_basic_neon_dot_count);
    check_against_ggml(iq_dots, IQ_DOT_COUNT);
    check_batched();
    return test_finish();
}
