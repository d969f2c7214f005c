/* jinja_filters.c: jinja2's filters (with transformers' tojson) and tests, looked up by name
 * at parse time and applied at render time with Python semantics. */
#include "server/jinja_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool jarg(const jargs *a, size_t idx, const char *name, jv *out)
{
    if (idx < a->npos) {
        *out = a->pos[idx];
        return true;
    }
    for (size_t i = 0; name && i < a->nkw; i++)
        if (!strcmp(a->kwn[i], name)) {
            *out = a->kwv[i];
            return true;
        }
    return false;
}

static jv opt(const jargs *a, size_t idx, const char *name, jv dflt)
{
    jv v;
    return jarg(a, idx, name, &v) ? v : dflt;
}

static bool opt_bool(const jargs *a, size_t idx, const char *name, bool dflt)
{
    jv v;
    return jarg(a, idx, name, &v) ? jv_truthy(v) : dflt;
}

static jv soft_str(jctx *c, jv v)
{
    jv s = jv_to_str(c, v);
    s.flags = v.kind == JV_STR ? (v.flags & JVF_MARKUP) : 0;
    return s;
}

static jv markup(jv s)
{
    s.flags |= JVF_MARKUP;
    return s;
}

/* "a.b.0" attribute paths as jinja's make_attrgetter walks them. */
static jv get_path(jctx *c, jv v, jv attr)
{
    if (attr.kind != JV_STR)
        return jv_getitem(c, v, attr);
    size_t start = 0;
    for (size_t i = 0; i <= attr.s.n; i++) {
        if (i < attr.s.n && attr.s.p[i] != '.')
            continue;
        const char *part = attr.s.p + start;
        size_t n = i - start;
        bool digits = n > 0;
        for (size_t k = 0; k < n; k++)
            digits &= part[k] >= '0' && part[k] <= '9';
        v = jv_getitem(c, v, digits ? jv_int(strtoll(jstrdup(c, part, n), NULL, 10)) : jv_str(part, n));
        start = i + 1;
    }
    return v;
}

static jv case_key(jctx *c, jv v, bool case_sensitive)
{
    return !case_sensitive && v.kind == JV_STR ? jstr_case(c, v, 0) : v;
}

/* Stable merge sort of values by keys (jv_compare raises TypeError on mixed types). */
static void sort_by_keys(jctx *c, jv *vals, jv *keys, size_t n, bool reverse)
{
    if (n < 2)
        return;
    jv *tv = jalloc(c, n * sizeof *tv), *tk = jalloc(c, n * sizeof *tk);
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int r = jv_compare(c, keys[j], keys[i], "<");
                bool take_right = reverse ? r > 0 : r < 0;
                size_t from = take_right ? j++ : i++;
                tv[k] = vals[from];
                tk[k++] = keys[from];
            }
            while (i < mid) { tv[k] = vals[i]; tk[k++] = keys[i++]; }
            while (j < hi) { tv[k] = vals[j]; tk[k++] = keys[j++]; }
        }
        memcpy(vals, tv, n * sizeof *vals);
        memcpy(keys, tk, n * sizeof *keys);
    }
}

static jlist *copy_list(jctx *c, jlist *src)
{
    jlist *l = jl_new(c, src->n);
    if (src->n)
        memcpy(l->v, src->v, src->n * sizeof *l->v);
    l->n = src->n;
    return l;
}

/* ---------------------------------------------------------------- filters --- */
static jv f_length(jctx *c, jv v, const jargs *a)
{
    (void)a;
    switch (v.kind) {
    case JV_UNDEF: return jv_int(0);
    case JV_STR: return jv_int((int64_t)ju_len(v.s.p, v.s.n));
    case JV_LIST:
        if (v.flags & JVF_GEN)
            jfail(c, "TypeError", "object of type 'generator' has no len()");
        return jv_int((int64_t)v.list->n);
    case JV_DICT: return jv_int((int64_t)v.dict->n);
    case JV_LOOP: return jv_int((int64_t)v.loop->items->n);
    default: jfail(c, "TypeError", "object of type '%s' has no len()", jv_type(v));
    }
}

static jv f_trim(jctx *c, jv v, const jargs *a)
{
    return jstr_strip(c, soft_str(c, v), opt(a, 0, "chars", jv_none()), true, true);
}

