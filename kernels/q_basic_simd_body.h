/* q_basic_simd_body.h: the bodies of the hot dot products, written once and compiled twice: by
 * q_basic_avx2.c (maddubs + madd) and q_basic_avx512.c (VNNI dpbusd), see QB_NAME / qb_dot_us. */
/* No include guard on purpose: the including file defines, before including this:
 *   QB_NAME(base)            the exported name of a kernel for its ISA,
 *   qb_dot_us(u, s)          int32 x 8: sums of 4 adjacent products of unsigned u8 and signed s8,
 *   qb_dot_us_scale16(u, s, sc)  the same but over pairs, each pair sum times its int16 in sc,
 *   qb_scale16(p16, sc)      int16 pair sums p16 times their int16 scales, summed to int32.
 * The integer sums are exact, so each kernel differs from the scalar one only in the order of
 * the float additions of its per-block terms. */
#include <immintrin.h>
#include <math.h>

#include "kernels/q_basic_simd.h"
#include "kernels/q_block.h"

/* Weights are read once per token; asking for the lines ~2 KiB ahead keeps DRAM busy. A
 * prefetch never faults, so the address may lie past the end of the weights. */
#define QB_PREFETCH_AHEAD 2048
static inline void qb_prefetch(const uint8_t *p)
{
    __builtin_prefetch((const void *)((uintptr_t)p + QB_PREFETCH_AHEAD), 0, 3);
}

static inline float qb_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Exact IEEE half -> float with F16C. */
static inline float qb_simd_half(const uint8_t *p) { return _cvtsh_ss(qb_u16(p)); }

static inline __m256i qb_load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* u . s per 4 bytes, times `lo` in the low 128 bits and `hi` in the high ones. */
static inline __m256i qb_dot_us_scaled(__m256i u, __m256i s, int lo, int hi)
{
    return qb_dot_us_scale16(u, s, _mm256_set_m128i(_mm_set1_epi16((short)hi), _mm_set1_epi16((short)lo)));
}

/* int16 word k of v's low 128 bits broadcast over the low half, word k+1 over the high half
 * (v holds the same eight words in both halves; k = 0..6). */
static inline __m256i qb_pick16_pair(__m256i v, int k)
{
    return _mm256_shuffle_epi8(v, _mm256_set_m128i(_mm_set1_epi16((short)((2 * k + 2) | (2 * k + 3) << 8)),
                                                   _mm_set1_epi16((short)((2 * k) | (2 * k + 1) << 8))));
}

/* The sixteen int8 scales as int16, words 0..7 (half 0) or 8..15 (half 1) in both 128-bit halves. */
static inline __m256i qb_scales16_half(__m128i scales8, int half)
{
    const __m128i w = half ? _mm_cvtepi8_epi16(_mm_srli_si128(scales8, 8)) : _mm_cvtepi8_epi16(scales8);
    return _mm256_set_m128i(w, w);
}

/* Broadcast of int16 element k of both 128-bit halves of v (k = 0..7). */
static inline __m256i qb_pick16(__m256i v, int k)
{
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(2 * k | (2 * k + 1) << 8)));
}

/* Signed x signed: |x| as u8 (-128 reads as 128), y takes x's sign. y must not be -128: the
 * activation quantizers keep within +-127. maddubs cannot saturate: 2 x 128 x 127 < 32768. */
static inline __m256i qb_dot_ss(__m256i x, __m256i y)
{
    return qb_dot_us(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* 16 packed nibble bytes -> 32 bytes: low nibbles (values 0..15) then high nibbles (16..31). */
static inline __m256i qb_nibbles32(const uint8_t *p)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)p), m4 = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
}

/* Same, each nibble looked up in a 16-entry int8 table. */
static inline __m256i qb_lookup32(const uint8_t *p, const int8_t table[16])
{
    const __m128i t = _mm_loadu_si128((const __m128i *)table);
    return _mm256_shuffle_epi8(_mm256_set_m128i(t, t), qb_nibbles32(p));
}

static inline int qb_hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

/* ---------------------------------------------------- Q8_0 activations --- */
/* Every kernel below is written once for nt tokens (a compile-time constant after inlining):
 * QB_NAME(x) is its nt = 1 instance, QB_NAME(x_tokens) dispatches nt = 1..Q_DOT_TOKENS to
 * instances that decode each weight block once and keep one set of sums per token, so every
 * token's float steps are exactly those of the one-token kernel. */
