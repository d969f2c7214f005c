/* matmul.c: the batched matrix-vector products every layer is made of (kernels/matmul.h).
 * Threads take contiguous runs of rows, so each writes its own part of y and reads each weight
 * row once for all tokens of the batch. */
#include "kernels/matmul.h"

#include <stdlib.h>

#include "kernels/quants.h"

bool q_mat_init(struct q_mat *m, uint32_t type, const void *data, int64_t rows, int64_t cols)
{
    uint64_t rb;
    if (!q_row_bytes(type, (uint64_t)cols, &rb))
        return false;
    *m = (struct q_mat){.type = type, .data = data, .rows = rows, .cols = cols, .row_bytes = (size_t)rb};
    return true;
}

bool q_scratch_reserve(struct q_scratch *s, size_t bytes)
{
    if (bytes <= s->cap)
        return true;
    void *p = realloc(s->buf, bytes);
    if (!p)
        return false;
    s->buf = p;
    s->cap = bytes;
    return true;
}

void q_scratch_free(struct q_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

size_t q_act_bytes(uint32_t wtype, int64_t cols, int64_t n)
{
    uint64_t rb = 0;
    q_row_bytes(q_kernels_get(wtype)->act_type, (uint64_t)cols, &rb);
    return (size_t)rb * (size_t)n;
}

void q_quantize_act(uint32_t wtype, const float *x, int64_t cols, int64_t n, void *act)
{
    const struct q_kernels *ak = q_kernels_get(q_kernels_get(wtype)->act_type);
    size_t rb = q_act_bytes(wtype, cols, 1);
    for (int64_t t = 0; t < n; t++)
        ak->quant(x + t * cols, (uint8_t *)act + (size_t)t * rb, cols);
}

void q_matmul_act(const struct q_mat *w, const void *act, int64_t n, float *y)
{
    const q_dot_fn dot = q_kernels_get(w->type)->dot;
    const size_t arb = q_act_bytes(w->type, w->cols, 1);
    const int64_t rows = w->rows, cols = w->cols;
    /* small products are not worth waking the thread team */
    const int serial = rows * cols * n < (1 << 16);
#pragma omp parallel for schedule(static) if (!serial)
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
        for (int64_t t = 0; t < n; t++)
            y[t * rows + r] = dot(cols, wr, (const uint8_t *)act + (size_t)t * arb);
    }
}

bool q_matmul(const struct q_mat *w, const float *x, int64_t n, float *y, struct q_scratch *s)
{
    if (!q_scratch_reserve(s, q_act_bytes(w->type, w->cols, n)))
        return false;
    q_quantize_act(w->type, x, w->cols, n, s->buf);
    q_matmul_act(w, s->buf, n, y);
    return true;
}
