/* jinja_value.c: the interpreter's runtime values with Python semantics: conversion from
 * JSON, truthiness, equality and ordering, str()/repr(), float repr, json.dumps, lookup. */
#include "server/jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jv jv_undef(const char *msg) { return (jv){.kind = JV_UNDEF, .undef = msg}; }
jv jv_none(void) { return (jv){.kind = JV_NONE}; }
jv jv_bool(bool b) { return (jv){.kind = JV_BOOL, .b = b}; }
jv jv_int(int64_t i) { return (jv){.kind = JV_INT, .i = i}; }
jv jv_float(double f) { return (jv){.kind = JV_FLOAT, .f = f}; }
jv jv_str(const char *p, size_t n) { return (jv){.kind = JV_STR, .s = {p ? p : "", n}}; }
jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }
jv jv_buf(jbuf *b) { return jv_str(b->p, b->n); }
jv jv_list(jlist *l) { return (jv){.kind = JV_LIST, .list = l}; }
jv jv_dict(jdict *d) { return (jv){.kind = JV_DICT, .dict = d}; }

jlist *jl_new(jctx *c, size_t cap)
{
    jlist *l = jalloc(c, sizeof *l);
    if (cap) {
        l->v = jalloc(c, cap * sizeof *l->v);
        l->cap = cap;
    }
    return l;
}

void jl_push(jctx *c, jlist *l, jv v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *m = jalloc(c, cap * sizeof *m);
        if (l->n)
            memcpy(m, l->v, l->n * sizeof *m);
        l->v = m;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

jdict *jd_new(jctx *c, size_t cap)
{
    jdict *d = jalloc(c, sizeof *d);
    if (cap) {
        d->k = jalloc(c, cap * sizeof *d->k);
        d->v = jalloc(c, cap * sizeof *d->v);
        d->cap = cap;
    }
    return d;
}

jv *jd_get(const jdict *d, jv key)
{
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], key))
            return &d->v[i];
    return NULL;
}

jv *jd_gets(const jdict *d, const char *p, size_t n)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].kind == JV_STR && d->k[i].s.n == n && memcmp(d->k[i].s.p, p, n) == 0)
            return &d->v[i];
    return NULL;
}

void jd_set(jctx *c, jdict *d, jv key, jv val)
{
    jv *slot = jd_get(d, key);
    if (slot) {
        *slot = val;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *k = jalloc(c, cap * sizeof *k), *v = jalloc(c, cap * sizeof *v);
        if (d->n) {
            memcpy(k, d->k, d->n * sizeof *k);
            memcpy(v, d->v, d->n * sizeof *v);
        }
        d->k = k;
        d->v = v;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
}

/* JSON strings are referenced, not copied: the caller's json_t outlives the render. */
jv jv_from_json(jctx *c, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jdict *d = jd_new(c, json_object_size(j));
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            d->k[d->n] = jv_str(json_object_iter_key(it), json_object_iter_key_len(it));
            d->v[d->n++] = jv_from_json(c, json_object_iter_value(it));
        }
        return jv_dict(d);
    }
    case JSON_ARRAY: {
        jlist *l = jl_new(c, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            l->v[l->n++] = jv_from_json(c, json_array_get(j, i));
        return jv_list(l);
    }
    case JSON_STRING: return jv_str(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return jv_int(json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    default: return jv_none();
    }
}

bool jv_truthy(jv v)
{
    switch (v.kind) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0.0;
    case JV_STR: return v.s.n > 0;
    case JV_LIST: return v.list->n > 0 || (v.flags & JVF_GEN);
    case JV_DICT: return v.dict->n > 0;
    default: return true;
    }
}