#define QB_INLINE static inline __attribute__((always_inline))
#define QB_TOKENS_FN(base, call)                                                                   \
    QB_DOT_DECL(QB_NAME(base))                                                                     \
    {                                                                                              \
        float r;                                                                                   \
        call(n, w, a, 0, 1, &r);                                                                   \
        return r;                                                                                  \
    }                                                                                              \
    QB_DOT_TOKENS_DECL(QB_NAME(base##_tokens))                                                     \
    {                                                                                              \
        switch (nt) {                                                                              \
        case 1: call(n, w, a, stride, 1, out); break;                                              \
        case 2: call(n, w, a, stride, 2, out); break;                                              \
        case 3: call(n, w, a, stride, 3, out); break;                                              \
        default: call(n, w, a, stride, 4, out); break;                                             \
        }                                                                                          \
    }

/* The weight side of a 32-value block: its quants as signed bytes and its float scale. */
struct qb_w32 {
    __m256i q;
    float d;
};

QB_INLINE struct qb_w32 qb_w_q8_0(const uint8_t *x) { return (struct qb_w32){qb_load256(x + 2), qb_simd_half(x)}; }
QB_INLINE struct qb_w32 qb_w_q4_0(const uint8_t *x)
{
    return (struct qb_w32){_mm256_sub_epi8(qb_nibbles32(x + 2), _mm256_set1_epi8(8)), qb_simd_half(x)};
}
QB_INLINE struct qb_w32 qb_w_iq4_nl(const uint8_t *x)
{
    return (struct qb_w32){qb_lookup32(x + 2, qb_iq4nl_values), qb_simd_half(x)};
}

/* E8M0 scales halved (the value qb_e8m0_half gives), as a table: one load per block instead of
 * a variable shift and a select. Integer bit patterns, read through the union's float. */
#define QB_E8(x) {(x) < 2 ? 0x00200000u << (x) : (uint32_t)((x) - 1) << 23}
#define QB_E8x4(x) QB_E8(x), QB_E8((x) + 1), QB_E8((x) + 2), QB_E8((x) + 3)
#define QB_E8x16(x) QB_E8x4(x), QB_E8x4((x) + 4), QB_E8x4((x) + 8), QB_E8x4((x) + 12)
#define QB_E8x64(x) QB_E8x16(x), QB_E8x16((x) + 16), QB_E8x16((x) + 32), QB_E8x16((x) + 48)
static const union qb_bits_f32 { uint32_t u; float f; } qb_e8m0_half_table[256] = {
    QB_E8x64(0), QB_E8x64(64), QB_E8x64(128), QB_E8x64(192)};

/* The E8M0 scale is applied as ggml-cpu does: activation scale times the halved power of two
 * (the float product is the same either way round). */
QB_INLINE struct qb_w32 qb_w_mxfp4(const uint8_t *x)
{
    return (struct qb_w32){qb_lookup32(x + 1, qb_fp4_values), qb_e8m0_half_table[x[0]].f};
}

/* Bit k of the 32-bit word at p -> byte k: 0x10 where set, 0 where not (Q5_0 / Q5_1 fifth bits). */
static inline __m256i qb_fifth_bits(const uint8_t *p)
{
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qb_u32(p)),
                                               _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll,
                                                                  0x0303030303030303ll));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
}

QB_INLINE struct qb_w32 qb_w_q5_0(const uint8_t *x)
{
    return (struct qb_w32){
        _mm256_sub_epi8(_mm256_or_si256(qb_nibbles32(x + 6), qb_fifth_bits(x + 2)), _mm256_set1_epi8(16)),
        qb_simd_half(x)};
}

/* One block's term for each token: one float multiply-add per 32 values, the float steps of
 * ggml-cpu's AVX2 code, so the sums are bit-identical. */
QB_INLINE void qb_block32_step(struct qb_w32 b, const uint8_t *y, size_t stride, int nt, __m256 *acc)
{
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        const uint8_t *yt = y + (size_t)t * stride;
        const __m256i p = qb_dot_ss(b.q, qb_load256(yt + 2));
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(b.d * qb_simd_half(yt)), _mm256_cvtepi32_ps(p), acc[t]);
    }
}

