/* q_basic_neon.c: aarch64 Advanced SIMD dot products of the hot non-grid types, and their table.
 * Each emulates the x86 kernels' eight float lanes with two float32x4 registers, so it returns the same bits. */
#include <arm_neon.h>
#include <math.h>

#include "kernels/q_basic_neon.h"
#include "kernels/q_block.h"

/* Why the bits match q_basic_avx2.c: there, int32 lane k (0..7) of a 32-byte product holds the
 * exact sum of the products of bytes 4k..4k+3 (maddubs + madd, or dpbusd), times a scale that is
 * constant over the lane. qn_dot16 computes the same exact sums for bytes 0..15 (lanes 0..3) and
 * 16..31 (lanes 4..7); integer sums are exact whatever their order, so only the float steps
 * matter, and those (convert, fused multiply-add per lane, the horizontal sum's tree) are
 * repeated one for one. Baseline NEON only (no dotprod extension): nothing to gate at run time. */

#define QN_PREFETCH_AHEAD 2048
static inline void qn_prefetch(const uint8_t *p)
{
    __builtin_prefetch((const void *)((uintptr_t)p + QN_PREFETCH_AHEAD), 0, 3);
}

/* x86's eight lanes: lo = lanes 0..3, hi = lanes 4..7. */
struct qn_f8 {
    float32x4_t lo, hi;
};
struct qn_i8 {
    int32x4_t lo, hi;
};
struct qn_b32 {
    int8x16_t lo, hi;
};

static inline struct qn_f8 qn_f8_zero(void) { return (struct qn_f8){vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }

/* acc + d x float(p), one fused multiply-add per lane (_mm256_fmadd_ps). */
static inline struct qn_f8 qn_fma8(struct qn_f8 acc, float d, struct qn_i8 p)
{
    const float32x4_t dv = vdupq_n_f32(d);
    return (struct qn_f8){vfmaq_f32(acc.lo, dv, vcvtq_f32_s32(p.lo)), vfmaq_f32(acc.hi, dv, vcvtq_f32_s32(p.hi))};
}

static inline struct qn_f8 qn_add8(struct qn_f8 a, struct qn_f8 b)
{
    return (struct qn_f8){vaddq_f32(a.lo, b.lo), vaddq_f32(a.hi, b.hi)};
}

/* Four lanes summed as x86's tail of the horizontal add: (v0 + v2) + (v1 + v3). */
static inline float qn_hsum4(float32x4_t v)
{
    const float32x2_t t = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

/* qb_hsum_ps's tree: the halves added lane by lane, then qn_hsum4. */
static inline float qn_hsum8(struct qn_f8 v) { return qn_hsum4(vaddq_f32(v.lo, v.hi)); }

static inline int32_t qn_hsum_i8(struct qn_i8 v) { return vaddvq_s32(vaddq_s32(v.lo, v.hi)); }

/* Sums of the products of bytes 4k..4k+3, k = 0..3 (|a|, |b| <= 128: products fit int16). */
static inline int32x4_t qn_dot16(int8x16_t a, int8x16_t b)
{
    const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b)), hi = vmull_high_s8(a, b);
    return vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi));
}

static inline struct qn_i8 qn_dot32(struct qn_b32 a, struct qn_b32 b)
{
    return (struct qn_i8){qn_dot16(a.lo, b.lo), qn_dot16(a.hi, b.hi)};
}

static inline struct qn_b32 qn_load32(const uint8_t *p)
{
    return (struct qn_b32){vld1q_s8((const int8_t *)p), vld1q_s8((const int8_t *)p + 16)};
}

/* 16 packed nibble bytes -> low nibbles (values 0..15), then high nibbles (16..31). */
static inline struct qn_b32 qn_nibbles32(const uint8_t *p)
{
    const uint8x16_t v = vld1q_u8(p);
    return (struct qn_b32){vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8(v, 4))};
}

static inline struct qn_b32 qn_lookup32(const uint8_t *p, const int8_t table[16])
{
    const int8x16_t t = vld1q_s8(table);
    const struct qn_b32 idx = qn_nibbles32(p);
    return (struct qn_b32){vqtbl1q_s8(t, vreinterpretq_u8_s8(idx.lo)), vqtbl1q_s8(t, vreinterpretq_u8_s8(idx.hi))};
}

static inline struct qn_b32 qn_sub32(struct qn_b32 v, int8_t k)
{
    return (struct qn_b32){vsubq_s8(v.lo, vdupq_n_s8(k)), vsubq_s8(v.hi, vdupq_n_s8(k))};
}

