/* q_iq_avx2.c: AVX2+FMA dot products of the grid i-quants with Q8_K activations.
 * Per 32 values: grid bytes gathered into a vector, signs moved onto the activations, maddubs. */
#include <immintrin.h>

/* 8-byte grid entries are loaded one by one (gathers barely win on Intel and lose on AMD Zen);
 * the 4-byte IQ3 grids use vpgatherdd, 1.7-2.9x faster than scalar loads here (Sapphire Rapids). */

#include "kernels/iq_grids.h"
#include "kernels/q_iq_simd.h"

/* The f16 super-block scale through F16C (exact, as q_f16_to_f32, but inline: one instruction
 * per block instead of a call). */
static inline float simd_half(const uint8_t *p) { return _cvtsh_ss(iq_u16(p)); }

#define QK 256

static inline float hsum_f32x8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 32 activations of q8 with the sign of value j flipped where bit j of `signs` is set.
 * Bytes are spread so byte k of the word covers values 8k..8k+7, then each value tests its bit. */
static inline __m256i apply_signs(__m256i q8, uint32_t signs)
{
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                             0x0101010101010101, 0x0000000000000000);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)signs), spread);
    __m256i neg = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit); /* 0xff where negative */
    return _mm256_sign_epi8(q8, _mm256_or_si256(neg, _mm256_set1_epi8(1)));
}

/* int16 multipliers for a 32-value sub-block whose halves have scales lo and hi. */
static inline __m256i half_scales(int lo, int hi)
{
    return _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo));
}

/* Four 8-byte grid entries as one vector (value order = memory order). */
static inline __m256i grid4(const uint64_t *grid, int i0, int i1, int i2, int i3)
{
    return _mm256_set_epi64x((long long)grid[i3], (long long)grid[i2], (long long)grid[i1],
                             (long long)grid[i0]);
}

/* Sign word of 32 values stored as four 7-bit fields (the eighth sign is the parity). */
static inline uint32_t ksigns32(uint32_t aux)
{
    return (uint32_t)iq_ksigns[aux & 127] | (uint32_t)iq_ksigns[(aux >> 7) & 127] << 8 |
           (uint32_t)iq_ksigns[(aux >> 14) & 127] << 16 | (uint32_t)iq_ksigns[(aux >> 21) & 127] << 24;
}

/* One sub-block: sum over 32 values of scale * grid * signed activation, into 8 int32 lanes. */
static inline __m256i subblock(__m256i grid, __m256i q8s, __m256i scales16)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(grid, q8s), scales16);
}

/* ------------------------------------------------------------------- IQ2_S --- */

/* The 32 10-bit grid indices of an IQ2_S block: qs bytes plus 2 bits each from qh (index k
 * takes bits 2(k % 4), 2(k % 4) + 1 of qh[k / 4]), computed 16 at a time. */
static inline void iq2s_indices(const struct iq2s_block *b, uint16_t idx[32])
{
    const __m256i qh = _mm256_broadcastsi128_si256(_mm_loadl_epi64((const __m128i *)b->qh));
    /* 16-bit lane k: qh byte k / 4, zero-extended (control 0x80 zeroes the high byte) */
    const __m256i rep = _mm256_setr_epi8(0, -128, 0, -128, 0, -128, 0, -128, 1, -128, 1, -128, 1, -128, 1, -128,
                                         2, -128, 2, -128, 2, -128, 2, -128, 3, -128, 3, -128, 3, -128, 3, -128);
    /* shifting left by 8 - 2(k % 4) puts the two bits at 8, 9 */
    const __m256i mul = _mm256_setr_epi16(256, 64, 16, 4, 256, 64, 16, 4, 256, 64, 16, 4, 256, 64, 16, 4);
    const __m256i mask = _mm256_set1_epi16(0x300);
    for (int h = 0; h < 2; h++) {
        const __m256i sel = _mm256_add_epi8(rep, _mm256_set1_epi16((short)(4 * h)));
        const __m256i hi = _mm256_and_si256(_mm256_mullo_epi16(_mm256_shuffle_epi8(qh, sel), mul), mask);
        const __m256i lo = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(b->qs + 16 * h)));
        _mm256_storeu_si256((__m256i *)(idx + 16 * h), _mm256_or_si256(lo, hi));
    }
}

