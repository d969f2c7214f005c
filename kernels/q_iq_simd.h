/* q_iq_simd.h: internal to the i-quant kernels: block layouts, byte loaders, and every ISA's
 * version of each dot product, so tests can compare them directly (the table picks one). */
#ifndef MOESERVE_Q_IQ_SIMD_H
#define MOESERVE_Q_IQ_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/quants.h"

/* Block layouts of ggml's formats, 256 values per block. Only byte arrays, so a block may sit at
 * any address without undefined behaviour; multi-byte fields are little-endian. */
struct iq2xxs_block { uint8_t d[2]; uint8_t qs[64]; };                /* per 32: 4 idx, u32 signs+scale */
struct iq2xs_block { uint8_t d[2]; uint8_t qs[64]; uint8_t scales[8]; }; /* u16: 9-bit idx, 7 signs */
struct iq2s_block { uint8_t d[2]; uint8_t qs[32]; uint8_t signs[32]; uint8_t qh[8]; uint8_t scales[8]; };
struct iq3xxs_block { uint8_t d[2]; uint8_t qs[64]; uint8_t sas[32]; }; /* sas: u32 signs+scale */
struct iq3s_block {
    uint8_t d[2]; uint8_t qs[64]; uint8_t qh[8]; uint8_t signs[32]; uint8_t scales[4];
};
struct iq1s_block { uint8_t d[2]; uint8_t qs[32]; uint8_t qh[16]; };   /* qh: 8 x u16 */
struct iq1m_block { uint8_t qs[32]; uint8_t qh[16]; uint8_t scales[8]; };
/* The activation block all of them pair with (ggml's block_q8_K). */
struct iq_q8k_block { uint8_t d[4]; int8_t qs[256]; uint8_t bsums[32]; }; /* bsums: 16 x i16 */

_Static_assert(sizeof(struct iq2xxs_block) == 66, "iq2_xxs block");
_Static_assert(sizeof(struct iq2xs_block) == 74, "iq2_xs block");
_Static_assert(sizeof(struct iq2s_block) == 82, "iq2_s block");
_Static_assert(sizeof(struct iq3xxs_block) == 98, "iq3_xxs block");
_Static_assert(sizeof(struct iq3s_block) == 110, "iq3_s block");
_Static_assert(sizeof(struct iq1s_block) == 50, "iq1_s block");
_Static_assert(sizeof(struct iq1m_block) == 56, "iq1_m block");
_Static_assert(sizeof(struct iq_q8k_block) == 292, "q8_K block");

static inline uint16_t iq_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t iq_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t iq_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float iq_f32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }
static inline int iq_bsum(const struct iq_q8k_block *a, int k) { int16_t v; memcpy(&v, a->bsums + 2 * k, 2); return v; }

/* IEEE half -> float, exact. */
static inline float iq_half(const uint8_t *p)
{
    return q_f16_to_f32(iq_u16(p));
}

/* Token generation streams each weight from DRAM once per token. Asking for the lines ~2 KiB
 * ahead (two per block: blocks are 50..110 bytes) measured 3.9 -> 7.5 GB/s single-threaded for
 * IQ2_S on AVX-512; the hardware prefetcher alone falls behind the gathers. Integer address
 * arithmetic: the target may lie past the weights, and a prefetch never faults. */
#define IQ_PREFETCH_AHEAD 2048
static inline void iq_prefetch(const void *block)
{
    const uintptr_t p = (uintptr_t)block + IQ_PREFETCH_AHEAD;
    __builtin_prefetch((const void *)p, 0, 3);
    __builtin_prefetch((const void *)(p + 64), 0, 3);
}

/* IQ1_M keeps its f16 super-block scale in the top nibbles of its four u16 scale words. */
static inline float iq1m_super_scale(const struct iq1m_block *b)
{
    uint8_t h[2];
    uint16_t s = (uint16_t)((iq_u16(b->scales) >> 12) | ((iq_u16(b->scales + 2) >> 8) & 0x00f0) |
                            ((iq_u16(b->scales + 4) >> 4) & 0x0f00) | (iq_u16(b->scales + 6) & 0xf000));
    memcpy(h, &s, 2);
    return iq_half(h);
}

/* Dot products of n values (n a multiple of 256) with Q8_K activations, one per type and ISA. */
#define IQ_DOT_DECL(name) float name(int64_t n, const void *w, const void *a)
IQ_DOT_DECL(q_iq_dot_iq2_xxs_scalar);
IQ_DOT_DECL(q_iq_dot_iq2_xs_scalar);
IQ_DOT_DECL(q_iq_dot_iq2_s_scalar);
IQ_DOT_DECL(q_iq_dot_iq3_xxs_scalar);
IQ_DOT_DECL(q_iq_dot_iq3_s_scalar);
IQ_DOT_DECL(q_iq_dot_iq1_s_scalar);
IQ_DOT_DECL(q_iq_dot_iq1_m_scalar);

IQ_DOT_DECL(q_iq_dot_iq2_xxs_avx2);
IQ_DOT_DECL(q_iq_dot_iq2_xs_avx2);
IQ_DOT_DECL(q_iq_dot_iq2_s_neon); /* aarch64 builds only */
IQ_DOT_DECL(q_iq_dot_iq3_s_neon);
IQ_DOT_DECL(q_iq_dot_iq2_s_avx2);
IQ_DOT_DECL(q_iq_dot_iq3_xxs_avx2);
IQ_DOT_DECL(q_iq_dot_iq3_s_avx2);
IQ_DOT_DECL(q_iq_dot_iq1_s_avx2);
IQ_DOT_DECL(q_iq_dot_iq1_m_avx2);

IQ_DOT_DECL(q_iq_dot_iq2_xxs_avx512);
IQ_DOT_DECL(q_iq_dot_iq2_xs_avx512);
IQ_DOT_DECL(q_iq_dot_iq2_s_avx512);
IQ_DOT_DECL(q_iq_dot_iq3_xxs_avx512);
IQ_DOT_DECL(q_iq_dot_iq3_s_avx512);
IQ_DOT_DECL(q_iq_dot_iq1_s_avx512);
IQ_DOT_DECL(q_iq_dot_iq1_m_avx512);

/* Several tokens at once (quants.h, q_dot_tokens_fn): the two grid types of the MoE experts. */
void q_iq_dot_iq2_s_avx512_tokens(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out);
void q_iq_dot_iq3_s_avx512_tokens(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out);

#endif