bool jv_is_str(jv v) { return v.kind == JV_STR; }
bool jv_is_num(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
double jv_num(jv v)
{
    return v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : v.kind == JV_BOOL ? v.b : 0;
}

/* Python ==, recursing into containers; bounded so absurdly deep values raise
 * RecursionError (or, without a context to fail on, compare unequal) instead of
 * exhausting the stack. */
static bool eq_rec(jctx *c, jv a, jv b, int depth)
{
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT)
            return (a.kind == JV_INT ? a.i : a.b) == (b.kind == JV_INT ? b.i : b.b);
        return jv_num(a) == jv_num(b);
    }
    if (a.kind != b.kind)
        return false;
    if ((a.kind == JV_LIST || a.kind == JV_DICT) && depth > JINJA_MAX_DEPTH) {
        if (c)
            jfail(c, "RecursionError", "maximum recursion depth exceeded in comparison");
        return false;
    }
    switch (a.kind) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.s.n == b.s.n && memcmp(a.s.p, b.s.p, a.s.n) == 0;
    case JV_LIST:
        if ((a.flags | b.flags) & (JVF_GEN | JVF_VIEW))
            return a.list == b.list;
        if ((a.flags & JVF_TUPLE) != (b.flags & JVF_TUPLE) || a.list->n != b.list->n)
            return false;
        for (size_t i = 0; i < a.list->n; i++)
            if (!eq_rec(c, a.list->v[i], b.list->v[i], depth + 1))
                return false;
        return true;
    case JV_DICT:
        if (a.dict->n != b.dict->n)
            return false;
        for (size_t i = 0; i < a.dict->n; i++) {
            jv *o = jd_get(b.dict, a.dict->k[i]);
            if (!o || !eq_rec(c, a.dict->v[i], *o, depth + 1))
                return false;
        }
        return true;
    case JV_NS: return a.dict == b.dict;
    case JV_MACRO: return a.macro == b.macro;
    case JV_FUNC: return a.func == b.func;
    case JV_LOOP: return a.loop == b.loop;
    default: return false;
    }
}

bool jv_eq(jv a, jv b) { return eq_rec(NULL, a, b, 0); }
bool jv_equal(jctx *c, jv a, jv b) { return eq_rec(c, a, b, 0); }

static void fail_undefined(jctx *c, jv v)
{
    jfail(c, "UndefinedError", "%s", v.undef ? v.undef : "value is undefined");
}

static int compare_rec(jctx *c, jv a, jv b, const char *opname, int depth)
{
    if (a.kind == JV_UNDEF)
        fail_undefined(c, a);
    if (b.kind == JV_UNDEF)
        fail_undefined(c, b);
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
            int64_t x = a.kind == JV_INT ? a.i : a.b, y = b.kind == JV_INT ? b.i : b.b;
            return (x > y) - (x < y);
        }
        double x = jv_num(a), y = jv_num(b);
        return (x > y) - (x < y);
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        size_t n = a.s.n < b.s.n ? a.s.n : b.s.n;
        int r = memcmp(a.s.p, b.s.p, n);
        if (r)
            return r;
        return (a.s.n > b.s.n) - (a.s.n < b.s.n);
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.flags == b.flags && !(a.flags & (JVF_GEN | JVF_VIEW))) {
        if (depth > JINJA_MAX_DEPTH)
            jfail(c, "RecursionError", "maximum recursion depth exceeded in comparison");
        for (size_t i = 0; i < a.list->n && i < b.list->n; i++)
            if (!eq_rec(c, a.list->v[i], b.list->v[i], depth + 1))
                return compare_rec(c, a.list->v[i], b.list->v[i], opname, depth + 1);
        return (a.list->n > b.list->n) - (a.list->n < b.list->n);
    }
    jfail(c, "TypeError", "'%s' not supported between instances of '%s' and '%s'", opname,
          jv_type(a), jv_type(b));
}

int jv_compare(jctx *c, jv a, jv b, const char *opname) { return compare_rec(c, a, b, opname, 0); }