/* ---------------------------------------------------- Q8_0 activations --- */
struct qn_w32 {
    struct qn_b32 q;
    float d;
};

static inline struct qn_w32 qn_w_q8_0(const uint8_t *x) { return (struct qn_w32){qn_load32(x + 2), qb_half(x)}; }
static inline struct qn_w32 qn_w_q4_0(const uint8_t *x)
{
    return (struct qn_w32){qn_sub32(qn_nibbles32(x + 2), 8), qb_half(x)};
}
static inline struct qn_w32 qn_w_iq4_nl(const uint8_t *x)
{
    return (struct qn_w32){qn_lookup32(x + 2, qb_iq4nl_values), qb_half(x)};
}
static inline struct qn_w32 qn_w_mxfp4(const uint8_t *x)
{
    return (struct qn_w32){qn_lookup32(x + 1, qb_fp4_values), qb_e8m0_half(x[0])};
}

/* Bits 0..15 of `bits` -> bytes 0..15: 0x10 where set (Q5_0's fifth bits). */
static inline int8x16_t qn_fifth_bits16(uint32_t bits)
{
    static const uint8_t mask[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t spread = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    return vreinterpretq_s8_u8(vandq_u8(vtstq_u8(spread, vld1q_u8(mask)), vdupq_n_u8(0x10)));
}

static inline struct qn_w32 qn_w_q5_0(const uint8_t *x)
{
    const uint32_t bits = qb_u32(x + 2);
    struct qn_b32 q = qn_nibbles32(x + 6);
    q.lo = vorrq_s8(q.lo, qn_fifth_bits16(bits));
    q.hi = vorrq_s8(q.hi, qn_fifth_bits16(bits >> 16));
    return (struct qn_w32){qn_sub32(q, 16), qb_half(x)};
}

static inline struct qn_f8 qn_block32_step(struct qn_w32 b, const uint8_t *y, struct qn_f8 acc)
{
    return qn_fma8(acc, b.d * qb_half(y), qn_dot32(b.q, qn_load32(y + 2)));
}

/* Blocks go into one accumulator (Q8_0, Q4_0, Q5_0) or two in turn (IQ4_NL, MXFP4), as on x86. */
#define QN_BLOCK32_DOT(name, wbytes, decode, nacc)                                                 \
    static float name(int64_t n, const void *w, const void *a)                                     \
    {                                                                                              \
        const uint8_t *x = w, *y = a;                                                              \
        struct qn_f8 acc0 = qn_f8_zero(), acc1 = qn_f8_zero();                                     \
        const int64_t nb = n / 32;                                                                 \
        int64_t i = 0;                                                                             \
        for (; i + 1 < nb; i += 2, x += 2 * (wbytes)) {                                            \
            qn_prefetch(x);                                                                        \
            acc0 = qn_block32_step(decode(x), y + 34 * i, acc0);                                   \
            if ((nacc) == 2)                                                                       \
                acc1 = qn_block32_step(decode(x + (wbytes)), y + 34 * (i + 1), acc1);              \
            else                                                                                   \
                acc0 = qn_block32_step(decode(x + (wbytes)), y + 34 * (i + 1), acc0);              \
        }                                                                                          \
        if (i < nb)                                                                                \
            acc0 = qn_block32_step(decode(x), y + 34 * i, acc0);                                   \
        return qn_hsum8((nacc) == 2 ? qn_add8(acc0, acc1) : acc0);                                 \
    }

QN_BLOCK32_DOT(dot_q8_0, 34, qn_w_q8_0, 1)
QN_BLOCK32_DOT(dot_q5_0, 22, qn_w_q5_0, 1)
QN_BLOCK32_DOT(dot_q4_0, 18, qn_w_q4_0, 1)
QN_BLOCK32_DOT(dot_iq4_nl, 18, qn_w_iq4_nl, 2)
QN_BLOCK32_DOT(dot_mxfp4, 17, qn_w_mxfp4, 2)

/* The repacked order: per block the exact integer sum, one fused multiply-add. */
#define QN_BLOCK32_PACKED_DOT(name, wbytes, decode)                                                \
    static float name(int64_t n, const void *w, const void *a)                                     \
    {                                                                                              \
        const uint8_t *x = w, *y = a;                                                              \
        float acc = 0.0f;                                                                          \
        for (int64_t i = 0; i < n / 32; i++, x += (wbytes), y += 34) {                             \
            qn_prefetch(x);                                                                        \
            const struct qn_w32 b = decode(x);                                                     \
            acc = fmaf((float)qn_hsum_i8(qn_dot32(b.q, qn_load32(y + 2))), b.d * qb_half(y), acc); \
        }                                                                                          \
        return acc;                                                                                \
    }

QN_BLOCK32_PACKED_DOT(dot_q4_0_packed, 18, qn_w_q4_0)
QN_BLOCK32_PACKED_DOT(dot_iq4_nl_packed, 18, qn_w_iq4_nl)
QN_BLOCK32_PACKED_DOT(dot_mxfp4_packed, 17, qn_w_mxfp4)

/* ---------------------------------------------------- Q8_K activations --- */
/* Q4_K's eight 6-bit scales and mins from its 12 bytes (the word arithmetic of the x86 code). */
static inline void qn_k4_scales_mins(const uint8_t *q, uint8_t sc[8], uint8_t mn[8])
{
    const uint32_t u0 = qb_u32(q), u1 = qb_u32(q + 4), u2 = qb_u32(q + 8);
    const uint32_t w[4] = {u0 & 0x3f3f3f3fu, (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4),
                           u1 & 0x3f3f3f3fu, ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4)};
    memcpy(sc, w, 8);
    memcpy(mn, w + 2, 8);
}

