/* qwen3next.c: the qwen3next forward pass on the CPU (engine/qwen3next.h): the batch in sequence
 * order, gated full attention (partial NeoX RoPE, sigmoid output gate) over the shared paged F16
 * KV cache, routed experts plus the sigmoid-gated shared expert, final norm and logits.
 * The DeltaNet layers and the state snapshots are in qwen3next_delta.c. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/moe_route.h"
#include "engine/qwen3next_internal.h"
#include "kernels/ops.h"
#include "kernels/quants.h"

/* ------------------------------------------------------------------ set-up --- */

static struct attn_shape attn_shape_of(const struct q3n_hparams *hp, uint32_t kv_type)
{
    return (struct attn_shape){.n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_k = hp->head_k,
                               .head_v = hp->head_v, .kv_type = kv_type};
}

static void *alloc_n(size_t n, size_t size, bool *ok)
{
    void *p = malloc((n ? n : 1) * size);
    *ok = *ok && p;
    return p;
}

static bool alloc_buffers(struct q3n_ctx *c)
{
    const struct q3n_hparams *hp = &c->m->hp;
    const size_t n = c->max_batch, e = hp->n_embd, k = hp->n_expert_used, nth = (size_t)c->n_threads;
    const size_t ch = (size_t)dn_conv_channels(&hp->dn), nv = (size_t)hp->dn.n_v_heads;
    const size_t inner = nv * (size_t)hp->dn.head_dim, q = (size_t)hp->n_head * hp->head_k;
    bool ok = true;
    c->rank = alloc_n(n, sizeof *c->rank, &ok);
    c->tok = alloc_n(n, sizeof *c->tok, &ok);
    c->pos = alloc_n(n, sizeof *c->pos, &ok);
    c->seq = alloc_n(n, sizeof *c->seq, &ok);
    c->seg_begin = alloc_n(n, sizeof *c->seg_begin, &ok);
    c->seg_len = alloc_n(n, sizeof *c->seg_len, &ok);
    c->seg_snap = alloc_n(n, sizeof *c->seg_snap, &ok);
    c->sel = alloc_n(n * k, sizeof *c->sel, &ok);
    c->kind = alloc_n(n, sizeof *c->kind, &ok);
    c->kind_out = alloc_n(n, sizeof *c->kind_out, &ok);
    c->seq_counts = alloc_n(c->kv.n_seqs, sizeof *c->seq_counts, &ok);
    c->out_seq = alloc_n(n, sizeof *c->out_seq, &ok);
    float **f[] = {&c->x, &c->h, &c->tmp, &c->qfull, &c->q, &c->k, &c->v, &c->att, &c->qkv, &c->conv, &c->z,
                   &c->ba, &c->beta, &c->g, &c->o, &c->probs, &c->sel_w, &c->sh_g, &c->sh_u, &c->sh_out,
                   &c->sh_w, &c->scores, &c->chunk};
    const size_t len[] = {n * e, n * e, n * e, n * 2 * q, n * q, n * hp->n_head_kv * hp->head_k,
                          n * hp->n_head_kv * hp->head_v, n * hp->n_head * hp->head_v, n * ch, n * ch, n * inner,
                          n * 2 * nv, n * nv, n * nv, n * inner, n * hp->n_expert, n * k, n * hp->n_ff_shexp,
                          n * hp->n_ff_shexp, n * e, n, nth * c->scores_stride, nth * c->chunk_floats};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        *f[i] = alloc_n(len[i], sizeof(float), &ok);
    return ok;
}

