/* moe.c: grouped mixture-of-experts SwiGLU FFN (kernels/moe.h).
 * Token rows are quantized once, regrouped per expert, multiplied, then recombined in k order. */
#include "kernels/moe.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/ops.h"
#include "kernels/quants.h"

void q_moe_scratch_free(struct q_moe_scratch *s)
{
    struct q_scratch *all[] = {&s->xq, &s->xg, &s->hq, &s->idx, &s->h, &s->y};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        q_scratch_free(all[i]);
}

struct q_mat q_moe_expert(const void *data, uint32_t type, int64_t rows, int64_t cols, int64_t e)
{
    uint64_t rb = 0;
    q_row_bytes(type, (uint64_t)cols, &rb);
    return (struct q_mat){.type = type, .data = (const uint8_t *)data + (size_t)e * (size_t)rows * rb,
                          .rows = rows, .cols = cols, .row_bytes = (size_t)rb};
}

static bool check_one(const char *what, uint32_t type, int64_t cols, char *err, size_t errlen)
{
    const struct q_kernels *k = q_kernels_get(type);
    uint64_t rb;
    if (!k || !k->dot || !q_kernels_get(k->act_type)->quant || !q_row_bytes(type, (uint64_t)cols, &rb)) {
        snprintf(err, errlen, "MoE %s: type %u cannot multiply rows of %lld", what, type, (long long)cols);
        return false;
    }
    return true;
}

bool q_moe_check(const struct q_moe_weights *w, char *err, size_t errlen)
{
    if (w->n_expert <= 0 || w->n_embd <= 0 || w->n_ff <= 0) {
        snprintf(err, errlen, "MoE: empty shape");
        return false;
    }
    return check_one("gate", w->gate_type, w->n_embd, err, errlen) &&
           check_one("up", w->up_type, w->n_embd, err, errlen) &&
           check_one("down", w->down_type, w->n_ff, err, errlen);
}

/* Counting sort of the n*k (token, slot) pairs by expert: order[i] = pair, at[pair] = i. */
static void group_by_expert(const int32_t *ids, size_t nk, int64_t n_expert, int32_t *start, int32_t *order,
                            int32_t *at)
{
    memset(start, 0, (size_t)(n_expert + 1) * sizeof *start);
    for (size_t i = 0; i < nk; i++)
        start[ids[i] + 1]++;
    for (int64_t e = 0; e < n_expert; e++)
        start[e + 1] += start[e];
    for (size_t i = 0; i < nk; i++) {
        int32_t pos = start[ids[i]]++;
        order[pos] = (int32_t)i;
        at[i] = pos;
    }
    /* start[e] now holds the end of expert e: shift back */
    for (int64_t e = n_expert; e > 0; e--)
        start[e] = start[e - 1];
    start[0] = 0;
}

/* This thread's share of the gate and up products of every expert's group, written to g and u
 * at the group's rows. */
static void expert_gate_up(const struct q_moe_weights *w, const int32_t *start, const uint8_t *xg,
                           const uint8_t *xg_up, size_t arb, size_t urb, float *g, float *u, int ith, int nth)
{
    const int64_t ff = w->n_ff, d = w->n_embd;
    for (int64_t e = 0; e < w->n_expert; e++) {
        const int64_t c = start[e + 1] - start[e];
        const size_t off = (size_t)start[e];
        if (!c)
            continue;
        struct q_mat gm = q_moe_expert(w->gate, w->gate_type, ff, d, e);
        struct q_mat um = q_moe_expert(w->up, w->up_type, ff, d, e);
        q_matmul_act_share(&gm, xg + off * arb, c, g + off * ff, ith, nth);
        q_matmul_act_share(&um, xg_up + off * urb, c, u + off * ff, ith, nth);
    }
}

/* This thread's share of the down products of every expert's group, into y at the group's rows. */
static void expert_down(const struct q_moe_weights *w, const int32_t *start, const uint8_t *hq, size_t drb, float *y,
                        int ith, int nth)
{
    const int64_t ff = w->n_ff, d = w->n_embd;
    for (int64_t e = 0; e < w->n_expert; e++) {
        const int64_t c = start[e + 1] - start[e];
        const size_t off = (size_t)start[e];
        if (!c)
            continue;
        struct q_mat dm = q_moe_expert(w->down, w->down_type, d, ff, e);
        q_matmul_act_share(&dm, hq + off * drb, c, y + off * d, ith, nth);
    }
}

/* Bytes of each scratch buffer q_moe_forward takes for n tokens of k experts. */
struct moe_scratch_sizes {
    size_t xq, xg, hq, idx, h, y;
};