/* Lane k: min[2k] x (block sums 4k, 4k+1) + min[2k+1] x (block sums 4k+2, 4k+3), as x86's
 * hadd + madd. */
static inline int32x4_t qn_k4_min_prods(const uint8_t mn[8], const uint8_t *y)
{
    int16_t bs[16];
    memcpy(bs, y + QB_Q8K_BSUMS, sizeof bs);
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bs), vld1q_s16(bs + 8));
    const int16x8_t m = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mn)));
    return vpaddq_s32(vmull_s16(vget_low_s16(pairs), vget_low_s16(m)), vmull_high_s16(pairs, m));
}

/* Sub-blocks 2j (low nibbles) and 2j+1 (high) of a Q4_K super-block, each times its scale. */
static inline struct qn_i8 qn_k4_pair(const uint8_t *qs, const uint8_t *q8, const uint8_t sc[8], int j,
                                      struct qn_i8 acc)
{
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const uint8x16_t v0 = vld1q_u8(qs + 32 * j), v1 = vld1q_u8(qs + 32 * j + 16);
    const struct qn_b32 lo = {vreinterpretq_s8_u8(vandq_u8(v0, m4)), vreinterpretq_s8_u8(vandq_u8(v1, m4))};
    const struct qn_b32 hi = {vreinterpretq_s8_u8(vshrq_n_u8(v0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(v1, 4))};
    const struct qn_i8 plo = qn_dot32(lo, qn_load32(q8 + 64 * j)), phi = qn_dot32(hi, qn_load32(q8 + 64 * j + 32));
    acc.lo = vmlaq_n_s32(vmlaq_n_s32(acc.lo, plo.lo, sc[2 * j]), phi.lo, sc[2 * j + 1]);
    acc.hi = vmlaq_n_s32(vmlaq_n_s32(acc.hi, plo.hi, sc[2 * j]), phi.hi, sc[2 * j + 1]);
    return acc;
}

/* Q4_K vec_dot: the x86 kernel's eight lanes per super-block, mins in four float lanes. */
static float dot_q4_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    struct qn_f8 acc = qn_f8_zero();
    float32x4_t acc_m = vdupq_n_f32(0.0f);
    for (int64_t i = 0; i < n / 256; i++, x += 144, y += 292) {
        qn_prefetch(x);
        qn_prefetch(x + 64);
        uint8_t sc[8], mn[8];
        qn_k4_scales_mins(x + 4, sc, mn);
        const float dq8 = qb_f32(y), dmin = -dq8 * qb_half(x + 2), d = dq8 * qb_half(x);
        acc_m = vfmaq_f32(acc_m, vdupq_n_f32(dmin), vcvtq_f32_s32(qn_k4_min_prods(mn, y)));
        struct qn_i8 isum = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int j = 0; j < 4; j++)
            isum = qn_k4_pair(x + 16, y + QB_Q8K_QS, sc, j, isum);
        acc = qn_fma8(acc, d, isum);
    }
    return qn_hsum8(acc) + qn_hsum4(acc_m);
}

/* Q5_K: Q4_K with a fifth bit per quant from qh (bit 2j for sub-block 2j, 2j+1 for the next)
 * and, as in the x86 code, the mins summed to one integer and added with one fused multiply-add. */
