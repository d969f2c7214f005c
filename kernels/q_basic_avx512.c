/* q_basic_avx512.c: AVX-512 VNNI dot products of the hot non-grid types: vpdpbusd on 256-bit
 * vectors (AVX512VL) sums u8 x s8 products straight into int32 (bodies in q_basic_simd_body.h). */
#include <immintrin.h>

#define QB_NAME(base) base##_avx512

static inline __m256i qb_dot_us(__m256i u, __m256i s)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}

static inline __m256i qb_dot_us_scaled(__m256i u, __m256i s, int lo, int hi)
{
    const __m256i scale = _mm256_set_m128i(_mm_set1_epi32(hi), _mm_set1_epi32(lo));
    return _mm256_mullo_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s), scale);
}

#include "kernels/q_basic_simd_body.h"
