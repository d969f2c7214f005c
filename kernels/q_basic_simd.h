/* q_basic_simd.h: internal to the basic kernels: every ISA's version of the hot dot products,
 * declared here so tests can compare each one with the scalar reference (the table picks one). */
#ifndef MOESERVE_Q_BASIC_SIMD_H
#define MOESERVE_Q_BASIC_SIMD_H

#include <stddef.h>

#include "kernels/quants.h"

#include <stdint.h>

#define QB_DOT_DECL(name) float name(int64_t n, const void *w, const void *a)
#define QB_DOT_TOKENS_DECL(name) void name(int64_t n, const void *w, const void *a, size_t stride, int nt, float *out)

/* Weights with Q8_0 activations (32-value blocks) unless marked. */
QB_DOT_DECL(q_basic_dot_q8_0_avx2);
QB_DOT_DECL(q_basic_dot_q4_0_avx2);
QB_DOT_DECL(q_basic_dot_iq4_nl_avx2);
QB_DOT_DECL(q_basic_dot_mxfp4_avx2);
QB_DOT_DECL(q_basic_dot_q4_0_packed_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_0_packed_tokens_avx2);
QB_DOT_DECL(q_basic_dot_iq4_nl_packed_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_iq4_nl_packed_tokens_avx2);
QB_DOT_DECL(q_basic_dot_mxfp4_packed_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_mxfp4_packed_tokens_avx2);
QB_DOT_DECL(q_basic_dot_q5_0_avx2);
QB_DOT_DECL(q_basic_dot_q4_1_avx2); /* with Q8_1 */
QB_DOT_DECL(q_basic_dot_q5_1_avx2); /* with Q8_1 */
/* Weights with Q8_K activations (256-value super-blocks), then the float types with themselves. */
QB_DOT_DECL(q_basic_dot_q4_k_avx2);
QB_DOT_DECL(q_basic_dot_q4_k_row_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_k_row_tokens_avx2);
QB_DOT_DECL(q_basic_dot_q4_k_group_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_k_group_tokens_avx2);
QB_DOT_DECL(q_basic_dot_q5_k_avx2);
QB_DOT_DECL(q_basic_dot_q6_k_avx2);
QB_DOT_DECL(q_basic_dot_iq4_xs_avx2);
QB_DOT_DECL(q_basic_dot_q2_k_avx2);
QB_DOT_DECL(q_basic_dot_q3_k_avx2);
QB_DOT_DECL(q_basic_dot_tq2_0_avx2);
QB_DOT_DECL(q_basic_dot_f32_avx2);
QB_DOT_DECL(q_basic_dot_f32_tiny_avx2);
QB_DOT_DECL(q_basic_dot_f16_avx2);
QB_DOT_DECL(q_basic_dot_bf16_avx2);

QB_DOT_DECL(q_basic_dot_q8_0_avx512);
QB_DOT_DECL(q_basic_dot_q4_0_avx512);
QB_DOT_DECL(q_basic_dot_iq4_nl_avx512);
QB_DOT_DECL(q_basic_dot_mxfp4_avx512);
QB_DOT_DECL(q_basic_dot_q4_0_packed_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_0_packed_tokens_avx512);
QB_DOT_DECL(q_basic_dot_iq4_nl_packed_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_iq4_nl_packed_tokens_avx512);
QB_DOT_DECL(q_basic_dot_mxfp4_packed_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_mxfp4_packed_tokens_avx512);
QB_DOT_DECL(q_basic_dot_q5_0_avx512);
QB_DOT_DECL(q_basic_dot_q4_1_avx512); /* with Q8_1 */
QB_DOT_DECL(q_basic_dot_q5_1_avx512); /* with Q8_1 */
QB_DOT_DECL(q_basic_dot_q4_k_avx512);
QB_DOT_DECL(q_basic_dot_q4_k_row_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_k_row_tokens_avx512);
QB_DOT_DECL(q_basic_dot_q4_k_group_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_k_group_tokens_avx512);
QB_DOT_DECL(q_basic_dot_q5_k_avx512);
QB_DOT_DECL(q_basic_dot_q6_k_avx512);
QB_DOT_DECL(q_basic_dot_iq4_xs_avx512);
QB_DOT_DECL(q_basic_dot_q2_k_avx512);
QB_DOT_DECL(q_basic_dot_q3_k_avx512);
QB_DOT_DECL(q_basic_dot_tq2_0_avx512);
QB_DOT_DECL(q_basic_dot_f32_avx512);
QB_DOT_DECL(q_basic_dot_f32_tiny_avx512);
QB_DOT_DECL(q_basic_dot_f16_avx512);
QB_DOT_DECL(q_basic_dot_bf16_avx512);

/* Several tokens at once (quants.h, q_dot_tokens_fn), for the types whose weights dominate. */
QB_DOT_TOKENS_DECL(q_basic_dot_q8_0_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_0_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_iq4_nl_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_mxfp4_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q5_0_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_k_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q5_k_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q6_k_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_iq4_xs_tokens_avx2);
QB_DOT_TOKENS_DECL(q_basic_dot_q8_0_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_0_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_iq4_nl_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_mxfp4_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q5_0_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q4_k_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q5_k_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_q6_k_tokens_avx512);
QB_DOT_TOKENS_DECL(q_basic_dot_iq4_xs_tokens_avx512);

/* Every type with SIMD dot products, and both versions: the dispatch table of q_basic.c, which
 * the tests also walk to check each version against the scalar one. */
struct q_basic_simd_dot {
    enum q_type type;
    q_dot_fn avx2, avx512;
    q_dot_tokens_fn avx2_tokens, avx512_tokens; /* NULL where the type has none */
};
extern const struct q_basic_simd_dot q_basic_simd_dots[];
extern const size_t q_basic_simd_dot_count;

/* The batched orders (q_kernels.batched) that have SIMD versions, per ISA and row kind. */
struct q_basic_simd_batched {
    enum q_type type;
    struct q_batched_dots avx2, avx512;
};
extern const struct q_basic_simd_batched q_basic_simd_batched_dots[];
extern const size_t q_basic_simd_batched_count;

#endif
