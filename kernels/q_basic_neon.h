/* q_basic_neon.h: internal to the basic kernels: the aarch64 Advanced SIMD dot products and their
 * table (q_basic_neon.c), declared so tests can compare each one with the scalar reference. */
#ifndef MOESERVE_Q_BASIC_NEON_H
#define MOESERVE_Q_BASIC_NEON_H

#include <stddef.h>

#include "kernels/quants.h"

/* One-token dot products in ggml-cpu's x86 (AVX2) float order: the same bits as q_basic_avx2.c. */
struct q_basic_neon_dot {
    enum q_type type;
    q_dot_fn dot;
};
extern const struct q_basic_neon_dot q_basic_neon_dots[];
extern const size_t q_basic_neon_dot_count;

/* The batched orders (q_kernels.batched), per row kind: exact, so equal to the scalar ones. */
struct q_basic_neon_batched {
    enum q_type type;
    q_dot_fn by_kind[Q_ROW_KINDS];
};
extern const struct q_basic_neon_batched q_basic_neon_batched_dots[];
extern const size_t q_basic_neon_batched_count;

/* Puts the NEON versions into the table when cpu->neon (q_register_basic calls it). */
void q_basic_register_neon(struct q_kernels *table, const struct q_cpu *cpu);

#endif
