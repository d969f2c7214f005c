/* qwen3next.h: a loaded qwen3next model (Qwen3-Next / Qwen3-Coder-Next: Gated DeltaNet layers,
 * gated full attention every full_attention_interval-th layer, routed + shared experts) and its CPU
 * forward pass over a batch of tokens from many sequences, with recurrent-state snapshots. */
#ifndef MOESERVE_QWEN3NEXT_H
#define MOESERVE_QWEN3NEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/kvpool.h"
#include "engine/tensor_ref.h"
#include "kernels/deltanet.h"
#include "kernels/matmul.h"

struct q3n_hparams {
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_k, head_v, n_rot;
    uint32_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp, n_vocab, n_ctx_train;
    uint32_t full_attn_interval;   /* layer il is attention when (il + 1) % interval == 0 */
    uint32_t n_attn_layers, n_dn_layers;
    dn_shape dn;                   /* the DeltaNet layers' shape */
    float rope_base, rms_eps;
};

struct q3n_layer {
    bool is_attn;
    uint32_t sub;                  /* index among the attention layers (KV) or DeltaNet layers (state) */
    float *attn_norm, *post_norm;  /* owned copies, as every float vector below */
    /* gated attention: wq rows per head are 64 query rows then 64 gate rows */
    struct q_mat wq, wk, wv, wo;
    float *q_norm, *k_norm;
    /* Gated DeltaNet */
    struct q_mat qkv, z, ba, ssm_out;
    float *conv_w, *dt_bias, *ssm_a, *ssm_norm;
    /* FFN: routed experts plus the sigmoid-gated shared expert */
    struct q_mat router, sh_gate_inp, sh_gate, sh_up, sh_down;
    struct model_experts gate, up, down;
};

struct q3n_model {
    const struct gguf_file *file;
    struct q3n_hparams hp;
    struct q_mat token_embd, output;   /* output is token_embd when the file ties them */
    float *output_norm;
    struct q3n_layer *layers;
};

/* Reads hyperparameters and tensor references; errors name the key or tensor. */
bool q3n_load(struct q3n_model *m, const struct gguf_file *f, char *err, size_t errlen);
void q3n_free(struct q3n_model *m);

/* Per-run state: KV pool of the attention layers, the DeltaNet state of every sequence with
 * snaps_per_seq snapshot slots each, and scratch for batches of up to max_batch tokens. */
struct q3n_ctx;

struct q3n_ctx *q3n_ctx_new(const struct q3n_model *m, uint32_t n_seqs, uint32_t pool_tokens,
                            uint32_t max_seq_tokens, uint32_t max_batch, uint32_t snaps_per_seq, uint32_t kv_type,
                            char *err, size_t errlen);
void q3n_ctx_free(struct q3n_ctx *c);
struct kvpool *q3n_ctx_kv(struct q3n_ctx *c);
/* Prompt chunks through the chunked delta rule (faster on long prompts at real shapes, equal to
 * llama.cpp only up to rounding) instead of ggml's own recurrence (the default, bit-exact). */
void q3n_ctx_set_chunked(struct q3n_ctx *c, bool chunked);
/* Bytes of the recurrent state with its snapshot slots. */
uint64_t q3n_ctx_state_bytes(const struct q3n_ctx *c);

/* Runs n entries (token, position, sequence, wants logits), as model_decode, the DeltaNet layers
 * in ggml's recurrence (or the chunked form, see q3n_ctx_set_chunked). When a sequence gets two or more tokens in one call (a prompt chunk), the state after all but
 * its last token is saved as a snapshot, so resending that prompt can resume there. */
bool q3n_decode(struct q3n_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos, const uint32_t *seq,
                const bool *want_logits, float *logits, char *err, size_t errlen);

/* Cuts sequence seq back to at most n_keep positions. A recurrent state cannot be rewound, so it
 * keeps everything when n_keep covers the cache, else the longest snapshot of at most n_keep
 * positions, else nothing. Returns the positions kept. n_keep 0 always clears the sequence and
 * its snapshots (after a failed decode its state is unknown: keep 0 then). */
uint32_t q3n_seq_keep(struct q3n_ctx *c, uint32_t seq, uint32_t n_keep);

#endif
