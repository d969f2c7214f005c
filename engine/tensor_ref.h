/* tensor_ref.h: checked references to a GGUF file's tensors for the model loaders: exact shape,
 * CPU kernels for the type, alignment; small vectors copied out as floats. */
#ifndef MOESERVE_TENSOR_REF_H
#define MOESERVE_TENSOR_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "kernels/matmul.h"

/* An expert tensor: n_expert matrices of `rows` x `cols`, one after another. */
struct model_experts {
    uint32_t type;
    const uint8_t *data;
    int64_t rows, cols;
    size_t row_bytes, expert_bytes;
};

/* The tensor `name` with exactly the shape [a, b, c] (unused trailing dims 1), a type with CPU
 * kernels and 4-byte aligned data; NULL with a message naming the tensor otherwise. */
const struct gguf_tensor *tref_need(const struct gguf_file *f, const char *name, int64_t a, int64_t b, int64_t c,
                                    char *err, size_t errlen);
/* A rows x cols matrix (ggml shape [cols, rows]). */
bool tref_mat(struct q_mat *m, const struct gguf_file *f, const char *name, int64_t cols, int64_t rows, char *err,
              size_t errlen);
/* A malloc'd float copy of the [a, b] tensor `name` (a * b values). */
float *tref_floats(const struct gguf_file *f, const char *name, int64_t a, int64_t b, char *err, size_t errlen);
/* n stacked rows x cols expert matrices (ggml shape [cols, rows, n]). */
bool tref_experts(struct model_experts *e, const struct gguf_file *f, const char *name, int64_t cols, int64_t rows,
                  int64_t n, char *err, size_t errlen);

#endif
