/* model.h: a loaded qwen3moe model (tensors pointing into the mapped GGUF, nothing copied but
 * the small norm vectors) and its CPU forward pass over a batch of tokens from many sequences. */
#ifndef MOESERVE_MODEL_H
#define MOESERVE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/kvpool.h"
#include "engine/tensor_ref.h"
#include "kernels/matmul.h"

struct model_hparams {
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_k, head_v, n_rot;
    uint32_t n_expert, n_expert_used, n_ff_exp, n_vocab, n_ctx_train;
    float rope_base, rms_eps;
};

struct model_layer {
    float *attn_norm, *q_norm, *k_norm, *ffn_norm;   /* owned copies */
    struct q_mat wq, wk, wv, wo, router;
    struct model_experts gate, up, down;
};

struct model {
    const struct gguf_file *file;
    struct model_hparams hp;
    struct q_mat token_embd, output;   /* output is token_embd when the file ties them */
    float *output_norm;
    struct model_layer *layers;
};

/* Reads hyperparameters and tensor references; errors name the key or tensor. */
bool model_load(struct model *m, const struct gguf_file *f, char *err, size_t errlen);
void model_free(struct model *m);

/* The per-run state of the forward pass: KV pool and scratch, sized for batches of up to
 * max_batch tokens. threads = 0 uses every core. kv_type: Q_F16 or Q_Q8_0 (the cache rows). */
struct model_ctx;

struct model_ctx *model_ctx_new(const struct model *m, uint32_t n_seqs, uint32_t pool_tokens,
                                uint32_t max_seq_tokens, uint32_t max_batch, uint32_t kv_type, char *err,
                                size_t errlen);
void model_ctx_free(struct model_ctx *c);
struct kvpool *model_ctx_kv(struct model_ctx *c);

/* Runs n entries (token, position, sequence, wants logits). Logits rows (n_vocab floats) are
 * written in entry order for the entries that want them. A sequence's positions must continue
 * from what its cache holds. False with a message (out of KV pages, bad position). */
bool model_decode(struct model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                  const uint32_t *seq, const bool *want_logits, float *logits, char *err, size_t errlen);

#endif
