/* attention.h: causal grouped-query attention on the CPU over the paged KV pool (engine/kvpool.h):
 * storing a token's K and V rows in the cache, and attending a batch of queries to their sequences. */
#ifndef MOESERVE_ATTENTION_H
#define MOESERVE_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/kvpool.h"

struct attn_shape {
    uint32_t n_head, n_head_kv;   /* query head h reads KV head h / (n_head / n_head_kv) */
    uint32_t head_k, head_v;      /* at most ATTN_MAX_HEAD each */
    uint32_t kv_type;             /* Q_F16 or Q_Q8_0 (enum q_type): how cached rows are stored */
};

#define ATTN_MAX_HEAD 512

/* False (with a message naming the setting) when the cache type cannot hold these heads: an
 * unknown type, a head over ATTN_MAX_HEAD, or (Q8_0) a head size that is not whole 32-blocks. */
bool attn_shape_check(const struct attn_shape *s, char *err, size_t errlen);

/* Bytes of one cached K (or V) row of a layer: every KV head of one position, in the KV type. */
uint32_t attn_k_row_bytes(const struct attn_shape *s);
uint32_t attn_v_row_bytes(const struct attn_shape *s);

/* Writes one token's K (n_head_kv x head_k floats) and V (n_head_kv x head_v) into the cache of
 * sequence seq at position pos of layer `layer`; the position must be reserved. */
void attn_store_kv(struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t seq, uint32_t pos,
                   const float *k, const float *v);

/* Floats of per-thread scratch attn_forward needs for sequences of up to max_tokens positions. */
size_t attn_scratch_floats(const struct attn_shape *s, uint32_t max_tokens);

/* out[t] = softmax(q[t] K^T / sqrt(head_k)) V over positions 0..pos[t] of sequence seq[t], for n
 * tokens whose K/V are already stored. q: n x n_head x head_k floats; out: n x n_head x head_v.
 * kind[t] (enum q_row_kind, NULL: all alone) picks the float order llama.cpp would sum token t
 * in over an F16 cache: a token alone in its sequence's batch as vec_dot, others as tinyBLAS
 * (a Q8_0 cache follows ggml's flash attention instead, see attention.c). scratch: per OpenMP
 * thread, scratch_stride >= attn_scratch_floats floats. */
void attn_forward(const struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t n,
                  const uint32_t *pos, const uint32_t *seq, const uint8_t *kind, const float *q, float *out,
                  float *scratch, size_t scratch_stride);

#endif
