/* test_simd_iq.c: every SIMD dot product of the grid i-quants against the scalar one, on random
 * valid blocks and random Q8_K activations, for several block counts; plus the table's choices. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/q_iq_simd.h"
#include "kernels/qtypes.h"
#include "tests/test.h"
#include "tests/test_rand.h"
#include "tests/test_vectors.h"

static struct test_rng rng = {0x9e3779b97f4a7c15ull};

/* nb random blocks of type t: random bytes (every bit pattern is a valid block), then a sane
 * super-block scale where the format keeps it. */
static void random_weights(uint32_t t, uint8_t *w, int nb)
{
    const uint32_t bytes = q_type_traits(t)->block_bytes;
    for (size_t i = 0; i < (size_t)nb * bytes; i++)
        w[i] = (uint8_t)test_rng_next(&rng);
    for (int i = 0; i < nb; i++) {
        uint8_t *b = w + (size_t)i * bytes;
        uint16_t h = test_rng_half(&rng);
        if (t == Q_IQ1_M) { /* f16 spread over the top nibbles of the four scale words */
            for (int k = 0; k < 4; k++) {
                uint16_t sc;
                memcpy(&sc, b + 48 + 2 * k, 2);
                sc = (uint16_t)((sc & 0x0fff) | (((h >> (4 * k)) & 0xf) << 12));
                memcpy(b + 48 + 2 * k, &sc, 2);
            }
        } else {
            memcpy(b, &h, 2);
        }
    }
}

/* nb Q8_K blocks built directly: a positive d, qs in [-127, 127] (what quantization produces;
 * -128 never occurs and the SIMD sign flip relies on that), bsums consistent with qs. */
static void random_q8k(struct iq_q8k_block *a, int nb)
{
    for (int i = 0; i < nb; i++) {
        float d = (float)(test_rng_next(&rng) % 1000 + 1) * 1e-5f;
        memcpy(a[i].d, &d, 4);
        for (int j = 0; j < 256; j++)
            a[i].qs[j] = (int8_t)((int)(test_rng_next(&rng) % 255) - 127);
        for (int k = 0; k < 16; k++) {
            int16_t s = 0;
            for (int j = 0; j < 16; j++)
                s = (int16_t)(s + a[i].qs[16 * k + j]);
            memcpy(a[i].bsums + 2 * k, &s, 2);
        }
    }
}

struct variant {
    uint32_t type;
    const char *isa;
    q_dot_fn fn, ref;
    bool needs_avx512;
};

static const struct variant variants[] = {
    {Q_IQ2_XXS, "avx2", q_iq_dot_iq2_xxs_avx2, q_iq_dot_iq2_xxs_scalar, false},
    {Q_IQ2_XS, "avx2", q_iq_dot_iq2_xs_avx2, q_iq_dot_iq2_xs_scalar, false},
    {Q_IQ2_S, "avx2", q_iq_dot_iq2_s_avx2, q_iq_dot_iq2_s_scalar, false},
    {Q_IQ3_XXS, "avx2", q_iq_dot_iq3_xxs_avx2, q_iq_dot_iq3_xxs_scalar, false},
    {Q_IQ3_S, "avx2", q_iq_dot_iq3_s_avx2, q_iq_dot_iq3_s_scalar, false},
    {Q_IQ1_S, "avx2", q_iq_dot_iq1_s_avx2, q_iq_dot_iq1_s_scalar, false},
    {Q_IQ1_M, "avx2", q_iq_dot_iq1_m_avx2, q_iq_dot_iq1_m_scalar, false},
    {Q_IQ2_XXS, "avx512", q_iq_dot_iq2_xxs_avx512, q_iq_dot_iq2_xxs_scalar, true},
    {Q_IQ2_XS, "avx512", q_iq_dot_iq2_xs_avx512, q_iq_dot_iq2_xs_scalar, true},
    {Q_IQ2_S, "avx512", q_iq_dot_iq2_s_avx512, q_iq_dot_iq2_s_scalar, true},
    {Q_IQ3_XXS, "avx512", q_iq_dot_iq3_xxs_avx512, q_iq_dot_iq3_xxs_scalar, true},
    {Q_IQ3_S, "avx512", q_iq_dot_iq3_s_avx512, q_iq_dot_iq3_s_scalar, true},
    {Q_IQ1_S, "avx512", q_iq_dot_iq1_s_avx512, q_iq_dot_iq1_s_scalar, true},
    {Q_IQ1_M, "avx512", q_iq_dot_iq1_m_avx512, q_iq_dot_iq1_m_scalar, true},
};

