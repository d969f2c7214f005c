/* moe.c: grouped mixture-of-experts SwiGLU FFN (kernels/moe.h).
 * Token rows are quantized once, regrouped per expert, multiplied, then recombined in k order. */
#include "kernels/moe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/quants.h"
#include "kernels/vexp.h"

void q_moe_scratch_free(struct q_moe_scratch *s)
{
    q_scratch_free(&s->xq);
    q_scratch_free(&s->hq);
    q_scratch_free(&s->idx);
    q_scratch_free(&s->h);
    q_scratch_free(&s->y);
}

struct q_mat q_moe_expert(const void *data, uint32_t type, int64_t rows, int64_t cols, int64_t e)
{
    uint64_t rb = 0;
    q_row_bytes(type, (uint64_t)cols, &rb);
    return (struct q_mat){.data = (const uint8_t *)data + (size_t)e * rows * rb, .type = type,
                          .rows = rows, .cols = cols, .row_bytes = rb};
}

bool q_moe_check(const struct q_moe_weights *w, char *err, size_t errlen)
{
    struct q_mat m;
    if (w->n_expert <= 0) {
        snprintf(err, errlen, "MoE: no experts");
        return false;
    }
    if (!q_mat_init(&m, w->gate, w->gate_type, w->n_ff, w->n_embd, err, errlen) ||
        !q_mat_init(&m, w->up, w->up_type, w->n_ff, w->n_embd, err, errlen) ||
        !q_mat_init(&m, w->down, w->down_type, w->n_embd, w->n_ff, err, errlen))
        return false;
    return true;
}


/* Buffers for n tokens x k experts; pointers into the scratch after growing it. */
struct moe_bufs {
    uint8_t *xq, *xq_up, *xg, *xg_up, *hq;
    float *g, *u, *y;
    int32_t *order, *slot_of, *count, *start;
    size_t act_g, act_u, act_d;
};

static bool moe_bufs(const struct q_moe_weights *w, int64_t n, int k, struct q_moe_scratch *s,
                     struct moe_bufs *b)
{
    size_t nk = (size_t)n * k;
    bool same_act = q_kernels_get(w->gate_type)->act_type == q_kernels_get(w->up_type)->act_type;
    b->act_g = q_act_row_bytes(w->gate_type, w->n_embd);
    b->act_u = q_act_row_bytes(w->up_type, w->n_embd);
    b->act_d = q_act_row_bytes(w->down_type, w->n_ff);
    size_t xq_bytes = (size_t)n * b->act_g + nk * b->act_g;
    if (!same_act)
        xq_bytes += (size_t)n * b->act_u + nk * b->act_u;
    size_t idx_n = 2 * nk + 2 * ((size_t)w->n_expert + 1);
    if (!q_scratch_reserve(&s->xq, xq_bytes) || !q_scratch_reserve(&s->hq, nk * b->act_d) ||
        !q_scratch_reserve(&s->idx, idx_n * sizeof(int32_t)) ||
        !q_scratch_reserve(&s->h, 2 * nk * (size_t)w->n_ff * sizeof(float)) ||
        !q_scratch_reserve(&s->y, nk * (size_t)w->n_embd * sizeof(float)))
        return false;
    b->xq = s->xq.buf;
    b->xg = b->xq + (size_t)n * b->act_g;
    b->xq_up = same_act ? NULL : b->xg + nk * b->act_g;
    b->xg_up = same_act ? NULL : b->xq_up + (size_t)n * b->act_u;
    b->hq = s->hq.buf;
    b->g = s->h.buf;
    b->u = b->g + nk * (size_t)w->n_ff;
    b->y = s->y.buf;
    b->order = s->idx.buf;
    b->slot_of = b->order + nk;
    b->count = b->slot_of + nk;
    b->start = b->count + w->n_expert + 1;
    return true;
}

/* Counting sort of the (token, j) slots by expert: order[i] = slot, slot_of[slot] = i. */
static void group_by_expert(const int32_t *ids, size_t nk, int64_t n_expert, struct moe_bufs *b)
{
    memset(b->count, 0, (size_t)(n_expert + 1) * sizeof(int32_t));
    for (size_t i = 0; i < nk; i++)
        b->count[ids[i]]++;
    b->start[0] = 0;
    for (int64_t e = 0; e < n_expert; e++)
        b->start[e + 1] = b->start[e] + b->count[e];
    memset(b->count, 0, (size_t)(n_expert + 1) * sizeof(int32_t));
    for (size_t i = 0; i < nk; i++) {
        int32_t e = ids[i];
        int32_t at = b->start[e] + b->count[e]++;
        b->order[at] = (int32_t)i;
        b->slot_of[i] = at;
    }
}