struct q3n_ctx *q3n_ctx_new(const struct q3n_model *m, uint32_t n_seqs, uint32_t pool_tokens, uint32_t max_seq_tokens,
                            uint32_t max_batch, uint32_t snaps_per_seq, uint32_t kv_type, char *err, size_t errlen)
{
    const struct q3n_hparams *hp = &m->hp;
    struct q3n_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->m = m;
    c->max_batch = max_batch;
    c->max_seq_tokens = max_seq_tokens;
    c->snaps_per_seq = snaps_per_seq;
    c->n_threads = omp_get_max_threads();
    c->delta_chunk = 0;
    const size_t chunked = dn_chunk_scratch_floats(&hp->dn, Q3N_CHUNK), exact = dn_ggml_scratch_floats(&hp->dn);
    c->chunk_floats = chunked > exact ? chunked : exact;
    const uint32_t page = 32, pages = (pool_tokens + page - 1) / page;
    c->kv_type = kv_type;
    const struct attn_shape as = attn_shape_of(hp, kv_type);
    if (!attn_shape_check(&as, err, errlen)) {
        free(c);
        return NULL;
    }
    c->scores_stride = attn_scratch_floats(&as, max_seq_tokens);
    /* a model whose layers are all DeltaNet still tracks positions in a (one-layer) pool */
    const uint32_t kv_layers = hp->n_attn_layers ? hp->n_attn_layers : 1;
    if (!kvpool_init(&c->kv, kv_layers, attn_k_row_bytes(&as), attn_v_row_bytes(&as), page, pages, n_seqs,
                     max_seq_tokens, err, errlen)) {
        free(c);
        return NULL;
    }
    if (hp->n_dn_layers && !ssm_state_init(&c->st, &hp->dn, hp->n_dn_layers, n_seqs, n_seqs * snaps_per_seq, err,
                                           errlen)) {
        kvpool_free(&c->kv);
        free(c);
        return NULL;
    }
    if (!hp->n_dn_layers)
        c->snaps_per_seq = 0;
    if (!alloc_buffers(c)) {
        snprintf(err, errlen, "out of memory for a batch of %u tokens", max_batch);
        q3n_ctx_free(c);
        return NULL;
    }
    return c;
}

void q3n_ctx_free(struct q3n_ctx *c)
{
    if (!c)
        return;
    kvpool_free(&c->kv);
    if (c->st.data)
        ssm_state_free(&c->st);
    void *bufs[] = {c->rank, c->tok, c->pos, c->seq, c->seg_begin, c->seg_len, c->seg_snap, c->sel, c->kind,
                    c->kind_out, c->seq_counts, c->out_seq, c->x, c->h,
                    c->tmp, c->qfull, c->q, c->k, c->v, c->att, c->qkv, c->conv, c->z, c->ba, c->beta, c->g, c->o,
                    c->probs, c->sel_w, c->sh_g, c->sh_u, c->sh_out, c->sh_w, c->scores, c->chunk};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    q_scratch_free(&c->act);
    q_moe_scratch_free(&c->moe);
    free(c);
}

void q3n_ctx_set_chunked(struct q3n_ctx *c, bool chunked)
{
    c->delta_chunk = chunked ? Q3N_CHUNK : 0;
}

struct kvpool *q3n_ctx_kv(struct q3n_ctx *c)
{
    return &c->kv;
}

uint64_t q3n_ctx_state_bytes(const struct q3n_ctx *c)
{
    if (!c->st.data)
        return 0;
    return ssm_state_bytes(&c->st.shape, c->st.n_layers, c->st.n_seqs, c->st.n_snapshots);
}

/* --------------------------------------------------------------- attention --- */

/* Splits attn_q's rows into per-head queries (RMS-normed, partial RoPE) and gates (left in qfull);
 * K RMS-normed and roped, then K and V into the cache. */
static void prepare_qkv(struct q3n_ctx *c, const struct q3n_layer *L, uint32_t n)
{
    const struct q3n_hparams *hp = &c->m->hp;
    const struct attn_shape as = attn_shape_of(hp, c->kv_type);
    const int64_t hk = hp->head_k, hv = hp->head_v, nq = hp->n_head, nkv = hp->n_head_kv;
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++) {
        for (int64_t h = 0; h < nq; h++) {
            float *qh = c->q + ((size_t)t * nq + h) * hk;
            op_rms_norm(c->qfull + ((size_t)t * nq + h) * 2 * hk, L->q_norm, hk, hp->rms_eps, qh);
            op_rope_neox(qh, hp->n_rot, (int32_t)c->pos[t], hp->rope_base);
        }
        float *kt = c->k + (size_t)t * nkv * hk;
        for (int64_t h = 0; h < nkv; h++) {
            op_rms_norm(kt + h * hk, L->k_norm, hk, hp->rms_eps, kt + h * hk);
            op_rope_neox(kt + h * hk, hp->n_rot, (int32_t)c->pos[t], hp->rope_base);
        }
        attn_store_kv(&c->kv, &as, L->sub, c->seq[t], c->pos[t], kt, c->v + (size_t)t * nkv * hv);
    }
}