#define MAX_BLOCKS 40

static void check_variant(const struct variant *v, uint8_t *w, struct iq_q8k_block *a)
{
    static const int counts[] = {1, 2, 3, 7, 16, 40};
    const char *name = q_type_traits(v->type)->name;
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        for (int rep = 0; rep < 8; rep++) {
            const int nb = counts[c];
            random_weights(v->type, w, nb);
            random_q8k(a, nb);
            /* the scalar kernel's float sums are the reference; the SIMD one may only reorder
             * float additions (its integer sums are exact), so compare against the magnitude */
            double want = v->ref(256 * nb, w, a), got = v->fn(256 * nb, w, a);
            double mag = 0;
            for (int i = 0; i < nb; i++)
                mag += fabs(v->ref(256, w + (size_t)i * q_type_traits(v->type)->block_bytes, &a[i]));
            CHECK(fabs(got - want) <= 1e-5 * fmax(mag, 1e-30), "%s %s, %d blocks: %.9g vs scalar %.9g",
                  name, v->isa, nb, got, want);
        }
    }
}

/* A block whose grid, sign and scale fields are all at their extremes: no int16 saturation. */
static void check_extremes(const struct variant *v, uint8_t *w, struct iq_q8k_block *a)
{
    const uint32_t bytes = q_type_traits(v->type)->block_bytes;
    for (int fill = 0; fill < 2; fill++) {
        memset(w, fill ? 0xff : 0x00, bytes);
        uint16_t h = 0x3c00; /* 1.0 */
        if (v->type != Q_IQ1_M) {
            memcpy(w, &h, 2);
        } else { /* its f16 lives in the top nibbles of the four scale words */
            for (int k = 0; k < 4; k++)
                w[48 + 2 * k + 1] = (uint8_t)((w[48 + 2 * k + 1] & 0x0f) | (((h >> (4 * k)) & 0xf) << 4));
        }
        random_q8k(a, 1);
        for (int j = 0; j < 256; j++)
            a[0].qs[j] = (int8_t)(j & 1 ? -127 : 127);
        for (int k = 0; k < 16; k++)
            memset(a[0].bsums + 2 * k, 0, 2);
        double want = v->ref(256, w, a), got = v->fn(256, w, a);
        CHECK(fabs(got - want) <= 1e-5 * fmax(fabs(want), 1e-30), "%s %s extreme fill %d: %.9g vs %.9g",
              q_type_traits(v->type)->name, v->isa, fill, got, want);
    }
}

/* Every SIMD version sums in the float order of ggml-cpu's AVX2 kernels (the only x86 ones it
 * has for these types), so on ggml's own test vectors it returns exactly ggml's vec_dot. The IQ1
 * types have 1.5-bit grids whose ggml kernels add a float per block differently: not checked. */
