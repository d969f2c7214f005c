/* q_iq_neon.c: aarch64 Advanced SIMD dot products of IQ2_S and IQ3_S with Q8_K activations, in
 * the x86 kernels' eight float lanes (two float32x4), so they return the same bits as q_iq_avx2.c. */
#include <arm_neon.h>

#include "kernels/iq_grids.h"
#include "kernels/q_iq_simd.h"

/* As in q_basic_neon.c: x86's int32 lane k of a 32-value sub-block is the exact sum of the
 * products of values 4k..4k+3 times the scale of its 16-value half; lanes 0..3 are `lo` here,
 * 4..7 `hi`. Only the float steps need to match, and they are the same one for one. */

#define QK 256

struct iqn_i8 {
    int32x4_t lo, hi;
};

static inline int32x4_t iqn_dot16(int8x16_t a, int8x16_t b)
{
    const int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b)), hi = vmull_high_s8(a, b);
    return vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi));
}

/* 16 activations with value j negated where bit j of `signs` (16 bits) is set. */
static inline int8x16_t iqn_signed16(const int8_t *q8, uint32_t signs)
{
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t spread = vcombine_u8(vdup_n_u8((uint8_t)signs), vdup_n_u8((uint8_t)(signs >> 8)));
    const int8x16_t neg = vreinterpretq_s8_u8(vtstq_u8(spread, vld1q_u8(bit))); /* -1 where negative */
    const int8x16_t v = vld1q_s8(q8);
    return vsubq_s8(veorq_s8(v, neg), neg);
}

/* One sub-block: grid bytes g (values 0..15 in g0, 16..31 in g1) times the signed activations,
 * each half times its scale, into the lanes. */
static inline struct iqn_i8 iqn_subblock(struct iqn_i8 acc, uint8x16_t g0, uint8x16_t g1, const int8_t *q8,
                                         uint32_t signs, int scale_lo, int scale_hi)
{
    acc.lo = vmlaq_n_s32(acc.lo, iqn_dot16(vreinterpretq_s8_u8(g0), iqn_signed16(q8, signs)), scale_lo);
    acc.hi = vmlaq_n_s32(acc.hi, iqn_dot16(vreinterpretq_s8_u8(g1), iqn_signed16(q8 + 16, signs >> 16)), scale_hi);
    return acc;
}

/* acc + d x float(p) per lane, fused; and x86's horizontal sum tree. */
static inline void iqn_fma(float32x4_t acc[2], float d, struct iqn_i8 p)
{
    const float32x4_t dv = vdupq_n_f32(d);
    acc[0] = vfmaq_f32(acc[0], dv, vcvtq_f32_s32(p.lo));
    acc[1] = vfmaq_f32(acc[1], dv, vcvtq_f32_s32(p.hi));
}

static inline float iqn_hsum(const float32x4_t acc[2])
{
    const float32x4_t s = vaddq_f32(acc[0], acc[1]);
    const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s));
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

static inline uint8x16_t iqn_grid2(const uint64_t *grid, int i0, int i1)
{
    return vcombine_u8(vcreate_u8(grid[i0]), vcreate_u8(grid[i1]));
}

float q_iq_dot_iq2_s_neon(int64_t n, const void *w, const void *a)
{
    const struct iq2s_block *x = w;
    const struct iq_q8k_block *y = a;
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq2s_block *b = &x[i];
        iq_prefetch(b);
        struct iqn_i8 sumi = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int ib = 0; ib < 8; ib++) {
            int idx[4];
            for (int k = 0; k < 4; k++) /* 10-bit index: qs byte, 2 bits of qh */
                idx[k] = b->qs[4 * ib + k] | ((b->qh[ib] >> 2 * k) & 3) << 8;
            const int sc = b->scales[ib];
            sumi = iqn_subblock(sumi, iqn_grid2(iq_grid_2s, idx[0], idx[1]), iqn_grid2(iq_grid_2s, idx[2], idx[3]),
                                y[i].qs + 32 * ib, iq_u32(b->signs + 4 * ib), 2 * (sc & 15) + 1, 2 * (sc >> 4) + 1);
        }
        iqn_fma(acc, iq_half(b->d) * iq_f32(y[i].d), sumi);
    }
    return 0.125f * iqn_hsum(acc);
}

float q_iq_dot_iq3_s_neon(int64_t n, const void *w, const void *a)
{
    const struct iq3s_block *x = w;
    const struct iq_q8k_block *y = a;
    float32x4_t acc[2] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (int64_t i = 0; i < n / QK; i++) {
        const struct iq3s_block *b = &x[i];
        iq_prefetch(b);
        struct iqn_i8 sumi = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int ib = 0; ib < 8; ib++) {
            uint32_t g[8];
            for (int k = 0; k < 8; k++) /* 9-bit index: qs byte, bit k of the sub-block's qh byte */
                g[k] = iq_grid_3s[b->qs[8 * ib + k] | ((b->qh[ib] >> k) & 1) << 8];
            const int sc = 2 * (ib & 1 ? b->scales[ib / 2] >> 4 : b->scales[ib / 2] & 15) + 1;
            sumi = iqn_subblock(sumi, vreinterpretq_u8_u32(vld1q_u32(g)), vreinterpretq_u8_u32(vld1q_u32(g + 4)),
                                y[i].qs + 32 * ib, iq_u32(b->signs + 4 * ib), sc, sc);
        }
        iqn_fma(acc, iq_half(b->d) * iq_f32(y[i].d), sumi);
    }
    return iqn_hsum(acc);
}