/* Blocks go into one accumulator (Q8_0, Q4_0, Q5_0) or two in turn (IQ4_NL, MXFP4). */
#define QB_BLOCK32_DOTS(base, wbytes, decode, nacc)                                                \
    QB_INLINE void QB_NAME(base##_nt)(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, \
                                      float *out)                                                  \
    {                                                                                              \
        __m256 acc0[Q_DOT_TOKENS], acc1[Q_DOT_TOKENS];                                             \
        for (int t = 0; t < nt; t++)                                                               \
            acc0[t] = acc1[t] = _mm256_setzero_ps();                                               \
        const int64_t nb = n / 32;                                                                 \
        int64_t i = 0;                                                                             \
        for (; i + 1 < nb; i += 2, x += 2 * (wbytes)) {                                            \
            qb_prefetch(x);                                                                        \
            qb_block32_step(decode(x), a + 34 * i, stride, nt, acc0);                              \
            qb_prefetch(x + (wbytes));                                                             \
            qb_block32_step(decode(x + (wbytes)), a + 34 * (i + 1), stride, nt, (nacc) == 2 ? acc1 : acc0); \
        }                                                                                          \
        if (i < nb) {                                                                              \
            qb_prefetch(x);                                                                        \
            qb_block32_step(decode(x), a + 34 * i, stride, nt, acc0);                              \
        }                                                                                          \
        for (int t = 0; t < nt; t++)                                                               \
            out[t] = qb_hsum_ps((nacc) == 2 ? _mm256_add_ps(acc0[t], acc1[t]) : acc0[t]);          \
    }                                                                                              \
    QB_TOKENS_FN(base, QB_NAME(base##_nt))

QB_BLOCK32_DOTS(q_basic_dot_q8_0, 34, qb_w_q8_0, 1)
QB_BLOCK32_DOTS(q_basic_dot_q5_0, 22, qb_w_q5_0, 1)
QB_BLOCK32_DOTS(q_basic_dot_q4_0, 18, qb_w_q4_0, 1)
#ifdef QB_PAIR512
/* The two-accumulator types on AVX-512: blocks 2i and 2i+1 side by side in one 512-bit vector,
 * whose low half is ggml's even-block accumulator and high half its odd-block one, so each lane
 * sees the same float operations in the same order as in the 256-bit loop. */
QB_INLINE void qb_block32_pair_step(struct qb_w32 b0, struct qb_w32 b1, const uint8_t *y, size_t stride, int nt,
                                    __m512 *acc)
{
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(b0.q), b1.q, 1);
    /* |q| . (y with q's sign): where q is 0 the product is 0 either way */
    const __m512i uq = _mm512_abs_epi8(q);
    const __mmask64 neg = _mm512_movepi8_mask(q);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        const uint8_t *yt = y + (size_t)t * stride;
        const __m512i yv = _mm512_inserti64x4(_mm512_castsi256_si512(qb_load256(yt + 2)), qb_load256(yt + 36), 1);
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), uq,
                                              _mm512_mask_sub_epi8(yv, neg, _mm512_setzero_si512(), yv));
        const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(b0.d * qb_simd_half(yt)),
                                            _mm256_set1_ps(b1.d * qb_simd_half(yt + 34)), 1);
        acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p), acc[t]);
    }
}