static void check_bit_identical(const struct q_cpu *cpu)
{
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    REQUIRE_VOID(f);
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        const struct variant *v = &variants[i];
        const bool ok = v->needs_avx512 ? cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni
                                        : cpu->avx2 && cpu->fma;
        if (!ok || v->type == Q_IQ1_S || v->type == Q_IQ1_M)
            continue;
        const char *tn = q_type_traits(v->type)->name;
        struct dot_vectors dv;
        const bool found = dot_vectors_find(f, tn, &dv);
        CHECK(found, "%s: test vectors present", tn);
        for (int64_t r = 0; found && r < dv.q->ne[1]; r++) {
            const float got = v->fn(dv.q->ne[0], (const uint8_t *)dv.q->data + (uint64_t)r * dv.row_bytes, dv.act->data);
            const float want = (float)gguf_arr_f64(dv.vec_dot, (uint64_t)r);
            CHECK(memcmp(&got, &want, 4) == 0, "%s row %lld: %s %.9g, ggml %.9g", tn, (long long)r, v->isa, got, want);
        }
    }
    gguf_close(f);
}

/* The several-token IQ2_S / IQ3_S kernels against their one-token dot, bit for bit. */
static void check_tokens(uint32_t type, q_dot_fn one, q_dot_tokens_fn many, uint8_t *w)
{
    enum { NB = 8 };
    static struct iq_q8k_block a[Q_DOT_TOKENS * (NB + 1)];
    for (int gap = 0; gap < 2; gap++) {
        const size_t stride = (size_t)(NB + gap) * sizeof *a;
        random_weights(type, w, NB);
        random_q8k(a, Q_DOT_TOKENS * (NB + 1));
        for (int nt = 1; nt <= Q_DOT_TOKENS; nt++) {
            float out[Q_DOT_TOKENS];
            many(256 * NB, w, a, stride, nt, out);
            for (int t = 0; t < nt; t++) {
                const float want = one(256 * NB, w, (const uint8_t *)a + t * stride);
                CHECK(memcmp(&out[t], &want, 4) == 0, "%s tokens nt=%d t=%d: %.9g, one-token %.9g",
                      q_type_traits(type)->name, nt, t, out[t], want);
            }
        }
    }
}

int main(void)
{
    const struct q_cpu *cpu = q_cpu_features();
    static uint8_t w[MAX_BLOCKS * 110];
    static struct iq_q8k_block a[MAX_BLOCKS];
    int ran = 0;
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
        const struct variant *v = &variants[i];
        bool ok = v->needs_avx512 ? cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni
                                  : cpu->avx2 && cpu->fma;
        if (!ok) {
            printf("skipping %s %s: CPU lacks it\n", q_type_traits(v->type)->name, v->isa);
            continue;
        }
        check_variant(v, w, a);
        check_extremes(v, w, a);
        ran++;
    }
    CHECK(ran > 0 || !cpu->avx2, "some SIMD version ran");
    check_bit_identical(cpu);
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni) {
        check_tokens(Q_IQ2_S, q_iq_dot_iq2_s_avx512, q_iq_dot_iq2_s_avx512_tokens, w);
        check_tokens(Q_IQ3_S, q_iq_dot_iq3_s_avx512, q_iq_dot_iq3_s_avx512_tokens, w);
    }

    /* The table: every grid type has a dequantizer, Q8_K activations, a scalar reference, and
     * the best version this CPU allows. */
    static const uint32_t types[] = {Q_IQ2_XXS, Q_IQ2_XS, Q_IQ2_S, Q_IQ3_XXS, Q_IQ3_S, Q_IQ1_S, Q_IQ1_M};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        const struct q_kernels *k = q_kernels_get(types[i]);
        CHECK(k && k->dequant && k->dot && k->dot_ref && !k->quant && k->act_type == Q_Q8_K,
              "%s: table entry complete", q_type_traits(types[i])->name);
    }
    const char *want = cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni ? "avx512"
                       : cpu->avx2 && cpu->fma                                             ? "avx2"
                                                                                           : "scalar";
    const char *isa = getenv("MOESERVE_ISA");
    for (size_t i = 0; i < sizeof types / sizeof *types && !(isa && *isa); i++)
        CHECK(strcmp(q_kernels_get(types[i])->dot_isa, want) == 0, "%s uses %s, want %s",
              q_type_traits(types[i])->name, q_kernels_get(types[i])->dot_isa, want);
    return test_finish();
}