static jv f_tojson(jctx *c, jv v, const jargs *a)
{
    jjson_opts o = {.item_sep = ", ", .key_sep = ": "};
    o.ensure_ascii = opt_bool(a, 0, "ensure_ascii", false);
    jv indent = opt(a, 1, "indent", jv_none());
    if (indent.kind == JV_INT || indent.kind == JV_BOOL) {
        int64_t n = indent.kind == JV_INT ? indent.i : indent.b;
        char *s = jalloc(c, n > 0 && n < 64 ? (size_t)n + 1 : 1);
        for (int64_t i = 0; i < n && i < 63; i++)
            s[i] = ' ';
        o.indent_str = s;
    } else if (indent.kind == JV_STR) {
        o.indent_str = jstrdup(c, indent.s.p, indent.s.n);
    } else if (indent.kind != JV_NONE) {
        jfail(c, "TypeError", "tojson indent must be an int or a string");
    }
    if (o.indent_str)
        o.item_sep = ",";
    jv seps = opt(a, 2, "separators", jv_none());
    if (seps.kind == JV_LIST && seps.list->n == 2 && seps.list->v[0].kind == JV_STR &&
        seps.list->v[1].kind == JV_STR) {
        o.item_sep = jstrdup(c, seps.list->v[0].s.p, seps.list->v[0].s.n);
        o.key_sep = jstrdup(c, seps.list->v[1].s.p, seps.list->v[1].s.n);
    } else if (seps.kind != JV_NONE) {
        jfail(c, "TypeError", "tojson separators must be a pair of strings");
    }
    o.sort_keys = opt_bool(a, 3, "sort_keys", false);
    jbuf b = {0};
    jv_write_json(c, &b, v, &o, 0);
    return jv_buf(&b);
}

static jv f_string(jctx *c, jv v, const jargs *a) { (void)a; return soft_str(c, v); }
static jv f_safe(jctx *c, jv v, const jargs *a) { (void)a; return markup(jv_to_str(c, v)); }

static jv f_escape(jctx *c, jv v, const jargs *a)
{
    (void)a;
    if (v.kind == JV_STR && (v.flags & JVF_MARKUP))
        return v;
    jv s = jv_to_str(c, v);
    jbuf b = {0};
    for (size_t i = 0; i < s.s.n; i++) {
        char ch = s.s.p[i];
        const char *e = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;"
                      : ch == '"' ? "&#34;" : ch == '\'' ? "&#39;" : NULL;
        if (e)
            jb_puts(c, &b, e);
        else
            jb_putc(c, &b, ch);
    }
    return markup(jv_buf(&b));
}

static jv generator(jlist *l)
{
    jv r = jv_list(l);
    r.flags = JVF_GEN;
    return r;
}

static jv lazy_error(jctx *c, const char *msg)
{
    jlist *l = jl_new(c, 0);
    l->lazy_error = msg;
    return generator(l);
}

/* A generator filter's input: a non-iterable only fails once the generator is consumed. */
static bool iterable_input(jctx *c, jv v, jv *gen_out)
{
    if (v.kind == JV_LIST && v.list->lazy_error) { /* an upstream lazy failure stays lazy */
        *gen_out = v;
        return false;
    }
    if (v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF)
        return true;
    char *msg = jalloc(c, 64);
    snprintf(msg, 64, "'%s' object is not iterable", jv_type(v));
    *gen_out = lazy_error(c, msg);
    return false;
}

static jv f_items(jctx *c, jv v, const jargs *a)
{
    (void)a;
    if (v.kind == JV_UNDEF)
        return generator(jl_new(c, 0));
    if (v.kind != JV_DICT)
        return lazy_error(c, "Can only get item pairs from a mapping.");
    jlist *l = jl_new(c, v.dict->n);
    for (size_t i = 0; i < v.dict->n; i++) {
        jlist *pair = jl_new(c, 2);
        pair->v[0] = v.dict->k[i];
        pair->v[1] = v.dict->v[i];
        pair->n = 2;
        jv t = jv_list(pair);
        t.flags = JVF_TUPLE;
        l->v[l->n++] = t;
    }
    return generator(l);
}

static jv f_default(jctx *c, jv v, const jargs *a)
{
    (void)c;
    bool boolean = opt_bool(a, 1, "boolean", false);
    if (v.kind == JV_UNDEF || (boolean && !jv_truthy(v)))
        return opt(a, 0, "default_value", jv_str("", 0));
    return v;
}

static jv f_join(jctx *c, jv v, const jargs *a)
{
    jv sep = soft_str(c, opt(a, 0, "d", jv_str("", 0)));
    jv attr;
    bool has_attr = jarg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
    jlist *l = jv_iterate(c, v);
    jbuf b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            jb_put(c, &b, sep.s.p, sep.s.n);
        jv_write_str(c, &b, has_attr ? get_path(c, l->v[i], attr) : l->v[i]);
    }
    return jv_buf(&b);
}