#define QB_BLOCK32_PAIR_DOTS(base, wbytes, decode)                                                 \
    QB_INLINE void QB_NAME(base##_nt)(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, \
                                      float *out)                                                  \
    {                                                                                              \
        __m512 acc[Q_DOT_TOKENS];                                                                  \
        for (int t = 0; t < nt; t++)                                                               \
            acc[t] = _mm512_setzero_ps();                                                          \
        const int64_t nb = n / 32;                                                                 \
        int64_t i = 0;                                                                             \
        for (; i + 1 < nb; i += 2, x += 2 * (wbytes)) {                                            \
            qb_prefetch(x);                                                                        \
            qb_block32_pair_step(decode(x), decode(x + (wbytes)), a + 34 * i, stride, nt, acc);    \
        }                                                                                          \
        __m256 acc0[Q_DOT_TOKENS], acc1[Q_DOT_TOKENS];                                             \
        for (int t = 0; t < nt; t++) {                                                             \
            acc0[t] = _mm512_castps512_ps256(acc[t]);                                              \
            acc1[t] = _mm512_extractf32x8_ps(acc[t], 1);                                           \
        }                                                                                          \
        if (i < nb) {                                                                              \
            qb_prefetch(x);                                                                        \
            qb_block32_step(decode(x), a + 34 * i, stride, nt, acc0);                              \
        }                                                                                          \
        for (int t = 0; t < nt; t++)                                                               \
            out[t] = qb_hsum_ps(_mm256_add_ps(acc0[t], acc1[t]));                                  \
    }                                                                                              \
    QB_TOKENS_FN(base, QB_NAME(base##_nt))

QB_BLOCK32_PAIR_DOTS(q_basic_dot_iq4_nl, 18, qb_w_iq4_nl)
QB_BLOCK32_PAIR_DOTS(q_basic_dot_mxfp4, 17, qb_w_mxfp4)
#else
QB_BLOCK32_DOTS(q_basic_dot_iq4_nl, 18, qb_w_iq4_nl, 2)
QB_BLOCK32_DOTS(q_basic_dot_mxfp4, 17, qb_w_mxfp4, 2)
#endif

/* The same formats in the order of ggml's repacked kernels (q_legacy.c, dot_*_packed): per block,
 * the exact integer sum and one fused multiply-add with (weight scale x activation scale). */
QB_INLINE void qb_block32_packed_step(struct qb_w32 b, const uint8_t *y, size_t stride, int nt, float *acc)
{
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        const uint8_t *yt = y + (size_t)t * stride;
        const int isum = qb_hsum_epi32(qb_dot_ss(b.q, qb_load256(yt + 2)));
        acc[t] = fmaf((float)isum, b.d * qb_simd_half(yt), acc[t]);
    }
}

#define QB_BLOCK32_PACKED_DOTS(base, wbytes, decode)                                               \
    QB_INLINE void QB_NAME(base##_nt)(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, \
                                      float *out)                                                  \
    {                                                                                              \
        float acc[Q_DOT_TOKENS] = {0};                                                             \
        for (int64_t i = 0; i < n / 32; i++, x += (wbytes)) {                                      \
            qb_prefetch(x);                                                                        \
            qb_block32_packed_step(decode(x), a + 34 * i, stride, nt, acc);                        \
        }                                                                                          \
        for (int t = 0; t < nt; t++)                                                               \
            out[t] = acc[t];                                                                       \
    }                                                                                              \
    QB_TOKENS_FN(base, QB_NAME(base##_nt))

QB_BLOCK32_PACKED_DOTS(q_basic_dot_q4_0_packed, 18, qb_w_q4_0)
QB_BLOCK32_PACKED_DOTS(q_basic_dot_iq4_nl_packed, 18, qb_w_iq4_nl)
QB_BLOCK32_PACKED_DOTS(q_basic_dot_mxfp4_packed, 17, qb_w_mxfp4)

/* ---------------------------------------------------- Q8_1 activations --- */
/* Q4_1 / Q5_1: unsigned quants; the min term is the weight's min times the activation's stored
 * d x sum(qs), as ggml-cpu computes it. */
static inline float qb_dot_x_1(int64_t n, const uint8_t *x, const uint8_t *y, bool five)
{
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    const int wbytes = five ? 24 : 20, qs = five ? 8 : 4;
    for (int64_t i = 0; i < n / 32; i++, x += wbytes, y += 36) {
        qb_prefetch(x);
        __m256i q = qb_nibbles32(x + qs);
        if (five)
            q = _mm256_or_si256(q, qb_fifth_bits(x + 4));
        const __m256i p = qb_dot_us(q, qb_load256(y + 4));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qb_simd_half(x) * qb_simd_half(y)), _mm256_cvtepi32_ps(p), acc);
        mins += qb_simd_half(x + 2) * qb_simd_half(y + 2);
    }
    return qb_hsum_ps(acc) + mins;
}

QB_DOT_DECL(QB_NAME(q_basic_dot_q4_1)) { return qb_dot_x_1(n, w, a, false); }
QB_DOT_DECL(QB_NAME(q_basic_dot_q5_1)) { return qb_dot_x_1(n, w, a, true); }

/* ---------------------------------------------------- Q8_K activations --- */

/* The eight 6-bit scales (low 128 bits, as int16) and mins (high) of a Q4_K / Q5_K super-block,
 * unpacked from its 12 bytes with 32-bit word arithmetic, never through memory. */
static inline __m256i qb_k4_scales_mins(const uint8_t *q)
{
    const uint32_t u0 = qb_u32(q), u1 = qb_u32(q + 4), u2 = qb_u32(q + 8);
    const uint32_t sc_lo = u0 & 0x3f3f3f3fu, mn_lo = u1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
    return _mm256_cvtepu8_epi16(_mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi));
}

/* min x (the two Q8_K block sums of its 32 values), summed over pairs of sub-blocks: 4 lanes. */
static inline __m128i qb_k4_min_prods(__m256i scmn, const uint8_t *y)
{
    const __m128i b0 = _mm_loadu_si128((const __m128i *)(y + QB_Q8K_BSUMS));
    const __m128i b1 = _mm_loadu_si128((const __m128i *)(y + QB_Q8K_BSUMS + 16));
    return _mm_madd_epi16(_mm_hadd_epi16(b0, b1), _mm256_extracti128_si256(scmn, 1));
}

/* Q4_K and Q5_K: sum of scale x (unsigned quant . q8) per 32 values, minus the mins through the
 * activation's block sums; one float multiply-add per super-block. The float steps follow
 * ggml-cpu's AVX2 code exactly (Q4_K: mins in 4 float lanes; Q5_K: one float), so the results
 * are bit-identical to ggml's, not merely close: these models sit near routing ties. */
