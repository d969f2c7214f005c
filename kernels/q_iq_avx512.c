/* q_iq_avx512.c: AVX-512 (F/BW/VL/VNNI) dot products of the grid i-quants with Q8_K activations.
 * 64 values per step: gathered grid bytes, sign bits as a k-mask, maddubs, then vpdpwssd with scales. */
#include <immintrin.h>

/* Gathers beat scalar loads 3x on Sapphire Rapids (measured); Intel parts with the Downfall (GDS)
 * microcode fix have slow gathers, untested here. */

#include "kernels/iq_grids.h"
#include "kernels/q_iq_simd.h"

/* The f16 super-block scale through F16C (exact, as q_f16_to_f32, but inline: one instruction
 * per block instead of a call). */
static inline float simd_half(const uint8_t *p) { return _cvtsh_ss(iq_u16(p)); }

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

/* Sign bytes from 7-bit fields (one per byte, bit 7 ignored): bit 7 becomes the parity, so the
 * count of minus signs in each group of 8 is even (what ggml's ksigns table holds). */
static inline __m256i ksigns_epi8(__m256i field)
{
    const __m256i odd = _mm256_setr_epi8(0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0,
                                         0, -128, -128, 0, -128, 0, 0, -128, -128, 0, 0, -128, 0, -128, -128, 0);
    const __m256i m15 = _mm256_set1_epi8(15);
    const __m256i f = _mm256_and_si256(field, _mm256_set1_epi8(127));
    const __m256i par = _mm256_xor_si256(_mm256_shuffle_epi8(odd, _mm256_and_si256(f, m15)),
                                         _mm256_shuffle_epi8(odd, _mm256_and_si256(_mm256_srli_epi16(f, 4), m15)));
    return _mm256_or_si256(f, par);
}

/* IQ2_XXS and IQ3_XXS keep per 32 values one u32: four 7-bit sign fields and a 4-bit scale.
 * From the 8 words of a block: the 256 sign bits (as 4 masks of 64) and the 8 odd scales. */
static inline void unpack_sign_scale_words(__m256i words, uint64_t signs[4], __m128i *scales)
{
    /* lanes 4k..4k+3 take word k (of 4) shifted to each of its fields */
    const __m512i shift = _mm512_set_epi32(21, 14, 7, 0, 21, 14, 7, 0, 21, 14, 7, 0, 21, 14, 7, 0);
    const __m512i rep = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i lo = _mm512_castsi256_si512(words);
    const __m512i hi = _mm512_castsi256_si512(_mm256_permute2x128_si256(words, words, 0x11));
    const __m128i f0 = _mm512_cvtepi32_epi8(_mm512_srlv_epi32(_mm512_permutexvar_epi32(rep, lo), shift));
    const __m128i f1 = _mm512_cvtepi32_epi8(_mm512_srlv_epi32(_mm512_permutexvar_epi32(rep, hi), shift));
    const __m256i sb = ksigns_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(f0), f1, 1));
    signs[0] = (uint64_t)_mm256_extract_epi64(sb, 0);
    signs[1] = (uint64_t)_mm256_extract_epi64(sb, 1);
    signs[2] = (uint64_t)_mm256_extract_epi64(sb, 2);
    signs[3] = (uint64_t)_mm256_extract_epi64(sb, 3);
    const __m256i sc = _mm256_srli_epi32(words, 28);
    *scales = _mm256_cvtepi32_epi8(_mm256_add_epi32(_mm256_add_epi32(sc, sc), _mm256_set1_epi32(1)));
}

static inline int32_t hsum_i32x8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* ggml-cpu has no AVX-512 i-quant kernels: its AVX2 ones keep 8 int32 lanes, lane k holding
 * values 4k..4k+3 of every 32-value sub-block, and accumulate them in 8 float lanes. The 16 lanes
 * here hold 4k..4k+3 of the first (k < 8) and of the second sub-block of each 64-value step, so
 * adding the halves (exact in integers) gives ggml's lanes, and the float steps then match its. */
static inline __m256 accumulate(__m256 acc, float d, __m512i sumi)
{
    const __m256i lanes = _mm256_add_epi32(_mm512_castsi512_si256(sumi), _mm512_extracti64x4_epi64(sumi, 1));
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
}

static inline float finish(__m256 acc, float factor)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return factor * _mm_cvtss_f32(s);
}

