/* attn_dots_avx2.c: AVX2/FMA/F16C versions of the attention inner loops (kernels/attn_dots.h),
 * taking exactly the scalar references' fused multiply-adds lane for lane. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/attn_dots.h"
#include "kernels/quants.h"

static inline __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* Registers hold slots 8r..8r+7; whole steps of n_slots go through them, a tail element by element. */
float attn_dot_avx2(const float *q, const uint16_t *k, int64_t n, int n_slots)
{
    __m256 acc[ATTN_SLOTS_VEC / 8];
    const int regs = n_slots / 8;
    for (int r = 0; r < regs; r++)
        acc[r] = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + n_slots <= n; d += n_slots)
        for (int r = 0; r < regs; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8 * r), load_f16x8(k + d + 8 * r), acc[r]);
    float slot[ATTN_SLOTS_VEC];
    for (int r = 0; r < regs; r++)
        _mm256_storeu_ps(slot + 8 * r, acc[r]);
    for (int64_t j = 0; d + j < n; j++)
        slot[j] = fmaf(q[d + j], q_f16_to_f32(k[d + j]), slot[j]);
    return attn_fold_slots(slot, 1, n_slots);
}

void attn_axpy_avx2(float *acc, float w, const uint16_t *v, int64_t n)
{
    const __m256 wv = _mm256_set1_ps(w);
    int64_t d = 0;
    for (; d + 8 <= n; d += 8)
        _mm256_storeu_ps(acc + d, _mm256_fmadd_ps(wv, load_f16x8(v + d), _mm256_loadu_ps(acc + d)));
    for (; d < n; d++)
        acc[d] = fmaf(w, q_f16_to_f32(v[d]), acc[d]);
}