static jv f_first(jctx *c, jv v, const jargs *a)
{
    (void)a;
    jlist *l = jv_iterate(c, v);
    return l->n ? l->v[0] : jv_undef("No first item, sequence was empty.");
}

static jv f_last(jctx *c, jv v, const jargs *a)
{
    (void)a;
    jlist *l = jv_iterate(c, v);
    return l->n ? l->v[l->n - 1] : jv_undef("No last item, sequence was empty.");
}

static jv f_lower(jctx *c, jv v, const jargs *a) { (void)a; return jstr_case(c, soft_str(c, v), 0); }
static jv f_upper(jctx *c, jv v, const jargs *a) { (void)a; return jstr_case(c, soft_str(c, v), 1); }
static jv f_capitalize(jctx *c, jv v, const jargs *a) { (void)a; return jstr_case(c, soft_str(c, v), 2); }
static jv f_title(jctx *c, jv v, const jargs *a) { (void)a; return jstr_case(c, soft_str(c, v), 3); }

static jv f_replace(jctx *c, jv v, const jargs *a)
{
    jv old, new_;
    if (!jarg(a, 0, "old", &old) || !jarg(a, 1, "new", &new_))
        jfail(c, "TypeError", "replace() needs old and new strings");
    jv count = opt(a, 2, "count", jv_none());
    return jstr_replace(c, soft_str(c, v), jv_to_str(c, old), jv_to_str(c, new_),
                        count.kind == JV_INT ? count.i : -1);
}

static bool parse_number(jctx *c, jv s, int base, bool want_int, int64_t *iv, double *fv)
{
    const char *str = jstrdup(c, s.s.p, s.s.n);
    char *end;
    while (*str == ' ' || *str == '\t' || *str == '\n')
        str++;
    if (want_int) {
        errno = 0;
        long long x = strtoll(str, &end, base);
        if (end != str && !errno) {
            while (*end == ' ' || *end == '\t' || *end == '\n')
                end++;
            if (!*end) {
                *iv = x;
                return true;
            }
        }
    }
    double d = strtod(str, &end);
    if (end == str)
        return false;
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (*end)
        return false;
    if (want_int) {
        if (!isfinite(d) || d >= 9.2e18 || d <= -9.2e18)
            return false;
        *iv = (int64_t)d;
    }
    *fv = d;
    return true;
}

static void no_undefined(jctx *c, jv v)
{
    if (v.kind == JV_UNDEF) /* int(Undefined) raises UndefinedError, not the TypeError caught */
        jfail(c, "UndefinedError", "%s", v.undef ? v.undef : "value is undefined");
}

static jv f_int(jctx *c, jv v, const jargs *a)
{
    no_undefined(c, v);
    jv dflt = opt(a, 0, "default", jv_int(0));
    jv base = opt(a, 1, "base", jv_int(10));
    int64_t iv;
    double fv;
    switch (v.kind) {
    case JV_INT: return v;
    case JV_BOOL: return jv_int(v.b);
    case JV_FLOAT:
        return isfinite(v.f) && fabs(v.f) < 9.2e18 ? jv_int((int64_t)v.f) : dflt;
    case JV_STR:
        return parse_number(c, v, base.kind == JV_INT ? (int)base.i : 10, true, &iv, &fv) ? jv_int(iv) : dflt;
    default: return dflt;
    }
}

static jv f_float(jctx *c, jv v, const jargs *a)
{
    no_undefined(c, v);
    jv dflt = opt(a, 0, "default", jv_float(0.0));
    int64_t iv;
    double fv;
    if (jv_is_num(v))
        return jv_float(jv_num(v));
    if (v.kind == JV_STR && parse_number(c, v, 10, false, &iv, &fv))
        return jv_float(fv);
    return dflt;
}

static jv f_abs(jctx *c, jv v, const jargs *a)
{
    (void)a;
    if (v.kind == JV_FLOAT)
        return jv_float(fabs(v.f));
    if (v.kind == JV_INT || v.kind == JV_BOOL) {
        int64_t x = v.kind == JV_INT ? v.i : v.b;
        if (x == INT64_MIN)
            jfail(c, "OverflowError", "integer result does not fit in 64 bits");
        return jv_int(x < 0 ? -x : x);
    }
    jfail(c, "TypeError", "bad operand type for abs(): '%s'", jv_type(v));
}