static struct moe_scratch_sizes scratch_sizes(const struct q_moe_weights *w, int64_t n, int k)
{
    const size_t nk = (size_t)n * (size_t)k, ff = (size_t)w->n_ff, d = (size_t)w->n_embd;
    const bool same = q_kernels_get(w->gate_type)->act_type == q_kernels_get(w->up_type)->act_type;
    const size_t arb = q_act_bytes(w->gate_type, w->n_embd, 1), urb = q_act_bytes(w->up_type, w->n_embd, 1);
    const size_t drb = q_act_bytes(w->down_type, w->n_ff, 1), both = arb + (same ? 0 : urb);
    return (struct moe_scratch_sizes){
        .xq = (size_t)n * both, .xg = nk * both, .hq = nk * drb,
        .idx = (2 * nk + (size_t)w->n_expert + 1) * sizeof(int32_t), .h = 2 * nk * ff * sizeof(float),
        .y = nk * d * sizeof(float),
    };
}

size_t q_moe_scratch_bytes(const struct q_moe_weights *w, int64_t n, int k)
{
    const struct moe_scratch_sizes z = scratch_sizes(w, n, k);
    return z.xq + z.xg + z.hq + z.idx + z.h + z.y;
}

bool q_moe_forward(const struct q_moe_weights *w, int64_t n, const float *x, int k,
                   const int32_t *ids, const float *weights, float *out,
                   struct q_moe_scratch *s, char *err, size_t errlen)
{
    const size_t nk = (size_t)n * (size_t)k;
    const int64_t ff = w->n_ff, d = w->n_embd;
    for (size_t i = 0; i < nk; i++)
        if (ids[i] < 0 || ids[i] >= w->n_expert) {
            snprintf(err, errlen, "MoE: expert id %d outside [0, %lld)", ids[i], (long long)w->n_expert);
            return false;
        }
    const bool same = q_kernels_get(w->gate_type)->act_type == q_kernels_get(w->up_type)->act_type;
    const size_t arb = q_act_bytes(w->gate_type, d, 1), urb = q_act_bytes(w->up_type, d, 1);
    const size_t drb = q_act_bytes(w->down_type, ff, 1);
    const struct moe_scratch_sizes z = scratch_sizes(w, n, k);
    if (!q_scratch_reserve(&s->xq, z.xq) || !q_scratch_reserve(&s->xg, z.xg) || !q_scratch_reserve(&s->hq, z.hq) ||
        !q_scratch_reserve(&s->idx, z.idx) || !q_scratch_reserve(&s->h, z.h) || !q_scratch_reserve(&s->y, z.y)) {
        snprintf(err, errlen, "MoE: out of memory for %lld tokens", (long long)n);
        return false;
    }
    uint8_t *xq = s->xq.buf, *xq_up = same ? xq : xq + (size_t)n * arb;
    uint8_t *xg = s->xg.buf, *xg_up = same ? xg : xg + nk * arb;
    int32_t *order = s->idx.buf, *at = order + nk, *start = at + nk;
    float *g = s->h.buf, *u = g + nk * (size_t)ff, *y = s->y.buf;

    q_quantize_act(w->gate_type, x, d, n, xq);
    if (!same)
        q_quantize_act(w->up_type, x, d, n, xq_up);
    group_by_expert(ids, nk, w->n_expert, start, order, at);
    for (size_t i = 0; i < nk; i++) {
        const size_t t = (size_t)order[i] / (size_t)k;
        memcpy(xg + i * arb, xq + t * arb, arb);
        if (!same)
            memcpy(xg_up + i * urb, xq_up + t * urb, urb);
    }
    /* One parallel region for the whole FFN: each thread takes its rows of every expert's
     * products, so one token's eight experts cost one team wake-up, not 24, and the only waits
     * are the two the data needs (SwiGLU after gate/up, down after SwiGLU). */
    uint8_t *hq = s->hq.buf;
#pragma omp parallel if (nk * (size_t)ff * (size_t)d >= (1u << 20))
    {
        const int ith = omp_get_thread_num(), nth = omp_get_num_threads();
        expert_gate_up(w, start, xg, same ? xg : xg_up, arb, same ? arb : urb, g, u, ith, nth);
#pragma omp barrier
#pragma omp for schedule(static)
        for (size_t i = 0; i < nk; i++) {
            op_swiglu(g + i * ff, u + i * ff, ff);
            q_quantize_act(w->down_type, g + i * ff, ff, 1, hq + i * drb);
        }
        expert_down(w, start, hq, drb, y, ith, nth);
    }
    /* weighted outputs added in slot order, as the reference adds the per-expert views */
    for (int64_t t = 0; t < n; t++) {
        float *o = out + t * d;
        for (int j = 0; j < k; j++) {
            const size_t pair = (size_t)t * k + j;
            const float *src = y + (size_t)at[pair] * d, wt = weights[pair];
            for (int64_t c = 0; c < d; c++)
                o[c] = j == 0 ? src[c] * wt : o[c] + src[c] * wt;
        }
    }
    return true;
}
