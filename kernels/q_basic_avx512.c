/* q_basic_avx512.c: AVX-512 VNNI dot products of the hot non-grid types on 256-bit vectors
 * (AVX512VL): vpdpbusd / vpdpwssd sum products straight into int32 (bodies in q_basic_simd_body.h). */
#include <immintrin.h>

#define QB_NAME(base) base##_avx512

static inline __m256i qb_dot_us(__m256i u, __m256i s)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

/* Scaled: maddubs to int16 pairs (never saturating here: |u|, |s| <= 127, or u <= 63), then
 * vpdpwssd multiplies by the int16 scales and sums pairs: two instructions per 32 values. */
static inline __m256i qb_dot_us_scale16(__m256i u, __m256i s, __m256i scale16)
{
    return _mm256_dpwssd_epi32(_mm256_setzero_si256(), _mm256_maddubs_epi16(u, s), scale16);
}

/* int16 pairs times int16 scales, summed to int32. */
static inline __m256i qb_scale16(__m256i p16, __m256i scale16)
{
    return _mm256_dpwssd_epi32(_mm256_setzero_si256(), p16, scale16);
}

/* IQ4_NL and MXFP4 (two float accumulators in ggml) take two blocks per 512-bit step. */
#define QB_PAIR512

#include "kernels/q_basic_simd_body.h"