float q_iq_dot_iq2_s_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq2s_block *x = w;
    const struct iq_q8k_block *y = a;
    /* from the dword (lo | hi << 16) broadcast over the vector: lo in the low lane, hi in the high */
    const __m256i split = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                           2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2s_block *b = &x[i];
        iq_prefetch(b);
        uint16_t idx[32];
        iq2s_indices(b, idx);
        /* 16 odd scales as int16, in value order: two per sub-block (its halves) = one dword */
        const __m128i sc = _mm_loadl_epi64((const __m128i *)b->scales);
        const __m128i m4 = _mm_set1_epi8(15);
        const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(sc, m4), _mm_and_si128(_mm_srli_epi16(sc, 4), m4));
        const __m256i scales = _mm256_cvtepu8_epi16(_mm_add_epi8(_mm_add_epi8(nib, nib), _mm_set1_epi8(1)));
        __m256i sumi = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int ib = 0; ib < 8; ib++) {
            const __m256i g = grid4(iq_grid_2s, idx[4 * ib], idx[4 * ib + 1], idx[4 * ib + 2], idx[4 * ib + 3]);
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const __m256i q8s = apply_signs(q8, iq_u32(b->signs + 4 * ib));
            const __m256i sc16 = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(ib)), split);
            sumi = _mm256_add_epi32(sumi, subblock(g, q8s, sc16));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return 0.125f * hsum_f32x8(acc);
}

/* ------------------------------------------------------------------ IQ2_XS --- */

float q_iq_dot_iq2_xs_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq2xs_block *x = w;
    const struct iq_q8k_block *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2xs_block *b = &x[i];
        iq_prefetch(b);
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const uint64_t q = iq_u64(b->qs + 8 * ib); /* four u16: 9-bit index, 7 sign bits */
            const int q0 = q & 0xffff, q1 = (q >> 16) & 0xffff, q2 = (q >> 32) & 0xffff, q3 = q >> 48;
            const __m256i g = grid4(iq_grid_2xs, q0 & 511, q1 & 511, q2 & 511, q3 & 511);
            const uint32_t signs = (uint32_t)iq_ksigns[q0 >> 9] | (uint32_t)iq_ksigns[q1 >> 9] << 8 |
                                   (uint32_t)iq_ksigns[q2 >> 9] << 16 | (uint32_t)iq_ksigns[q3 >> 9] << 24;
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const int sc = b->scales[ib];
            sumi = _mm256_add_epi32(sumi, subblock(g, apply_signs(q8, signs),
                                                   half_scales(2 * (sc & 15) + 1, 2 * (sc >> 4) + 1)));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return 0.125f * hsum_f32x8(acc);
}

/* ----------------------------------------------------------------- IQ2_XXS --- */

float q_iq_dot_iq2_xxs_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq2xxs_block *x = w;
    const struct iq_q8k_block *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2xxs_block *b = &x[i];
        iq_prefetch(b);
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = b->qs + 8 * ib;
            const uint32_t aux = iq_u32(q + 4);
            const __m256i g = grid4(iq_grid_2xxs, q[0], q[1], q[2], q[3]);
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const __m256i sc = _mm256_set1_epi16((short)(2 * (aux >> 28) + 1));
            sumi = _mm256_add_epi32(sumi, subblock(g, apply_signs(q8, ksigns32(aux)), sc));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return 0.125f * hsum_f32x8(acc);
}

/* ------------------------------------------------------------------- IQ3_S --- */

float q_iq_dot_iq3_s_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq3s_block *x = w;
    const struct iq_q8k_block *y = a;
    /* index k of a sub-block takes bit k of its qh byte as bit 8 */
    const __m256i hshift = _mm256_set_epi32(1, 2, 3, 4, 5, 6, 7, 8);
    const __m256i hbit = _mm256_set1_epi32(256);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq3s_block *b = &x[i];
        iq_prefetch(b);
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + 8 * ib)));
            const __m256i hi = _mm256_and_si256(_mm256_sllv_epi32(_mm256_set1_epi32(b->qh[ib]), hshift), hbit);
            const __m256i g = _mm256_i32gather_epi32((const int *)iq_grid_3s, _mm256_or_si256(lo, hi), 4);
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const int sc = ib & 1 ? b->scales[ib / 2] >> 4 : b->scales[ib / 2] & 15;
            sumi = _mm256_add_epi32(sumi, subblock(g, apply_signs(q8, iq_u32(b->signs + 4 * ib)),
                                                   _mm256_set1_epi16((short)(2 * sc + 1))));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_f32x8(acc);
}

/* ----------------------------------------------------------------- IQ3_XXS --- */

float q_iq_dot_iq3_xxs_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq3xxs_block *x = w;
    const struct iq_q8k_block *y = a;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq3xxs_block *b = &x[i];
        iq_prefetch(b);
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t aux = iq_u32(b->sas + 4 * ib);
            const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b->qs + 8 * ib)));
            const __m256i g = _mm256_i32gather_epi32((const int *)iq_grid_3xxs, idx, 4);
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const __m256i sc = _mm256_set1_epi16((short)(2 * (aux >> 28) + 1));
            sumi = _mm256_add_epi32(sumi, subblock(g, apply_signs(q8, ksigns32(aux)), sc));
        }
        const float d = simd_half(b->d) * iq_f32(y[i].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return 0.25f * hsum_f32x8(acc);
}

