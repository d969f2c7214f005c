/* ops.h: the small per-row operations of a transformer layer on the CPU, with ggml's numerics:
 * RMS norm, NeoX rotary embedding, softmax, SiLU. */
#ifndef MOESERVE_OPS_H
#define MOESERVE_OPS_H

#include <stdint.h>

/* y = x / sqrt(mean(x^2) + eps) * w (w may be NULL), over n values; y may alias x. */
void op_rms_norm(const float *x, const float *w, int64_t n, float eps, float *y);

/* NeoX rotary embedding in place on the first n_rot dims of one head: pairs (i, i + n_rot/2)
 * rotated by pos * base^(-2i/n_rot), the angle built by repeated multiplication and each rotated
 * value rounded (one fused multiply-add) as ggml-cpu does. */
void op_rope_neox(float *head, int64_t n_rot, int32_t pos, float freq_base);

/* In-place softmax over n values (max subtracted, sum in double), as ggml's soft_max op. */
void op_softmax(float *x, int64_t n);
/* The same over the first n values of a row continued by -inf to a whole number of 16-lane
 * vectors: a causal attention row, which ggml computes over its padded KV cache. */
void op_softmax_masked(float *x, int64_t n);

static inline float op_silu(float x)
{
    return x / (1.0f + __builtin_expf(-x));
}

/* ggml's vectorised exp, lane by lane (see ops.c). */
float op_expf_ggml(float x);

/* SiLU of element i of a row of n, as ggml_vec_silu_f32 computes it on AVX-512: elements in whole
 * 16-lane vectors through the vectorised exp, the n % 16 tail through expf. */
static inline float op_silu_at(float x, int64_t i, int64_t n)
{
    return i < n - n % 16 ? x / (1.0f + op_expf_ggml(0.0f - x)) : op_silu(x);
}

/* g[i] = silu(g[i]) * u[i] as ggml's fused SwiGLU: whole 16-lane vectors take the vectorised
 * exp, a tail of n % 16 values the scalar expf. */
void op_swiglu(float *g, const float *u, int64_t n);

/* Sum of 16 lanes in the order an AVX-512 horizontal add takes them. */
float op_reduce16(const float *v);

#endif
