/* test_attn_dots.c: the attention inner loops (kernels/attn_dots.h): the SIMD versions equal the
 * scalar references bit for bit in both lane orders, and the scalar ones add what they claim. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/attn_dots.h"
#include "kernels/ops.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"

static struct test_rng rng = {0x9e3779b97f4a7c15ull};

static float rnd(void)
{
    const uint64_t v = test_rng_next(&rng);
    return (float)((int)(v % 2001) - 1000) / 300.0f;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

int main(void)
{
    const struct attn_dots *ref = attn_dots_scalar(), *best = attn_dots_get();
    const struct q_cpu *cpu = q_cpu_features();
    const char *cap = getenv("MOESERVE_ISA");
    const bool simd = cpu->avx2 && cpu->fma && cpu->f16c && !(cap && strcmp(cap, "scalar") == 0);
    CHECK(strcmp(best->isa, simd ? "avx2" : "scalar") == 0, "picked %s", best->isa);
    enum { N = 600 };
    float q[N], acc_ref[N], acc_simd[N];
    uint16_t k[N];
    const int64_t sizes[] = {1, 15, 16, 64, 80, 128, 200, 512, 600};
    size_t bad_dot = 0, bad_axpy = 0;
    for (int rep = 0; rep < 20; rep++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si];
            for (int64_t i = 0; i < n; i++) {
                q[i] = q_f16_to_f32(q_f32_to_f16(rnd()));
                k[i] = q_f32_to_f16(rnd());
                acc_ref[i] = acc_simd[i] = rnd();
            }
            for (int slots = ATTN_SLOTS_TINY; slots <= ATTN_SLOTS_VEC; slots *= 4)
                bad_dot += !same_bits(ref->dot(q, k, n, slots), best->dot(q, k, n, slots));
            const float w = rnd();
            ref->axpy(acc_ref, w, k, n);
            best->axpy(acc_simd, w, k, n);
            bad_axpy += memcmp(acc_ref, acc_simd, (size_t)n * sizeof *acc_ref) != 0;
        }
    CHECK(bad_dot == 0, "%zu dot products differ from the scalar bits", bad_dot);
    CHECK(bad_axpy == 0, "%zu axpy rows differ from the scalar bits", bad_axpy);

    /* the 16-slot order on 32 values: slot l holds fma(q[l+16], k[l+16], q[l] k[l]), folded by
     * the 16-lane horizontal add */
    float slot[16];
    for (int i = 0; i < 32; i++) {
        q[i] = (float)(i + 1);
        k[i] = q_f32_to_f16(0.5f * (float)(i % 5));
    }
    for (int l = 0; l < 16; l++)
        slot[l] = fmaf(q[l + 16], q_f16_to_f32(k[l + 16]), q[l] * q_f16_to_f32(k[l]));
    CHECK(same_bits(ref->dot(q, k, 32, ATTN_SLOTS_TINY), op_reduce16(slot)), "16-slot order as documented");
    /* and a plain sum, within float rounding, for both orders */
    double exact = 0;
    for (int i = 0; i < 32; i++)
        exact += (double)q[i] * q_f16_to_f32(k[i]);
    CHECK(fabs(ref->dot(q, k, 32, ATTN_SLOTS_VEC) - exact) <= 1e-6 * fabs(exact), "64-slot dot is the dot product");
    return test_finish();
}
