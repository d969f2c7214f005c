/* qwen3moe.c: the qwen3moe forward pass on the CPU (engine/model.h): embeddings, per layer
 * RMS norm, Q/K/V, per-head q/k norm, NeoX RoPE, causal GQA attention over the paged KV cache
 * (F16 or Q8_0), output projection, then the routed SwiGLU experts; final norm and logits on request. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/model.h"
#include "engine/moe_route.h"
#include "kernels/moe.h"
#include "kernels/ops.h"
#include "kernels/quants.h"

struct model_ctx {
    const struct model *m;
    struct kvpool kv;
    uint32_t max_batch, max_seq_tokens;
    uint32_t kv_type;                                /* Q_F16 or Q_Q8_0 */
    float *x, *h, *q, *k, *v, *att, *tmp, *probs;   /* per-token activations */
    float *scores;                                   /* per thread: attention scratch */
    size_t scores_stride;
    int32_t *sel;                                    /* per token: chosen experts */
    float *sel_w;                                    /* and their weights */
    uint8_t *kind, *kind_out;                        /* per token / logits row: see q_row_kinds */
    uint32_t *seq_counts, *out_seq;                  /* scratch for q_row_kinds */
    struct q_scratch act;
    struct q_moe_scratch moe;
    int n_threads;
};

/* ------------------------------------------------------------------ set-up --- */

static struct attn_shape attn_shape_of(const struct model_hparams *hp, uint32_t kv_type)
{
    return (struct attn_shape){.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_k = hp->head_k,
                               .head_v = hp->head_v, .kv_type = kv_type};
}

static float *falloc(size_t n, bool *ok)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    *ok = *ok && p;
    return p;
}

struct model_ctx *model_ctx_new(const struct model *m, uint32_t n_seqs, uint32_t pool_tokens, uint32_t max_seq_tokens,
                                uint32_t max_batch, uint32_t kv_type, char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    struct model_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->m = m;
    c->max_batch = max_batch;
    c->max_seq_tokens = max_seq_tokens;
    c->n_threads = omp_get_max_threads();
    const uint32_t page = 32, pages = (pool_tokens + page - 1) / page;
    c->kv_type = kv_type;
    const struct attn_shape as = attn_shape_of(hp, kv_type);
    if (!attn_shape_check(&as, err, errlen)) {
        free(c);
        return NULL;
    }
    if (!kvpool_init(&c->kv, hp->n_layer, attn_k_row_bytes(&as), attn_v_row_bytes(&as), page, pages, n_seqs,
                     max_seq_tokens, err, errlen)) {
        free(c);
        return NULL;
    }
    const size_t n = max_batch, e = hp->n_embd, k = hp->n_expert_used;
    bool ok = true;
    c->x = falloc(n * e, &ok);
    c->h = falloc(n * e, &ok);
    c->tmp = falloc(n * e, &ok);
    c->q = falloc(n * hp->n_head * hp->head_k, &ok);
    c->k = falloc(n * hp->n_head_kv * hp->head_k, &ok);
    c->v = falloc(n * hp->n_head_kv * hp->head_v, &ok);
    c->att = falloc(n * hp->n_head * hp->head_v, &ok);
    c->probs = falloc(n * hp->n_expert, &ok);
    c->scores_stride = attn_scratch_floats(&as, max_seq_tokens);
    c->scores = falloc((size_t)c->n_threads * c->scores_stride, &ok);
    c->sel_w = falloc(n * k, &ok);
    c->sel = malloc(n * k * sizeof *c->sel);
    c->kind = malloc(n * sizeof *c->kind);
    c->kind_out = malloc(n * sizeof *c->kind_out);
    c->seq_counts = malloc((n_seqs ? n_seqs : 1) * sizeof *c->seq_counts);
    c->out_seq = malloc(n * sizeof *c->out_seq);
    if (!ok || !c->sel || !c->kind || !c->kind_out || !c->seq_counts || !c->out_seq) {
        snprintf(err, errlen, "out of memory for a batch of %u tokens", max_batch);
        model_ctx_free(c);
        return NULL;
    }
    return c;
}

void model_ctx_free(struct model_ctx *c)
{
    if (!c)
        return;
    kvpool_free(&c->kv);
    float *bufs[] = {c->x, c->h, c->tmp, c->q, c->k, c->v, c->att, c->probs, c->scores, c->sel_w};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(c->sel);
    free(c->kind);
    free(c->kind_out);
    free(c->seq_counts);
    free(c->out_seq);
    q_scratch_free(&c->act);
    q_moe_scratch_free(&c->moe);
    free(c);
}

struct kvpool *model_ctx_kv(struct model_ctx *c)
{
    return &c->kv;
}

/* --------------------------------------------------------------- attention --- */

/* Per-head q/k RMS norm and RoPE, then K and V rows into the cache. */
static void prepare_qkv(struct model_ctx *c, const struct model_layer *L, uint32_t layer, uint32_t n,
                        const uint32_t *pos, const uint32_t *seq)
{
    const struct model_hparams *hp = &c->m->hp;
    const struct attn_shape as = attn_shape_of(hp, c->kv_type);
    const int64_t hk = hp->head_k, hv = hp->head_v, nq = hp->n_head, nkv = hp->n_head_kv;
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++) {
        for (int64_t h = 0; h < nq; h++) {
            float *qh = c->q + ((size_t)t * nq + h) * hk;
            op_rms_norm(qh, L->q_norm, hk, hp->rms_eps, qh);
            op_rope_neox(qh, hp->n_rot, (int32_t)pos[t], hp->rope_base);
        }
        float *kt = c->k + (size_t)t * nkv * hk;
        for (int64_t h = 0; h < nkv; h++) {
            op_rms_norm(kt + h * hk, L->k_norm, hk, hp->rms_eps, kt + h * hk);
            op_rope_neox(kt + h * hk, hp->n_rot, (int32_t)pos[t], hp->rope_base);
        }
        attn_store_kv(&c->kv, &as, layer, seq[t], pos[t], kt, c->v + (size_t)t * nkv * hv);
    }
}

