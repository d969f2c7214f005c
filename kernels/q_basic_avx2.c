/* q_basic_avx2.c: AVX2 (+FMA, F16C) dot products of the hot non-grid types: u8 x s8 products
 * widened with maddubs and summed to int32 with madd (the bodies are in q_basic_simd_body.h). */
#include <immintrin.h>

#define QB_NAME(base) base##_avx2

/* maddubs never saturates here: |u| <= 127 with |s| <= 127, or u <= 63. */
static inline __m256i qb_dot_us(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

static inline __m256i qb_dot_us_scaled(__m256i u, __m256i s, int lo, int hi)
{
    const __m256i scale = _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale);
}

#include "kernels/q_basic_simd_body.h"