static float dot_q5_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), one = vdupq_n_u8(1);
    struct qn_f8 acc = qn_f8_zero();
    float summs = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, x += 176, y += 292) {
        qn_prefetch(x);
        qn_prefetch(x + 64);
        uint8_t sc[8], mn[8];
        qn_k4_scales_mins(x + 4, sc, mn);
        const float dq8 = qb_f32(y), dmin = -dq8 * qb_half(x + 2), d = dq8 * qb_half(x);
        summs = fmaf(dmin, (float)vaddvq_s32(qn_k4_min_prods(mn, y)), summs);
        const uint8x16_t qh[2] = {vld1q_u8(x + 16), vld1q_u8(x + 32)};
        const uint8_t *q8 = y + QB_Q8K_QS;
        struct qn_i8 isum = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int j = 0; j < 4; j++) {
            int32x4_t *half_sum[2] = {&isum.lo, &isum.hi};
            for (int part = 0; part < 2; part++) {
                const uint8x16_t v = vld1q_u8(x + 48 + 32 * j + 16 * part);
                const int8x16_t shift_lo = vdupq_n_s8((int8_t)-(2 * j)), shift_hi = vdupq_n_s8((int8_t)-(2 * j + 1));
                const uint8x16_t b5lo = vshlq_n_u8(vandq_u8(vshlq_u8(qh[part], shift_lo), one), 4);
                const uint8x16_t b5hi = vshlq_n_u8(vandq_u8(vshlq_u8(qh[part], shift_hi), one), 4);
                const int8x16_t lo = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, m4), b5lo));
                const int8x16_t hi = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), b5hi));
                const int8x16_t y0 = vld1q_s8((const int8_t *)q8 + 64 * j + 16 * part);
                const int8x16_t y1 = vld1q_s8((const int8_t *)q8 + 64 * j + 32 + 16 * part);
                *half_sum[part] = vmlaq_n_s32(vmlaq_n_s32(*half_sum[part], qn_dot16(lo, y0), sc[2 * j]),
                                              qn_dot16(hi, y1), sc[2 * j + 1]);
            }
        }
        acc = qn_fma8(acc, d, isum);
    }
    return qn_hsum8(acc) + summs;
}

/* IQ4_XS: 32 packed bytes per two 32-value sub-blocks, each with a 6-bit scale (bias 32). */
static float dot_iq4_xs(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    struct qn_f8 acc = qn_f8_zero();
    for (int64_t i = 0; i < n / 256; i++, x += 136, y += 292) {
        qn_prefetch(x);
        qn_prefetch(x + 64);
        const unsigned sh = qb_u16(x + 2);
        const uint8_t *q8 = y + QB_Q8K_QS;
        struct qn_i8 isum = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int ib = 0; ib < 8; ib++) {
            const int ls = (((x[4 + ib / 2] >> 4 * (ib % 2)) & 0xF) | (((sh >> 2 * ib) & 3) << 4)) - 32;
            const struct qn_i8 p = qn_dot32(qn_lookup32(x + 8 + 16 * ib, qb_iq4nl_values), qn_load32(q8 + 32 * ib));
            isum.lo = vmlaq_n_s32(isum.lo, p.lo, ls);
            isum.hi = vmlaq_n_s32(isum.hi, p.hi, ls);
        }
        acc = qn_fma8(acc, qb_half(x) * qb_f32(y), isum);
    }
    return qn_hsum8(acc);
}

/* Q4_K in the repacked order (q_kquants.c, dot_q4_k_repacked): exact integer sums, one fused
 * multiply-add per super-block (rows) or per pair of sub-blocks (groups). */
static float dot_q4_k_repacked(int64_t n, const uint8_t *x, const uint8_t *y, bool per_pair)
{
    float acc = 0.0f, acc_min = 0.0f;
    for (int64_t i = 0; i < n / 256; i++, x += 144, y += 292) {
        qn_prefetch(x);
        qn_prefetch(x + 64);
        uint8_t sc[8], mn[8];
        qn_k4_scales_mins(x + 4, sc, mn);
        const float dq8 = qb_f32(y), d = qb_half(x) * dq8, dmin = qb_half(x + 2) * dq8;
        int32_t mins[4];
        vst1q_s32(mins, qn_k4_min_prods(mn, y));
        int isum = 0, imin = 0;
        for (int j = 0; j < 4; j++) {
            const int ps = qn_hsum_i8(qn_k4_pair(x + 16, y + QB_Q8K_QS, sc, j, (struct qn_i8){vdupq_n_s32(0), vdupq_n_s32(0)}));
            if (per_pair) {
                acc = fmaf((float)ps, d, acc);
                acc_min = fmaf((float)mins[j], dmin, acc_min);
            } else {
                isum += ps;
                imin += mins[j];
            }
        }
        if (!per_pair) {
            acc = fmaf((float)isum, d, acc);
            acc_min = fmaf((float)imin, dmin, acc_min);
        }
    }
    return acc - acc_min;
}

