/* matmul.c: the batched matrix-vector products every layer is made of (kernels/matmul.h).
 * Threads take contiguous runs of 16-row chunks, so each writes its own cache lines of y, and read
 * each weight row once per cache-sized tile of tokens. */
#include "kernels/matmul.h"

#include <omp.h>
#include <stdlib.h>

#include "kernels/quants.h"

/* 16 floats: one cache line of y per token at every chunk boundary */
#define ROW_CHUNK 16
/* quantized activations of one tile of tokens (fits in L2 with room for weights) */
#define TILE_BYTES (128 * 1024)

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

/* The dot products of each row kind for this matrix: the batched orders where llama.cpp's x86
 * backend would use its batched kernels for it, vec_dot's everywhere else. */
static struct q_batched_dots pick_dots(const struct q_mat *w)
{
    const struct q_kernels *k = q_kernels_get(w->type);
    if (k->batched_rows && w->rows % k->batched_rows == 0 && w->cols % k->batched_cols == 0)
        return k->batched;
    return (struct q_batched_dots){{k->dot, k->dot, k->dot}, {k->dot_tokens, k->dot_tokens, k->dot_tokens}};
}

static inline int kind_at(const uint8_t *kind, int64_t t)
{
    return kind ? kind[t] : Q_ROW_ALONE;
}

/* Rows [r0, r1) for tokens in tiles: each weight row is read once per tile of tokens whose
 * quantized activations stay in cache, and decoded once per run of up to Q_DOT_TOKENS tokens of
 * one kind where the order has a several-token kernel (bit-identical to its one-token dot). */
static void matmul_rows(const struct q_mat *w, const struct q_batched_dots *dot, const uint8_t *kind,
                        const uint8_t *act, size_t arb, int64_t n, float *y, int64_t r0, int64_t r1)
{
    const int64_t tile = arb ? (int64_t)(TILE_BYTES / arb) + Q_DOT_TOKENS : n;
    for (int64_t t0 = 0; t0 < n; t0 += tile) {
        const int64_t t1 = t0 + tile < n ? t0 + tile : n;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
            for (int64_t t = t0; t < t1;) {
                const int kd = kind_at(kind, t);
                int nt = 1;
                while (dot->tokens_by_kind[kd] && nt < Q_DOT_TOKENS && t + nt < t1 && kind_at(kind, t + nt) == kd)
                    nt++;
                if (nt > 1) {
                    float out[Q_DOT_TOKENS];
                    dot->tokens_by_kind[kd](w->cols, wr, act + (size_t)t * arb, arb, nt, out);
                    for (int j = 0; j < nt; j++)
                        y[(t + j) * w->rows + r] = out[j];
                } else {
                    y[t * w->rows + r] = dot->by_kind[kd](w->cols, wr, act + (size_t)t * arb);
                }
                t += nt;
            }
        }
    }
}

/* Thread ith of nth's rows: whole 16-row chunks (64 bytes of y per token), so no cache line of y
 * is written by two threads. */
static void matmul_share(const struct q_mat *w, const void *act, int64_t n, const uint8_t *kind, float *y, int ith,
                         int nth)
{
    const int64_t rows = w->rows, chunks = (rows + ROW_CHUNK - 1) / ROW_CHUNK, per = (chunks + nth - 1) / nth;
    const int64_t r0 = ith * per * ROW_CHUNK, r1 = r0 + per * ROW_CHUNK < rows ? r0 + per * ROW_CHUNK : rows;
    const struct q_batched_dots dot = pick_dots(w);
    if (r0 < r1)
        matmul_rows(w, &dot, kind, act, q_act_bytes(w->type, w->cols, 1), n, y, r0, r1);
}

void q_matmul_act_share(const struct q_mat *w, const void *act, int64_t n, float *y, int ith, int nth)
{
    matmul_share(w, act, n, NULL, y, ith, nth);
}

static void matmul_act(const struct q_mat *w, const void *act, int64_t n, const uint8_t *kind, float *y)
{
    /* Waking the thread team costs tens of microseconds, and on a loaded machine its spinning
     * workers take the cores the real work needs: only products of ~a million multiply-adds or
     * more are split (a 2048 x 768 expert matrix for one token is 1.5 million). */
    if (w->rows * w->cols * n < (1 << 20) || w->rows <= ROW_CHUNK) {
        matmul_share(w, act, n, kind, y, 0, 1);
        return;
    }
#pragma omp parallel
    matmul_share(w, act, n, kind, y, omp_get_thread_num(), omp_get_num_threads());
}

void q_matmul_act(const struct q_mat *w, const void *act, int64_t n, float *y)
{
    matmul_act(w, act, n, NULL, y);
}

bool q_matmul_kinds(const struct q_mat *w, const float *x, int64_t n, const uint8_t *kind, float *y,
                    struct q_scratch *s)
{
    if (!q_scratch_reserve(s, q_act_bytes(w->type, w->cols, n)))
        return false;
    q_quantize_act(w->type, x, w->cols, n, s->buf);
    matmul_act(w, s->buf, n, kind, y);
    return true;
}

bool q_matmul(const struct q_mat *w, const float *x, int64_t n, float *y, struct q_scratch *s)
{
    return q_matmul_kinds(w, x, n, NULL, y, s);
}

void q_row_kinds(int64_t n, const uint32_t *seq, uint32_t n_seqs, uint32_t *counts, uint8_t *kind)
{
    for (uint32_t s = 0; s < n_seqs; s++)
        counts[s] = 0;
    for (int64_t t = 0; t < n; t++)
        counts[seq[t]]++;
    for (int64_t t = 0; t < n; t++)
        kind[t] = counts[seq[t]] == 1 ? Q_ROW_ALONE : Q_ROW_TAIL;
    /* counts[s] becomes how many of s's entries, from its first on, go in groups of four */
    for (uint32_t s = 0; s < n_seqs; s++)
        counts[s] -= counts[s] % 4;
    for (int64_t t = 0; t < n; t++)
        if (counts[seq[t]] > 0) {
            kind[t] = Q_ROW_GROUP;
            counts[seq[t]]--;
        }
}
