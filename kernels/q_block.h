/* q_block.h: internal to the basic kernels: little-endian field loaders and the shared value
 * tables of the FP4 and IQ4 formats (facts of the GGUF format). */
#ifndef MOESERVE_Q_BLOCK_H
#define MOESERVE_Q_BLOCK_H

#include <stdint.h>
#include <string.h>

#include "kernels/quants.h"

static inline uint16_t qb_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t qb_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline float qb_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }
static inline float qb_half(const uint8_t *p) { return q_f16_to_f32(qb_u16(p)); }
static inline void qb_put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* E2M1 values doubled (MXFP4, NVFP4) and the IQ4 non-linear grid. */
static const int8_t qb_fp4_values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
static const int8_t qb_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                           1, 13, 25, 38, 53, 69, 89, 113};

/* MXFP4's E8M0 scale, halved to match the doubled E2M1 values. */
static inline float qb_e8m0_half(uint8_t x)
{
    uint32_t bits = x < 2 ? 0x00200000u << x : (uint32_t)(x - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* NVFP4's UE4M3 sub-block scale, halved likewise (0 and 0x7F read as zero). */
static inline float qb_ue4m3_half(uint8_t x)
{
    if (x == 0 || x == 0x7F)
        return 0.0f;
    int exp = (x >> 3) & 0xF, man = x & 0x7;
    float raw = exp == 0 ? (float)man * 0x1p-9f : (1.0f + (float)man / 8.0f) * __builtin_ldexpf(1.0f, exp - 7);
    return raw * 0.5f;
}

/* Q8_K activation block: float d, 256 int8, 16 int16 sums of 16. */
#define QB_Q8K_D 0
#define QB_Q8K_QS 4
#define QB_Q8K_BSUMS 260
static inline int qb_q8k_bsum(const uint8_t *blk, int i) { int16_t v; memcpy(&v, blk + QB_Q8K_BSUMS + 2 * i, 2); return v; }

/* One table entry whose scalar dot is also the reference (SIMD versions are set afterwards). */
static inline void qb_set(struct q_kernels *t, enum q_type type, q_dequant_fn dq, q_quant_fn qz, enum q_type act,
                          q_dot_fn dot)
{
    t[type] = (struct q_kernels){.dequant = dq, .quant = qz, .act_type = act, .dot = dot, .dot_ref = dot};
}

/* Registration of the two halves of the basic family. */
void q_register_legacy(struct q_kernels *table, const struct q_cpu *cpu);
void q_register_kquants(struct q_kernels *table, const struct q_cpu *cpu);

#endif
