/* matmul.h: y = W x for a batch of tokens, W a 2-D weight matrix of any ggml type.
 * Activations are quantized once per row to the weight type's dot-product type, as ggml-cpu does. */
#ifndef MOESERVE_MATMUL_H
#define MOESERVE_MATMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A weight matrix: `rows` rows of `cols` values of `type`, rows `row_bytes` apart. */
struct q_mat {
    const void *data;
    uint32_t type;
    int64_t rows, cols;
    size_t row_bytes;
};

/* Caller-owned growable buffer for quantized activations (no malloc per call once grown). */
struct q_scratch {
    void *buf;
    size_t cap;
};

/* Grows s to at least `bytes` (64-byte aligned). False on allocation failure. */
bool q_scratch_reserve(struct q_scratch *s, size_t bytes);
void q_scratch_free(struct q_scratch *s);

/* Describes a matrix; false with a message when the type has no dot kernel or cols is not a
 * whole number of blocks. */
bool q_mat_init(struct q_mat *m, const void *data, uint32_t type, int64_t rows, int64_t cols,
                char *err, size_t errlen);

/* Bytes of one activation row of `cols` values quantized for weight type `wtype`. */
size_t q_act_row_bytes(uint32_t wtype, int64_t cols);

/* Quantizes n rows of x (n x cols F32) for weight type `wtype` into dst (rows `stride` apart). */
void q_quantize_acts(uint32_t wtype, const float *x, int64_t n, int64_t cols, void *dst, size_t stride);

/* y (n x rows, row t at y + t*y_stride) = W * activations already quantized by q_quantize_acts
 * (row t at xq + t*xq_stride). Runs on the OpenMP threads unless `serial`. */
void q_matmul_q(const struct q_mat *w, const void *xq, size_t xq_stride, int64_t n,
                float *y, size_t y_stride, bool serial);

/* y (n x rows) = W x (x: n x cols F32). False only when scratch cannot grow. */
bool q_matmul(const struct q_mat *w, const float *x, int64_t n, float *y, struct q_scratch *s);

#endif