/* out *= sigmoid(gate), per head: the gate rows follow each head's query rows in qfull. */
static void apply_output_gate(struct q3n_ctx *c, uint32_t n)
{
    const struct q3n_hparams *hp = &c->m->hp;
    const int64_t hk = hp->head_k, nq = hp->n_head;
    for (uint32_t t = 0; t < n; t++)
        for (int64_t h = 0; h < nq; h++) {
            const float *gate = c->qfull + ((size_t)t * nq + h) * 2 * hk + hk;
            float *o = c->att + ((size_t)t * nq + h) * hk;
            for (int64_t d = 0; d < hk; d++)
                o[d] *= 1.0f / (1.0f + expf(-gate[d]));
        }
}

static void add_rows(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
}

static void norm_rows(const float *x, const float *w, uint32_t n, int64_t e, float eps, float *y)
{
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++)
        op_rms_norm(x + (size_t)t * e, w, e, eps, y + (size_t)t * e);
}

static bool attention_layer(struct q3n_ctx *c, const struct q3n_layer *L, uint32_t n)
{
    const struct q3n_hparams *hp = &c->m->hp;
    const struct attn_shape as = attn_shape_of(hp, c->kv_type);
    norm_rows(c->x, L->attn_norm, n, hp->n_embd, hp->rms_eps, c->h);
    if (!q_matmul_kinds(&L->wq, c->h, n, c->kind, c->qfull, &c->act) ||
        !q_matmul_kinds(&L->wk, c->h, n, c->kind, c->k, &c->act) ||
        !q_matmul_kinds(&L->wv, c->h, n, c->kind, c->v, &c->act))
        return false;
    prepare_qkv(c, L, n);
    attn_forward(&c->kv, &as, L->sub, n, c->pos, c->seq, c->kind, c->q, c->att, c->scores, c->scores_stride);
    apply_output_gate(c, n);
    if (!q_matmul_kinds(&L->wo, c->att, n, c->kind, c->tmp, &c->act))
        return false;
    add_rows(c->x, c->tmp, (size_t)n * hp->n_embd);
    return true;
}

/* --------------------------------------------------------------------- FFN --- */

/* The shared expert's SwiGLU output, scaled by sigmoid(ffn_gate_inp_shexp . h), into sh_out. */
static bool shared_expert(struct q3n_ctx *c, const struct q3n_layer *L, uint32_t n)
{
    const int64_t ff = c->m->hp.n_ff_shexp, e = c->m->hp.n_embd;
    if (!q_matmul_kinds(&L->sh_gate, c->h, n, c->kind, c->sh_g, &c->act) ||
        !q_matmul_kinds(&L->sh_up, c->h, n, c->kind, c->sh_u, &c->act))
        return false;
    for (uint32_t t = 0; t < n; t++)
        op_swiglu(c->sh_g + (size_t)t * ff, c->sh_u + (size_t)t * ff, ff);
    if (!q_matmul_kinds(&L->sh_down, c->sh_g, n, c->kind, c->sh_out, &c->act) ||
        !q_matmul_kinds(&L->sh_gate_inp, c->h, n, c->kind, c->sh_w, &c->act))
        return false;
    for (uint32_t t = 0; t < n; t++) {
        const float gate = 1.0f / (1.0f + expf(-c->sh_w[t]));
        for (int64_t i = 0; i < e; i++)
            c->sh_out[(size_t)t * e + i] *= gate;
    }
    return true;
}