QB_INLINE void qb_dot_q45_k(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, int block,
                            bool five, float *out)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc[Q_DOT_TOKENS];
    __m128 acc_m[Q_DOT_TOKENS];
    float summs[Q_DOT_TOKENS], d[Q_DOT_TOKENS];
    for (int t = 0; t < nt; t++) {
        acc[t] = _mm256_setzero_ps();
        acc_m[t] = _mm_setzero_ps();
        summs[t] = 0.0f;
    }
    for (int64_t i = 0; i < n / 256; i++, x += block, a += 292) {
        qb_prefetch(x);
        qb_prefetch(x + 64);
        const float hd = qb_simd_half(x), hmin = qb_simd_half(x + 2);
        const __m256i scmn = qb_k4_scales_mins(x + 4);
        const __m256i sc = _mm256_permute2x128_si256(scmn, scmn, 0x00);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const uint8_t *y = a + (size_t)t * stride;
            const float dq8 = qb_f32(y), dmin = -dq8 * hmin;
            d[t] = dq8 * hd;
            const __m128i mp = qb_k4_min_prods(scmn, y);
            if (five) {
                const __m128i h = _mm_add_epi32(mp, _mm_shuffle_epi32(mp, 0x4e));
                /* ggml's `summs += dmin * m` is compiled to one FMA (gcc contracts it under -mfma) */
                summs[t] = fmaf(dmin, (float)_mm_cvtsi128_si32(_mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1))), summs[t]);
            } else {
                acc_m[t] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(mp), acc_m[t]);
            }
        }
        const uint8_t *qs = x + (five ? 48 : 16);
        const __m256i qh = five ? qb_load256(x + 16) : _mm256_setzero_si256();
        __m256i isum[Q_DOT_TOKENS];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q = qb_load256(qs + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
            }
            const __m256i slo = qb_pick16(sc, 2 * j), shi = qb_pick16(sc, 2 * j + 1);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const uint8_t *q8 = a + (size_t)t * stride + QB_Q8K_QS;
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scale16(lo, qb_load256(q8 + 64 * j), slo));
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scale16(hi, qb_load256(q8 + 64 * j + 32), shi));
            }
        }
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d[t]), _mm256_cvtepi32_ps(isum[t]), acc[t]);
    }
    for (int t = 0; t < nt; t++) {
        __m128 m = _mm_add_ps(acc_m[t], _mm_movehl_ps(acc_m[t], acc_m[t]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[t] = qb_hsum_ps(acc[t]) + (five ? summs[t] : _mm_cvtss_f32(m));
    }
}

QB_INLINE void qb_dot_q4_k_nt(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, float *out)
{
    qb_dot_q45_k(n, x, a, stride, nt, 144, false, out);
}
QB_INLINE void qb_dot_q5_k_nt(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, float *out)
{
    qb_dot_q45_k(n, x, a, stride, nt, 176, true, out);
}
QB_TOKENS_FN(q_basic_dot_q4_k, qb_dot_q4_k_nt)
QB_TOKENS_FN(q_basic_dot_q5_k, qb_dot_q5_k_nt)

/* Q4_K in ggml's repacked float order (see dot_q4_k_repacked in q_kquants.c): the integer sums
 * are exact, so only where the fused multiply-adds happen matters; each weight block is decoded
 * once for all nt tokens. */
QB_INLINE void qb_dot_q4_k_repacked(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt,
                                    bool per_pair, float *out)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    float acc[Q_DOT_TOKENS] = {0}, acc_min[Q_DOT_TOKENS] = {0};
    for (int64_t i = 0; i < n / 256; i++, x += 144) {
        qb_prefetch(x);
        qb_prefetch(x + 64);
        const float dw = qb_simd_half(x), dminw = qb_simd_half(x + 2);
        const __m256i scmn = qb_k4_scales_mins(x + 4);
        const __m256i sc = _mm256_permute2x128_si256(scmn, scmn, 0x00);
        __m256i lo[4], hi[4];
        for (int j = 0; j < 4; j++) {
            const __m256i q = qb_load256(x + 16 + 32 * j);
            lo[j] = _mm256_and_si256(q, m4);
            hi[j] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        }
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const uint8_t *y = a + (size_t)t * stride + (size_t)i * 292, *q8 = y + QB_Q8K_QS;
            const float dq8 = qb_f32(y), d = dw * dq8, dmin = dminw * dq8;
            int32_t mins[4];
            _mm_storeu_si128((__m128i *)mins, qb_k4_min_prods(scmn, y));
            int isum = 0, imin = 0;
            for (int j = 0; j < 4; j++) {
                const int ps = qb_hsum_epi32(
                    _mm256_add_epi32(qb_dot_us_scale16(lo[j], qb_load256(q8 + 64 * j), qb_pick16(sc, 2 * j)),
                                     qb_dot_us_scale16(hi[j], qb_load256(q8 + 64 * j + 32), qb_pick16(sc, 2 * j + 1))));
                if (per_pair) {
                    acc[t] = fmaf((float)ps, d, acc[t]);
                    acc_min[t] = fmaf((float)mins[j], dmin, acc_min[t]);
                } else {
                    isum += ps;
                    imin += mins[j];
                }
            }
            if (!per_pair) {
                acc[t] = fmaf((float)isum, d, acc[t]);
                acc_min[t] = fmaf((float)imin, dmin, acc_min[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = acc[t] - acc_min[t];
}

QB_INLINE void qb_dot_q4_k_row_nt(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, float *out)
{
    qb_dot_q4_k_repacked(n, x, a, stride, nt, false, out);
}
QB_INLINE void qb_dot_q4_k_group_nt(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, float *out)
{
    qb_dot_q4_k_repacked(n, x, a, stride, nt, true, out);
}
QB_TOKENS_FN(q_basic_dot_q4_k_row, qb_dot_q4_k_row_nt)
QB_TOKENS_FN(q_basic_dot_q4_k_group, qb_dot_q4_k_group_nt)

/* Q6_K: quants taken unsigned (0..63); the bias of 32 comes back through the block sums. Each
 * 32-value vector spans two 16-value scale groups, one per 128-bit half. */
QB_INLINE void qb_dot_q6_k_nt(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, float *out)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
    __m256 acc[Q_DOT_TOKENS];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, x += 210, a += 292) {
        qb_prefetch(x);
        qb_prefetch(x + 64);
        qb_prefetch(x + 128);
        const __m128i scales8 = _mm_loadu_si128((const __m128i *)(x + 192));
        const __m256i scales16 = _mm256_cvtepi8_epi16(scales8);
        __m256i isum[Q_DOT_TOKENS];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x + 64 * half;
            const __m256i qh = qb_load256(x + 128 + 32 * half);
            const __m256i l0 = qb_load256(ql), l1 = qb_load256(ql + 32);
            const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            const __m256i q2 = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            const __m256i q4 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            const __m256i s16 = qb_scales16_half(scales8, half);
            const __m256i s0 = qb_pick16_pair(s16, 0), s2 = qb_pick16_pair(s16, 2);
            const __m256i s4 = qb_pick16_pair(s16, 4), s6 = qb_pick16_pair(s16, 6);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const uint8_t *q8 = a + (size_t)t * stride + QB_Q8K_QS + 128 * half;
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scale16(q1, qb_load256(q8), s0));
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scale16(q2, qb_load256(q8 + 32), s2));
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scale16(q3, qb_load256(q8 + 64), s4));
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scale16(q4, qb_load256(q8 + 96), s6));
            }
        }
        const float dw = qb_simd_half(x + 208);
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const uint8_t *y = a + (size_t)t * stride;
            /* 32 x scale x block sum, pairs of groups per lane: the lanes ggml-cpu subtracts */
            const __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(qb_load256(y + QB_Q8K_BSUMS), scales16), 5);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(qb_f32(y) * dw), _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], bias)),
                                     acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t] = qb_hsum_ps(acc[t]);
}

