/* gguf.c: parses and validates a GGUF v2/v3 file mapped in memory (engine/gguf.h).
 * Untrusted input: every count, length and offset is checked before it is used. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/qtypes.h"

#define GGUF_MAX_ARRAY_DEPTH 8

/* ------------------------------------------------------------ name index --- */

/* Open-addressing hash of names -> index, used for lookups and duplicate detection. */
struct name_index {
    uint64_t cap;          /* power of two */
    int64_t *slots;        /* -1 empty, else index into names */
    const char *const *names;
};

struct gguf_index {
    struct name_index kv, tensors;
    const char **kv_names, **tensor_names;
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static bool index_init(struct name_index *ix, uint64_t n, const char *const *names)
{
    ix->cap = 16;
    while (ix->cap < 2 * n)
        ix->cap *= 2;
    ix->slots = malloc(ix->cap * sizeof *ix->slots);
    if (!ix->slots)
        return false;
    memset(ix->slots, 0xff, ix->cap * sizeof *ix->slots);
    ix->names = names;
    return true;
}

/* Inserts names[i]; returns the index of an earlier equal name, or -1. */
static int64_t index_insert(struct name_index *ix, int64_t i)
{
    uint64_t m = ix->cap - 1, h = name_hash(ix->names[i]) & m;
    while (ix->slots[h] >= 0) {
        if (strcmp(ix->names[ix->slots[h]], ix->names[i]) == 0)
            return ix->slots[h];
        h = (h + 1) & m;
    }
    ix->slots[h] = i;
    return -1;
}

static int64_t index_find(const struct name_index *ix, const char *name)
{
    if (!ix->slots)
        return -1;
    uint64_t m = ix->cap - 1, h = name_hash(name) & m;
    while (ix->slots[h] >= 0) {
        if (strcmp(ix->names[ix->slots[h]], name) == 0)
            return ix->slots[h];
        h = (h + 1) & m;
    }
    return -1;
}

/* ---------------------------------------------------------------- cursor --- */

struct cursor {
    const uint8_t *base;
    size_t size, pos;
    const char *label;
    char *err;
    size_t errlen;
    bool failed;
};

static void fail(struct cursor *c, uint64_t at, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    int n = snprintf(c->err, c->errlen, "%s: offset %llu: ", c->label, (unsigned long long)at);
    if (n < 0 || (size_t)n >= c->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static bool need(struct cursor *c, uint64_t n, const char *what)
{
    if (c->failed)
        return false;
    if (n > c->size - c->pos) {
        fail(c, c->pos, "%s: needs %llu bytes but the file ends at %zu (truncated)", what,
             (unsigned long long)n, c->size);
        return false;
    }
    return true;
}

static uint64_t read_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool rd_u32(struct cursor *c, uint32_t *v, const char *what)
{
    if (!need(c, 4, what))
        return false;
    *v = (uint32_t)read_le(c->base + c->pos, 4);
    c->pos += 4;
    return true;
}

static bool rd_u64(struct cursor *c, uint64_t *v, const char *what)
{
    if (!need(c, 8, what))
        return false;
    *v = read_le(c->base + c->pos, 8);
    c->pos += 8;
    return true;
}

static bool rd_str(struct cursor *c, struct gguf_str *s, const char *what)
{
    uint64_t at = c->pos, len;
    if (!rd_u64(c, &len, what))
        return false;
    if (len > c->size - c->pos) {
        fail(c, at, "%s: string length %llu runs past the end of the file (%zu bytes)", what,
             (unsigned long long)len, c->size);
        return false;
    }
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return true;
}

/* A key or tensor name: a NUL-terminated copy; NUL bytes inside are rejected. */
static char *dup_name(struct cursor *c, uint64_t at, const struct gguf_str *s, const char *what)
{
    if (s->len == 0) {
        fail(c, at, "%s is empty", what);
        return NULL;
    }
    if (memchr(s->ptr, 0, s->len)) {
        fail(c, at, "%s contains a NUL byte", what);
        return NULL;
    }
    char *d = malloc(s->len + 1);
    if (!d) {
        fail(c, at, "out of memory");
        return NULL;
    }
    memcpy(d, s->ptr, s->len);
    d[s->len] = 0;
    return d;
}

/* ---------------------------------------------------------------- values --- */

static const uint8_t scalar_size[GGUF_VTYPE_COUNT] = {
    [GGUF_U8] = 1, [GGUF_I8] = 1, [GGUF_U16] = 2, [GGUF_I16] = 2, [GGUF_U32] = 4,
    [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1, [GGUF_U64] = 8, [GGUF_I64] = 8,
    [GGUF_F64] = 8,
};

static const char *const vtype_names[GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *gguf_vtype_name(uint32_t t)
{
    return t < GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

static int64_t sign_extend(uint64_t v, int bytes)
{
    if (bytes == 8)
        return (int64_t)v;
    uint64_t sign = 1ULL << (bytes * 8 - 1);
    return (int64_t)((v ^ sign) - sign);
}

static double float_from_bits(uint64_t bits, int bytes)
{
    if (bytes == 4) {
        uint32_t b = (uint32_t)bits;
        float f;
        memcpy(&f, &b, 4);
        return f;
    }
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* Decodes a fixed-size scalar of type t at p into v. */
static void decode_scalar(uint32_t t, const uint8_t *p, struct gguf_value *v)
{
    int bytes = scalar_size[t];
    uint64_t raw = read_le(p, bytes);
    v->type = t;
    switch (t) {
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        v->i = sign_extend(raw, bytes);
        break;
    case GGUF_F32: case GGUF_F64:
        v->f = float_from_bits(raw, bytes);
        break;
    case GGUF_BOOL:
        v->u = raw != 0;
        break;
    default:
        v->u = raw;
    }
}

struct gguf_value gguf_arr_elem(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = {.type = a->elem_type};
    if (a->elem_type < GGUF_VTYPE_COUNT && scalar_size[a->elem_type] && i < a->count)
        decode_scalar(a->elem_type, a->data + i * scalar_size[a->elem_type], &v);
    return v;
}

static bool read_value(struct cursor *c, uint32_t type, struct gguf_value *v, const char *key,
                       int depth);

static bool read_array(struct cursor *c, struct gguf_array *a, const char *key, int depth)
{
    uint64_t at = c->pos;
    if (!rd_u32(c, &a->elem_type, key) || !rd_u64(c, &a->count, key))
        return false;
    if (a->elem_type >= GGUF_VTYPE_COUNT) {
        fail(c, at, "key '%s': unknown array element type %u", key, a->elem_type);
        return false;
    }
    if (a->elem_type == GGUF_ARRAY && depth >= GGUF_MAX_ARRAY_DEPTH) {
        fail(c, at, "key '%s': arrays nested deeper than %d", key, GGUF_MAX_ARRAY_DEPTH);
        return false;
    }
    /* Every element takes at least this many bytes, which bounds count by the file size. */
    uint64_t min_elem = a->elem_type == GGUF_STRING ? 8 : a->elem_type == GGUF_ARRAY ? 12
                                                                                     : scalar_size[a->elem_type];
    if (a->count > (c->size - c->pos) / min_elem) {
        fail(c, at, "key '%s': array of %llu %s elements runs past the end of the file", key,
             (unsigned long long)a->count, gguf_vtype_name(a->elem_type));
        return false;
    }
    a->data = c->base + c->pos;
    if (a->elem_type == GGUF_STRING) {
        a->strs = malloc((a->count ? a->count : 1) * sizeof *a->strs);
        if (!a->strs) {
            fail(c, at, "key '%s': out of memory for %llu strings", key, (unsigned long long)a->count);
            return false;
        }
        for (uint64_t i = 0; i < a->count; i++)
            if (!rd_str(c, &a->strs[i], key))
                return false;
    } else if (a->elem_type == GGUF_ARRAY) {
        a->items = calloc(a->count ? a->count : 1, sizeof *a->items);
        if (!a->items) {
            fail(c, at, "key '%s': out of memory for %llu arrays", key, (unsigned long long)a->count);
            return false;
        }
        for (uint64_t i = 0; i < a->count; i++)
            if (!read_value(c, GGUF_ARRAY, &a->items[i], key, depth + 1))
                return false;
    } else {
        c->pos += a->count * min_elem;
    }
    return true;
}

static bool read_value(struct cursor *c, uint32_t type, struct gguf_value *v, const char *key,
                       int depth)
{
    v->type = type;
    if (type == GGUF_STRING)
        return rd_str(c, &v->s, key);
    if (type == GGUF_ARRAY)
        return read_array(c, &v->a, key, depth);
    if (!need(c, scalar_size[type], key))
        return false;
    decode_scalar(type, c->base + c->pos, v);
    c->pos += scalar_size[type];
    return true;
}

static void free_value(struct gguf_value *v)
{
    if (v->type != GGUF_ARRAY)
        return;
    free(v->a.strs);
    if (v->a.items) {
        for (uint64_t i = 0; i < v->a.count; i++)
            free_value(&v->a.items[i]);
        free(v->a.items);
    }
}

/* ------------------------------------------------------------- sections --- */

static bool parse_header(struct cursor *c, struct gguf_file *f)
{
    if (!need(c, 4, "magic"))
        return false;
    if (memcmp(c->base, "GGUF", 4) != 0) {
        fail(c, 0, "bad magic: not a GGUF file");
        return false;
    }
    c->pos = 4;
    if (!rd_u32(c, &f->version, "version"))
        return false;
    if (f->version != 2 && f->version != 3) {
        fail(c, 4, "unsupported GGUF version %u (2 and 3 are supported)", f->version);
        return false;
    }
    if (!rd_u64(c, &f->n_tensors, "tensor count") || !rd_u64(c, &f->n_kv, "metadata count"))
        return false;
    /* A metadata pair is at least 13 bytes and a tensor info at least 29: bound the counts. */
    uint64_t room = c->size - c->pos;
    if (f->n_kv > room / 13) {
        fail(c, 16, "metadata count %llu is impossible for a %zu-byte file",
             (unsigned long long)f->n_kv, c->size);
        return false;
    }
    if (f->n_tensors > room / 29) {
        fail(c, 8, "tensor count %llu is impossible for a %zu-byte file",
             (unsigned long long)f->n_tensors, c->size);
        return false;
    }
    return true;
}

static bool parse_kv(struct cursor *c, struct gguf_file *f, struct gguf_index *ix)
{
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    ix->kv_names = calloc(f->n_kv ? f->n_kv : 1, sizeof *ix->kv_names);
    if (!f->kv || !ix->kv_names || !index_init(&ix->kv, f->n_kv, ix->kv_names)) {
        fail(c, c->pos, "out of memory for %llu metadata pairs", (unsigned long long)f->n_kv);
        return false;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        struct gguf_kv *kv = &f->kv[i];
        struct gguf_str key;
        uint32_t type;
        kv->offset = c->pos;
        if (!rd_str(c, &key, "metadata key"))
            return false;
        kv->key = ix->kv_names[i] = dup_name(c, kv->offset, &key, "metadata key");
        if (!kv->key)
            return false;
        uint64_t type_at = c->pos;
        if (!rd_u32(c, &type, kv->key))
            return false;
        if (type >= GGUF_VTYPE_COUNT) {
            fail(c, type_at, "key '%s': unknown value type %u", kv->key, type);
            return false;
        }
        if (!read_value(c, type, &kv->val, kv->key, 0))
            return false;
        if (index_insert(&ix->kv, (int64_t)i) >= 0) {
            fail(c, kv->offset, "duplicate metadata key '%s'", kv->key);
            return false;
        }
    }
    return true;
}

static bool parse_alignment(struct cursor *c, struct gguf_file *f)
{
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *kv = gguf_find_kv(f, "general.alignment");
    if (!kv)
        return true;
    if (kv->val.type != GGUF_U32) {
        fail(c, kv->offset, "key 'general.alignment' has type %s, expected u32",
             gguf_vtype_name(kv->val.type));
        return false;
    }
    uint64_t a = kv->val.u;
    if (a == 0 || (a & (a - 1)) != 0) {
        fail(c, kv->offset, "key 'general.alignment' = %llu is not a power of two",
             (unsigned long long)a);
        return false;
    }
    f->alignment = a;
    return true;
}

static bool tensor_shape(struct cursor *c, struct gguf_tensor *t)
{
    const struct q_traits *tr = q_type_traits(t->type);
    if (!tr) {
        fail(c, t->info_offset, "tensor '%s': unknown tensor type %u", t->name, t->type);
        return false;
    }
    uint64_t nel = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        if (t->ne[d] < 0 || (t->ne[d] > 0 && nel > (uint64_t)INT64_MAX / (uint64_t)t->ne[d])) {
            fail(c, t->info_offset, "tensor '%s': dimension %u = %lld is negative or overflows",
                 t->name, d, (long long)t->ne[d]);
            return false;
        }
        nel *= (uint64_t)t->ne[d];
    }
    uint64_t row_bytes;
    if (!q_row_bytes(t->type, (uint64_t)t->ne[0], &row_bytes)) {
        fail(c, t->info_offset, "tensor '%s': row length %lld is not a multiple of %s's block size %u",
             t->name, (long long)t->ne[0], tr->name, tr->block_size);
        return false;
    }
    uint64_t rows = t->ne[0] ? nel / (uint64_t)t->ne[0] : 0;
    if (rows && row_bytes > UINT64_MAX / rows) {
        fail(c, t->info_offset, "tensor '%s': byte size overflows", t->name);
        return false;
    }
    t->nbytes = row_bytes * rows;
    return true;
}

static bool parse_tensor_info(struct cursor *c, struct gguf_tensor *t, const char **name_slot)
{
    struct gguf_str name;
    t->info_offset = c->pos;
    if (!rd_str(c, &name, "tensor name"))
        return false;
    t->name = *name_slot = dup_name(c, t->info_offset, &name, "tensor name");
    if (!t->name)
        return false;
    uint64_t dims_at = c->pos;
    if (!rd_u32(c, &t->n_dims, t->name))
        return false;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
        fail(c, dims_at, "tensor '%s': %u dimensions (1 to %d allowed)", t->name, t->n_dims,
             GGUF_MAX_DIMS);
        return false;
    }
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < t->n_dims && !rd_u64(c, &v, t->name))
            return false;
        if (v > (uint64_t)INT64_MAX) {
            fail(c, dims_at, "tensor '%s': dimension %u = %llu is too large", t->name, d,
                 (unsigned long long)v);
            return false;
        }
        t->ne[d] = (int64_t)v;
    }
    return rd_u32(c, &t->type, t->name) && rd_u64(c, &t->offset, t->name) && tensor_shape(c, t);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Tensor data must be aligned, inside the file, and not overlap another tensor. */
static bool place_tensors(struct cursor *c, struct gguf_file *f)
{
    uint64_t end = c->pos, pad = (f->alignment - end % f->alignment) % f->alignment;
    f->data_offset = end + pad;
    if (f->n_tensors > 0 && f->data_offset > c->size) {
        fail(c, end, "tensor data section starts at %llu, past the end of the file (%zu bytes)",
             (unsigned long long)f->data_offset, c->size);
        return false;
    }
    uint64_t room = f->data_offset <= c->size ? c->size - f->data_offset : 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment != 0) {
            fail(c, t->info_offset, "tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                 t->name, (unsigned long long)t->offset, (unsigned long long)f->alignment);
            return false;
        }
        if (t->offset > room || t->nbytes > room - t->offset) {
            fail(c, t->info_offset, "tensor '%s': data [%llu, +%llu) lies outside the file's data section (%llu bytes)",
                 t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                 (unsigned long long)room);
            return false;
        }
        t->data = c->base + f->data_offset + t->offset;
    }
    struct gguf_tensor **order = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *order);
    if (!order) {
        fail(c, end, "out of memory");
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, cmp_by_offset);
    bool ok = true;
    for (uint64_t i = 1; i < f->n_tensors && ok; i++) {
        const struct gguf_tensor *a = order[i - 1], *b = order[i];
        if (a->offset + a->nbytes > b->offset) {
            fail(c, b->info_offset, "tensor '%s' overlaps tensor '%s' in the data section", b->name,
                 a->name);
            ok = false;
        }
    }
    free(order);
    return ok;
}

static bool parse_tensors(struct cursor *c, struct gguf_file *f, struct gguf_index *ix)
{
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    ix->tensor_names = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *ix->tensor_names);
    if (!f->tensors || !ix->tensor_names ||
        !index_init(&ix->tensors, f->n_tensors, ix->tensor_names)) {
        fail(c, c->pos, "out of memory for %llu tensors", (unsigned long long)f->n_tensors);
        return false;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (!parse_tensor_info(c, &f->tensors[i], &ix->tensor_names[i]))
            return false;
        if (index_insert(&ix->tensors, (int64_t)i) >= 0) {
            fail(c, f->tensors[i].info_offset, "duplicate tensor name '%s'", f->tensors[i].name);
            return false;
        }
    }
    return place_tensors(c, f);
}

/* ------------------------------------------------------------- open/close --- */

struct gguf_file *gguf_parse(const void *buf, size_t size, const char *label, char *err,
                             size_t errlen)
{
    struct cursor c = {.base = buf, .size = size, .label = label ? label : "gguf", .err = err,
                       .errlen = errlen};
    struct gguf_file *f = calloc(1, sizeof *f);
    struct gguf_index *ix = calloc(1, sizeof *ix);
    char *path = strdup(c.label);
    if (!f || !ix || !path) {
        free(f);
        free(ix);
        free(path);
        snprintf(err, errlen, "%s: out of memory", c.label);
        return NULL;
    }
    f->map = buf;
    f->size = size;
    f->index = ix;
    f->path = path;
    c.label = f->path;
    if (parse_header(&c, f) && parse_kv(&c, f, ix) && parse_alignment(&c, f) &&
        parse_tensors(&c, f, ix))
        return f;
    if (!c.failed)
        snprintf(err, errlen, "%s: invalid GGUF file", c.label);
    gguf_close(f);
    return NULL;
}

struct gguf_file *gguf_open(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        snprintf(err, errlen, "%s: offset 0: empty file", path);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        return NULL;
    }
    struct gguf_file *f = gguf_parse(map, size, path, err, errlen);
    if (!f) {
        munmap(map, size);
        return NULL;
    }
    f->owns_map = true;
    return f;
}

void gguf_close(struct gguf_file *f)
{
    if (!f)
        return;
    struct gguf_index *ix = f->index;
    if (f->kv) {
        for (uint64_t i = 0; i < f->n_kv; i++) {
            free((char *)f->kv[i].key);
            free_value(&f->kv[i].val);
        }
    }
    if (f->tensors)
        for (uint64_t i = 0; i < f->n_tensors; i++)
            free((char *)f->tensors[i].name);
    if (ix) {
        free(ix->kv.slots);
        free(ix->tensors.slots);
        free(ix->kv_names);
        free(ix->tensor_names);
        free(ix);
    }
    if (f->owns_map)
        munmap((void *)f->map, f->size);
    free(f->kv);
    free(f->tensors);
    free(f->path);
    free(f);
}

/* --------------------------------------------------------------- lookups --- */

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key)
{
    const struct gguf_index *ix = f->index;
    int64_t i = index_find(&ix->kv, key);
    return i >= 0 ? &f->kv[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name)
{
    const struct gguf_index *ix = f->index;
    int64_t i = index_find(&ix->tensors, name);
    return i >= 0 ? &f->tensors[i] : NULL;
}

int64_t gguf_tensor_nelements(const struct gguf_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
