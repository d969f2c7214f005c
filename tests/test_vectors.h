/* test_vectors.h: one type's dot-product test vectors in testdata/quants.gguf (T.q, T.act and
 * ggml's T.vec_dot), for the tests that compare kernels with ggml's own results. */
#ifndef MOESERVE_TEST_VECTORS_H
#define MOESERVE_TEST_VECTORS_H

#include <stdio.h>

#include "engine/gguf.h"

struct dot_vectors {
    const struct gguf_tensor *q, *act;   /* weight rows, one activation row */
    const struct gguf_array *vec_dot;    /* ggml's dot of each row with act */
    uint64_t row_bytes;
};

/* Finds type tn's vectors; false if any is missing or they disagree in length. */
static inline bool dot_vectors_find(const struct gguf_file *f, const char *tn, struct dot_vectors *v)
{
    char name[96];
    snprintf(name, sizeof name, "%s.q", tn);
    v->q = gguf_find_tensor(f, name);
    snprintf(name, sizeof name, "%s.act", tn);
    v->act = gguf_find_tensor(f, name);
    snprintf(name, sizeof name, "%s.vec_dot", tn);
    v->vec_dot = gguf_get_arr(f, name, GGUF_F32);
    if (!v->q || !v->act || !v->vec_dot || v->q->ne[1] <= 0 || v->vec_dot->count != (uint64_t)v->q->ne[1])
        return false;
    v->row_bytes = v->q->nbytes / (uint64_t)v->q->ne[1];
    return true;
}

#endif
