/* gguf.h: read-only view of a GGUF v2/v3 file mapped in memory, and a writer.
 * Every length and offset is checked against the mapping; tensor data is never copied. */
#ifndef MOESERVE_GGUF_H
#define MOESERVE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_VTYPE_COUNT = 13
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A string inside the mapping: not NUL-terminated, may hold any bytes. */
struct gguf_str {
    const char *ptr;
    uint64_t len;
};

struct gguf_value;

struct gguf_array {
    uint32_t elem_type;          /* enum gguf_vtype */
    uint64_t count;
    const uint8_t *data;         /* fixed-size elements: little-endian, possibly unaligned */
    struct gguf_str *strs;       /* elem_type == GGUF_STRING: count entries */
    struct gguf_value *items;    /* elem_type == GGUF_ARRAY: count nested arrays */
};

struct gguf_value {
    uint32_t type;               /* enum gguf_vtype */
    union {
        uint64_t u;              /* U8..U64, BOOL (0/1) */
        int64_t i;               /* I8..I64 */
        double f;                /* F32, F64 */
        struct gguf_str s;
        struct gguf_array a;
    };
};

struct gguf_kv {
    const char *key;             /* NUL-terminated copy */
    uint64_t offset;             /* file offset where the pair starts */
    struct gguf_value val;
};

struct gguf_tensor {
    const char *name;            /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];   /* ggml order: ne[0] is the row length; unused dims are 1 */
    uint32_t type;               /* enum q_type */
    uint64_t offset;             /* relative to the data section */
    uint64_t nbytes;
    const void *data;            /* inside the mapping */
    uint64_t info_offset;        /* file offset of its tensor info */
};

struct gguf_file {
    const uint8_t *map;          /* whole file */
    size_t size;
    bool owns_map;               /* true when gguf_open mmap'd it */
    uint32_t version;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;        /* start of the tensor data section */
    char *path;                  /* for messages */
    void *index;                 /* private: name lookup tables */
};

/* Maps and validates `path`. Returns NULL and writes a one-line message naming the file,
 * the byte offset and the key or tensor at fault into err. */
struct gguf_file *gguf_open(const char *path, char *err, size_t errlen);

/* Same for a buffer the caller keeps alive while the result is used (tests, fuzzing). */
struct gguf_file *gguf_parse(const void *buf, size_t size, const char *label,
                             char *err, size_t errlen);

void gguf_close(struct gguf_file *f);

const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key);
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f, const char *name);

/* Typed getters: true when the key exists and converts losslessly to the asked type
 * (any integer type for ints, F32/F64 or integer for floats). */
bool gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f64(const struct gguf_file *f, const char *key, double *out);
bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out);
/* String value as a NUL-terminated malloc'd copy (caller frees); NULL if absent or not a string. */
char *gguf_get_str_dup(const struct gguf_file *f, const char *key);
/* Array value of the given element type, or NULL. */
const struct gguf_array *gguf_get_arr(const struct gguf_file *f, const char *key, uint32_t elem_type);

/* Element i of a fixed-size array as a decoded value (type stays elem_type; an index out of
 * range or a string/array element gives a zeroed value). */
struct gguf_value gguf_arr_elem(const struct gguf_array *a, uint64_t i);
/* Element i of a fixed-size numeric array as double/int64 (caller checks i < count). */
double gguf_arr_f64(const struct gguf_array *a, uint64_t i);
int64_t gguf_arr_i64(const struct gguf_array *a, uint64_t i);

const char *gguf_vtype_name(uint32_t t);

/* Number of elements of a tensor. */
int64_t gguf_tensor_nelements(const struct gguf_tensor *t);

/* ------------------------------------------------------------------ writer --- */

/* Builds a GGUF v3 file in memory, then writes it in one go (tests, synth).
 * Large tensor payloads can be streamed: declare them with gguf_w_add_tensor_info and write
 * their bytes after gguf_w_write_header, in declaration order, padded to the alignment. */
struct gguf_writer;

struct gguf_writer *gguf_w_new(void);
void gguf_w_free(struct gguf_writer *w);
/* Each adder returns false on allocation failure (then the writer is unusable). */
bool gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v);
bool gguf_w_i32(struct gguf_writer *w, const char *key, int32_t v);
bool gguf_w_u64(struct gguf_writer *w, const char *key, uint64_t v);
bool gguf_w_f32(struct gguf_writer *w, const char *key, float v);
bool gguf_w_bool(struct gguf_writer *w, const char *key, bool v);
bool gguf_w_str(struct gguf_writer *w, const char *key, const char *v);
bool gguf_w_arr_str(struct gguf_writer *w, const char *key, const char *const *v, uint64_t n);
bool gguf_w_arr_i32(struct gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
bool gguf_w_arr_f32(struct gguf_writer *w, const char *key, const float *v, uint64_t n);
/* Tensor with its data held by the caller until gguf_w_write_file returns. */
bool gguf_w_tensor(struct gguf_writer *w, const char *name, uint32_t type,
                   uint32_t n_dims, const int64_t *ne, const void *data);
/* Tensor whose data the caller streams after gguf_w_write_header. */
bool gguf_w_tensor_info(struct gguf_writer *w, const char *name, uint32_t type,
                        uint32_t n_dims, const int64_t *ne);
/* Writes header + metadata + tensor infos + padding; with all-data tensors also the data. */
bool gguf_w_write_file(struct gguf_writer *w, const char *path, char *err, size_t errlen);
bool gguf_w_write_header(struct gguf_writer *w, FILE *out, char *err, size_t errlen);
/* Pads `out` after one streamed tensor's bytes to the alignment. */
bool gguf_w_pad(struct gguf_writer *w, FILE *out, uint64_t written);

#endif
