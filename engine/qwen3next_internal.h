/* qwen3next_internal.h: the forward-pass context shared by qwen3next.c (batch, attention, FFN,
 * logits) and qwen3next_delta.c (DeltaNet layers, snapshots). Not for other modules. */
#ifndef MOESERVE_QWEN3NEXT_INTERNAL_H
#define MOESERVE_QWEN3NEXT_INTERNAL_H

#include "engine/qwen3next.h"
#include "engine/ssm_state.h"
#include "kernels/moe.h"

/* Tokens per chunk of the chunked delta rule (16-32 is fastest on the CPU, kernels/deltanet.h). */
#define Q3N_CHUNK 32

struct q3n_ctx {
    const struct q3n_model *m;
    struct kvpool kv;
    struct ssm_state st;
    uint32_t snaps_per_seq;          /* snapshot slots of sequence s: s * snaps_per_seq + i */
    uint32_t max_batch, max_seq_tokens;
    uint32_t kv_type;                /* Q_F16 or Q_Q8_0: the attention layers' cache */
    int n_threads;
    int delta_chunk;                 /* 0: ggml's exact recurrence (default); Q3N_CHUNK: chunked form */
    /* the batch, reordered so each sequence's entries are contiguous (a segment) */
    uint32_t *rank;                  /* entry -> row */
    int32_t *tok;
    uint32_t *pos, *seq;
    uint32_t n_seg, *seg_begin, *seg_len;
    int32_t *seg_snap;               /* snapshot slot a segment saves into, -1 for none */
    /* per-row activations */
    float *x, *h, *tmp;
    float *qfull, *q, *k, *v, *att;                      /* attention */
    float *qkv, *conv, *z, *ba, *beta, *g, *o;           /* DeltaNet */
    float *probs, *sel_w, *sh_g, *sh_u, *sh_out, *sh_w;  /* FFN */
    int32_t *sel;
    float *scores;                   /* per thread: attention scratch (scores_stride floats) */
    size_t scores_stride;
    uint8_t *kind, *kind_out;        /* per row / logits row: llama.cpp's row kinds (q_row_kinds) */
    uint32_t *seq_counts, *out_seq;  /* scratch for q_row_kinds */
    float *chunk;                    /* per thread: chunked delta-rule scratch */
    size_t chunk_floats;
    struct q_scratch act;
    struct q_moe_scratch moe;
};

/* One DeltaNet layer on the rows in c->x (residual added). False on allocation failure. */
bool q3n_deltanet_layer(struct q3n_ctx *c, const struct q3n_layer *L, uint32_t n);
/* Picks the snapshot slot each multi-token segment saves into and empties it (qwen3next_delta.c). */
void q3n_plan_snapshots(struct q3n_ctx *c);
/* Marks the planned snapshots valid once every layer has run. */
void q3n_commit_snapshots(struct q3n_ctx *c);

#endif