/* Q6_K: quants taken unsigned (0..63); the bias of 32 comes back through the block sums. Each
 * 32-value vector spans two 16-value scale groups, one per 128-bit half. */
QB_TOKENS_FN(q_basic_dot_q6_k, qb_dot_q6_k_nt)

/* IQ4_XS: 32 packed bytes hold two 32-value sub-blocks; regroup the nibbles per sub-block. */
QB_INLINE void qb_dot_iq4_xs_nt(int64_t n, const uint8_t *x, const uint8_t *a, size_t stride, int nt, float *out)
{
    const __m128i tv = _mm_loadu_si128((const __m128i *)qb_iq4nl_values);
    const __m256i table = _mm256_set_m128i(tv, tv), m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[Q_DOT_TOKENS];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, x += 136, a += 292) {
        qb_prefetch(x);
        qb_prefetch(x + 64);
        const unsigned sh = qb_u16(x + 2);
        __m256i isum[Q_DOT_TOKENS];
        for (int t = 0; t < nt; t++)
            isum[t] = _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            const __m256i q = qb_load256(x + 8 + 32 * p);
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i v0 = _mm256_shuffle_epi8(table, _mm256_permute2x128_si256(lo, hi, 0x20));
            const __m256i v1 = _mm256_shuffle_epi8(table, _mm256_permute2x128_si256(lo, hi, 0x31));
            const __m256i u0 = _mm256_sign_epi8(v0, v0), u1 = _mm256_sign_epi8(v1, v1);
            const int ib0 = 2 * p, ib1 = 2 * p + 1;
            const int ls0 = ((x[4 + p] & 0xF) | (((sh >> 2 * ib0) & 3) << 4)) - 32;
            const int ls1 = ((x[4 + p] >> 4) | (((sh >> 2 * ib1) & 3) << 4)) - 32;
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const uint8_t *q8 = a + (size_t)t * stride + QB_Q8K_QS;
                const __m256i y0 = qb_load256(q8 + 64 * p), y1 = qb_load256(q8 + 64 * p + 32);
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scaled(u0, _mm256_sign_epi8(y0, v0), ls0, ls0));
                isum[t] = _mm256_add_epi32(isum[t], qb_dot_us_scaled(u1, _mm256_sign_epi8(y1, v1), ls1, ls1));
            }
        }
        const float dw = qb_simd_half(x);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * qb_f32(a + (size_t)t * stride)), _mm256_cvtepi32_ps(isum[t]),
                                     acc[t]);
    }
    for (int t = 0; t < nt; t++)
        out[t] = qb_hsum_ps(acc[t]);
}
QB_TOKENS_FN(q_basic_dot_iq4_xs, qb_dot_iq4_xs_nt)