const char *jv_type(jv v)
{
    switch (v.kind) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST:
        return v.flags & JVF_GEN ? "generator" : v.flags & JVF_VIEW ? v.list->view
             : v.flags & JVF_TUPLE ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "function";
    case JV_METHOD: return "builtin_function_or_method";
    default: return "LoopContext";
    }
}

const char *jv_objrepr(jctx *c, jv v)
{
    switch (v.kind) {
    case JV_NONE: return "None";
    case JV_NS: return "jinja2.utils.Namespace object";
    case JV_MACRO: return "jinja2.runtime.Macro object";
    case JV_LOOP: return "jinja2.runtime.LoopContext object";
    default: {
        const char *t = jv_type(v);
        char *s = jalloc(c, strlen(t) + 8);
        sprintf(s, "%s object", t);
        return s;
    }
    }
}

/* Python float repr: the shortest digits that round-trip, fixed notation for exponents
 * -4 < e < 16, else d.ddde+XX. */
void jv_float_repr(double f, char out[40])
{
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        strcpy(out, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    char digits[24];
    size_t nd = 0;
    const char *q = buf;
    bool neg = *q == '-';
    if (neg)
        q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9')
            digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int decpt = atoi(q + 1) + 1;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (decpt > 16 || decpt < -3) {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, nd - 1);
            o += nd - 1;
        }
        int e = decpt - 1;
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -decpt; i++)
            *o++ = '0';
        memcpy(o, digits, nd);
        o += nd;
    } else if ((size_t)decpt >= nd) {
        memcpy(o, digits, nd);
        o += nd;
        for (size_t i = nd; i < (size_t)decpt; i++)
            *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    } else {
        memcpy(o, digits, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        memcpy(o, digits + decpt, nd - (size_t)decpt);
        o += nd - (size_t)decpt;
    }
    *o = 0;
}

static void write_str_repr(jctx *c, jbuf *b, const char *p, size_t n)
{
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char quote = has_sq && !has_dq ? '"' : '\'';
    jb_putc(c, b, quote);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = ju_decode(p, n, &i);
        if (cp == (uint32_t)quote || cp == '\\') {
            jb_putc(c, b, '\\');
            jb_putc(c, b, (char)cp);
        } else if (cp == '\n' || cp == '\r' || cp == '\t') {
            jb_putc(c, b, '\\');
            jb_putc(c, b, cp == '\n' ? 'n' : cp == '\r' ? 'r' : 't');
        } else if (cp < 0x20 || cp == 0x7F) {
            jb_printf(c, b, "\\x%02x", cp);
        } else if (cp < 0x7F || ju_isprintable(cp)) {
            jb_put(c, b, p + start, i - start);
        } else if (cp <= 0xFF) {
            jb_printf(c, b, "\\x%02x", cp);
        } else if (cp <= 0xFFFF) {
            jb_printf(c, b, "\\u%04x", cp);
        } else {
            jb_printf(c, b, "\\U%08x", cp);
        }
    }
    jb_putc(c, b, quote);
}

static void write_value(jctx *c, jbuf *b, jv v, bool repr);

/* Containers recurse; a namespace can even contain itself, so depth is bounded. */
static void write_nested(jctx *c, jbuf *b, jv v)
{
    if (++c->depth > JINJA_MAX_DEPTH)
        jfail(c, "RecursionError", "value nested too deeply to print");
    jstep(c);
    write_value(c, b, v, true);
    c->depth--;
}

