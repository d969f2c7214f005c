/* attention.c: causal GQA attention over the paged KV cache (engine/attention.h), with ggml's
 * rounding. F16 cache: as ggml without flash attention, the query is rounded to F16 for the K
 * products and the softmax probabilities to F16 for the V products, both summed in llama.cpp's
 * order. Q8_0 cache: as ggml's flash attention (which llama.cpp requires for a quantized V), the
 * query is quantized to Q8_0 for the K products and V rows are dequantized and summed in F32. */
#include "engine/attention.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "kernels/attn_dots.h"
#include "kernels/ops.h"
#include "kernels/quants.h"

#define Q8_0_BLOCK 32
#define Q8_0_BYTES 34

bool attn_shape_check(const struct attn_shape *s, char *err, size_t errlen)
{
    if (s->kv_type != Q_F16 && s->kv_type != Q_Q8_0) {
        snprintf(err, errlen, "KV cache type %u: only f16 and q8_0 are supported", s->kv_type);
        return false;
    }
    if (!s->head_k || !s->head_v || s->head_k > ATTN_MAX_HEAD || s->head_v > ATTN_MAX_HEAD) {
        snprintf(err, errlen, "head sizes %u/%u: the attention supports 1..%d", s->head_k, s->head_v,
                 ATTN_MAX_HEAD);
        return false;
    }
    if (s->kv_type == Q_Q8_0 && (s->head_k % Q8_0_BLOCK || s->head_v % Q8_0_BLOCK)) {
        snprintf(err, errlen, "--kv-type q8_0: head sizes %u/%u are not multiples of %d (use f16)", s->head_k,
                 s->head_v, Q8_0_BLOCK);
        return false;
    }
    return true;
}

/* Bytes of one head's n values in the cache type. */
static uint32_t head_bytes(const struct attn_shape *s, uint32_t n)
{
    return s->kv_type == Q_Q8_0 ? n / Q8_0_BLOCK * Q8_0_BYTES : n * 2;
}

uint32_t attn_k_row_bytes(const struct attn_shape *s)
{
    return s->n_head_kv * head_bytes(s, s->head_k);
}

uint32_t attn_v_row_bytes(const struct attn_shape *s)
{
    return s->n_head_kv * head_bytes(s, s->head_v);
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
    uint8_t *kr = kvpool_k(kv, layer, seq, pos), *vr = kvpool_v(kv, layer, seq, pos);
    if (s->kv_type == Q_Q8_0) {
        /* heads are whole blocks, so one row of all heads quantizes as the heads one by one */
        const q_quant_fn quant = q_kernels_get(Q_Q8_0)->quant;
        quant(k, kr, (int64_t)s->n_head_kv * s->head_k);
        quant(v, vr, (int64_t)s->n_head_kv * s->head_v);
        return;
    }
    store_f16(kr, k, s->n_head_kv * s->head_k);
    store_f16(vr, v, s->n_head_kv * s->head_v);
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

/* The same over a Q8_0 cache: q . K with the Q8_0 x Q8_0 dot product, V summed in F32. */
static void attend_head_q8_0(const struct kvpool *kv, const struct attn_shape *s, uint32_t layer, uint32_t seq,
                             uint32_t p, int64_t kvh, const float *q, float *out, float *scores)
{
    const struct q_kernels *qk = q_kernels_get(Q_Q8_0);
    const int64_t hk = s->head_k, hv = s->head_v;
    const size_t kb = head_bytes(s, s->head_k), vb = head_bytes(s, s->head_v);
    const float scale = 1.0f / sqrtf((float)hk);
    uint8_t q8[ATTN_MAX_HEAD / Q8_0_BLOCK * Q8_0_BYTES];
    qk->quant(q, q8, hk);
    for (uint32_t j = 0; j <= p; j++)
        scores[j] = qk->dot(hk, kvpool_k(kv, layer, seq, j) + kvh * kb, q8) * scale;
    op_softmax(scores, (int64_t)p + 1);
    float acc[ATTN_MAX_HEAD] = {0}, vrow[ATTN_MAX_HEAD];
    for (uint32_t j = 0; j <= p; j++) {
        qk->dequant(kvpool_v(kv, layer, seq, j) + kvh * vb, vrow, hv);
        for (int64_t d = 0; d < hv; d++)
            acc[d] += scores[j] * vrow[d];
    }
    memcpy(out, acc, (size_t)hv * sizeof *out);
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
        const float *qh = q + ((size_t)t * nq + h) * s->head_k;
        float *oh = out + ((size_t)t * nq + h) * s->head_v, *sc = scratch + (size_t)omp_get_thread_num() * scratch_stride;
        if (s->kv_type == Q_Q8_0) {
            attend_head_q8_0(kv, s, layer, seq[t], pos[t], h / group, qh, oh, sc);
            continue;
        }
        const int n_slots = !kind || kind[t] == Q_ROW_ALONE ? ATTN_SLOTS_VEC : ATTN_SLOTS_TINY;
        attend_head(dots, kv, s, layer, seq[t], pos[t], h / group, n_slots, qh, oh, sc, scratch_stride);
    }
}
