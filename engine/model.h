/* model.h: a loaded qwen3moe model (weights pointing into the GGUF mapping) and its forward
 * pass over batches of (token, position, slot) entries from any mix of slots, on the CPU. */
#ifndef MOESERVE_MODEL_H
#define MOESERVE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/kvpool.h"
#include "kernels/matmul.h"
#include "kernels/moe.h"

struct model_hparams {
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_vocab, n_ctx_train;
    uint32_t n_expert, n_expert_used, n_ff_exp;
    float rope_base, rms_eps;
};

struct model_layer {
    const float *attn_norm, *attn_q_norm, *attn_k_norm, *ffn_norm;  /* F32 copies */
    struct q_mat wq, wk, wv, wo;
    struct q_mat router;                                             /* ffn_gate_inp */
    struct q_moe_weights moe;
};

struct model {
    struct gguf_file *gguf;
    bool owns_gguf;
    struct model_hparams hp;
    const uint8_t *tok_embd;          /* n_vocab rows of n_embd values */
    uint32_t tok_embd_type;
    size_t tok_embd_row_bytes;
    const float *output_norm;
    struct q_mat output;              /* token_embd when the file has no output tensor */
    struct model_layer *layers;
    float *norms;                     /* owned storage of every norm vector */
};

/* Opens and maps a qwen3moe GGUF. NULL with a message naming the key or tensor at fault. */
struct model *model_load(const char *path, char *err, size_t errlen);
/* Same from an opened file; with take_ownership the model closes it (also on failure). */
struct model *model_from_gguf(struct gguf_file *f, bool take_ownership, char *err, size_t errlen);
void model_free(struct model *m);

/* Per-run state: KV cache (F16, n_slots sequences of up to n_ctx positions) and scratch for
 * batches of up to max_batch entries (larger batches are run in pieces). */
struct model_ctx;

struct model_ctx *model_ctx_new(const struct model *m, uint32_t n_slots, uint32_t n_ctx,
                                uint32_t max_batch, char *err, size_t errlen);
void model_ctx_free(struct model_ctx *c);

/* Runs n entries as one pass. Entry i puts token[i] at position pos[i] of slot slot[i] and attends
 * causally to positions [0, pos[i]] of that slot (earlier batches and this one). A slot's positions
 * must stay contiguous: a batch may start below the slot's length (the rest is dropped first) but
 * not leave a gap. Logits (n_vocab floats) are written for the entries with want_logits[i], one
 * row after another in entry order. False with a message on a bad entry or out of memory. */
bool model_decode(struct model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                  const uint32_t *slot, const bool *want_logits, float *logits,
                  char *err, size_t errlen);

/* Number of positions cached for a slot. */
uint32_t model_slot_len(const struct model_ctx *c, uint32_t slot);
/* Keeps positions [0, n_keep) of a slot (0 clears it). */
void model_slot_keep(struct model_ctx *c, uint32_t slot, uint32_t n_keep);
/* Copies positions [0, n) of src into dst (dst's old content dropped). False if out of room. */
bool model_slot_copy(struct model_ctx *c, uint32_t src, uint32_t dst, uint32_t n);
/* The KV pool (for metrics and the memory planner). */
const struct kvpool *model_kv(const struct model_ctx *c);

#endif