/* IQ2_S and IQ3_S are written once for nt tokens (a constant after inlining): the nt = 1 instance
 * is the one-token dot, the others gather each grid vector once and keep one set of sums per
 * token, so every token's float steps are those of the one-token kernel (bit-identical). */
#define IQ_INLINE static inline __attribute__((always_inline))
#define IQ_TOKENS_FNS(base, body)                                                                  \
    float base(int64_t n, const void *w, const void *a)                                            \
    {                                                                                              \
        float r;                                                                                   \
        body(n, w, a, 0, 1, &r);                                                                   \
        return r;                                                                                  \
    }                                                                                              \
    void base##_tokens(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out) \
    {                                                                                              \
        switch (nt) {                                                                              \
        case 1: body(n, w, a, stride, 1, out); break;                                              \
        case 2: body(n, w, a, stride, 2, out); break;                                              \
        case 3: body(n, w, a, stride, 3, out); break;                                              \
        default: body(n, w, a, stride, 4, out); break;                                             \
        }                                                                                          \
    }

static inline const struct iq_q8k_block *token_block(const void *a, size_t stride, int t, int64_t i)
{
    return (const struct iq_q8k_block *)((const uint8_t *)a + (size_t)t * stride) + i;
}

/* One 64-value chunk's grid bytes g and scales sc, against every token's activations. */
IQ_INLINE void chunk_tokens(__m512i g, __m512i sc, uint64_t signs, const void *a, size_t stride, int64_t i, int c,
                            int nt, __m512i *sumi)
{
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        const __m512i q8s = signed_q8(token_block(a, stride, t, i)->qs + 64 * c, signs);
        sumi[t] = _mm512_dpwssd_epi32(sumi[t], _mm512_maddubs_epi16(g, q8s), sc);
    }
}

IQ_INLINE void block_tokens_finish(float dw, const void *a, size_t stride, int64_t i, int nt, const __m512i *sumi,
                                   __m256 *acc)
{
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++)
        acc[t] = accumulate(acc[t], dw * iq_f32(token_block(a, stride, t, i)->d), sumi[t]);
}

/* ------------------------------------------------------------------- IQ2_S --- */

IQ_INLINE void iq2_s_nt(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out)
{
    const struct iq2s_block *x = w;
    /* index k (of 16) takes bits 2k, 2k+1 of a 32-bit run of qh bytes as index bits 8, 9 */
    const __m512i hshift = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i hmask = _mm512_set1_epi32(0x300);
    /* scales are per 16 values = one 128-bit lane; chunk c of 64 values uses scales 4c..4c+3 */
    const __m512i pick[4] = {word_picker(0, 1, 2, 3), word_picker(4, 5, 6, 7), word_picker(8, 9, 10, 11),
                             word_picker(12, 13, 14, 15)};
    __m256 acc[Q_DOT_TOKENS];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2s_block *b = &x[i];
        iq_prefetch(b);
        __m512i idx[2];
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * h)));
            const __m512i qh = _mm512_set1_epi32((int)iq_u32(b->qh + 4 * h));
            const __m512i hi = _mm512_and_si512(_mm512_slli_epi32(_mm512_srlv_epi32(qh, hshift), 8), hmask);
            idx[h] = _mm512_or_si512(lo, hi);
        }
        const __m512i scales = _mm512_broadcast_i32x4(odd_scales(b->scales, 8));
        __m512i sumi[Q_DOT_TOKENS];
        for (int t = 0; t < nt; t++)
            sumi[t] = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            const __m256i ci = c & 1 ? _mm512_extracti64x4_epi64(idx[c / 2], 1) : _mm512_castsi512_si256(idx[c / 2]);
            const __m512i g = _mm512_i32gather_epi64(ci, (const void *)iq_grid_2s, 8);
            chunk_tokens(g, _mm512_shuffle_epi8(scales, pick[c]), iq_u64(b->signs + 8 * c), a, stride, i, c, nt, sumi);
        }
        block_tokens_finish(simd_half(b->d), a, stride, i, nt, sumi, acc);
    }
    for (int t = 0; t < nt; t++)
        out[t] = finish(acc[t], 0.125f);
}
IQ_TOKENS_FNS(q_iq_dot_iq2_s_avx512, iq2_s_nt)

/* ------------------------------------------------------------------- IQ3_S --- */

