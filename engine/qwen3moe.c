/* qwen3moe.c: the qwen3moe forward pass on the CPU (engine/model.h), following ggml-cpu's
 * numerics: quantized activations per product, F16 K/V, F16 query and probabilities in attention. */
#include "engine/model.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quants.h"
#include "kernels/vexp.h"

#define KV_PAGE_TOKENS 256

/* F16 -> F32 for every half value, built once (exact, as q_f16_to_f32). */
static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void fill_f16_table(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        f16_table[h] = q_f16_to_f32((uint16_t)h);
}


struct model_ctx {
    const struct model *m;
    struct kvpool kv;
    uint32_t n_slots, n_ctx, max_batch;
    /* activations of one piece of a batch, max_batch rows each */
    float *x, *cur, *q, *k, *v, *attn, *router, *moe_out, *route_w;
    int32_t *route_id;
    uint32_t *rows;                 /* entry indexes (output rows of the last layer) */
    /* per-thread attention buffers */
    int n_threads;
    size_t thread_stride;           /* floats */
    float *thread_buf;
    struct q_scratch act;
    struct q_moe_scratch moe;
    enum q_vexp_flavour vexp;       /* which expf llama.cpp's softmax and SiLU used */
};

void model_ctx_free(struct model_ctx *c)
{
    if (!c)
        return;
    kvpool_free(&c->kv);
    float *bufs[] = {c->x, c->cur, c->q, c->k, c->v, c->attn, c->router, c->moe_out, c->route_w,
                     c->thread_buf};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    free(c->route_id);
    free(c->rows);
    q_scratch_free(&c->act);
    q_moe_scratch_free(&c->moe);
    free(c);
}

struct model_ctx *model_ctx_new(const struct model *m, uint32_t n_slots, uint32_t n_ctx,
                                uint32_t max_batch, char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    if (!n_slots || !n_ctx || !max_batch) {
        snprintf(err, errlen, "model context: slots, context and batch size must be positive");
        return NULL;
    }
    struct model_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory for the model context");
        return NULL;
    }
    c->m = m;
    c->n_slots = n_slots;
    c->n_ctx = n_ctx;
    c->max_batch = max_batch;
    c->vexp = q_vexp_default();
    pthread_once(&f16_once, fill_f16_table);
    uint32_t kv_row = hp->n_head_kv * hp->head_dim * 2;
    uint32_t pages_per_slot = (n_ctx + KV_PAGE_TOKENS - 1) / KV_PAGE_TOKENS;
    if (!kvpool_init(&c->kv, hp->n_layer, kv_row, kv_row, KV_PAGE_TOKENS, pages_per_slot * n_slots,
                     n_slots, n_ctx, err, errlen)) {
        free(c);
        return NULL;
    }
    size_t B = max_batch, E = hp->n_embd, HD = (size_t)hp->n_head * hp->head_dim;
    size_t KVD = (size_t)hp->n_head_kv * hp->head_dim, K = hp->n_expert_used;
    c->x = malloc(B * E * sizeof(float));
    c->cur = malloc(B * E * sizeof(float));
    c->q = malloc(B * HD * sizeof(float));
    c->k = malloc(B * KVD * sizeof(float));
    c->v = malloc(B * KVD * sizeof(float));
    c->attn = malloc(B * HD * sizeof(float));
    c->router = malloc(B * hp->n_expert * sizeof(float));
    c->moe_out = malloc(B * E * sizeof(float));
    c->route_w = malloc(B * K * sizeof(float));
    c->route_id = malloc(B * K * sizeof(int32_t));
    c->rows = malloc(B * sizeof(uint32_t));
    c->n_threads = omp_get_max_threads();
    /* scores for n_ctx positions, the rounded query, one accumulator per lane */
    c->thread_stride = ((size_t)n_ctx + (size_t)hp->head_dim * 17 + 15) & ~(size_t)15;
    c->thread_buf = malloc((size_t)c->n_threads * c->thread_stride * sizeof(float));
    if (!c->x || !c->cur || !c->q || !c->k || !c->v || !c->attn || !c->router || !c->moe_out ||
        !c->route_w || !c->route_id || !c->rows || !c->thread_buf) {
        snprintf(err, errlen, "out of memory for a batch of %u tokens", max_batch);
        model_ctx_free(c);
        return NULL;
    }
    return c;
}