bool q_moe_forward(const struct q_moe_weights *w, int64_t n, const float *x, int k,
                   const int32_t *ids, const float *weights, float *out,
                   struct q_moe_scratch *s, char *err, size_t errlen)
{
    size_t nk = (size_t)n * k;
    for (size_t i = 0; i < nk; i++)
        if (ids[i] < 0 || ids[i] >= w->n_expert) {
            snprintf(err, errlen, "MoE: expert id %d out of range [0, %lld)", ids[i],
                     (long long)w->n_expert);
            return false;
        }
    struct moe_bufs b;
    if (!moe_bufs(w, n, k, s, &b)) {
        snprintf(err, errlen, "MoE: out of memory for a batch of %lld tokens", (long long)n);
        return false;
    }
    int64_t ff = w->n_ff, d = w->n_embd;
    q_quantize_acts(w->gate_type, x, n, d, b.xq, b.act_g);
    if (b.xq_up)
        q_quantize_acts(w->up_type, x, n, d, b.xq_up, b.act_u);
    group_by_expert(ids, nk, w->n_expert, &b);
    for (size_t i = 0; i < nk; i++) {
        size_t t = (size_t)b.order[i] / (size_t)k;
        memcpy(b.xg + i * b.act_g, b.xq + t * b.act_g, b.act_g);
        if (b.xq_up)
            memcpy(b.xg_up + i * b.act_u, b.xq_up + t * b.act_u, b.act_u);
    }
    /* gate and up for every expert's group of rows, then SwiGLU and its quantization */
    for (int64_t e = 0; e < w->n_expert; e++) {
        int64_t c = b.start[e + 1] - b.start[e];
        size_t off = (size_t)b.start[e];
        if (!c)
            continue;
        struct q_mat gm = q_moe_expert(w->gate, w->gate_type, ff, d, e);
        struct q_mat um = q_moe_expert(w->up, w->up_type, ff, d, e);
        q_matmul_q(&gm, b.xg + off * b.act_g, b.act_g, c, b.g + off * ff, (size_t)ff, false);
        if (b.xq_up)
            q_matmul_q(&um, b.xg_up + off * b.act_u, b.act_u, c, b.u + off * ff, (size_t)ff, false);
        else
            q_matmul_q(&um, b.xg + off * b.act_g, b.act_g, c, b.u + off * ff, (size_t)ff, false);
    }
#pragma omp parallel for schedule(static) if (nk * (size_t)ff > 16384)
    for (size_t i = 0; i < nk; i++) {
        float *g = b.g + i * ff;
        const float *u = b.u + i * ff;
        for (int64_t j = 0; j < ff; j++)
            g[j] = q_vsilu(g[j], w->silu_exp) * u[j];
        q_quantize_acts(w->down_type, g, 1, ff, b.hq + i * b.act_d, b.act_d);
    }
    for (int64_t e = 0; e < w->n_expert; e++) {
        int64_t c = b.start[e + 1] - b.start[e];
        size_t off = (size_t)b.start[e];
        if (!c)
            continue;
        struct q_mat dm = q_moe_expert(w->down, w->down_type, d, ff, e);
        q_matmul_q(&dm, b.hq + off * b.act_d, b.act_d, c, b.y + off * d, (size_t)d, false);
    }
    /* weighted sum in k order, as ggml adds the per-expert views one after another */
    for (int64_t t = 0; t < n; t++) {
        float *o = out + t * d;
        for (int j = 0; j < k; j++) {
            size_t slot = (size_t)t * k + j;
            const float *y = b.y + (size_t)b.slot_of[slot] * d;
            float wt = weights[slot];
            if (j == 0)
                for (int64_t c = 0; c < d; c++)
                    o[c] = y[c] * wt;
            else
                for (int64_t c = 0; c < d; c++)
                    o[c] += y[c] * wt;
        }
    }
    return true;
}