static jv f_list(jctx *c, jv v, const jargs *a) { (void)a; return jv_list(copy_list(c, jv_iterate(c, v))); }

static jv f_reverse(jctx *c, jv v, const jargs *a)
{
    (void)a;
    jlist *l = jv_iterate(c, v), *r = jl_new(c, l->n);
    for (size_t i = l->n; i-- > 0;)
        r->v[r->n++] = l->v[i];
    if (v.kind != JV_STR)
        return generator(r); /* reversed() iterator: same behaviour as a generator */
    jbuf b = {0};
    for (size_t i = 0; i < r->n; i++)
        jb_put(c, &b, r->v[i].s.p, r->v[i].s.n);
    return jv_buf(&b);
}

static jv f_sort(jctx *c, jv v, const jargs *a)
{
    bool reverse = opt_bool(a, 0, "reverse", false), cs = opt_bool(a, 1, "case_sensitive", false);
    jv attr = opt(a, 2, "attribute", jv_none());
    jlist *l = copy_list(c, jv_iterate(c, v));
    jv *keys = jalloc(c, (l->n + 1) * sizeof *keys);
    for (size_t i = 0; i < l->n; i++)
        keys[i] = case_key(c, attr.kind == JV_NONE ? l->v[i] : get_path(c, l->v[i], attr), cs);
    sort_by_keys(c, l->v, keys, l->n, reverse);
    return jv_list(l);
}

static jv f_dictsort(jctx *c, jv v, const jargs *a)
{
    bool cs = opt_bool(a, 0, "case_sensitive", false), reverse = opt_bool(a, 2, "reverse", false);
    jv by = opt(a, 1, "by", jv_cstr("key"));
    int pos = by.kind == JV_STR && by.s.n == 5 && !memcmp(by.s.p, "value", 5) ? 1 : 0;
    if (v.kind == JV_UNDEF)
        jfail(c, "UndefinedError", "%s", v.undef ? v.undef : "value is undefined");
    if (v.kind != JV_DICT)
        jfail(c, "AttributeError", "'%s' object has no attribute 'items'", jv_type(v));
    jlist *l = f_items(c, v, &(jargs){0}).list;
    jv *keys = jalloc(c, (l->n + 1) * sizeof *keys);
    for (size_t i = 0; i < l->n; i++)
        keys[i] = case_key(c, l->v[i].list->v[pos], cs);
    sort_by_keys(c, l->v, keys, l->n, reverse);
    return jv_list(l);
}

static jv f_unique(jctx *c, jv v, const jargs *a)
{
    bool cs = opt_bool(a, 0, "case_sensitive", false);
    jv attr = opt(a, 1, "attribute", jv_none()), bad;
    if (!iterable_input(c, v, &bad))
        return bad;
    jlist *l = jv_iterate(c, v), *out = jl_new(c, 0), *seen = jl_new(c, 0);
    for (size_t i = 0; i < l->n; i++) {
        jv k = case_key(c, attr.kind == JV_NONE ? l->v[i] : get_path(c, l->v[i], attr), cs);
        bool dup = false;
        for (size_t j = 0; j < seen->n && !dup; j++)
            dup = jv_equal(c, seen->v[j], k);
        if (!dup) {
            jl_push(c, seen, k);
            jl_push(c, out, l->v[i]);
        }
    }
    return generator(out);
}

static jv min_max(jctx *c, jv v, const jargs *a, bool want_max)
{
    bool cs = opt_bool(a, 0, "case_sensitive", false);
    jv attr = opt(a, 1, "attribute", jv_none());
    jlist *l = jv_iterate(c, v);
    if (!l->n)
        return jv_undef("No aggregated item, sequence was empty.");
    jv best = l->v[0], bk = case_key(c, attr.kind == JV_NONE ? best : get_path(c, best, attr), cs);
    for (size_t i = 1; i < l->n; i++) {
        jv k = case_key(c, attr.kind == JV_NONE ? l->v[i] : get_path(c, l->v[i], attr), cs);
        int r = jv_compare(c, k, bk, want_max ? ">" : "<");
        if (want_max ? r > 0 : r < 0) {
            best = l->v[i];
            bk = k;
        }
    }
    return best;
}

static jv f_min(jctx *c, jv v, const jargs *a) { return min_max(c, v, a, false); }
static jv f_max(jctx *c, jv v, const jargs *a) { return min_max(c, v, a, true); }