const struct kvpool *model_kv(const struct model_ctx *c)
{
    return &c->kv;
}

uint32_t model_slot_len(const struct model_ctx *c, uint32_t slot)
{
    return slot < c->n_slots ? c->kv.seqs[slot].n_tokens : 0;
}

void model_slot_keep(struct model_ctx *c, uint32_t slot, uint32_t n_keep)
{
    if (slot < c->n_slots)
        kvpool_truncate(&c->kv, slot, n_keep);
}

bool model_slot_copy(struct model_ctx *c, uint32_t src, uint32_t dst, uint32_t n)
{
    if (src >= c->n_slots || dst >= c->n_slots)
        return false;
    return kvpool_copy_prefix(&c->kv, src, dst, n);
}

/* ------------------------------------------------------------------- pieces --- */

/* y = x / sqrt(mean(x^2) + eps) * w, with ggml's double sum and float scale. */
static void rms_norm(const float *x, const float *w, float *y, int64_t n, float eps)
{
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

/* NeoX RoPE on one head: pairs (i, i + d/2), angle pos * base^(-2i/d) built up as ggml does. */
static void rope_neox(float *x, int64_t d, uint32_t pos, float base)
{
    const float theta_scale = powf(base, -2.0f / (float)d);
    float theta = (float)pos;
    for (int64_t i = 0; i < d / 2; i++) {
        const float c = cosf(theta), s = sinf(theta);
        const float x0 = x[i], x1 = x[i + d / 2];
        x[i] = x0 * c - x1 * s;
        x[i + d / 2] = x0 * s + x1 * c;
        theta *= theta_scale;
    }
}

static bool matmul(struct model_ctx *c, const struct q_mat *w, const float *x, int64_t n, float *y,
                   char *err, size_t errlen)
{
    if (q_matmul(w, x, n, y, &c->act))
        return true;
    snprintf(err, errlen, "out of memory for activations");
    return false;
}

/* llama.cpp's attention products run in tinyBLAS on 16-lane AVX-512 vectors: lane l takes
 * elements l, l+16, ... in order with FMA, then the lanes are summed pairwise. Following that
 * order keeps every score bit-identical, so no F16 rounding of a probability flips. */
#define ATT_LANES 16

static float lane_tree_sum(float *v)
{
    for (int w = ATT_LANES / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            v[i] += v[i + w];
    return v[0];
}

static float half_at(const uint8_t *p, int64_t i)
{
    uint16_t h;
    memcpy(&h, p + 2 * i, sizeof h);
    return f16_table[h];
}

static float dot_f16_lanes(int64_t n, const uint8_t *k16, const float *q)
{
    float acc[ATT_LANES] = {0};
    for (int64_t d = 0; d < n; d++)
        acc[d % ATT_LANES] = fmaf(half_at(k16, d), q[d], acc[d % ATT_LANES]);
    return lane_tree_sum(acc);
}

/* One query head of one entry against positions [0, pos] of its slot's cache. */
static void attend_head(const struct model_ctx *c, uint32_t il, uint32_t slot, uint32_t pos,
                        const float *q, uint32_t kvh, float *out, float *tbuf)
{
    const struct model_hparams *hp = &c->m->hp;
    const int64_t hd = hp->head_dim;
    const uint32_t n_kv = pos + 1;
    float *scores = tbuf;                       /* n_ctx */
    float *qr = scores + c->n_ctx;              /* hd: the query rounded to F16 */
    float *acc = qr + hd;                       /* ATT_LANES x hd */
    for (int64_t d = 0; d < hd; d++)
        qr[d] = q_f16_to_f32(q_f32_to_f16(q[d]));
    /* ggml multiplies F16 K by the query converted to F16, then scales inside the softmax */
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t off = (size_t)kvh * hd * sizeof(uint16_t);
    float max = -INFINITY;
    for (uint32_t j = 0; j < n_kv; j++) {
        float s = dot_f16_lanes(hd, kvpool_k(&c->kv, il, slot, j) + off, qr) * scale;
        scores[j] = s;
        if (s > max)
            max = s;
    }
    /* llama.cpp pads the cache view; the padding is masked, so vectors are full here too */
    const double sum = q_vexp_softmax_sum(scores, scores, (int)n_kv, max, c->vexp, 1);
    const float inv = (float)(1.0 / sum);
    memset(acc, 0, (size_t)ATT_LANES * hd * sizeof(float));
    for (uint32_t j = 0; j < n_kv; j++) {
        /* probabilities are rounded to F16 before the product with F16 V */
        const float p = q_f16_to_f32(q_f32_to_f16(scores[j] * inv));
        const uint8_t *v = kvpool_v(&c->kv, il, slot, j) + off;
        float *a = acc + (size_t)(j % ATT_LANES) * hd;
        for (int64_t d = 0; d < hd; d++)
            a[d] = fmaf(half_at(v, d), p, a[d]);
    }
    for (int64_t d = 0; d < hd; d++) {
        float lanes[ATT_LANES];
        for (int l = 0; l < ATT_LANES; l++)
            lanes[l] = acc[(size_t)l * hd + d];
        out[d] = lane_tree_sum(lanes);
    }
}

/* Q/K/V for n entries, per-head norms, RoPE, K/V stored F16, then attention into c->attn. */
static bool attention(struct model_ctx *c, uint32_t il, uint32_t n, const uint32_t *pos,
                      const uint32_t *slot, char *err, size_t errlen)
{
    const struct model_hparams *hp = &c->m->hp;
    const struct model_layer *L = &c->m->layers[il];
    const int64_t hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv;
    if (!matmul(c, &L->wq, c->cur, n, c->q, err, errlen) ||
        !matmul(c, &L->wk, c->cur, n, c->k, err, errlen) ||
        !matmul(c, &L->wv, c->cur, n, c->v, err, errlen))
        return false;
    const struct q_kernels *f16 = q_kernels_get(Q_F16);
    for (uint32_t i = 0; i < n; i++) {
        for (int64_t h = 0; h < nh; h++) {
            float *qh = c->q + ((size_t)i * nh + h) * hd;
            rms_norm(qh, L->attn_q_norm, qh, hd, hp->rms_eps);
            rope_neox(qh, hd, pos[i], hp->rope_base);
        }
        for (int64_t h = 0; h < nkv; h++) {
            float *kh = c->k + ((size_t)i * nkv + h) * hd;
            rms_norm(kh, L->attn_k_norm, kh, hd, hp->rms_eps);
            rope_neox(kh, hd, pos[i], hp->rope_base);
        }
        f16->quant(c->k + (size_t)i * nkv * hd, kvpool_k(&c->kv, il, slot[i], pos[i]), nkv * hd);
        f16->quant(c->v + (size_t)i * nkv * hd, kvpool_v(&c->kv, il, slot[i], pos[i]), nkv * hd);
    }
    const int64_t group = nh / nkv, pairs = (int64_t)n * nh;
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 1)
    for (int64_t ph = 0; ph < pairs; ph++) {
        int64_t i = ph / nh, h = ph % nh;
        float *tbuf = c->thread_buf + (size_t)omp_get_thread_num() * c->thread_stride;
        attend_head(c, il, slot[i], pos[i], c->q + (size_t)ph * hd, (uint32_t)(h / group),
                    c->attn + (size_t)ph * hd, tbuf);
    }
    return true;
}

/* Router: softmax over expert logits, top k by probability, weights renormalised to sum 1. */
static void route(const struct model_hparams *hp, enum q_vexp_flavour vexp, const float *logits,
                  int32_t *ids, float *w)
{
    const uint32_t ne = hp->n_expert, k = hp->n_expert_used;
    float probs[ne];
    float max = -INFINITY;
    for (uint32_t e = 0; e < ne; e++)
        max = logits[e] > max ? logits[e] : max;
    const double sum = q_vexp_softmax_sum(logits, probs, (int)ne, max, vexp, 0);
    const float inv = (float)(1.0 / sum);
    for (uint32_t e = 0; e < ne; e++)
        probs[e] *= inv;
    double wsum = 0.0;  /* ggml_sum_rows adds in double */
    for (uint32_t j = 0; j < k; j++) {
        int32_t best = -1;
        for (uint32_t e = 0; e < ne; e++) {
            bool taken = false;
            for (uint32_t q = 0; q < j; q++)
                taken |= ids[q] == (int32_t)e;
            if (!taken && (best < 0 || probs[e] > probs[best]))
                best = (int32_t)e;
        }
        ids[j] = best;
        w[j] = probs[best];
        wsum += w[j];
    }
    const float wsum_f = (float)wsum;
    for (uint32_t j = 0; j < k; j++)
        w[j] /= wsum_f;
}

/* Router logits. An F32 router runs in tinyBLAS in llama.cpp: 16 FMA lanes over the row, summed
 * pairwise; any other type takes the ordinary quantized product. */
static bool router_logits(struct model_ctx *c, const struct q_mat *w, uint32_t n, char *err, size_t errlen)
{
    if (w->type != Q_F32)
        return matmul(c, w, c->cur, n, c->router, err, errlen);
    const int64_t cols = w->cols, rows = w->rows;
#pragma omp parallel for schedule(static) if ((int64_t)n * rows * cols > 65536)
    for (int64_t i = 0; i < (int64_t)n * rows; i++) {
        const int64_t t = i / rows, r = i % rows;
        const float *x = c->cur + t * cols;
        const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
        float acc[ATT_LANES] = {0};
        for (int64_t d = 0; d < cols; d++) {
            float wv;
            memcpy(&wv, wr + 4 * d, sizeof wv);
            acc[d % ATT_LANES] = fmaf(wv, x[d], acc[d % ATT_LANES]);
        }
        c->router[i] = lane_tree_sum(acc);
    }
    return true;
}

/* x += MoE(ffn_norm(x)) for n rows. */
static bool moe_ffn(struct model_ctx *c, uint32_t il, uint32_t n, char *err, size_t errlen)
{
    const struct model_hparams *hp = &c->m->hp;
    const struct model_layer *L = &c->m->layers[il];
    const int64_t E = hp->n_embd, K = hp->n_expert_used;
    for (uint32_t i = 0; i < n; i++)
        rms_norm(c->x + (size_t)i * E, L->ffn_norm, c->cur + (size_t)i * E, E, hp->rms_eps);
    if (!router_logits(c, &L->router, n, err, errlen))
        return false;
    for (uint32_t i = 0; i < n; i++)
        route(hp, c->vexp, c->router + (size_t)i * hp->n_expert, c->route_id + (size_t)i * K,
              c->route_w + (size_t)i * K);
    if (!q_moe_forward(&L->moe, n, c->cur, (int)K, c->route_id, c->route_w, c->moe_out, &c->moe,
                       err, errlen))
        return false;
    for (size_t i = 0; i < (size_t)n * E; i++)
        c->x[i] += c->moe_out[i];
    return true;
}

/* Keeps rows rows[0..n_out) of a n x width matrix, in place. */
static void compact_rows(float *a, const uint32_t *rows, uint32_t n_out, int64_t width)
{
    for (uint32_t r = 0; r < n_out; r++)
        if (rows[r] != r)
            memmove(a + (size_t)r * width, a + (size_t)rows[r] * width, (size_t)width * sizeof(float));
}

/* One piece of at most max_batch entries whose slots have room reserved. */
static bool decode_piece(struct model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                         const uint32_t *slot, const bool *want, float *logits, char *err, size_t errlen)
{
    const struct model *m = c->m;
    const struct model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, HD = (int64_t)hp->n_head * hp->head_dim;
    const struct q_kernels *emb = q_kernels_get(m->tok_embd_type);
    for (uint32_t i = 0; i < n; i++)
        emb->dequant(m->tok_embd + (size_t)token[i] * m->tok_embd_row_bytes, c->x + (size_t)i * E, E);
    uint32_t n_out = 0;
    for (uint32_t i = 0; i < n; i++)
        if (want[i])
            c->rows[n_out++] = i;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const struct model_layer *L = &m->layers[il];
        for (uint32_t i = 0; i < n; i++)
            rms_norm(c->x + (size_t)i * E, L->attn_norm, c->cur + (size_t)i * E, E, hp->rms_eps);
        if (!attention(c, il, n, pos, slot, err, errlen))
            return false;
        uint32_t rows = n;
        if (il + 1 == hp->n_layer) {
            /* only entries that want logits need the last FFN */
            compact_rows(c->attn, c->rows, n_out, HD);
            compact_rows(c->x, c->rows, n_out, E);
            rows = n_out;
        }
        if (!rows)
            return true;
        if (!matmul(c, &L->wo, c->attn, rows, c->cur, err, errlen))
            return false;
        for (size_t i = 0; i < (size_t)rows * E; i++)
            c->x[i] += c->cur[i];
        if (!moe_ffn(c, il, rows, err, errlen))
            return false;
    }
    for (uint32_t i = 0; i < n_out; i++)
        rms_norm(c->x + (size_t)i * E, m->output_norm, c->cur + (size_t)i * E, E, hp->rms_eps);
    return matmul(c, &m->output, c->cur, n_out, logits, err, errlen);
}

