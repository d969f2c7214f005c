/* attention.c: causal GQA attention over the paged F16 KV cache (engine/attention.h), with ggml's
 * rounding: without flash attention ggml rounds the query to F16 for the K products and the
 * softmax probabilities to F16 for the V products, and sums both products in tinyBLAS's order. */
#include "engine/attention.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/attn_dots.h"
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

size_t attn_scratch_floats(const struct attn_shape *s, uint32_t max_tokens)
{
    return (size_t)max_tokens + (size_t)ATTN_SLOTS_VEC * s->head_v;
}

/* ggml (no flash attention) sums both products in one of two orders. A batch of two tokens or
 * more goes through llamafile's tinyBLAS: 16 lanes, lane i accumulating elements i, i + 16, ...
 * with fused multiply-adds, then one horizontal add. A single token goes through vec_dot_f16:
 * four 16-lane accumulators over steps of 64 (element i in slot i % 64), folded (0 + 2) + (1 + 3)
 * before the horizontal add. Keys beyond a position hold zero probability, so the padding ggml
 * sums over adds nothing. Following both (kernels/attn_dots.h) keeps attention bit-identical to
 * llama.cpp's. */
/* One query head over positions 0..p of sequence seq. scratch: p + 1 scores, then the
 * accumulators of the V product (n_slots x head_v). */
static void attend_head(const struct attn_dots *dots, const struct kvpool *kv, const struct attn_shape *s,
                        uint32_t layer, uint32_t seq, uint32_t p, int64_t kvh, int n_slots, const float *q, float *out,
                        float *scratch, size_t scratch_stride)
{
    const int64_t hk = s->head_k, hv = s->head_v;
    const float scale = 1.0f / sqrtf((float)hk);
    float *scores = scratch, *acc = scratch + (scratch_stride - (size_t)ATTN_SLOTS_VEC * hv);
    float q16[ATTN_MAX_HEAD];
    for (int64_t d = 0; d < hk; d++)
        q16[d] = q_f16_to_f32(q_f32_to_f16(q[d]));
    for (uint32_t j = 0; j <= p; j++)
        scores[j] = dots->dot(q16, (const uint16_t *)kvpool_k(kv, layer, seq, j) + kvh * hk, hk, n_slots) * scale;
    op_softmax_masked(scores, (int64_t)p + 1);
    memset(acc, 0, sizeof(float) * (size_t)n_slots * (size_t)hv);
    for (uint32_t j = 0; j <= p; j++) {
        const float w = q_f16_to_f32(q_f32_to_f16(scores[j]));
        dots->axpy(acc + (size_t)(j % (uint32_t)n_slots) * hv, w, (const uint16_t *)kvpool_v(kv, layer, seq, j) + kvh * hv,
                   hv);
    }
    for (int64_t d = 0; d < hv; d++)
        out[d] = attn_fold_slots(acc + d, hv, n_slots);
}

void attn_forward(const struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t n,
                  const uint32_t *pos, const uint32_t *seq, const uint8_t *kind, const float *q, float *out,
                  float *scratch, size_t scratch_stride)
{
    const int64_t nq = s->n_head, group = s->n_head / s->n_head_kv;
    const struct attn_dots *dots = attn_dots_get();
    /* as in matmul.c: a handful of short heads is faster on one thread */
    int64_t work = 0;
    for (uint32_t t = 0; t < n; t++)
        work += (int64_t)(pos[t] + 1) * nq * s->head_k;
#pragma omp parallel for schedule(dynamic, 1) if (work >= (1 << 18))
    for (int64_t i = 0; i < (int64_t)n * nq; i++) {
        const uint32_t t = (uint32_t)(i / nq);
        const int64_t h = i % nq;
        const int n_slots = !kind || kind[t] == Q_ROW_ALONE ? ATTN_SLOTS_VEC : ATTN_SLOTS_TINY;
        attend_head(dots, kv, s, layer, seq[t], pos[t], h / group, n_slots, q + ((size_t)t * nq + h) * s->head_k,
                    out + ((size_t)t * nq + h) * s->head_v, scratch + (size_t)omp_get_thread_num() * scratch_stride,
                    scratch_stride);
    }
}
