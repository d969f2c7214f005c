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

/* Quantize and multiply in one call. False only on allocation failure. */
bool q_matmul(const struct q_mat *w, const float *x, int64_t n, float *y, struct q_scratch *s);

/* As q_matmul, but tokens with grouped[t] set are summed as llama.cpp sums rows of a batch it
 * takes four at a time (a different float order for the types it repacks; see quants.h).
 * grouped may be NULL (no token grouped). */
bool q_matmul_grouped(const struct q_mat *w, const float *x, int64_t n, const bool *grouped, float *y,
                      struct q_scratch *s);

/* Which tokens of a batch llama.cpp would take in groups of four: per sequence, all but the
 * last (count % 4) of its entries (entries of one sequence in batch order). seq[t] < n_seqs;
 * counts is scratch for n_seqs values. */
void q_group_tokens(int64_t n, const uint32_t *seq, uint32_t n_seqs, uint32_t *counts, bool *grouped);

#endif
