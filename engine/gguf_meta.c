/* gguf_meta.c: typed access to GGUF metadata values and array elements.
 * Conversions succeed only when lossless, so a u64 key holding 2^40 never reads as a u32. */
#include "engine/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_unsigned(uint32_t t)
{
    return t == GGUF_U8 || t == GGUF_U16 || t == GGUF_U32 || t == GGUF_U64 || t == GGUF_BOOL;
}

static bool is_signed(uint32_t t)
{
    return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}

bool gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (is_unsigned(kv->val.type) && kv->val.type != GGUF_BOOL) {
        *out = kv->val.u;
        return true;
    }
    if (is_signed(kv->val.type) && kv->val.i >= 0) {
        *out = (uint64_t)kv->val.i;
        return true;
    }
    return false;
}

bool gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out)
{
    uint64_t v;
    if (!gguf_get_u64(f, key, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool gguf_get_i64(const struct gguf_file *f, const char *key, int64_t *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (is_signed(kv->val.type)) {
        *out = kv->val.i;
        return true;
    }
    if (is_unsigned(kv->val.type) && kv->val.type != GGUF_BOOL && kv->val.u <= INT64_MAX) {
        *out = (int64_t)kv->val.u;
        return true;
    }
    return false;
}

bool gguf_get_f64(const struct gguf_file *f, const char *key, double *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return false;
    if (kv->val.type == GGUF_F32 || kv->val.type == GGUF_F64) {
        *out = kv->val.f;
        return true;
    }
    int64_t i;
    if (gguf_get_i64(f, key, &i)) {
        *out = (double)i;
        return true;
    }
    return false;
}

bool gguf_get_f32(const struct gguf_file *f, const char *key, float *out)
{
    double d;
    if (!gguf_get_f64(f, key, &d) || !isfinite(d))
        return false;
    *out = (float)d;
    return true;
}

bool gguf_get_bool(const struct gguf_file *f, const char *key, bool *out)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->val.type != GGUF_BOOL)
        return false;
    *out = kv->val.u != 0;
    return true;
}

char *gguf_get_str_dup(const struct gguf_file *f, const char *key)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->val.type != GGUF_STRING)
        return NULL;
    char *s = malloc(kv->val.s.len + 1);
    if (!s)
        return NULL;
    memcpy(s, kv->val.s.ptr, kv->val.s.len);
    s[kv->val.s.len] = 0;
    return s;
}

const struct gguf_array *gguf_get_arr(const struct gguf_file *f, const char *key,
                                      uint32_t elem_type)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv || kv->val.type != GGUF_ARRAY || kv->val.a.elem_type != elem_type)
        return NULL;
    return &kv->val.a;
}

double gguf_arr_f64(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = gguf_arr_elem(a, i);
    if (v.type == GGUF_F32 || v.type == GGUF_F64)
        return v.f;
    return is_signed(v.type) ? (double)v.i : (double)v.u;
}

int64_t gguf_arr_i64(const struct gguf_array *a, uint64_t i)
{
    struct gguf_value v = gguf_arr_elem(a, i);
    if (v.type == GGUF_F32 || v.type == GGUF_F64)
        return (int64_t)v.f;
    return is_signed(v.type) ? v.i : (int64_t)v.u;
}
