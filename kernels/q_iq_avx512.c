/* q_iq_avx512.c: AVX-512 (F/BW/VL/VNNI) dot products of the hot i-quants, IQ2_S and IQ3_S.
 * 64 values per step: gathered grid bytes, sign bits as a k-mask, maddubs, then vpdpwssd with scales. */
#include <immintrin.h>

#include "kernels/iq_grids.h"
#include "kernels/q_iq_simd.h"

#define QK 256

/* Byte k of the result = 2 * (nibble k of the scale bytes) + 1, nibbles low-first: the odd scale
 * multipliers in value order. Only `nbytes` (4 or 8) bytes are read. */
static inline __m128i odd_scales(const uint8_t *p, int nbytes)
{
    const __m128i v = nbytes == 8 ? _mm_loadl_epi64((const __m128i *)p) : _mm_cvtsi32_si128((int)iq_u32(p));
    const __m128i m4 = _mm_set1_epi8(15);
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(v, m4), _mm_and_si128(_mm_srli_epi16(v, 4), m4));
    return _mm_add_epi8(_mm_add_epi8(nib, nib), _mm_set1_epi8(1));
}

/* pshufb control giving 128-bit lane L the 16-bit word "byte sel[L] of the source lane". */
static inline __m512i word_picker(int s0, int s1, int s2, int s3)
{
    /* a control byte with its top bit set yields 0: the high byte of every word */
    const int w0 = (int)(0x80008000u | (unsigned)(s0 | s0 << 16)), w1 = (int)(0x80008000u | (unsigned)(s1 | s1 << 16));
    const int w2 = (int)(0x80008000u | (unsigned)(s2 | s2 << 16)), w3 = (int)(0x80008000u | (unsigned)(s3 | s3 << 16));
    return _mm512_set_epi32(w3, w3, w3, w3, w2, w2, w2, w2, w1, w1, w1, w1, w0, w0, w0, w0);
}

/* 64 activations with value j negated where bit j of `signs` is set. */
static inline __m512i signed_q8(const int8_t *q8, uint64_t signs)
{
    const __m512i v = _mm512_loadu_si512(q8);
    return _mm512_mask_sub_epi8(v, _cvtu64_mask64(signs), _mm512_setzero_si512(), v);
}

static inline float finish(__m512 acc, float factor)
{
    return factor * _mm512_reduce_add_ps(acc);
}

/* ------------------------------------------------------------------- IQ2_S --- */

float q_iq_dot_iq2_s_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq2s_block *x = w;
    const struct iq_q8k_block *y = a;
    /* index k (of 16) takes bits 2k, 2k+1 of a 32-bit run of qh bytes as index bits 8, 9 */
    const __m512i hshift = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i hmask = _mm512_set1_epi32(0x300);
    /* scales are per 16 values = one 128-bit lane; chunk c of 64 values uses scales 4c..4c+3 */
    const __m512i pick[4] = {word_picker(0, 1, 2, 3), word_picker(4, 5, 6, 7), word_picker(8, 9, 10, 11),
                             word_picker(12, 13, 14, 15)};
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2s_block *b = &x[i];
        __m512i idx[2];
        for (int h = 0; h < 2; h++) {
            const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * h)));
            const __m512i qh = _mm512_set1_epi32((int)iq_u32(b->qh + 4 * h));
            const __m512i hi = _mm512_and_si512(_mm512_slli_epi32(_mm512_srlv_epi32(qh, hshift), 8), hmask);
            idx[h] = _mm512_or_si512(lo, hi);
        }
        const __m512i scales = _mm512_broadcast_i32x4(odd_scales(b->scales, 8));
        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m256i ci = c & 1 ? _mm512_extracti64x4_epi64(idx[c / 2], 1) : _mm512_castsi512_si256(idx[c / 2]);
            const __m512i g = _mm512_i32gather_epi64(ci, (const void *)iq_grid_2s, 8);
            const __m512i q8s = signed_q8(y[i].qs + 64 * c, iq_u64(b->signs + 8 * c));
            const __m512i sc = _mm512_shuffle_epi8(scales, pick[c]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(g, q8s), sc);
        }
        const float d = iq_half(b->d) * iq_f32(y[i].d);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    return finish(acc, 0.125f);
}

/* ------------------------------------------------------------------- IQ3_S --- */

float q_iq_dot_iq3_s_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq3s_block *x = w;
    const struct iq_q8k_block *y = a;
    const __m512i bit8 = _mm512_set1_epi32(256);
    /* scales are per 32 values = two 128-bit lanes; chunk c uses scales 2c, 2c+1 */
    const __m512i pick[4] = {word_picker(0, 0, 1, 1), word_picker(2, 2, 3, 3), word_picker(4, 4, 5, 5),
                             word_picker(6, 6, 7, 7)};
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq3s_block *b = &x[i];
        const __m512i scales = _mm512_broadcast_i32x4(odd_scales(b->scales, 4));
        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            /* 16 indices: a qs byte each, bit 8 from the qh bit of the same position */
            __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * c)));
            idx = _mm512_mask_or_epi32(idx, _cvtu32_mask16(iq_u16(b->qh + 2 * c)), idx, bit8);
            const __m512i g = _mm512_i32gather_epi32(idx, (const void *)iq_grid_3s, 4);
            const __m512i q8s = signed_q8(y[i].qs + 64 * c, iq_u64(b->signs + 8 * c));
            const __m512i sc = _mm512_shuffle_epi8(scales, pick[c]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(g, q8s), sc);
        }
        const float d = iq_half(b->d) * iq_f32(y[i].d);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    return finish(acc, 1.0f);
}