static void attention(struct model_ctx *c, uint32_t layer, uint32_t n, const uint32_t *pos, const uint32_t *seq)
{
    const struct attn_shape as = attn_shape_of(&c->m->hp, c->kv_type);
    attn_forward(&c->kv, &as, layer, n, pos, seq, c->kind, c->q, c->att, c->scores, c->scores_stride);
}

/* --------------------------------------------------------------------- MoE --- */

/* Router, then every used expert once over just the tokens routed to it (kernels/moe.c). */
static bool moe(struct model_ctx *c, const struct model_layer *L, uint32_t n, float *out)
{
    const struct model_hparams *hp = &c->m->hp;
    if (!q_matmul_kinds(&L->router, c->h, n, c->kind, c->probs, &c->act))
        return false;
    moe_route(c->probs, n, hp->n_expert, hp->n_expert_used, c->sel, c->sel_w);
    const struct q_moe_weights w = {
        .gate = L->gate.data, .up = L->up.data, .down = L->down.data,
        .gate_type = L->gate.type, .up_type = L->up.type, .down_type = L->down.type,
        .n_embd = hp->n_embd, .n_ff = hp->n_ff_exp, .n_expert = hp->n_expert};
    char err[128];
    return q_moe_forward(&w, n, c->h, (int)hp->n_expert_used, c->sel, c->sel_w, out, &c->moe, err, sizeof err);
}

/* ------------------------------------------------------------------ decode --- */

static void embed(struct model_ctx *c, uint32_t n, const int32_t *token)
{
    const struct q_mat *emb = &c->m->token_embd;
    const q_dequant_fn dq = q_kernels_get(emb->type)->dequant;
    for (uint32_t t = 0; t < n; t++)
        dq(emb->data + (size_t)token[t] * emb->row_bytes, c->x + (size_t)t * emb->cols, emb->cols);
}

static void norm_rows(const float *x, const float *w, uint32_t n, int64_t e, float eps, float *y)
{
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++)
        op_rms_norm(x + (size_t)t * e, w, e, eps, y + (size_t)t * e);
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

static bool layer_forward(struct model_ctx *c, uint32_t l, uint32_t n, const uint32_t *pos, const uint32_t *seq)
{
    const struct model_hparams *hp = &c->m->hp;
    const struct model_layer *L = &c->m->layers[l];
    const int64_t e = hp->n_embd;
    norm_rows(c->x, L->attn_norm, n, e, hp->rms_eps, c->h);
    if (!q_matmul_kinds(&L->wq, c->h, n, c->kind, c->q, &c->act) ||
        !q_matmul_kinds(&L->wk, c->h, n, c->kind, c->k, &c->act) ||
        !q_matmul_kinds(&L->wv, c->h, n, c->kind, c->v, &c->act))
        return false;
    prepare_qkv(c, L, l, n, pos, seq);
    attention(c, l, n, pos, seq);
    if (!q_matmul_kinds(&L->wo, c->att, n, c->kind, c->tmp, &c->act))
        return false;
    add_rows(c->x, c->tmp, (size_t)n * e);
    norm_rows(c->x, L->ffn_norm, n, e, hp->rms_eps, c->h);
    if (!moe(c, L, n, c->tmp))
        return false;
    add_rows(c->x, c->tmp, (size_t)n * e);
    return true;
}

bool model_decode(struct model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos, const uint32_t *seq,
                  const bool *want_logits, float *logits, char *err, size_t errlen)
{
    const struct kvpool_batch_limits lim = {.max_batch = c->max_batch, .n_vocab = c->m->hp.n_vocab,
                                            .max_seq_tokens = c->max_seq_tokens};
    if (!kvpool_check_batch(&c->kv, &lim, n, token, pos, seq, err, errlen))
        return false;
    const struct model_hparams *hp = &c->m->hp;
    /* dense products and attention sum each sequence's tokens as llama.cpp sums a batch of that
     * sequence alone */
    q_row_kinds(n, seq, c->kv.n_seqs, c->seq_counts, c->kind);
    embed(c, n, token);
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if (!layer_forward(c, l, n, pos, seq)) {
            snprintf(err, errlen, "out of memory in layer %u", l);
            return false;
        }
    for (uint32_t t = 0; t < n; t++)
        if (c->kv.seqs[seq[t]].n_tokens < pos[t] + 1)
            c->kv.seqs[seq[t]].n_tokens = pos[t] + 1;
    /* final norm and the output head, only for the rows that want logits */
    uint32_t m = 0;
    for (uint32_t t = 0; t < n; t++)
        if (want_logits[t]) {
            op_rms_norm(c->x + (size_t)t * hp->n_embd, c->m->output_norm, hp->n_embd, hp->rms_eps,
                        c->h + (size_t)m * hp->n_embd);
            c->out_seq[m++] = seq[t];
        }
    q_row_kinds(m, c->out_seq, c->kv.n_seqs, c->seq_counts, c->kind_out);
    if (m && !q_matmul_kinds(&c->m->output, c->h, m, c->kind_out, logits, &c->act)) {
        snprintf(err, errlen, "out of memory for logits");
        return false;
    }
    return true;
}