static void write_value(jctx *c, jbuf *b, jv v, bool repr)
{
    char num[40];
    switch (v.kind) {
    case JV_UNDEF: if (repr) jb_puts(c, b, "Undefined"); return;
    case JV_NONE: jb_puts(c, b, "None"); return;
    case JV_BOOL: jb_puts(c, b, v.b ? "True" : "False"); return;
    case JV_INT: jb_printf(c, b, "%lld", (long long)v.i); return;
    case JV_FLOAT: jv_float_repr(v.f, num); jb_puts(c, b, num); return;
    case JV_STR:
        if (repr)
            write_str_repr(c, b, v.s.p, v.s.n);
        else
            jb_put(c, b, v.s.p, v.s.n);
        return;
    case JV_LIST: {
        bool tuple = v.flags & JVF_TUPLE;
        if (v.flags & JVF_GEN) {
            jb_puts(c, b, "<generator object>");
            return;
        }
        if (v.flags & JVF_VIEW) {
            jb_printf(c, b, "%s(", v.list->view);
            write_value(c, b, jv_list(v.list), true);
            jb_putc(c, b, ')');
            return;
        }
        jb_putc(c, b, tuple ? '(' : '[');
        for (size_t i = 0; i < v.list->n; i++) {
            if (i)
                jb_puts(c, b, ", ");
            write_nested(c, b, v.list->v[i]);
        }
        if (tuple && v.list->n == 1)
            jb_putc(c, b, ',');
        jb_putc(c, b, tuple ? ')' : ']');
        return;
    }
    case JV_DICT:
        jb_putc(c, b, '{');
        for (size_t i = 0; i < v.dict->n; i++) {
            if (i)
                jb_puts(c, b, ", ");
            write_nested(c, b, v.dict->k[i]);
            jb_puts(c, b, ": ");
            write_nested(c, b, v.dict->v[i]);
        }
        jb_putc(c, b, '}');
        return;
    case JV_NS:
        jb_puts(c, b, "<Namespace ");
        write_nested(c, b, jv_dict(v.dict));
        jb_putc(c, b, '>');
        return;
    case JV_MACRO: jb_printf(c, b, "<Macro '%s'>", v.macro->node->name ? v.macro->node->name : "caller"); return;
    case JV_FUNC: jb_puts(c, b, "<built-in function>"); return;
    case JV_METHOD: jb_printf(c, b, "<built-in method %s of %s object>", v.method->name, jv_type(v.method->self)); return;
    default: jb_printf(c, b, "<LoopContext %zu/%zu>", v.loop->index + 1, v.loop->items->n); return;
    }
}

void jv_write_str(jctx *c, jbuf *b, jv v) { write_value(c, b, v, false); }
void jv_write_repr(jctx *c, jbuf *b, jv v) { write_value(c, b, v, true); }

jv jv_to_str(jctx *c, jv v)
{
    if (v.kind == JV_STR)
        return v;
    if (v.kind == JV_UNDEF)
        return jv_str("", 0);
    jbuf b = {0};
    jv_write_str(c, &b, v);
    return jv_buf(&b);
}

static void write_json_str(jctx *c, jbuf *b, const char *p, size_t n, bool ensure_ascii)
{
    jb_putc(c, b, '"');
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = ju_decode(p, n, &i);
        const char *esc = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\n' ? "\\n"
                        : cp == '\r' ? "\\r" : cp == '\t' ? "\\t" : cp == '\b' ? "\\b"
                        : cp == '\f' ? "\\f" : NULL;
        if (esc)
            jb_puts(c, b, esc);
        else if (cp < 0x20 || (ensure_ascii && cp == 0x7F))
            jb_printf(c, b, "\\u%04x", cp);
        else if (!ensure_ascii || cp < 0x80)
            jb_put(c, b, p + start, i - start);
        else if (cp <= 0xFFFF)
            jb_printf(c, b, "\\u%04x", cp);
        else
            jb_printf(c, b, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
                      0xDC00 + ((cp - 0x10000) & 0x3FF));
    }
    jb_putc(c, b, '"');
}

static void json_newline(jctx *c, jbuf *b, const jjson_opts *o, int level)
{
    jb_putc(c, b, '\n');
    for (int i = 0; i < level; i++)
        jb_puts(c, b, o->indent_str);
}