/* Q2_K: 2-bit quants (unsigned) with a 4-bit scale and a 4-bit min per 16 values. The mins go
 * into the same float accumulator first, as in ggml-cpu's AVX2 code (bit-identical sums). */
QB_DOT_DECL(QB_NAME(q_basic_dot_q2_k))
{
    const uint8_t *x = w, *y = a;
    const __m256i m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, x += 84, y += 292) {
        qb_prefetch(x);
        const float dq8 = qb_f32(y), d = dq8 * qb_simd_half(x + 80), dmin = -dq8 * qb_simd_half(x + 82);
        const __m128i packed = _mm_loadu_si128((const __m128i *)x);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
        const __m256i prod = _mm256_madd_epi16(mins, qb_load256(y + QB_Q8K_BSUMS));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        const uint8_t *q8 = y + QB_Q8K_QS;
        __m256i isum = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = qb_load256(x + 16 + 32 * half);
            for (int j = 0; j < 4; j++) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m2);
                const int is = 8 * half + 2 * j;
                isum = _mm256_add_epi32(isum, qb_dot_us_scaled(v, qb_load256(q8 + 128 * half + 32 * j), x[is] & 0xF, x[is + 1] & 0xF));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc);
    }
    return qb_hsum_ps(acc);
}

/* Q3_K's sixteen 6-bit scales, the bias of 32 removed, as int8, unpacked with word arithmetic. */
static inline __m128i qb_q3k_scales8(const uint8_t *p)
{
    const uint32_t a0 = qb_u32(p), a1 = qb_u32(p + 4), t = qb_u32(p + 8), k1 = 0x03030303u, k2 = 0x0f0f0f0fu;
    const __m128i v = _mm_setr_epi32((int)((a0 & k2) | ((t & k1) << 4)), (int)((a1 & k2) | (((t >> 2) & k1) << 4)),
                                     (int)(((a0 >> 4) & k2) | (((t >> 4) & k1) << 4)),
                                     (int)(((a1 >> 4) & k2) | (((t >> 6) & k1) << 4)));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

/* Q3_K: (2 low bits) . q8 minus (4 where the high bit is clear) . q8 in int16, then scaled: the
 * lanes of ggml-cpu's AVX2 code, so the float sums are bit-identical to its. */
QB_DOT_DECL(QB_NAME(q_basic_dot_q3_k))
{
    const uint8_t *x = w, *y = a;
    const __m256i m2 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, x += 110, y += 292) {
        qb_prefetch(x);
        qb_prefetch(x + 64);
        const __m128i scales8 = qb_q3k_scales8(x + 96);
        const __m256i hm = qb_load256(x);
        const uint8_t *q8 = y + QB_Q8K_QS;
        __m256i isum = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = qb_load256(x + 32 + 32 * half), s16 = qb_scales16_half(scales8, half);
            for (int j = 0; j < 4; j++) {
                const __m256i bit = _mm256_set1_epi8((char)(1 << (4 * half + j)));
                const __m256i minus4 = _mm256_andnot_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit), four);
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m2);
                const __m256i yv = qb_load256(q8 + 128 * half + 32 * j);
                const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(low, yv), _mm256_maddubs_epi16(minus4, yv));
                isum = _mm256_add_epi32(isum, qb_scale16(p16, qb_pick16_pair(s16, 2 * j)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qb_f32(y) * qb_simd_half(x + 108)), _mm256_cvtepi32_ps(isum), acc);
    }
    return qb_hsum_ps(acc);
}