IQ_INLINE void iq3_s_nt(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out)
{
    const struct iq3s_block *x = w;
    const __m512i bit8 = _mm512_set1_epi32(256);
    /* scales are per 32 values = two 128-bit lanes; chunk c uses scales 2c, 2c+1 */
    const __m512i pick[4] = {word_picker(0, 0, 1, 1), word_picker(2, 2, 3, 3), word_picker(4, 4, 5, 5),
                             word_picker(6, 6, 7, 7)};
    __m256 acc[Q_DOT_TOKENS];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq3s_block *b = &x[i];
        iq_prefetch(b);
        const __m512i scales = _mm512_broadcast_i32x4(odd_scales(b->scales, 4));
        __m512i sumi[Q_DOT_TOKENS];
        for (int t = 0; t < nt; t++)
            sumi[t] = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            /* 16 indices: a qs byte each, bit 8 from the qh bit of the same position */
            __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * c)));
            idx = _mm512_mask_or_epi32(idx, _cvtu32_mask16(iq_u16(b->qh + 2 * c)), idx, bit8);
            const __m512i g = _mm512_i32gather_epi32(idx, (const void *)iq_grid_3s, 4);
            chunk_tokens(g, _mm512_shuffle_epi8(scales, pick[c]), iq_u64(b->signs + 8 * c), a, stride, i, c, nt, sumi);
        }
        block_tokens_finish(simd_half(b->d), a, stride, i, nt, sumi, acc);
    }
    for (int t = 0; t < nt; t++)
        out[t] = finish(acc[t], 1.0f);
}
IQ_TOKENS_FNS(q_iq_dot_iq3_s_avx512, iq3_s_nt)

/* ----------------------------------------------------------------- IQ2_XXS --- */

float q_iq_dot_iq2_xxs_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq2xxs_block *x = w;
    const struct iq_q8k_block *y = a;
    /* the 64 bytes alternate 4 index bytes, 1 sign/scale word */
    const __m512i even = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i pick[4] = {word_picker(0, 0, 1, 1), word_picker(2, 2, 3, 3), word_picker(4, 4, 5, 5),
                             word_picker(6, 6, 7, 7)};
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2xxs_block *b = &x[i];
        iq_prefetch(b);
        const __m512i split = _mm512_permutexvar_epi32(even, _mm512_loadu_si512(b->qs));
        const __m256i idx8 = _mm512_castsi512_si256(split);
        uint64_t signs[4];
        __m128i sc8;
        unpack_sign_scale_words(_mm512_extracti64x4_epi64(split, 1), signs, &sc8);
        const __m512i scales = _mm512_broadcast_i32x4(sc8);
        const __m512i idx[2] = {_mm512_cvtepu8_epi32(_mm256_castsi256_si128(idx8)),
                                _mm512_cvtepu8_epi32(_mm256_extracti128_si256(idx8, 1))};
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            const __m256i ci = c & 1 ? _mm512_extracti64x4_epi64(idx[c / 2], 1) : _mm512_castsi512_si256(idx[c / 2]);
            const __m512i g = _mm512_i32gather_epi64(ci, (const void *)iq_grid_2xxs, 8);
            const __m512i q8s = signed_q8(y[i].qs + 64 * c, signs[c]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(g, q8s), _mm512_shuffle_epi8(scales, pick[c]));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = accumulate(acc, d, sumi);
    }
    return finish(acc, 0.125f);
}

/* ----------------------------------------------------------------- IQ3_XXS --- */

float q_iq_dot_iq3_xxs_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq3xxs_block *x = w;
    const struct iq_q8k_block *y = a;
    const __m512i pick[4] = {word_picker(0, 0, 1, 1), word_picker(2, 2, 3, 3), word_picker(4, 4, 5, 5),
                             word_picker(6, 6, 7, 7)};
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq3xxs_block *b = &x[i];
        iq_prefetch(b);
        uint64_t signs[4];
        __m128i sc8;
        unpack_sign_scale_words(_mm256_loadu_si256((const __m256i *)b->sas), signs, &sc8);
        const __m512i scales = _mm512_broadcast_i32x4(sc8);
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * c)));
            const __m512i g = _mm512_i32gather_epi32(idx, (const void *)iq_grid_3xxs, 4);
            const __m512i q8s = signed_q8(y[i].qs + 64 * c, signs[c]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(g, q8s), _mm512_shuffle_epi8(scales, pick[c]));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = accumulate(acc, d, sumi);
    }
    return finish(acc, 0.25f);
}

/* ------------------------------------------------------------------ IQ2_XS --- */