static void write_json_key(jctx *c, jbuf *b, jv k, const jjson_opts *o)
{
    char num[40];
    switch (k.kind) {
    case JV_STR: write_json_str(c, b, k.s.p, k.s.n, o->ensure_ascii); return;
    case JV_INT: jb_printf(c, b, "\"%lld\"", (long long)k.i); return;
    case JV_FLOAT: jv_float_repr(k.f, num); jb_printf(c, b, "\"%s\"", num); return;
    case JV_BOOL: jb_puts(c, b, k.b ? "\"true\"" : "\"false\""); return;
    case JV_NONE: jb_puts(c, b, "\"null\""); return;
    default: jfail(c, "TypeError", "keys must be str, int, float, bool or None, not %s", jv_type(k));
    }
}

static int cmp_keys(const void *x, const void *y, void *ctx)
{
    const jv *a = x, *b = y;
    return jv_compare(ctx, *a, *b, "<");
}

/* Python json.dumps with transformers' defaults (ensure_ascii False, ", " and ": "). */
void jv_write_json(jctx *c, jbuf *b, jv v, const jjson_opts *o, int level)
{
    char num[40];
    jstep(c);
    if (++c->depth > JINJA_MAX_DEPTH)
        jfail(c, "RecursionError", "value nested too deeply for tojson");
    switch (v.kind) {
    case JV_NONE: jb_puts(c, b, "null"); break;
    case JV_BOOL: jb_puts(c, b, v.b ? "true" : "false"); break;
    case JV_INT: jb_printf(c, b, "%lld", (long long)v.i); break;
    case JV_FLOAT:
        if (isnan(v.f))
            jb_puts(c, b, "NaN");
        else if (isinf(v.f))
            jb_puts(c, b, v.f < 0 ? "-Infinity" : "Infinity");
        else {
            jv_float_repr(v.f, num);
            jb_puts(c, b, num);
        }
        break;
    case JV_STR: write_json_str(c, b, v.s.p, v.s.n, o->ensure_ascii); break;
    case JV_LIST:
        if (v.flags & (JVF_GEN | JVF_VIEW))
            jfail(c, "TypeError", "Object of type %s is not JSON serializable", jv_type(v));
        if (!v.list->n) {
            jb_puts(c, b, "[]");
            break;
        }
        jb_putc(c, b, '[');
        for (size_t i = 0; i < v.list->n; i++) {
            if (i)
                jb_puts(c, b, o->item_sep);
            if (o->indent_str)
                json_newline(c, b, o, level + 1);
            jv_write_json(c, b, v.list->v[i], o, level + 1);
        }
        if (o->indent_str)
            json_newline(c, b, o, level);
        jb_putc(c, b, ']');
        break;
    case JV_DICT: {
        if (!v.dict->n) {
            jb_puts(c, b, "{}");
            break;
        }
        size_t n = v.dict->n, *order = jalloc(c, n * sizeof *order);
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        if (o->sort_keys) {
            jv *keys = jalloc(c, n * sizeof *keys);
            memcpy(keys, v.dict->k, n * sizeof *keys);
            for (size_t i = 1; i < n; i++) /* insertion sort: stable, no qsort_r needed */
                for (size_t j = i; j > 0 && cmp_keys(&keys[order[j - 1]], &keys[order[j]], c) > 0; j--) {
                    size_t t = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = t;
                }
        }
        jb_putc(c, b, '{');
        for (size_t i = 0; i < n; i++) {
            if (i)
                jb_puts(c, b, o->item_sep);
            if (o->indent_str)
                json_newline(c, b, o, level + 1);
            write_json_key(c, b, v.dict->k[order[i]], o);
            jb_puts(c, b, o->key_sep);
            jv_write_json(c, b, v.dict->v[order[i]], o, level + 1);
        }
        if (o->indent_str)
            json_newline(c, b, o, level);
        jb_putc(c, b, '}');
        break;
    }
    default:
        jfail(c, "TypeError", "Object of type %s is not JSON serializable", jv_type(v));
    }
    c->depth--;
}