/* x += routed experts + gated shared expert, on rmsnorm(x) * post_attention_norm. */
static bool ffn(struct q3n_ctx *c, const struct q3n_layer *L, uint32_t n)
{
    const struct q3n_hparams *hp = &c->m->hp;
    norm_rows(c->x, L->post_norm, n, hp->n_embd, hp->rms_eps, c->h);
    if (!q_matmul_kinds(&L->router, c->h, n, c->kind, c->probs, &c->act))
        return false;
    moe_route(c->probs, n, hp->n_expert, hp->n_expert_used, c->sel, c->sel_w);
    const struct q_moe_weights w = {
        .gate = L->gate.data, .up = L->up.data, .down = L->down.data,
        .gate_type = L->gate.type, .up_type = L->up.type, .down_type = L->down.type,
        .n_embd = hp->n_embd, .n_ff = hp->n_ff_exp, .n_expert = hp->n_expert};
    char err[128];
    if (!q_moe_forward(&w, n, c->h, (int)hp->n_expert_used, c->sel, c->sel_w, c->tmp, &c->moe, err, sizeof err) ||
        !shared_expert(c, L, n))
        return false;
    const size_t total = (size_t)n * hp->n_embd;
    for (size_t i = 0; i < total; i++)
        c->x[i] += c->tmp[i] + c->sh_out[i]; /* ggml: moe_out + shared, then the residual */
    return true;
}

/* ------------------------------------------------------------------ decode --- */

/* Rows in sequence order (stable, so positions ascend within a segment), segments listed. */
static void order_batch(struct q3n_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                        const uint32_t *seq)
{
    uint32_t row = 0;
    c->n_seg = 0;
    for (uint32_t t = 0; t < n; t++) {
        bool first = true;
        for (uint32_t u = 0; u < t && first; u++)
            first = seq[u] != seq[t];
        if (!first)
            continue;
        c->seg_begin[c->n_seg] = row;
        for (uint32_t u = t; u < n; u++)
            if (seq[u] == seq[t]) {
                c->rank[u] = row;
                c->tok[row] = token[u];
                c->pos[row] = pos[u];
                c->seq[row] = seq[u];
                row++;
            }
        c->seg_len[c->n_seg] = row - c->seg_begin[c->n_seg];
        c->n_seg++;
    }
}

static void embed(struct q3n_ctx *c, uint32_t n)
{
    const struct q_mat *emb = &c->m->token_embd;
    const q_dequant_fn dq = q_kernels_get(emb->type)->dequant;
    for (uint32_t t = 0; t < n; t++)
        dq(emb->data + (size_t)c->tok[t] * emb->row_bytes, c->x + (size_t)t * emb->cols, emb->cols);
}

bool q3n_decode(struct q3n_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos, const uint32_t *seq,
                const bool *want_logits, float *logits, char *err, size_t errlen)
{
    const struct kvpool_batch_limits lim = {.max_batch = c->max_batch, .n_vocab = c->m->hp.n_vocab,
                                            .max_seq_tokens = c->max_seq_tokens};
    if (!kvpool_check_batch(&c->kv, &lim, n, token, pos, seq, err, errlen))
        return false;
    const struct q3n_hparams *hp = &c->m->hp;
    order_batch(c, n, token, pos, seq);
    /* dense products and attention sum each sequence's rows as llama.cpp sums a batch of that
     * sequence alone */
    q_row_kinds(n, c->seq, c->kv.n_seqs, c->seq_counts, c->kind);
    q3n_plan_snapshots(c);
    embed(c, n);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const struct q3n_layer *L = &c->m->layers[l];
        if (!(L->is_attn ? attention_layer(c, L, n) : q3n_deltanet_layer(c, L, n)) || !ffn(c, L, n)) {
            snprintf(err, errlen, "out of memory in layer %u", l);
            return false;
        }
    }
    q3n_commit_snapshots(c);
    for (uint32_t t = 0; t < n; t++)
        if (c->kv.seqs[seq[t]].n_tokens < pos[t] + 1)
            c->kv.seqs[seq[t]].n_tokens = pos[t] + 1;
    /* final norm and the output head, only for the entries that want logits, in entry order */
    uint32_t m = 0;
    for (uint32_t t = 0; t < n; t++)
        if (want_logits[t]) {
            op_rms_norm(c->x + (size_t)c->rank[t] * hp->n_embd, c->m->output_norm, hp->n_embd, hp->rms_eps,
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
