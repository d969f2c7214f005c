/* attention.c: causal GQA attention over the paged F16 KV cache (engine/attention.h), with ggml's
 * rounding: without flash attention ggml rounds the query to F16 for the K products and the
 * softmax probabilities to F16 for the V products, and sums both products in tinyBLAS's order. */
#include "engine/attention.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/ops.h"
#include "kernels/quants.h"

uint32_t attn_k_row_bytes(const struct attn_shape *s)
{
    return s->n_head_kv * s->head_k * 2;
}

uint32_t attn_v_row_bytes(const struct attn_shape *s)
{
    return s->n_head_kv * s->head_v * 2;
}

static void store_f16(uint8_t *row, const float *x, uint32_t n)
{
    for (uint32_t d = 0; d < n; d++) {
        uint16_t f = q_f32_to_f16(x[d]);
        memcpy(row + 2 * d, &f, 2);
    }
}

void attn_store_kv(struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t seq, uint32_t pos,
                   const float *k, const float *v)
{
    store_f16(kvpool_k(kv, layer, seq, pos), k, s->n_head_kv * s->head_k);
    store_f16(kvpool_v(kv, layer, seq, pos), v, s->n_head_kv * s->head_v);
}

static inline float f16_at(const uint8_t *row, int64_t i)
{
    uint16_t h;
    memcpy(&h, row + 2 * i, 2);
    return q_f16_to_f32(h);
}

/* ggml (no flash attention) runs both products of a prompt batch through llamafile's tinyBLAS:
 * 16 lanes, lane i accumulating elements i, i + 16, ... with fused multiply-adds, then one
 * horizontal add. Doing the same keeps attention bit-identical to the reference. */
#define ATTN_LANES 16

static float dot_f16_lanes(const float *q16, const uint8_t *krow, int64_t n)
{
    float lane[ATTN_LANES] = {0};
    for (int64_t d = 0; d < n; d++)
        lane[d % ATTN_LANES] = fmaf(q16[d], f16_at(krow, d), lane[d % ATTN_LANES]);
    return op_reduce16(lane);
}

/* One query head over positions 0..p of sequence seq; acc: ATTN_LANES x head_v floats. */
static void attend_head(const struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t seq,
                        uint32_t p, int64_t kvh, const float *q, float *out, float *scores, float *acc)
{
    const int64_t hk = s->head_k, hv = s->head_v;
    const float scale = 1.0f / sqrtf((float)hk);
    float q16[ATTN_MAX_HEAD];
    for (int64_t d = 0; d < hk; d++)
        q16[d] = q_f16_to_f32(q_f32_to_f16(q[d]));
    for (uint32_t j = 0; j <= p; j++)
        scores[j] = dot_f16_lanes(q16, kvpool_k(kv, layer, seq, j) + 2 * kvh * hk, hk) * scale;
    op_softmax(scores, (int64_t)p + 1);
    memset(acc, 0, sizeof(float) * ATTN_LANES * (size_t)hv);
    for (uint32_t j = 0; j <= p; j++) {
        const float w = q_f16_to_f32(q_f32_to_f16(scores[j]));
        const uint8_t *vr = kvpool_v(kv, layer, seq, j) + 2 * kvh * hv;
        float *lane = acc + (size_t)(j % ATTN_LANES) * hv;
        for (int64_t d = 0; d < hv; d++)
            lane[d] = fmaf(w, f16_at(vr, d), lane[d]);
    }
    for (int64_t d = 0; d < hv; d++) {
        float col[ATTN_LANES];
        for (int l = 0; l < ATTN_LANES; l++)
            col[l] = acc[(size_t)l * hv + d];
        out[d] = op_reduce16(col);
    }
}

void attn_forward(const struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t n,
                  const uint32_t *pos, const uint32_t *seq, const float *q, float *out, float *scores,
                  uint32_t scores_stride)
{
    const int64_t nq = s->n_head, group = s->n_head / s->n_head_kv;
    /* as in matmul.c: a handful of short heads is faster on one thread */
    int64_t work = 0;
    for (uint32_t t = 0; t < n; t++)
        work += (int64_t)(pos[t] + 1) * nq * s->head_k;
#pragma omp parallel for schedule(dynamic, 1) if (work >= (1 << 18))
    for (int64_t i = 0; i < (int64_t)n * nq; i++) {
        const uint32_t t = (uint32_t)(i / nq);
        const int64_t h = i % nq;
        float *sc = scores + (size_t)omp_get_thread_num() * scores_stride;
        float acc[ATTN_LANES * ATTN_MAX_HEAD];
        attend_head(kv, s, layer, seq[t], pos[t], h / group, q + ((size_t)t * nq + h) * s->head_k,
                    out + ((size_t)t * nq + h) * s->head_v, sc, acc);
    }
}