jlist *jv_iterate(jctx *c, jv v)
{
    switch (v.kind) {
    case JV_LIST:
        if (v.list->lazy_error)
            jfail(c, "TypeError", "%s", v.list->lazy_error);
        return v.list;
    case JV_UNDEF: return jl_new(c, 0);
    case JV_DICT: {
        jlist *l = jl_new(c, v.dict->n);
        if (v.dict->n)
            memcpy(l->v, v.dict->k, v.dict->n * sizeof *l->v);
        l->n = v.dict->n;
        return l;
    }
    case JV_STR: {
        jlist *l = jl_new(c, v.s.n);
        size_t i = 0;
        while (i < v.s.n) {
            size_t start = i;
            ju_decode(v.s.p, v.s.n, &i);
            l->v[l->n++] = jv_str(v.s.p + start, i - start);
        }
        return l;
    }
    default: jfail(c, "TypeError", "'%s' object is not iterable", jv_type(v));
    }
}

static jv undefined_attr(jctx *c, jv obj, const char *name)
{
    const char *r = jv_objrepr(c, obj);
    char *msg = jalloc(c, strlen(r) + strlen(name) + 32);
    sprintf(msg, "'%s' has no attribute '%s'", r, name);
    return jv_undef(msg);
}

static jv loop_attr(jctx *c, const jloop *l, const char *name)
{
    size_t i = l->index, n = l->items->n;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(l->depth);
    if (!strcmp(name, "depth0")) return jv_int(l->depth - 1);
    if (!strcmp(name, "previtem"))
        return i > 0 ? l->items->v[i - 1] : jv_undef("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? l->items->v[i + 1] : jv_undef("there is no next item");
    return jv_undef(NULL);
}

jv jv_getattr(jctx *c, jv obj, const char *name)
{
    if (obj.kind == JV_UNDEF)
        fail_undefined(c, obj);
    if (name[0] == '_')
        return undefined_attr(c, obj, name); /* the sandbox hides private attributes */
    jv m = jmethod_lookup(c, obj, name);
    if (m.kind != JV_UNDEF)
        return m;
    if (obj.kind == JV_DICT || obj.kind == JV_NS) {
        jv *v = jd_gets(obj.dict, name, strlen(name));
        if (v)
            return *v;
    } else if (obj.kind == JV_LOOP) {
        jv v = loop_attr(c, obj.loop, name);
        if (v.kind != JV_UNDEF || v.undef)
            return v;
    }
    return undefined_attr(c, obj, name);
}

static bool as_index(jv k, int64_t *out)
{
    if (k.kind == JV_INT)
        *out = k.i;
    else if (k.kind == JV_BOOL)
        *out = k.b;
    else
        return false;
    return true;
}

jv jv_getitem(jctx *c, jv obj, jv key)
{
    if (obj.kind == JV_UNDEF)
        fail_undefined(c, obj);
    int64_t idx;
    if (obj.kind == JV_LIST && (obj.flags & (JVF_GEN | JVF_VIEW)))
        return jv_undef("object is not subscriptable");
    if (obj.kind == JV_DICT) {
        jv *v = jd_get(obj.dict, key);
        if (v)
            return *v;
    } else if ((obj.kind == JV_LIST || obj.kind == JV_STR) && as_index(key, &idx)) {
        size_t n = obj.kind == JV_LIST ? obj.list->n : ju_len(obj.s.p, obj.s.n);
        if (idx < 0)
            idx += (int64_t)n;
        if (idx >= 0 && (size_t)idx < n) {
            if (obj.kind == JV_LIST)
                return obj.list->v[idx];
            size_t i = 0;
            for (int64_t k = 0; k < idx; k++)
                ju_decode(obj.s.p, obj.s.n, &i);
            size_t start = i;
            ju_decode(obj.s.p, obj.s.n, &i);
            return jv_str(obj.s.p + start, i - start);
        }
    }
    if (key.kind == JV_STR) {
        const char *name = jstrdup(c, key.s.p, key.s.n);
        if (obj.kind != JV_DICT)
            return jv_getattr(c, obj, name);
        if (name[0] != '_') {
            jv m = jmethod_lookup(c, obj, name);
            if (m.kind != JV_UNDEF)
                return m;
        }
        return undefined_attr(c, obj, name);
    }
    jbuf b = {0};
    jb_printf(c, &b, "%s has no element ", jv_objrepr(c, obj));
    jv_write_repr(c, &b, key);
    jb_putc(c, &b, 0);
    return jv_undef(b.p);
}

/* Python slice bounds for length n (step != 0). */
static int64_t slice_bound(jctx *c, jv v, int64_t n, int64_t step, bool is_start)
{
    if (v.kind == JV_NONE || v.kind == JV_UNDEF)
        return step > 0 ? (is_start ? 0 : n) : (is_start ? n - 1 : -1);
    int64_t x;
    if (!as_index(v, &x))
        jfail(c, "TypeError", "slice indices must be integers or None or have an __index__ method");
    if (x < 0) {
        x += n;
        if (x < 0)
            x = step > 0 ? 0 : -1;
    } else if (x >= n) {
        x = step > 0 ? n : n - 1;
    }
    return x;
}

jv jv_slice(jctx *c, jv obj, jv start, jv stop, jv step)
{
    /* jinja2 compiles slices to a plain Python subscript, without the sandbox's lenience */
    if (obj.kind == JV_UNDEF)
        fail_undefined(c, obj);
    if (obj.kind == JV_DICT)
        jfail(c, "TypeError", "unhashable type: 'slice'");
    if ((obj.kind != JV_LIST && obj.kind != JV_STR) || (obj.flags & (JVF_GEN | JVF_VIEW)))
        jfail(c, "TypeError", "'%s' object is not subscriptable", jv_type(obj));
    int64_t st = 1;
    if (step.kind != JV_NONE && step.kind != JV_UNDEF && !as_index(step, &st))
        jfail(c, "TypeError", "slice indices must be integers or None or have an __index__ method");
    if (st == 0)
        jfail(c, "ValueError", "slice step cannot be zero");
    jlist *src = obj.kind == JV_LIST ? obj.list : jv_iterate(c, obj);
    int64_t n = (int64_t)src->n;
    int64_t a = slice_bound(c, start, n, st, true), b = slice_bound(c, stop, n, st, false);
    jlist *out = jl_new(c, 0);
    for (int64_t i = a; st > 0 ? i < b : i > b; i += st)
        jl_push(c, out, src->v[i]);
    if (obj.kind == JV_LIST) {
        jv r = jv_list(out);
        r.flags = obj.flags & JVF_TUPLE;
        return r;
    }
    jbuf buf = {0};
    for (size_t i = 0; i < out->n; i++)
        jb_put(c, &buf, out->v[i].s.p, out->v[i].s.n);
    return jv_str(buf.p, buf.n);
}

bool jv_contains(jctx *c, jv container, jv item)
{
    switch (container.kind) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (item.kind != JV_STR)
            jfail(c, "TypeError", "'in <string>' requires string as left operand, not %s",
                  jv_type(item));
        jwork(c, container.s.n);
        return item.s.n == 0 || memmem(container.s.p, container.s.n, item.s.p, item.s.n) != NULL;
    case JV_LIST:
        jv_iterate(c, container); /* raises for a lazy error */
        for (size_t i = 0; i < container.list->n; i++)
            if (jv_equal(c, container.list->v[i], item))
                return true;
        return false;
    case JV_DICT:
        if ((item.kind == JV_LIST && !(item.flags & JVF_TUPLE)) || item.kind == JV_DICT)
            jfail(c, "TypeError", "unhashable type: '%s'", jv_type(item));
        return jd_get(container.dict, item) != NULL;
    default:
        jfail(c, "TypeError", "argument of type '%s' is not iterable", jv_type(container));
    }
}
