/* gguf_write.c: writes GGUF v3 files (tests, fixtures, `moeserve synth`).
 * Metadata is serialised as it is added; tensor data is written from the caller's buffers or streamed. */
#include "engine/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qtypes.h"

struct buf {
    uint8_t *p;
    size_t len, cap;
};

struct w_tensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    const void *data; /* NULL: streamed by the caller */
};

struct gguf_writer {
    struct buf kv;
    uint64_t n_kv;
    struct w_tensor *tensors;
    uint64_t n_tensors, cap_tensors, data_size;
    bool failed;
};

static bool buf_put(struct buf *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return true;
}

static bool put_le(struct buf *b, uint64_t v, int bytes)
{
    uint8_t le[8];
    for (int i = 0; i < bytes; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    return buf_put(b, le, (size_t)bytes);
}

static bool put_str(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    return put_le(b, n, 8) && buf_put(b, s, n);
}

static bool put_f32(struct buf *b, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return put_le(b, bits, 4);
}

struct gguf_writer *gguf_w_new(void)
{
    return calloc(1, sizeof(struct gguf_writer));
}

void gguf_w_free(struct gguf_writer *w)
{
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.p);
    free(w);
}

/* Starts a key/value pair: key and type tag. */
static bool kv_begin(struct gguf_writer *w, const char *key, uint32_t type)
{
    bool ok = !w->failed && put_str(&w->kv, key) && put_le(&w->kv, type, 4);
    w->n_kv += ok;
    return ok;
}

static bool done(struct gguf_writer *w, bool ok)
{
    if (!ok)
        w->failed = true;
    return ok;
}

bool gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v)
{
    return done(w, kv_begin(w, key, GGUF_U32) && put_le(&w->kv, v, 4));
}

bool gguf_w_i32(struct gguf_writer *w, const char *key, int32_t v)
{
    return done(w, kv_begin(w, key, GGUF_I32) && put_le(&w->kv, (uint32_t)v, 4));
}

bool gguf_w_u64(struct gguf_writer *w, const char *key, uint64_t v)
{
    return done(w, kv_begin(w, key, GGUF_U64) && put_le(&w->kv, v, 8));
}

bool gguf_w_f32(struct gguf_writer *w, const char *key, float v)
{
    return done(w, kv_begin(w, key, GGUF_F32) && put_f32(&w->kv, v));
}

bool gguf_w_bool(struct gguf_writer *w, const char *key, bool v)
{
    return done(w, kv_begin(w, key, GGUF_BOOL) && put_le(&w->kv, v ? 1 : 0, 1));
}

bool gguf_w_str(struct gguf_writer *w, const char *key, const char *v)
{
    return done(w, kv_begin(w, key, GGUF_STRING) && put_str(&w->kv, v));
}

static bool arr_begin(struct gguf_writer *w, const char *key, uint32_t elem, uint64_t n)
{
    return kv_begin(w, key, GGUF_ARRAY) && put_le(&w->kv, elem, 4) && put_le(&w->kv, n, 8);
}

bool gguf_w_arr_str(struct gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    bool ok = arr_begin(w, key, GGUF_STRING, n);
    for (uint64_t i = 0; ok && i < n; i++)
        ok = put_str(&w->kv, v[i]);
    return done(w, ok);
}

bool gguf_w_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    bool ok = arr_begin(w, key, GGUF_I32, n);
    for (uint64_t i = 0; ok && i < n; i++)
        ok = put_le(&w->kv, (uint32_t)v[i], 4);
    return done(w, ok);
}

bool gguf_w_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n)
{
    bool ok = arr_begin(w, key, GGUF_F32, n);
    for (uint64_t i = 0; ok && i < n; i++)
        ok = put_f32(&w->kv, v[i]);
    return done(w, ok);
}

static uint64_t align_up(uint64_t v)
{
    return (v + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
}

static bool add_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                       const int64_t *ne, const void *data)
{
    if (w->failed || n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return done(w, false);
    struct w_tensor t = {.type = type, .n_dims = n_dims, .data = data};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (d > 0)
            rows *= (uint64_t)t.ne[d];
    }
    uint64_t row_bytes;
    if (!q_row_bytes(type, (uint64_t)t.ne[0], &row_bytes))
        return done(w, false);
    t.nbytes = row_bytes * rows;
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        struct w_tensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p)
            return done(w, false);
        w->tensors = p;
        w->cap_tensors = cap;
    }
    t.name = strdup(name);
    if (!t.name)
        return done(w, false);
    t.offset = w->data_size;
    w->data_size = align_up(w->data_size + t.nbytes);
    w->tensors[w->n_tensors++] = t;
    return true;
}

bool gguf_w_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                   const int64_t *ne, const void *data)
{
    return add_tensor(w, name, type, n_dims, ne, data);
}

bool gguf_w_tensor_info(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                        const int64_t *ne)
{
    return add_tensor(w, name, type, n_dims, ne, NULL);
}

static bool write_zeros(FILE *out, uint64_t n)
{
    static const uint8_t zeros[GGUF_DEFAULT_ALIGNMENT];
    return n == 0 || fwrite(zeros, 1, n, out) == n;
}

bool gguf_w_write_header(struct gguf_writer *w, FILE *out, char *err, size_t errlen)
{
    if (w->failed) {
        snprintf(err, errlen, "gguf writer: an earlier add failed (bad tensor shape or out of memory)");
        return false;
    }
    struct buf h = {0};
    bool ok = buf_put(&h, "GGUF", 4) && put_le(&h, 3, 4) && put_le(&h, w->n_tensors, 8) &&
              put_le(&h, w->n_kv, 8) && buf_put(&h, w->kv.p, w->kv.len);
    for (uint64_t i = 0; ok && i < w->n_tensors; i++) {
        const struct w_tensor *t = &w->tensors[i];
        ok = put_str(&h, t->name) && put_le(&h, t->n_dims, 4);
        for (uint32_t d = 0; ok && d < t->n_dims; d++)
            ok = put_le(&h, (uint64_t)t->ne[d], 8);
        ok = ok && put_le(&h, t->type, 4) && put_le(&h, t->offset, 8);
    }
    ok = ok && fwrite(h.p, 1, h.len, out) == h.len && write_zeros(out, align_up(h.len) - h.len);
    free(h.p);
    if (!ok)
        snprintf(err, errlen, "gguf writer: %s", errno ? strerror(errno) : "out of memory");
    return ok;
}

bool gguf_w_pad(struct gguf_writer *w, FILE *out, uint64_t written)
{
    (void)w;
    return write_zeros(out, align_up(written) - written);
}

bool gguf_w_write_file(struct gguf_writer *w, const char *path, char *err, size_t errlen)
{
    FILE *out = fopen(path, "wb");
    if (!out) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    bool ok = gguf_w_write_header(w, out, err, errlen);
    for (uint64_t i = 0; ok && i < w->n_tensors; i++) {
        const struct w_tensor *t = &w->tensors[i];
        if (!t->data)
            continue; /* streamed tensors are the caller's to write */
        ok = fwrite(t->data, 1, t->nbytes, out) == t->nbytes && gguf_w_pad(w, out, t->nbytes);
        if (!ok)
            snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
    }
    if (fclose(out) != 0 && ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        ok = false;
    }
    return ok;
}
