/* moe.h: the mixture-of-experts FFN hot path: tokens grouped per routed expert, SwiGLU
 * (silu(gate x) * (up x)) then down, and the routing-weighted sum written back per token. */
#ifndef MOESERVE_MOE_H
#define MOESERVE_MOE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/matmul.h"

/* Three stacked expert tensors in ggml order: gate and up [n_embd, n_ff, n_expert] (n_expert
 * matrices of n_ff rows x n_embd), down [n_ff, n_embd, n_expert]. */
struct q_moe_weights {
    const void *gate, *up, *down;
    uint32_t gate_type, up_type, down_type;
    int64_t n_embd, n_ff, n_expert;
};

/* Reusable buffers; zero-initialise, free with q_moe_scratch_free. */
struct q_moe_scratch {
    struct q_scratch xq, xg, hq, idx, h, y;
};

void q_moe_scratch_free(struct q_moe_scratch *s);

/* Checks shapes and types (each needs a dot kernel and whole blocks per row). */
bool q_moe_check(const struct q_moe_weights *w, char *err, size_t errlen);

/* Expert e of a stacked tensor as a matrix of rows x cols. */
struct q_mat q_moe_expert(const void *data, uint32_t type, int64_t rows, int64_t cols, int64_t e);

/* What q_moe_forward reserves in its scratch for n tokens of k experts (for the memory planner). */
size_t q_moe_scratch_bytes(const struct q_moe_weights *w, int64_t n, int k);

/* out[t] = sum_j weights[t*k+j] * down_e(silu(gate_e x_t) * up_e x_t), e = ids[t*k+j], added in
 * j order as ggml adds the expert views. x and out: n x n_embd. Each x row is quantized once; each
 * used expert runs once over just its tokens. False on a bad expert id or out of memory. */
bool q_moe_forward(const struct q_moe_weights *w, int64_t n, const float *x, int k,
                   const int32_t *ids, const float *weights, float *out,
                   struct q_moe_scratch *s, char *err, size_t errlen);

#endif
