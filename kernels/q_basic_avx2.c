/* q_basic_avx2.c: AVX2 (+FMA, F16C) dot products of the hot non-grid types: u8 x s8 products
 * widened with maddubs and summed to int32 with madd (the bodies are in q_basic_simd_body.h). */
#include <immintrin.h>

#define QB_NAME(base) base##_avx2

/* maddubs never saturates here: |u| <= 127 with |s| <= 127, or u <= 63. */
static inline __m256i qb_dot_us(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* Scaled: the int16 pair sums times int16 scales (one per pair), summed to int32. */
static inline __m256i qb_dot_us_scale16(__m256i u, __m256i s, __m256i scale16)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16);
}

/* int16 pairs times int16 scales, summed to int32. */
static inline __m256i qb_scale16(__m256i p16, __m256i scale16) { return _mm256_madd_epi16(p16, scale16); }

#include "kernels/q_basic_simd_body.h"