static float dot_q4_k_row(int64_t n, const void *w, const void *a) { return dot_q4_k_repacked(n, w, a, false); }
static float dot_q4_k_group(int64_t n, const void *w, const void *a) { return dot_q4_k_repacked(n, w, a, true); }

/* Q6_K: quants unsigned (0..63), the bias of 32 back through the block sums; bytes 0..15 of each
 * 32-value vector take one 16-value scale, bytes 16..31 the next (x86's two 128-bit halves). */
static float dot_q6_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m2 = vdupq_n_u8(0x03);
    struct qn_f8 acc = qn_f8_zero();
    for (int64_t i = 0; i < n / 256; i++, x += 210, y += 292) {
        qn_prefetch(x);
        qn_prefetch(x + 64);
        qn_prefetch(x + 128);
        const int8_t *scales = (const int8_t *)(x + 192);
        const uint8_t *q8 = y + QB_Q8K_QS;
        struct qn_i8 isum = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x + 64 * half, *qh = x + 128 + 32 * half;
            for (int part = 0; part < 2; part++) { /* bytes 0..15, then 16..31 of each vector */
                const uint8x16_t l0 = vld1q_u8(ql + 16 * part), l1 = vld1q_u8(ql + 32 + 16 * part);
                const uint8x16_t h = vld1q_u8(qh + 16 * part);
                const uint8x16_t q[4] = {
                    vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(h, m2), 4)),
                    vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 2), m2), 4)),
                    vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(h, 4), m2), 4)),
                    vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(h, 6), 4))};
                int32x4_t s = part ? isum.hi : isum.lo;
                for (int m = 0; m < 4; m++) {
                    const int8x16_t yv = vld1q_s8((const int8_t *)q8 + 128 * half + 32 * m + 16 * part);
                    s = vmlaq_n_s32(s, qn_dot16(vreinterpretq_s8_u8(q[m]), yv), scales[8 * half + 2 * m + part]);
                }
                if (part)
                    isum.hi = s;
                else
                    isum.lo = s;
            }
        }
        /* 32 x scale x block sum, pairs of groups per lane: the lanes the x86 code subtracts */
        int16_t bs[16];
        memcpy(bs, y + QB_Q8K_BSUMS, sizeof bs);
        const int16x8_t sc0 = vmovl_s8(vld1_s8(scales)), sc1 = vmovl_s8(vld1_s8(scales + 8));
        const int16x8_t b0 = vld1q_s16(bs), b1 = vld1q_s16(bs + 8);
        const int32x4_t bias0 = vpaddq_s32(vmull_s16(vget_low_s16(b0), vget_low_s16(sc0)), vmull_high_s16(b0, sc0));
        const int32x4_t bias1 = vpaddq_s32(vmull_s16(vget_low_s16(b1), vget_low_s16(sc1)), vmull_high_s16(b1, sc1));
        isum.lo = vsubq_s32(isum.lo, vshlq_n_s32(bias0, 5));
        isum.hi = vsubq_s32(isum.hi, vshlq_n_s32(bias1, 5));
        acc = qn_fma8(acc, qb_f32(y) * qb_half(x + 208), isum);
    }
    return qn_hsum8(acc);
}

/* ------------------------------------------------------------------- F32 --- */
/* vec_dot's order: 64-value steps in eight 8-lane accumulators, folded as the x86 code folds. */
static float dot_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    struct qn_f8 s[8];
    for (int k = 0; k < 8; k++)
        s[k] = qn_f8_zero();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        qn_prefetch((const uint8_t *)(x + i));
        for (int k = 0; k < 8; k++) {
            s[k].lo = vfmaq_f32(s[k].lo, vld1q_f32(x + i + 8 * k), vld1q_f32(y + i + 8 * k));
            s[k].hi = vfmaq_f32(s[k].hi, vld1q_f32(x + i + 8 * k + 4), vld1q_f32(y + i + 8 * k + 4));
        }
    }
    const struct qn_f8 lo = qn_add8(qn_add8(s[0], s[4]), qn_add8(s[2], s[6]));
    const struct qn_f8 hi = qn_add8(qn_add8(s[1], s[5]), qn_add8(s[3], s[7]));
    float sum = qn_hsum8(qn_add8(lo, hi));
    for (; i < n; i++)
        sum = fmaf(x[i], y[i], sum);
    return sum;
}