static jv f_sum(jctx *c, jv v, const jargs *a)
{
    jv attr = opt(a, 0, "attribute", jv_none()), total = opt(a, 1, "start", jv_int(0));
    jlist *l = jv_iterate(c, v);
    for (size_t i = 0; i < l->n; i++) {
        jv x = attr.kind == JV_NONE ? l->v[i] : get_path(c, l->v[i], attr);
        if (!jv_is_num(x) || !jv_is_num(total))
            jfail(c, "TypeError", "unsupported operand type(s) for +: '%s' and '%s'",
                  jv_type(total), jv_type(x));
        if (total.kind == JV_FLOAT || x.kind == JV_FLOAT)
            total = jv_float(jv_num(total) + jv_num(x));
        else if (__builtin_add_overflow((int64_t)jv_num(total), (int64_t)jv_num(x), &total.i))
            jfail(c, "OverflowError", "integer result does not fit in 64 bits");
        else
            total.kind = JV_INT;
    }
    return total;
}

static jv f_map(jctx *c, jv v, const jargs *a)
{
    jv bad;
    if (!jv_truthy(v)) /* jinja2's map yields nothing for a falsy input, None included */
        return generator(jl_new(c, 0));
    if (!iterable_input(c, v, &bad))
        return bad;
    jlist *l = jv_iterate(c, v), *out = jl_new(c, l->n);
    jv attr;
    if (a->npos == 0 && jarg(a, SIZE_MAX, "attribute", &attr)) {
        jv dflt = opt(a, SIZE_MAX, "default", jv_undef(NULL));
        bool has_default = jarg(a, SIZE_MAX, "default", &dflt);
        for (size_t i = 0; i < l->n; i++) {
            jv x = get_path(c, l->v[i], attr);
            out->v[out->n++] = x.kind == JV_UNDEF && has_default ? dflt : x;
        }
        return generator(out);
    }
    if (a->npos == 0 || a->pos[0].kind != JV_STR)
        jfail(c, "FilterArgumentError", "map requires a filter argument");
    const char *name = jstrdup(c, a->pos[0].s.p, a->pos[0].s.n);
    int id = jfilter_id(name);
    if (id < 0)
        jfail(c, "TemplateRuntimeError", "No filter named '%s'.", name);
    jargs rest = *a;
    rest.pos++;
    rest.npos--;
    for (size_t i = 0; i < l->n; i++)
        out->v[out->n++] = jfilter_apply(c, id, l->v[i], &rest);
    return generator(out);
}

/* select/reject/selectattr/rejectattr: keep items whose (attribute's) test result == want. */
static jv select_items(jctx *c, jv v, const jargs *a, bool want, bool by_attr)
{
    jv bad;
    if (!jv_truthy(v)) /* as in jinja2: a falsy input (None too) selects nothing */
        return generator(jl_new(c, 0));
    if (!iterable_input(c, v, &bad))
        return bad;
    size_t k = 0;
    jv attr = jv_none();
    if (by_attr) {
        if (a->npos < 1)
            jfail(c, "TypeError", "missing attribute name");
        attr = a->pos[k++];
    }
    int test = -1;
    if (k < a->npos) {
        if (a->pos[k].kind != JV_STR)
            jfail(c, "TypeError", "test name must be a string");
        const char *name = jstrdup(c, a->pos[k].s.p, a->pos[k].s.n);
        test = jtest_id(name);
        if (test < 0)
            jfail(c, "TemplateRuntimeError", "No test named '%s'.", name);
        k++;
    }
    jargs rest = {.pos = a->pos + k, .npos = a->npos - k, .kwn = a->kwn, .kwv = a->kwv, .nkw = a->nkw};
    jlist *l = jv_iterate(c, v), *out = jl_new(c, 0);
    for (size_t i = 0; i < l->n; i++) {
        jv x = by_attr ? get_path(c, l->v[i], attr) : l->v[i];
        bool r = test < 0 ? jv_truthy(x) : jtest_apply(c, test, x, &rest);
        if (r == want)
            jl_push(c, out, l->v[i]);
    }
    return generator(out);
}

static jv f_select(jctx *c, jv v, const jargs *a) { return select_items(c, v, a, true, false); }
static jv f_reject(jctx *c, jv v, const jargs *a) { return select_items(c, v, a, false, false); }
static jv f_selectattr(jctx *c, jv v, const jargs *a) { return select_items(c, v, a, true, true); }
static jv f_rejectattr(jctx *c, jv v, const jargs *a) { return select_items(c, v, a, false, true); }

