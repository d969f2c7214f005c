/* matmul.h: y = W x for a batch of tokens, W in any ggml type, x in F32, following ggml's
 * numerics: each x row is quantized once to W's activation type, then dotted with every W row. */
#ifndef MOESERVE_MATMUL_H
#define MOESERVE_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 2-D weight matrix (or one expert's slice of a 3-D tensor): rows of `cols` values. */
struct q_mat {
    uint32_t type;
    const uint8_t *data;
    int64_t rows, cols;
    size_t row_bytes;
};

/* Growable scratch owned by the caller; reused across calls so steady state never allocates. */
struct q_scratch {
    void *buf;
    size_t cap;
};

/* Makes a q_mat over `rows` rows of `data`; false if cols is not a whole number of blocks. */
bool q_mat_init(struct q_mat *m, uint32_t type, const void *data, int64_t rows, int64_t cols);

/* Ensures the scratch holds `bytes`; false on allocation failure. */
bool q_scratch_reserve(struct q_scratch *s, size_t bytes);
void q_scratch_free(struct q_scratch *s);

/* Bytes needed to hold n rows of `cols` values quantized for W's type. */
size_t q_act_bytes(uint32_t wtype, int64_t cols, int64_t n);

/* Quantizes n rows of x (cols each) for W's type into act (q_act_bytes long). */
void q_quantize_act(uint32_t wtype, const float *x, int64_t cols, int64_t n, void *act);

/* y[t * rows + r] = W[r] . x[t] for t < n, from activations already quantized by q_quantize_act.
 * Rows are split across the OpenMP threads. Each token is summed as llama.cpp sums a single row. */
void q_matmul_act(const struct q_mat *w, const void *act, int64_t n, float *y);

/* Thread ith of nth's share of q_matmul_act, for callers already inside a parallel region (the
 * MoE kernel runs all its experts in one): whole 16-row chunks, so no two shares write the same
 * cache line of y. The shares of ith = 0..nth-1 together compute every row once. */
void q_matmul_act_share(const struct q_mat *w, const void *act, int64_t n, float *y, int ith, int nth);

/* Quantize and multiply in one call. False only on allocation failure. */
bool q_matmul(const struct q_mat *w, const float *x, int64_t n, float *y, struct q_scratch *s);

/* As q_matmul, with token t summed as llama.cpp sums a token of kind kind[t] (enum q_row_kind;
 * kind NULL: every token alone), for the types whose float order depends on it (quants.h). */
bool q_matmul_kinds(const struct q_mat *w, const float *x, int64_t n, const uint8_t *kind, float *y,
                    struct q_scratch *s);

/* The kind of every entry of a batch holding several sequences, as if each sequence's entries
 * (in batch order) were a batch of their own: a sequence with one entry is alone; with more,
 * all but its last (count % 4) entries are in groups. So a sequence's numbers never depend on
 * what else shares the batch. seq[t] < n_seqs; counts: scratch for n_seqs values. */
void q_row_kinds(int64_t n, const uint32_t *seq, uint32_t n_seqs, uint32_t *counts, uint8_t *kind);

/* The large-batch path: W dequantized to F32 tile by tile, times unquantized x by OpenBLAS sgemm
 * (y as q_matmul lays it out). Not ggml's numerics (those quantize x first), so the engine does
 * not use it: it is measured against the integer path in bench-kernels (docs/benchmarks.md).
 * `scratch` holds q_matmul_sgemm_scratch(cols) bytes; W's type needs a dequantizer, and rows,
 * cols and n must fit an int. */
size_t q_matmul_sgemm_scratch(int64_t cols);
void q_matmul_sgemm(const struct q_mat *w, const float *x, int64_t n, float *y, float *scratch);

#endif
