/* test_simd_digest.c: the SIMD dot products give the same bits on every CPU: a digest of many
 * results on fixed pseudo-random rows must equal the one recorded (x86 AVX2/AVX-512 = aarch64 NEON). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"

static struct test_rng rng = {0x51ed2701a3c4f865ull};

static uint64_t fnv1a(uint64_t h, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; i++)
        h = (h ^ ((bits >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return h;
}

/* The digests of the x86 kernels (AVX2 and AVX-512 agree), which NEON must reproduce. */
static const struct {
    uint32_t type;
    uint64_t vec_dot, batched;  /* batched 0: the type has no batched orders */
} expected[] = {
    {Q_Q8_0, 0x8158d681072593a5ull, 0},
    {Q_Q4_0, 0xcdaa279c08020b71ull, 0xf3af8f70458cbeb1ull},
    {Q_Q5_0, 0x7538446d2589c121ull, 0},
    {Q_IQ4_NL, 0x450d60549db30776ull, 0xc601e6e09c98e710ull},
    {Q_MXFP4, 0xac1d61b29420a7acull, 0x07fc5dbd12a4aae6ull},
    {Q_Q4_K, 0x496e96dec3409bb2ull, 0x37bff7cedf8d6a47ull},
    {Q_Q6_K, 0xe2b50f0cabea78deull, 0},
    {Q_F32, 0xeaf50dbed748fddcull, 0xd37621b0b600e0b8ull},
    {Q_Q5_K, 0x58d116a546dd8ce3ull, 0},
    {Q_IQ4_XS, 0x07e283ffd9a567f1ull, 0},
    {Q_IQ2_S, 0x67187c4c05245414ull, 0},
    {Q_IQ3_S, 0x163273bc986e2d5bull, 0},
};

int main(void)
{
    const int64_t sizes[] = {256, 288, 1024, 2816, 4096};
    const int64_t max_n = 4096;
    uint8_t *w = malloc((max_n + 16) * 4), *a = malloc((max_n + 16) * 4);
    float *src = malloc((max_n + 16) * sizeof *src);
    REQUIRE(w && a && src, "buffers");
    for (size_t e = 0; e < sizeof expected / sizeof expected[0]; e++) {
        const uint32_t t = expected[e].type;
        const struct q_kernels *kw = q_kernels_get(t), *ka = q_kernels_get(kw->act_type);
        const char *name = q_type_traits(t)->name;
        uint64_t hd = 0xcbf29ce484222325ull, hb = hd;
        int rows = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si] + (t == Q_F32 ? 13 : 0);
            if (n % q_type_traits(t)->block_size)
                continue;
            for (int rep = 0; rep < 32; rep++, rows++) {
                test_rng_blocks(&rng, t, w, n / q_type_traits(t)->block_size);
                for (int64_t i = 0; i < n; i++)
                    src[i] = test_rng_normalish(&rng);
                ka->quant(src, a, n);
                hd = fnv1a(hd, kw->dot(n, w, a));
                for (int k = 0; k < Q_ROW_KINDS && kw->batched_rows; k++)
                    hb = fnv1a(hb, kw->batched.by_kind[k](n, w, a));
            }
        }
        if (!kw->batched_rows)
            hb = 0;
        printf("%-7s %s digest %016llx, batched %016llx (%d rows)\n", name, kw->dot_isa, (unsigned long long)hd,
               (unsigned long long)hb, rows);
        /* the scalar references follow ggml's order only for the batched kinds */
        if (strcmp(kw->dot_isa, "scalar") != 0)
            CHECK(hd == expected[e].vec_dot, "%s: %s vec_dot digest %016llx, x86 SIMD's %016llx", name, kw->dot_isa,
                  (unsigned long long)hd, (unsigned long long)expected[e].vec_dot);
        else
            printf("note: %s runs its scalar dot here (MOESERVE_ISA=scalar or no SIMD); vec_dot digest not compared\n", name);
        CHECK(hb == expected[e].batched, "%s: batched digest %016llx, recorded %016llx", name, (unsigned long long)hb,
              (unsigned long long)expected[e].batched);
    }
    free(w);
    free(a);
    free(src);
    return test_finish();
}