/* tinyBLAS's: 16 lanes (two x86 8-lane halves), the tail into lane i % 16. */
static float dot_f32_tiny(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    struct qn_f8 lo = qn_f8_zero(), hi = qn_f8_zero();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        qn_prefetch((const uint8_t *)(x + i));
        lo.lo = vfmaq_f32(lo.lo, vld1q_f32(x + i), vld1q_f32(y + i));
        lo.hi = vfmaq_f32(lo.hi, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
        hi.lo = vfmaq_f32(hi.lo, vld1q_f32(x + i + 8), vld1q_f32(y + i + 8));
        hi.hi = vfmaq_f32(hi.hi, vld1q_f32(x + i + 12), vld1q_f32(y + i + 12));
    }
    if (i == n)
        return qn_hsum8(qn_add8(lo, hi));
    float lane[16];
    vst1q_f32(lane, lo.lo);
    vst1q_f32(lane + 4, lo.hi);
    vst1q_f32(lane + 8, hi.lo);
    vst1q_f32(lane + 12, hi.hi);
    for (; i < n; i++)
        lane[i % 16] = fmaf(x[i], y[i], lane[i % 16]);
    const struct qn_f8 l = {vld1q_f32(lane), vld1q_f32(lane + 4)}, h = {vld1q_f32(lane + 8), vld1q_f32(lane + 12)};
    return qn_hsum8(qn_add8(l, h));
}

/* ------------------------------------------------------------------ table --- */
const struct q_basic_neon_dot q_basic_neon_dots[] = {
    {Q_Q8_0, dot_q8_0}, {Q_Q4_0, dot_q4_0}, {Q_Q5_0, dot_q5_0}, {Q_IQ4_NL, dot_iq4_nl},
    {Q_MXFP4, dot_mxfp4}, {Q_Q4_K, dot_q4_k}, {Q_Q5_K, dot_q5_k}, {Q_Q6_K, dot_q6_k}, {Q_IQ4_XS, dot_iq4_xs},
    {Q_F32, dot_f32},
};
const size_t q_basic_neon_dot_count = sizeof q_basic_neon_dots / sizeof q_basic_neon_dots[0];

/* by row kind: alone, tail, group (enum q_row_kind) */
const struct q_basic_neon_batched q_basic_neon_batched_dots[] = {
    {Q_Q4_K, {dot_q4_k_row, dot_q4_k_row, dot_q4_k_group}},
    {Q_Q4_0, {dot_q4_0_packed, dot_q4_0_packed, dot_q4_0_packed}},
    {Q_IQ4_NL, {dot_iq4_nl_packed, dot_iq4_nl_packed, dot_iq4_nl_packed}},
    {Q_MXFP4, {dot_mxfp4_packed, dot_mxfp4_packed, dot_mxfp4_packed}},
    {Q_F32, {dot_f32, dot_f32_tiny, dot_f32_tiny}},
};
const size_t q_basic_neon_batched_count = sizeof q_basic_neon_batched_dots / sizeof q_basic_neon_batched_dots[0];

/* One-token kernels only: callers loop over `dot` (dot_tokens stays NULL), which gives the same
 * bits the several-token kernels would. */
void q_basic_register_neon(struct q_kernels *table, const struct q_cpu *cpu)
{
    if (!cpu->neon)
        return;
    for (size_t i = 0; i < q_basic_neon_dot_count; i++) {
        struct q_kernels *k = &table[q_basic_neon_dots[i].type];
        k->dot = q_basic_neon_dots[i].dot;
        k->dot_tokens = NULL;
        k->dot_isa = "neon";
    }
    for (size_t i = 0; i < q_basic_neon_batched_count; i++) {
        struct q_batched_dots *b = &table[q_basic_neon_batched_dots[i].type].batched;
        for (int kind = 0; kind < Q_ROW_KINDS; kind++) {
            b->by_kind[kind] = q_basic_neon_batched_dots[i].by_kind[kind];
            b->tokens_by_kind[kind] = NULL;
        }
    }
}