/* ------------------------------------------------------------ float types --- */
/* Any n (block size 1): 32 values per step in four accumulators, then a scalar tail. Products
 * are exact in float for F16 and BF16 inputs only up to rounding, as in ggml-cpu's float sums. */

static inline __m256 qb_load_f16x8(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 qb_load_bf16x8(const uint8_t *p)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
static inline float qb_bf16(const uint8_t *p) { uint32_t b = (uint32_t)qb_u16(p) << 16; float f; memcpy(&f, &b, 4); return f; }

#define QB_FLOAT_DOT(name, size, load8, load1)                                                      \
    QB_DOT_DECL(QB_NAME(name))                                                                      \
    {                                                                                               \
        const uint8_t *x = w, *y = a;                                                               \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                 \
        int64_t i = 0;                                                                              \
        for (; i + 32 <= n; i += 32) {                                                              \
            const uint8_t *px = x + (size) * i, *py = y + (size) * i;                               \
            qb_prefetch(px);                                                                        \
            s0 = _mm256_fmadd_ps(load8(px), load8(py), s0);                                         \
            s1 = _mm256_fmadd_ps(load8(px + 8 * (size)), load8(py + 8 * (size)), s1);               \
            s2 = _mm256_fmadd_ps(load8(px + 16 * (size)), load8(py + 16 * (size)), s2);             \
            s3 = _mm256_fmadd_ps(load8(px + 24 * (size)), load8(py + 24 * (size)), s3);             \
        }                                                                                           \
        double sum = qb_hsum_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));       \
        for (; i < n; i++)                                                                          \
            sum += (double)(load1(x + (size) * i) * load1(y + (size) * i));                         \
        return (float)sum;                                                                          \
    }

static inline __m256 qb_load_f32x8(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }

/* F32 in the scalar references' orders (q_legacy.c). vec_dot's: 64-value steps in eight 8-lane
 * registers (16-lane accumulator j = registers 2j, 2j + 1), folded as ggml folds its four. */
QB_DOT_DECL(QB_NAME(q_basic_dot_f32))
{
    const float *x = w, *y = a;
    __m256 s[8];
    for (int k = 0; k < 8; k++)
        s[k] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        qb_prefetch((const uint8_t *)(x + i));
        for (int k = 0; k < 8; k++)
            s[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), s[k]);
    }
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(s[0], s[4]), _mm256_add_ps(s[2], s[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(s[1], s[5]), _mm256_add_ps(s[3], s[7]));
    float sum = qb_hsum_ps(_mm256_add_ps(lo, hi));
    for (; i < n; i++)
        sum = fmaf(x[i], y[i], sum);
    return sum;
}

/* tinyBLAS's: 16 lanes kept as two 8-lane halves, whose sum is the first step of the 16-lane
 * horizontal add. */
QB_DOT_DECL(QB_NAME(q_basic_dot_f32_tiny))
{
    const float *x = w, *y = a;
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        qb_prefetch((const uint8_t *)(x + i));
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), hi);
    }
    if (i == n)
        return qb_hsum_ps(_mm256_add_ps(lo, hi));
    float lane[16];
    _mm256_storeu_ps(lane, lo);
    _mm256_storeu_ps(lane + 8, hi);
    for (; i < n; i++)
        lane[i % 16] = fmaf(x[i], y[i], lane[i % 16]);
    return qb_hsum_ps(_mm256_add_ps(_mm256_loadu_ps(lane), _mm256_loadu_ps(lane + 8)));
}

QB_FLOAT_DOT(q_basic_dot_f16, 2, qb_load_f16x8, qb_simd_half)
QB_FLOAT_DOT(q_basic_dot_bf16, 2, qb_load_bf16x8, qb_bf16)

/* TQ2_0: 2-bit codes 0..2 meaning -1..1, taken unsigned; the -1 comes back through the sum of
 * all 16 Q8_K block sums. */
QB_DOT_DECL(QB_NAME(q_basic_dot_tq2_0))
{
    const uint8_t *x = w, *y = a;
    const __m256i m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, x += 66, y += 292) {
        qb_prefetch(x);
        const __m256i bs = _mm256_madd_epi16(qb_load256(y + QB_Q8K_BSUMS), _mm256_set1_epi16(1));
        __m256i isum = _mm256_sub_epi32(_mm256_setzero_si256(), bs);
        for (int c = 0; c < 2; c++) {
            const __m256i q = qb_load256(x + 32 * c);
            for (int l = 0; l < 4; l++) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * l), m2);
                isum = _mm256_add_epi32(isum, qb_dot_us(v, qb_load256(y + QB_Q8K_QS + 128 * c + 32 * l)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(qb_f32(y) * qb_simd_half(x + 64)), _mm256_cvtepi32_ps(isum), acc);
    }
    return qb_hsum_ps(acc);
}
