/* quants.h: per-type CPU kernels: dequantize, quantize activations, dot products.
 * One table indexed by enum q_type; SIMD versions are chosen once from the CPU's features. */
#ifndef MOESERVE_QUANTS_H
#define MOESERVE_QUANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qtypes.h"

/* n values (a whole number of blocks) of the type -> F32. */
typedef void (*q_dequant_fn)(const void *src, float *dst, int64_t n);
/* n floats -> the type (for activation types: Q8_0, Q8_1, Q8_K, F16, BF16; F32 copies). */
typedef void (*q_quant_fn)(const float *src, void *dst, int64_t n);
/* Dot product of n values: w in the weight type, a in that type's activation type. */
typedef float (*q_dot_fn)(int64_t n, const void *w, const void *a);
/* The same dot product of one weight row with nt <= Q_DOT_TOKENS activation rows `stride` bytes
 * apart, each weight block decoded once for all of them: out[t] is bit-identical to
 * dot(n, w, a + t * stride), because each token's sums run in the same order as in `dot`. */
#define Q_DOT_TOKENS 4
typedef void (*q_dot_tokens_fn)(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out);

/* How llama.cpp takes a token of a batch of one sequence: alone (a batch of one token: the
 * vec_dot or single-row kernels), in the tail (the last n % 4 tokens of a larger batch: the
 * single-row kernel of repacked types, tinyBLAS for F32), or in a group of four (gemm). */
enum q_row_kind { Q_ROW_ALONE, Q_ROW_TAIL, Q_ROW_GROUP, Q_ROW_KINDS };

struct q_batched_dots {
    q_dot_fn by_kind[Q_ROW_KINDS];
    q_dot_tokens_fn tokens_by_kind[Q_ROW_KINDS];  /* the same over several tokens; NULL: none */
};

struct q_kernels {
    q_dequant_fn dequant;   /* NULL: no dequantizer for this type */
    q_quant_fn quant;       /* NULL: not usable as an activation type */
    uint32_t act_type;      /* activation type `dot` pairs with (ggml-cpu's vec_dot_type) */
    q_dot_fn dot;           /* fastest version for this CPU */
    q_dot_tokens_fn dot_tokens; /* `dot` over several tokens; NULL: callers loop over `dot` */
    q_dot_fn dot_ref;       /* plain scalar reference */
    const char *dot_isa;    /* "scalar", "avx2", "avx512", "neon": which `dot` is */
    /* llama.cpp's x86 CPU backend sums some types in other float orders than vec_dot (`dot`)
     * when a matrix qualifies for its batched kernels (repacked Q4_K, Q4_0, IQ4_NL, MXFP4: rows a
     * multiple of 8; tinyBLAS F32: rows a multiple of 4 and columns of 16), and which order a token gets
     * depends on how its batch is shaped (enum q_row_kind). batched_rows 0: no such orders.
     * Each order is exact, so a SIMD version equals its scalar reference bit for bit. */
    struct q_batched_dots batched, batched_ref;
    uint32_t batched_rows, batched_cols;
};

struct q_cpu {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, neon;
};

/* Features of the running CPU (detected once). */
const struct q_cpu *q_cpu_features(void);

/* Kernels of type t (NULL for an unknown type). The table is filled on first use; the
 * environment variable MOESERVE_ISA=scalar|avx2|avx512 caps the SIMD level (tests, benchmarks),
 * and MOESERVE_DOT_TOKENS=off drops the several-token kernels (benchmarks). */
const struct q_kernels *q_kernels_get(uint32_t t);

/* Each family file fills the entries of its types; `cpu` says which SIMD versions may be used. */
void q_register_basic(struct q_kernels *table, const struct q_cpu *cpu);
void q_register_iq(struct q_kernels *table, const struct q_cpu *cpu);

/* FP16 / BF16 scalar conversions (exact, as ggml's). The half -> float one is inline: attention
 * converts every cached K and V value through it, and a call per value cost a quarter of prompt
 * processing. */
static inline float q_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, rest = h & 0x7fffu;
    uint32_t bits;
    if (rest >= 0x7c00u) {          /* infinity or NaN, payload kept */
        bits = 0x7f800000u | ((rest & 0x3ffu) << 13);
    } else if (rest >= 0x0400u) {   /* normal: rebias the exponent by 127 - 15 */
        bits = (rest << 13) + (112u << 23);
    } else {                        /* zero or subnormal: exact in float */
        const float sub = (float)rest * 0x1p-24f;
        memcpy(&bits, &sub, 4);
    }
    bits |= sign;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
uint16_t q_f32_to_f16(float f);
float q_bf16_to_f32(uint16_t h);
uint16_t q_f32_to_bf16(float f);

#endif
