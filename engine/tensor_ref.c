/* tensor_ref.c: tensor lookups for the model loaders (engine/tensor_ref.h). Weights stay in the
 * mapping (zero copy); only small vectors are copied out, so the forward passes can use them as
 * plain float arrays whatever the file's alignment. */
#include "engine/tensor_ref.h"

#include <stdio.h>
#include <stdlib.h>

#include "kernels/quants.h"

const struct gguf_tensor *tref_need(const struct gguf_file *f, const char *name, int64_t a, int64_t b, int64_t c,
                                    char *err, size_t errlen)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        snprintf(err, errlen, "%s: tensor '%s' is missing", f->path, name);
        return NULL;
    }
    if (t->ne[0] != a || t->ne[1] != b || t->ne[2] != c || t->ne[3] != 1) {
        snprintf(err, errlen, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld]", f->path,
                 name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                 (long long)a, (long long)b, (long long)c);
        return NULL;
    }
    const struct q_kernels *k = q_kernels_get(t->type);
    if (!k || !k->dequant || !k->dot) {
        const struct q_traits *tr = q_type_traits(t->type);
        snprintf(err, errlen, "%s: tensor '%s' has type %s, which has no CPU kernels", f->path, name,
                 tr ? tr->name : "unknown");
        return NULL;
    }
    if ((uintptr_t)t->data % 4) {
        snprintf(err, errlen, "%s: tensor '%s' data is not 4-byte aligned", f->path, name);
        return NULL;
    }
    return t;
}

bool tref_mat(struct q_mat *m, const struct gguf_file *f, const char *name, int64_t cols, int64_t rows, char *err,
              size_t errlen)
{
    const struct gguf_tensor *t = tref_need(f, name, cols, rows, 1, err, errlen);
    if (t && !q_mat_init(m, t->type, t->data, rows, cols)) {
        snprintf(err, errlen, "%s: tensor '%s': rows of %lld values are not whole blocks of its type", f->path, name,
                 (long long)cols);
        return false;
    }
    return t != NULL;
}

float *tref_floats(const struct gguf_file *f, const char *name, int64_t a, int64_t b, char *err, size_t errlen)
{
    const struct gguf_tensor *t = tref_need(f, name, a, b, 1, err, errlen);
    if (!t)
        return NULL;
    float *v = malloc((size_t)(a * b) * sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q_kernels_get(t->type)->dequant(t->data, v, a * b);
    return v;
}

bool tref_experts(struct model_experts *e, const struct gguf_file *f, const char *name, int64_t cols, int64_t rows,
                  int64_t n, char *err, size_t errlen)
{
    const struct gguf_tensor *t = tref_need(f, name, cols, rows, n, err, errlen);
    if (!t)
        return false;
    uint64_t rb;
    q_row_bytes(t->type, (uint64_t)cols, &rb);
    *e = (struct model_experts){.type = t->type, .data = t->data, .rows = rows, .cols = cols, .row_bytes = (size_t)rb,
                                .expert_bytes = (size_t)rb * (size_t)rows};
    return true;
}
