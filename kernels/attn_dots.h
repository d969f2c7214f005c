/* attn_dots.h: the two inner loops of CPU attention over an F16 KV cache, in llama.cpp's float
 * orders (see engine/attention.c): q . k over slot lanes, and slot += w v, scalar and AVX2. */
#ifndef MOESERVE_ATTN_DOTS_H
#define MOESERVE_ATTN_DOTS_H

#include <stdint.h>

/* Lanes of the two orders: tinyBLAS keeps 16, vec_dot_f16 (AVX-512) keeps 4 x 16. */
#define ATTN_SLOTS_TINY 16
#define ATTN_SLOTS_VEC 64

/* q . k over n values: element d accumulates (fused multiply-add) in slot d % n_slots, then the
 * slots are folded as llama.cpp folds them (fold_slots). q holds F16-rounded floats, k F16. */
typedef float (*attn_dot_fn)(const float *q, const uint16_t *k, int64_t n, int n_slots);
/* acc[d] = fma(w, v[d], acc[d]) for d < n: one slot of the V product. */
typedef void (*attn_axpy_fn)(float *acc, float w, const uint16_t *v, int64_t n);

struct attn_dots {
    attn_dot_fn dot;
    attn_axpy_fn axpy;
    const char *isa;
};

/* The fastest versions this CPU runs (MOESERVE_ISA=scalar caps them, as for the quant kernels). */
const struct attn_dots *attn_dots_get(void);
/* The plain scalar references (tests). */
const struct attn_dots *attn_dots_scalar(void);

/* Folds n_slots lanes (at slot[i * stride]) to one float: 16 lanes by the AVX-512 horizontal add;
 * 64 lanes first as four 16-lane accumulators (0 + 2) + (1 + 3). */
float attn_fold_slots(const float *slot, int64_t stride, int n_slots);

float attn_dot_avx2(const float *q, const uint16_t *k, int64_t n, int n_slots);
void attn_axpy_avx2(float *acc, float w, const uint16_t *v, int64_t n);

#endif