/* ------------------------------------------------------------------- IQ1_S --- */

static inline int32_t hsum_i32x8(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* IQ1 grids hold -1, 0, 1; maddubs needs an unsigned side, so the kernels use g + 1 and take
 * the activation sums (Q8_K's bsums) back out. Everything is counted in eighths so the +-1/8
 * shift stays an integer: 8 * sum(q8 * (g + delta/8)) = 8 * sum(q8 * (g + 1)) + (delta - 8) * sum(q8). */
float q_iq_dot_iq1_s_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq1s_block *x = w;
    const struct iq_q8k_block *y = a;
    const __m256i one = _mm256_set1_epi8(1);
    float acc = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq1s_block *b = &x[i];
        iq_prefetch(b);
        __m256i sumi = _mm256_setzero_si256();
        int32_t shift_sum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const int qh = iq_u16(b->qh + 2 * ib);
            const uint8_t *qs = b->qs + 4 * ib;
            const __m256i g = grid4(iq_grid_1s, qs[0] | ((qh << 8) & 0x700), qs[1] | ((qh << 5) & 0x700),
                                    qs[2] | ((qh << 2) & 0x700), qs[3] | ((qh >> 1) & 0x700));
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            const int ls = 2 * ((qh >> 12) & 7) + 1;
            sumi = _mm256_add_epi32(sumi, subblock(_mm256_add_epi8(g, one), q8, _mm256_set1_epi16((short)ls)));
            const int delta = qh & 0x8000 ? -1 : 1;
            shift_sum += ls * (delta - 8) * (iq_bsum(&y[i], 2 * ib) + iq_bsum(&y[i], 2 * ib + 1));
        }
        /* the lanes carry the large +1 offset, so reduce exactly before going to float */
        const int32_t total = 8 * hsum_i32x8(sumi) + shift_sum;
        acc += simd_half(b->d) * iq_f32(y[i].d) * (float)total;
    }
    return 0.125f * acc;
}

/* ------------------------------------------------------------------- IQ1_M --- */

/* As IQ1_S, but the shift sign is per group of 8, so per byte: 8g + delta + 9 (0..18, unsigned),
 * and 9 * sum(q8) comes back out through bsums, scaled per 16 values. */
float q_iq_dot_iq1_m_avx2(int64_t n, const void *w, const void *a)
{
    const struct iq1m_block *x = w;
    const struct iq_q8k_block *y = a;
    /* g in {-1, 0, 1} read as g & 3 in {3, 0, 1} -> 8g + 9 */
    const __m256i to_weight = _mm256_setr_epi8(9, 17, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                               9, 17, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i three = _mm256_set1_epi8(3);
    const long long plus = 0x0101010101010101ll, minus = -1ll;
    float acc = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq1m_block *b = &x[i];
        iq_prefetch(b);
        __m256i sumi = _mm256_setzero_si256();
        int32_t shift_sum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const int h0 = b->qh[2 * ib], h1 = b->qh[2 * ib + 1];
            const uint8_t *qs = b->qs + 4 * ib;
            const __m256i g = grid4(iq_grid_1s, qs[0] | ((h0 << 8) & 0x700), qs[1] | ((h0 << 4) & 0x700),
                                    qs[2] | ((h1 << 8) & 0x700), qs[3] | ((h1 << 4) & 0x700));
            const __m256i delta = _mm256_set_epi64x(h1 & 0x80 ? minus : plus, h1 & 0x08 ? minus : plus,
                                                    h0 & 0x80 ? minus : plus, h0 & 0x08 ? minus : plus);
            const __m256i wgt = _mm256_add_epi8(_mm256_shuffle_epi8(to_weight, _mm256_and_si256(g, three)), delta);
            const uint16_t sc = iq_u16(b->scales + 2 * (ib / 2));
            const int ls1 = 2 * ((sc >> (6 * (ib % 2))) & 7) + 1;
            const int ls2 = 2 * ((sc >> (6 * (ib % 2) + 3)) & 7) + 1;
            const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[i].qs + 32 * ib));
            sumi = _mm256_add_epi32(sumi, subblock(wgt, q8, half_scales(ls1, ls2)));
            shift_sum -= 9 * (ls1 * iq_bsum(&y[i], 2 * ib) + ls2 * iq_bsum(&y[i], 2 * ib + 1));
        }
        const int32_t total = hsum_i32x8(sumi) + shift_sum;
        acc += iq1m_super_scale(b) * iq_f32(y[i].d) * (float)total;
    }
    return 0.125f * acc;
}
