/* matmul.c: batched matrix products over the per-type dot kernels (kernels/matmul.h).
 * Rows are split across OpenMP threads in 16-row chunks; tokens are tiled to stay in cache. */
#include "kernels/matmul.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quants.h"

/* 16 floats = one cache line of y per chunk boundary, so threads never share a line. */
#define ROW_CHUNK 16
/* Quantized activations of one token tile should fit comfortably in L2. */
#define TILE_BYTES (128 * 1024)
/* Below this many multiply-adds a parallel region costs more than it saves. */
#define PARALLEL_MIN_WORK (1 << 16)

bool q_scratch_reserve(struct q_scratch *s, size_t bytes)
{
    if (bytes <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < bytes)
        cap *= 2;
    void *p = aligned_alloc(64, (cap + 63) & ~(size_t)63);
    if (!p)
        return false;
    free(s->buf);
    s->buf = p;
    s->cap = cap;
    return true;
}

void q_scratch_free(struct q_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

bool q_mat_init(struct q_mat *m, const void *data, uint32_t type, int64_t rows, int64_t cols,
                char *err, size_t errlen)
{
    const struct q_kernels *k = q_kernels_get(type);
    const struct q_traits *tr = q_type_traits(type);
    uint64_t rb = 0;
    if (!k || !tr || !k->dot) {
        snprintf(err, errlen, "no dot product for type %s", tr && tr->name ? tr->name : "?");
        return false;
    }
    const struct q_kernels *ak = q_kernels_get(k->act_type);
    if (!ak || !ak->quant) {
        snprintf(err, errlen, "no activation quantizer for type %s", tr->name);
        return false;
    }
    if (rows <= 0 || cols <= 0 || !q_row_bytes(type, (uint64_t)cols, &rb) ||
        !q_row_bytes(k->act_type, (uint64_t)cols, &rb)) {
        snprintf(err, errlen, "%lld x %lld is not a valid %s matrix", (long long)rows,
                 (long long)cols, tr->name);
        return false;
    }
    q_row_bytes(type, (uint64_t)cols, &rb);
    *m = (struct q_mat){.data = data, .type = type, .rows = rows, .cols = cols, .row_bytes = rb};
    return true;
}

size_t q_act_row_bytes(uint32_t wtype, int64_t cols)
{
    const struct q_kernels *k = q_kernels_get(wtype);
    uint64_t rb = 0;
    if (!k || !q_row_bytes(k->act_type, (uint64_t)cols, &rb))
        return 0;
    return (size_t)rb;
}

void q_quantize_acts(uint32_t wtype, const float *x, int64_t n, int64_t cols, void *dst, size_t stride)
{
    const struct q_kernels *ak = q_kernels_get(q_kernels_get(wtype)->act_type);
    for (int64_t t = 0; t < n; t++)
        ak->quant(x + t * cols, (uint8_t *)dst + t * stride, cols);
}

/* Rows [r0, r1) for all n tokens: each weight row is read once per token tile. */
static void matmul_rows(const struct q_mat *w, q_dot_fn dot, const uint8_t *xq, size_t xq_stride,
                        int64_t n, float *y, size_t y_stride, int64_t r0, int64_t r1, int64_t tile)
{
    const uint8_t *wd = w->data;
    for (int64_t t0 = 0; t0 < n; t0 += tile) {
        int64_t t1 = t0 + tile < n ? t0 + tile : n;
        for (int64_t r = r0; r < r1; r++) {
            const void *row = wd + (size_t)r * w->row_bytes;
            for (int64_t t = t0; t < t1; t++)
                y[(size_t)t * y_stride + r] = dot(w->cols, row, xq + (size_t)t * xq_stride);
        }
    }
}

void q_matmul_q(const struct q_mat *w, const void *xq, size_t xq_stride, int64_t n,
                float *y, size_t y_stride, bool serial)
{
    q_dot_fn dot = q_kernels_get(w->type)->dot;
    int64_t tile = xq_stride ? (int64_t)(TILE_BYTES / xq_stride) : n;
    if (tile < 1)
        tile = 1;
    bool parallel = !serial && w->rows > ROW_CHUNK &&
                    (double)w->rows * (double)w->cols * (double)n >= PARALLEL_MIN_WORK;
    if (!parallel) {
        matmul_rows(w, dot, xq, xq_stride, n, y, y_stride, 0, w->rows, tile);
        return;
    }
#pragma omp parallel
    {
        int nth = omp_get_num_threads(), ith = omp_get_thread_num();
        int64_t chunks = (w->rows + ROW_CHUNK - 1) / ROW_CHUNK;
        int64_t per = (chunks + nth - 1) / nth;
        int64_t r0 = (int64_t)ith * per * ROW_CHUNK, r1 = r0 + per * ROW_CHUNK;
        if (r1 > w->rows)
            r1 = w->rows;
        if (r0 < r1)
            matmul_rows(w, dot, xq, xq_stride, n, y, y_stride, r0, r1, tile);
    }
}

bool q_matmul(const struct q_mat *w, const float *x, int64_t n, float *y, struct q_scratch *s)
{
    size_t stride = q_act_row_bytes(w->type, w->cols);
    if (!q_scratch_reserve(s, stride * (size_t)n))
        return false;
    q_quantize_acts(w->type, x, n, w->cols, s->buf, stride);
    q_matmul_q(w, s->buf, stride, n, y, (size_t)w->rows, false);
    return true;
}