/* Checks every entry and makes room in the KV cache; a slot restarted below its length is cut. */
static bool prepare_batch(struct model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                          const uint32_t *slot, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n; i++) {
        if (token[i] < 0 || (uint32_t)token[i] >= c->m->hp.n_vocab) {
            snprintf(err, errlen, "batch entry %u: token %d outside the vocabulary", i, token[i]);
            return false;
        }
        if (slot[i] >= c->n_slots || pos[i] >= c->n_ctx) {
            snprintf(err, errlen, "batch entry %u: slot %u / position %u out of range", i, slot[i], pos[i]);
            return false;
        }
    }
    for (uint32_t s = 0; s < c->n_slots; s++) {
        uint32_t count = 0, lo = UINT32_MAX, hi = 0;
        for (uint32_t i = 0; i < n; i++)
            if (slot[i] == s) {
                count++;
                lo = pos[i] < lo ? pos[i] : lo;
                hi = pos[i] > hi ? pos[i] : hi;
            }
        if (!count)
            continue;
        if (lo < c->kv.seqs[s].n_tokens)
            kvpool_truncate(&c->kv, s, lo);
        uint32_t len = c->kv.seqs[s].n_tokens;
        if (hi >= len + count) {
            snprintf(err, errlen, "slot %u: batch positions up to %u leave a gap after %u cached", s, hi, len);
            return false;
        }
        if (!kvpool_reserve(&c->kv, s, hi + 1)) {
            snprintf(err, errlen, "slot %u: KV cache full (%u positions)", s, hi + 1);
            return false;
        }
    }
    return true;
}

bool model_decode(struct model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                  const uint32_t *slot, const bool *want_logits, float *logits,
                  char *err, size_t errlen)
{
    if (!prepare_batch(c, n, token, pos, slot, err, errlen))
        return false;
    const uint32_t n_vocab = c->m->hp.n_vocab;
    for (uint32_t at = 0; at < n; at += c->max_batch) {
        uint32_t piece = n - at < c->max_batch ? n - at : c->max_batch;
        if (!decode_piece(c, piece, token + at, pos + at, slot + at, want_logits + at, logits, err, errlen))
            return false;
        for (uint32_t i = at; i < at + piece; i++) {
            struct kv_seq *q = &c->kv.seqs[slot[i]];
            if (pos[i] + 1 > q->n_tokens)
                q->n_tokens = pos[i] + 1;
            if (want_logits[i])
                logits += n_vocab;
        }
    }
    return true;
}