static jv f_attr(jctx *c, jv v, const jargs *a)
{
    jv name;
    if (!jarg(a, 0, "name", &name) || name.kind != JV_STR)
        jfail(c, "TypeError", "attr() needs an attribute name");
    return jv_getattr(c, v, jstrdup(c, name.s.p, name.s.n));
}

static jv f_indent(jctx *c, jv v, const jargs *a)
{
    jv width = opt(a, 0, "width", jv_int(4));
    bool first = opt_bool(a, 1, "first", false), blank = opt_bool(a, 2, "blank", false);
    jv ind;
    if (width.kind == JV_STR) {
        ind = width;
    } else {
        int64_t n = width.kind == JV_INT ? width.i : 4;
        jbuf b = {0};
        for (int64_t i = 0; i < n && i < 4096; i++)
            jb_putc(c, &b, ' ');
        ind = jv_buf(&b);
    }
    if (v.kind == JV_UNDEF)
        jfail(c, "UndefinedError", "%s", v.undef ? v.undef : "value is undefined");
    if (v.kind != JV_STR)
        jfail(c, "TypeError", "unsupported operand type(s) for +=: '%s' and 'str'", jv_type(v));
    jv s = soft_str(c, v);
    jbuf src = {0};
    jb_put(c, &src, s.s.p, s.s.n);
    jb_putc(c, &src, '\n');
    jmethod m = {.self = jv_buf(&src), .name = "splitlines"};
    jlist *lines = jmethod_call(c, &m, &(jargs){0}).list;
    jbuf out = {0};
    if (first)
        jb_put(c, &out, ind.s.p, ind.s.n);
    for (size_t i = 0; i < lines->n; i++) {
        jv line = lines->v[i];
        if (i) {
            jb_putc(c, &out, '\n');
            if (blank || line.s.n)
                jb_put(c, &out, ind.s.p, ind.s.n);
        }
        jb_put(c, &out, line.s.p, line.s.n);
    }
    return jv_buf(&out);
}

static jv f_round(jctx *c, jv v, const jargs *a)
{
    jv prec = opt(a, 0, "precision", jv_int(0)), method = opt(a, 1, "method", jv_cstr("common"));
    if (!jv_is_num(v))
        jfail(c, "TypeError", "type %s doesn't define __round__ method", jv_type(v));
    int64_t p = prec.kind == JV_INT ? prec.i : 0;
    double x = jv_num(v), scale = pow(10.0, (double)p);
    bool common = !(method.kind == JV_STR && (method.s.n == 4 || method.s.n == 5) &&
                    (!memcmp(method.s.p, "ceil", 4) || !memcmp(method.s.p, "floor", 5)));
    if (v.kind != JV_FLOAT && common && p >= 0) /* Python's round(int, n) is that int */
        return jv_int(v.kind == JV_INT ? v.i : v.b);
    if (method.kind == JV_STR && method.s.n == 4 && !memcmp(method.s.p, "ceil", 4))
        return jv_float(ceil(x * scale) / scale);
    if (method.kind == JV_STR && method.s.n == 5 && !memcmp(method.s.p, "floor", 5))
        return jv_float(floor(x * scale) / scale);
    if (p < 0 || p > 30)
        return jv_float(nearbyint(x * scale) / scale);
    char buf[400];
    snprintf(buf, sizeof buf, "%.*f", (int)p, x); /* correctly rounded, ties to even */
    return jv_float(strtod(buf, NULL));
}

static jv f_wordcount(jctx *c, jv v, const jargs *a)
{
    (void)a;
    jv s = soft_str(c, v);
    int64_t n = 0;
    bool in_word = false;
    size_t i = 0;
    while (i < s.s.n) {
        uint32_t cp = ju_decode(s.s.p, s.s.n, &i);
        bool w = cp == '_' || (cp >= '0' && cp <= '9') || ju_lower(cp) != ju_upper(cp) ||
                 (cp > 0x7F && !ju_isspace(cp) && ju_isprintable(cp));
        if (w && !in_word)
            n++;
        in_word = w;
    }
    return jv_int(n);
}

static jv f_format(jctx *c, jv v, const jargs *a)
{
    if (a->npos && a->nkw)
        jfail(c, "FilterArgumentError", "can't handle positional and keyword arguments at the same time");
    jv args;
    if (a->nkw) {
        jdict *d = jd_new(c, a->nkw);
        for (size_t i = 0; i < a->nkw; i++)
            jd_set(c, d, jv_cstr(a->kwn[i]), a->kwv[i]);
        args = jv_dict(d);
    } else {
        jlist *l = jl_new(c, a->npos);
        for (size_t i = 0; i < a->npos; i++)
            l->v[l->n++] = a->pos[i];
        args = jv_list(l);
        args.flags = JVF_TUPLE;
    }
    return jstr_printf(c, soft_str(c, v), args);
}