float q_iq_dot_iq2_xs_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq2xs_block *x = w;
    const struct iq_q8k_block *y = a;
    const __m512i pick[4] = {word_picker(0, 1, 2, 3), word_picker(4, 5, 6, 7), word_picker(8, 9, 10, 11),
                             word_picker(12, 13, 14, 15)};
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2xs_block *b = &x[i];
        iq_prefetch(b);
        /* 32 u16: 9-bit grid index, 7 sign bits */
        const __m512i q = _mm512_loadu_si512(b->qs);
        const __m512i idx16 = _mm512_and_si512(q, _mm512_set1_epi16(511));
        const __m512i idx[2] = {_mm512_cvtepu16_epi32(_mm512_castsi512_si256(idx16)),
                                _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(idx16, 1))};
        const __m256i sign8 = ksigns_epi8(_mm512_cvtepi16_epi8(_mm512_srli_epi16(q, 9)));
        const uint64_t signs[4] = {(uint64_t)_mm256_extract_epi64(sign8, 0), (uint64_t)_mm256_extract_epi64(sign8, 1),
                                   (uint64_t)_mm256_extract_epi64(sign8, 2), (uint64_t)_mm256_extract_epi64(sign8, 3)};
        const __m512i scales = _mm512_broadcast_i32x4(odd_scales(b->scales, 8));
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            const __m256i ci = c & 1 ? _mm512_extracti64x4_epi64(idx[c / 2], 1) : _mm512_castsi512_si256(idx[c / 2]);
            const __m512i g = _mm512_i32gather_epi64(ci, (const void *)iq_grid_2xs, 8);
            const __m512i q8s = signed_q8(y[i].qs + 64 * c, signs[c]);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(g, q8s), _mm512_shuffle_epi8(scales, pick[c]));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = accumulate(acc, d, sumi);
    }
    return finish(acc, 0.125f);
}

/* ------------------------------------------------------------------- IQ1_S --- */

/* IQ1 grids hold -1, 0, 1; maddubs needs an unsigned side, so the kernels use g + 1 and take the
 * activation sums (Q8_K's bsums) back out, counting in eighths so the +-1/8 shift stays integer:
 * 8 * sum(q8 * (g + delta/8)) = 8 * sum(q8 * (g + 1)) + (delta - 8) * sum(q8). The lanes carry the
 * large +1 offset, so each block is reduced exactly to one integer before going to float. */
float q_iq_dot_iq1_s_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq1s_block *x = w;
    const struct iq_q8k_block *y = a;
    const __m512i rep = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i hshift = _mm512_set_epi32(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0);
    const __m512i pick[4] = {word_picker(0, 0, 1, 1), word_picker(2, 2, 3, 3), word_picker(4, 4, 5, 5),
                             word_picker(6, 6, 7, 7)};
    const __m512i one8 = _mm512_set1_epi8(1);
    float acc = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq1s_block *b = &x[i];
        iq_prefetch(b);
        /* qh: per sub-block a u16 of 4 x 3 index bits, a 3-bit scale, the shift sign */
        const __m128i qh = _mm_loadu_si128((const __m128i *)b->qh);
        const __m512i qh32 = _mm512_castsi256_si512(_mm256_cvtepu16_epi32(qh));
        __m512i idx[2];
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            const __m512i words = _mm512_permutexvar_epi32(_mm512_add_epi32(rep, _mm512_set1_epi32(4 * h)), qh32);
            const __m512i hi = _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(words, hshift), _mm512_set1_epi32(7)), 8);
            idx[h] = _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * h))), hi);
        }
        const __m128i ls16 = _mm_add_epi16(_mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(qh, 12), _mm_set1_epi16(7)), 1),
                                           _mm_set1_epi16(1));
        const __m512i scales = _mm512_broadcast_i32x4(_mm_cvtepi16_epi8(ls16));
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            const __m256i ci = c & 1 ? _mm512_extracti64x4_epi64(idx[c / 2], 1) : _mm512_castsi512_si256(idx[c / 2]);
            const __m512i g = _mm512_add_epi8(_mm512_i32gather_epi64(ci, (const void *)iq_grid_1s, 8), one8);
            const __m512i q8 = _mm512_loadu_si512(y[i].qs + 64 * c);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(g, q8), _mm512_shuffle_epi8(scales, pick[c]));
        }
        /* per sub-block: ls * (delta - 8) * (its two bsums); delta - 8 = -7 or -9 */
        const __m128i dm = _mm_sub_epi16(_mm_set1_epi16(-7), _mm_slli_epi16(_mm_srli_epi16(qh, 15), 1));
        const __m256i coef = _mm256_cvtepu16_epi32(_mm_mullo_epi16(ls16, dm));
        const __m256i coef2 = _mm256_or_si256(coef, _mm256_slli_epi32(coef, 16)); /* same for both bsums */
        const __m256i shift = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), coef2);
        const int32_t total = 8 * _mm512_reduce_add_epi32(sumi) + hsum_i32x8(shift);
        acc += simd_half(b->d) * iq_f32(y[i].d) * (float)total;
    }
    return 0.125f * acc;
}

/* ------------------------------------------------------------------- IQ1_M --- */

/* As IQ1_S, but the shift sign is per group of 8 and the scale per 16 values, so each byte weighs
 * 8g + delta + 9 (0..18, unsigned) and 9 * sum(q8) comes back out through bsums. */
float q_iq_dot_iq1_m_avx512(int64_t n, const void *w, const void *a)
{
    const struct iq1m_block *x = w;
    const struct iq_q8k_block *y = a;
    /* index k (of 16) takes nibble k & 1 of qh byte k / 2: 3 index bits and the shift sign */
    const __m512i rep = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i nshift = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    /* scale k (of 16) is bits 3(k % 4).. of scale word k / 4 */
    const __m512i srep = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    const __m512i sshift = _mm512_set_epi32(9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0, 9, 6, 3, 0);
    const __m512i pick[4] = {word_picker(0, 1, 2, 3), word_picker(4, 5, 6, 7), word_picker(8, 9, 10, 11),
                             word_picker(12, 13, 14, 15)};
    /* g in {-1, 0, 1} read as g & 3 in {3, 0, 1} -> 8g + 9 */
    const __m512i to_weight = _mm512_broadcast_i32x4(_mm_setr_epi8(9, 17, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
    const __m512i three = _mm512_set1_epi8(3), seven = _mm512_set1_epi32(7);
    const __m512i plus = _mm512_set1_epi8(1), minus = _mm512_set1_epi8(-1);
    float acc = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq1m_block *b = &x[i];
        iq_prefetch(b);
        const __m512i qh32 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)b->qh));
        __m512i idx[2];
        __mmask16 negative[2];
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
            const __m512i nib = _mm512_srlv_epi32(
                _mm512_permutexvar_epi32(_mm512_add_epi32(rep, _mm512_set1_epi32(8 * h)), qh32), nshift);
            negative[h] = _mm512_test_epi32_mask(nib, _mm512_set1_epi32(8));
            const __m512i hi = _mm512_slli_epi32(_mm512_and_si512(nib, seven), 8);
            idx[h] = _mm512_or_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b->qs + 16 * h))), hi);
        }
        const __m512i sw = _mm512_castsi128_si512(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)b->scales)));
        const __m512i s32 = _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi32(srep, sw), sshift), seven);
        const __m512i ls32 = _mm512_add_epi32(_mm512_add_epi32(s32, s32), _mm512_set1_epi32(1));
        const __m128i ls8 = _mm512_cvtepi32_epi8(ls32);
        const __m512i scales = _mm512_broadcast_i32x4(ls8);
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            const __m256i ci = c & 1 ? _mm512_extracti64x4_epi64(idx[c / 2], 1) : _mm512_castsi512_si256(idx[c / 2]);
            const __m512i g = _mm512_i32gather_epi64(ci, (const void *)iq_grid_1s, 8);
            const __mmask8 neg = (__mmask8)(negative[c / 2] >> (8 * (c & 1)));
            const __m512i delta = _mm512_mask_blend_epi64(neg, plus, minus);
            const __m512i wgt = _mm512_add_epi8(_mm512_shuffle_epi8(to_weight, _mm512_and_si512(g, three)), delta);
            const __m512i q8 = _mm512_loadu_si512(y[i].qs + 64 * c);
            sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(wgt, q8), _mm512_shuffle_epi8(scales, pick[c]));
        }
        const __m256i ls16 = _mm256_cvtepu8_epi16(ls8);
        const __m256i bs = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)y[i].bsums), ls16);
        const int32_t total = _mm512_reduce_add_epi32(sumi) - 9 * hsum_i32x8(bs);
        acc += iq1m_super_scale(b) * iq_f32(y[i].d) * (float)total;
    }
    return 0.125f * acc;
}