typedef jv (*filter_fn)(jctx *c, jv v, const jargs *a);
/* params: the filter's arguments after the value, in order ("*" takes anything), so a
 * call with too many or unknown arguments fails as the Python function would. */
static const struct { const char *name; filter_fn fn; const char *params; } FILTERS[] = {
    {"length", f_length, ""}, {"count", f_length, ""}, {"trim", f_trim, "chars"},
    {"tojson", f_tojson, "ensure_ascii indent separators sort_keys"}, {"string", f_string, ""},
    {"safe", f_safe, ""}, {"escape", f_escape, ""}, {"e", f_escape, ""}, {"items", f_items, ""},
    {"default", f_default, "default_value boolean"}, {"d", f_default, "default_value boolean"},
    {"join", f_join, "d attribute"}, {"first", f_first, ""}, {"last", f_last, ""},
    {"lower", f_lower, ""}, {"upper", f_upper, ""}, {"capitalize", f_capitalize, ""},
    {"title", f_title, ""}, {"replace", f_replace, "old new count"},
    {"int", f_int, "default base"}, {"float", f_float, "default"}, {"abs", f_abs, ""},
    {"list", f_list, ""}, {"reverse", f_reverse, ""},
    {"sort", f_sort, "reverse case_sensitive attribute"},
    {"dictsort", f_dictsort, "case_sensitive by reverse"},
    {"unique", f_unique, "case_sensitive attribute"}, {"min", f_min, "case_sensitive attribute"},
    {"max", f_max, "case_sensitive attribute"}, {"sum", f_sum, "attribute start"},
    {"map", f_map, "*"}, {"select", f_select, "*"}, {"reject", f_reject, "*"},
    {"selectattr", f_selectattr, "*"}, {"rejectattr", f_rejectattr, "*"}, {"attr", f_attr, "name"},
    {"indent", f_indent, "width first blank"}, {"round", f_round, "precision method"},
    {"wordcount", f_wordcount, ""}, {"format", f_format, "*"},
};

static void check_filter_args(jctx *c, int id, const jargs *a)
{
    const char *params = FILTERS[id].params;
    if (params[0] == '*')
        return;
    size_t nparams = 0;
    for (const char *q = params; *q; nparams++) {
        q += strcspn(q, " ");
        q += *q == ' ';
    }
    if (a->npos > nparams)
        jfail(c, "TypeError", "%s filter takes at most %zu argument(s) (%zu given)", FILTERS[id].name,
              nparams, a->npos);
    for (size_t k = 0; k < a->nkw; k++) {
        size_t len = strlen(a->kwn[k]), idx = 0;
        bool known = false;
        for (const char *q = params; *q && !known; idx++) {
            size_t w = strcspn(q, " ");
            known = w == len && !memcmp(q, a->kwn[k], len);
            if (known && idx < a->npos)
                jfail(c, "TypeError", "%s filter got multiple values for argument '%s'",
                      FILTERS[id].name, a->kwn[k]);
            q += w;
            q += *q == ' ';
        }
        if (!known)
            jfail(c, "TypeError", "%s filter got an unexpected keyword argument '%s'",
                  FILTERS[id].name, a->kwn[k]);
    }
}

int jfilter_id(const char *name)
{
    for (size_t i = 0; i < sizeof FILTERS / sizeof FILTERS[0]; i++)
        if (!strcmp(FILTERS[i].name, name))
            return (int)i;
    return -1;
}

jv jfilter_apply(jctx *c, int id, jv v, const jargs *a)
{
    jstep(c);
    check_filter_args(c, id, a);
    return FILTERS[id].fn(c, v, a);
}

/* ------------------------------------------------------------------ tests --- */
static bool need_arg(jctx *c, const jargs *a, const char *test, jv *out)
{
    if (!jarg(a, 0, NULL, out))
        jfail(c, "TypeError", "test '%s' needs an argument", test);
    return true;
}

static const char *const TESTS[] = {
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number",
    "string", "mapping", "sequence", "iterable", "callable", "sameas", "escaped", "odd", "even",
    "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
    "greaterthan", ">", "ge", ">=", "in", "lower", "upper", "filter", "test", NULL};

int jtest_id(const char *name)
{
    for (int i = 0; TESTS[i]; i++)
        if (!strcmp(TESTS[i], name))
            return i;
    return -1;
}

bool jtest_apply(jctx *c, int id, jv v, const jargs *a)
{
    const char *name = TESTS[id];
    jv x;
    jstep(c);
    bool takes_arg = id == jtest_id("sameas") || (id >= jtest_id("divisibleby") && id <= jtest_id("in"));
    if (a->npos + a->nkw > (takes_arg ? 1u : 0u))
        jfail(c, "TypeError", "test_%s() takes %d positional argument%s but %zu were given", name,
              takes_arg ? 2 : 1, takes_arg ? "s" : "", a->npos + a->nkw + 1);
    if (!strcmp(name, "defined")) return v.kind != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v.kind == JV_UNDEF;
    if (!strcmp(name, "none")) return v.kind == JV_NONE;
    if (!strcmp(name, "boolean")) return v.kind == JV_BOOL;
    if (!strcmp(name, "false")) return v.kind == JV_BOOL && !v.b;
    if (!strcmp(name, "true")) return v.kind == JV_BOOL && v.b;
    if (!strcmp(name, "integer")) return v.kind == JV_INT;
    if (!strcmp(name, "float")) return v.kind == JV_FLOAT;
    if (!strcmp(name, "number")) return jv_is_num(v);
    if (!strcmp(name, "string")) return v.kind == JV_STR;
    if (!strcmp(name, "mapping")) return v.kind == JV_DICT;
    if (!strcmp(name, "sequence")) /* Undefined has __len__ and __getitem__, so it passes */
        return v.kind == JV_STR || (v.kind == JV_LIST && !(v.flags & (JVF_GEN | JVF_VIEW))) || v.kind == JV_DICT ||
               v.kind == JV_UNDEF;
    if (!strcmp(name, "iterable"))
        return v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF ||
               v.kind == JV_LOOP;
    if (!strcmp(name, "callable"))
        return v.kind == JV_MACRO || v.kind == JV_FUNC || v.kind == JV_METHOD || v.kind == JV_UNDEF;
    if (!strcmp(name, "escaped")) return v.kind == JV_STR && (v.flags & JVF_MARKUP);
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        jv s = jv_to_str(c, v);
        jv t = jstr_case(c, s, name[0] == 'l' ? 0 : 1);
        return s.s.n == t.s.n && !memcmp(s.s.p, t.s.p, s.s.n) &&
               jv_compare(c, jstr_case(c, s, name[0] == 'l' ? 1 : 0), s, "==") != 0;
    }
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (!jv_is_num(v))
            jfail(c, "TypeError", "test '%s' needs a number", name);
        if (v.kind == JV_FLOAT) {
            double m = fmod(v.f, 2.0);
            return name[0] == 'o' ? (m == 1.0 || m == -1.0) : m == 0.0;
        }
        int64_t i = v.kind == JV_INT ? v.i : v.b;
        return (i % 2 != 0) == (name[0] == 'o');
    }
    if (!strcmp(name, "filter") || !strcmp(name, "test")) {
        if (v.kind != JV_STR)
            return false;
        const char *n = jstrdup(c, v.s.p, v.s.n);
        return name[0] == 'f' ? jfilter_id(n) >= 0 : jtest_id(n) >= 0;
    }
    need_arg(c, a, name, &x);
    if (!strcmp(name, "sameas"))
        return v.kind == x.kind && (v.kind == JV_NONE || v.kind == JV_UNDEF || jv_equal(c, v, x)) &&
               (v.kind != JV_LIST || v.list == x.list) && (v.kind != JV_DICT || v.dict == x.dict);
    if (!strcmp(name, "divisibleby")) {
        if (!jv_is_num(v) || !jv_is_num(x))
            jfail(c, "TypeError", "divisibleby needs numbers");
        if (jv_num(x) == 0)
            jfail(c, "ZeroDivisionError", "integer division or modulo by zero");
        return fmod(jv_num(v), jv_num(x)) == 0;
    }
    if (!strcmp(name, "in")) return jv_contains(c, x, v);
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return jv_equal(c, v, x);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !jv_equal(c, v, x);
    int r = jv_compare(c, v, x, name);
    if (!strcmp(name, "lt") || !strcmp(name, "lessthan") || !strcmp(name, "<")) return r < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return r <= 0;
    if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") || !strcmp(name, ">")) return r > 0;
    return r >= 0;
}
