/* jinja_methods.c: Python methods reachable from templates (str.split/strip/startswith...,
 * dict.get/items, loop.cycle) and the global functions (namespace, range, raise_exception). */
#include "server/jinja_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ str helpers --- */
static bool in_chars(uint32_t cp, jv chars)
{
    if (chars.kind != JV_STR)
        return ju_isspace(cp);
    size_t i = 0;
    while (i < chars.s.n)
        if (ju_decode(chars.s.p, chars.s.n, &i) == cp)
            return true;
    return false;
}

jv jstr_strip(jctx *c, jv s, jv chars, bool left, bool right)
{
    jwork(c, chars.kind == JV_STR ? chars.s.n * 4 : 0);
    if (chars.kind != JV_STR && chars.kind != JV_NONE && chars.kind != JV_UNDEF)
        jfail(c, "TypeError", "strip arg must be None or str");
    size_t a = 0, b = s.s.n;
    while (left && a < b) {
        size_t i = a;
        if (!in_chars(ju_decode(s.s.p, b, &i), chars))
            break;
        a = i;
    }
    while (right && b > a) {
        size_t start = b - 1;
        while (start > a && ((unsigned char)s.s.p[start] & 0xC0) == 0x80)
            start--;
        size_t i = start;
        if (!in_chars(ju_decode(s.s.p, b, &i), chars))
            break;
        b = start;
    }
    jv r = jv_str(s.s.p + a, b - a);
    r.flags = s.flags & JVF_MARKUP;
    return r;
}

/* Python str.split / str.rsplit; sep NONE splits on whitespace runs. */
jlist *jstr_split(jctx *c, jv s, jv sep, int64_t maxsplit, bool from_right)
{
    jwork(c, s.s.n);
    jlist *out = jl_new(c, 0);
    const char *p = s.s.p;
    size_t n = s.s.n;
    if (sep.kind == JV_STR) {
        if (sep.s.n == 0)
            jfail(c, "ValueError", "empty separator");
        jlist *parts = jl_new(c, 0);
        if (!from_right) {
            size_t start = 0;
            for (size_t i = 0; i + sep.s.n <= n && (maxsplit < 0 || (int64_t)parts->n < maxsplit);) {
                if (memcmp(p + i, sep.s.p, sep.s.n) == 0) {
                    jl_push(c, parts, jv_str(p + start, i - start));
                    i += sep.s.n;
                    start = i;
                } else {
                    i++;
                }
            }
            jl_push(c, parts, jv_str(p + start, n - start));
            return parts;
        }
        size_t end = n;
        for (size_t i = n; i >= sep.s.n && (maxsplit < 0 || (int64_t)parts->n < maxsplit);) {
            if (memcmp(p + i - sep.s.n, sep.s.p, sep.s.n) == 0) {
                jl_push(c, parts, jv_str(p + i, end - i));
                i -= sep.s.n;
                end = i;
            } else {
                i--;
            }
        }
        jl_push(c, parts, jv_str(p, end));
        for (size_t i = parts->n; i-- > 0;)
            jl_push(c, out, parts->v[i]);
        return out;
    }
    if (sep.kind != JV_NONE && sep.kind != JV_UNDEF)
        jfail(c, "TypeError", "must be str or None, not %s", jv_type(sep));
    if (!from_right) {
        size_t i = 0;
        for (;;) {
            i += ju_lstrip_ws(p + i, n - i);
            if (i >= n)
                break;
            if (maxsplit >= 0 && (int64_t)out->n >= maxsplit) {
                jl_push(c, out, jv_str(p + i, n - i));
                break;
            }
            size_t start = i;
            while (i < n) {
                size_t k = i;
                if (ju_isspace(ju_decode(p, n, &k)))
                    break;
                i = k;
            }
            jl_push(c, out, jv_str(p + start, i - start));
        }
        return out;
    }
    jlist *parts = jl_new(c, 0);
    size_t end = n;
    for (;;) {
        end = ju_rstrip_ws(p, end);
        if (end == 0)
            break;
        if (maxsplit >= 0 && (int64_t)parts->n >= maxsplit) {
            jl_push(c, parts, jv_str(p, end));
            break;
        }
        size_t start = end;
        while (start > 0) {
            size_t b = start - 1;
            while (b > 0 && ((unsigned char)p[b] & 0xC0) == 0x80)
                b--;
            size_t k = b;
            if (ju_isspace(ju_decode(p, n, &k)))
                break;
            start = b;
        }
        jl_push(c, parts, jv_str(p + start, end - start));
        end = start;
    }
    for (size_t i = parts->n; i-- > 0;)
        jl_push(c, out, parts->v[i]);
    return out;
}

/* mode 0 lower, 1 upper, 2 capitalize, 3 title (jinja's word-start rule) */
jv jstr_case(jctx *c, jv s, int mode)
{
    jbuf out = {0};
    size_t i = 0;
    bool word_start = true;
    while (i < s.s.n) {
        uint32_t cp = ju_decode(s.s.p, s.s.n, &i), r;
        if (mode == 0)
            r = ju_lower(cp);
        else if (mode == 1)
            r = ju_upper(cp);
        else if (mode == 2)
            r = out.n == 0 ? ju_upper(cp) : ju_lower(cp);
        else {
            r = word_start ? ju_upper(cp) : ju_lower(cp);
            word_start = ju_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        }
        char enc[4];
        jb_put(c, &out, enc, ju_encode(r, enc));
    }
    return jv_buf(&out);
}

jv jstr_replace(jctx *c, jv s, jv old, jv new_, int64_t count)
{
    if (old.kind != JV_STR || new_.kind != JV_STR)
        jfail(c, "TypeError", "replace() arguments must be str");
    jbuf out = {0};
    int64_t done = 0;
    if (old.s.n == 0) {
        size_t i = 0;
        while (count < 0 || done < count) {
            jb_put(c, &out, new_.s.p, new_.s.n);
            done++;
            if (i >= s.s.n)
                break;
            size_t start = i;
            ju_decode(s.s.p, s.s.n, &i);
            jb_put(c, &out, s.s.p + start, i - start);
        }
        jb_put(c, &out, s.s.p + i, s.s.n - i);
        return jv_buf(&out);
    }
    size_t i = 0;
    while (i < s.s.n) {
        if ((count < 0 || done < count) && s.s.n - i >= old.s.n &&
            memcmp(s.s.p + i, old.s.p, old.s.n) == 0) {
            jb_put(c, &out, new_.s.p, new_.s.n);
            i += old.s.n;
            done++;
        } else {
            jb_putc(c, &out, s.s.p[i++]);
        }
    }
    return jv_buf(&out);
}

/* Python's printf-style `fmt % args`: args is a tuple of values, a dict for %(key)s, or one
 * value. Supports the flags -+ #0, width, precision and s r a d i u x X o c e E f F g G %. */
jv jstr_printf(jctx *c, jv fmt, jv args)
{
    bool is_tuple = args.kind == JV_LIST && (args.flags & JVF_TUPLE);
    size_t argi = 0, nargs = is_tuple ? args.list->n : 1;
    bool used_mapping = false;
    jbuf out = {0};
    const char *p = fmt.s.p, *end = fmt.s.p + fmt.s.n;
    while (p < end) {
        if (*p != '%') {
            jb_putc(c, &out, *p++);
            continue;
        }
        if (++p >= end)
            jfail(c, "ValueError", "incomplete format");
        jv v;
        bool have = false;
        if (*p == '(') {
            const char *close = memchr(p, ')', (size_t)(end - p));
            if (close && args.kind == JV_UNDEF)
                jfail(c, "UndefinedError", "%s", args.undef ? args.undef : "value is undefined");
            if (!close || args.kind != JV_DICT)
                jfail(c, "TypeError", "format requires a mapping");
            jv *hit = jd_gets(args.dict, p + 1, (size_t)(close - p - 1));
            if (!hit)
                jfail(c, "KeyError", "'%.*s'", (int)(close - p - 1), p + 1);
            v = *hit;
            have = used_mapping = true;
            p = close + 1;
        }
        char spec[32] = "%";
        size_t k = 1;
        while (p < end && strchr("-+ #0", *p) && k < 8)
            spec[k++] = *p++;
        while (p < end && *p >= '0' && *p <= '9' && k < 16)
            spec[k++] = *p++;
        if (p < end && *p == '.') {
            spec[k++] = *p++;
            while (p < end && *p >= '0' && *p <= '9' && k < 24)
                spec[k++] = *p++;
        }
        if (p >= end)
            jfail(c, "ValueError", "incomplete format");
        char conv = *p++;
        if (conv == '%') {
            jb_putc(c, &out, '%');
            continue;
        }
        if (!have) {
            if (argi >= nargs)
                jfail(c, "TypeError", "not enough arguments for format string");
            v = is_tuple ? args.list->v[argi] : args;
            argi++;
        }
        char tmp[400];
        if (strchr("diuxXoc", conv)) {
            if (!jv_is_num(v) && !(conv == 'c' && v.kind == JV_STR))
                jfail(c, "TypeError", "%%%c format: a real number is required, not %s", conv, jv_type(v));
            if (conv == 'c' && v.kind == JV_STR) {
                jb_put(c, &out, v.s.p, v.s.n);
                continue;
            }
            double d = jv_num(v);
            long long x = v.kind == JV_FLOAT ? (long long)d : (long long)(v.kind == JV_INT ? v.i : v.b);
            if (conv == 'c') {
                char enc[4];
                jb_put(c, &out, enc, ju_encode((uint32_t)x & 0x1FFFFF, enc));
                continue;
            }
            memcpy(spec + k, "ll", 2);
            spec[k + 2] = conv == 'i' || conv == 'u' ? 'd' : conv;
            spec[k + 3] = 0;
            snprintf(tmp, sizeof tmp, spec, x);
            jb_puts(c, &out, tmp);
        } else if (strchr("eEfFgG", conv)) {
            if (!jv_is_num(v))
                jfail(c, "TypeError", "must be real number, not %s", jv_type(v));
            spec[k] = conv;
            spec[k + 1] = 0;
            snprintf(tmp, sizeof tmp, spec, jv_num(v));
            jb_puts(c, &out, tmp);
        } else if (conv == 's' || conv == 'r' || conv == 'a') {
            jbuf s = {0};
            if (conv == 's')
                jv_write_str(c, &s, v);
            else
                jv_write_repr(c, &s, v);
            spec[k] = 0;
            long width = 0, prec = -1;
            bool left = strchr(spec, '-') != NULL;
            const char *q = spec + 1;
            while (*q && strchr("-+ #0", *q))
                q++;
            width = strtol(q, (char **)&q, 10);
            if (*q == '.')
                prec = strtol(q + 1, NULL, 10);
            size_t len = s.n, chars = ju_len(s.p, s.n);
            if (prec >= 0 && (size_t)prec < chars) { /* keep the first prec characters */
                size_t i = 0;
                for (long n = 0; n < prec; n++)
                    ju_decode(s.p, s.n, &i);
                len = i;
                chars = (size_t)prec;
            }
            for (long pad = width - (long)chars; !left && pad > 0; pad--)
                jb_putc(c, &out, ' ');
            jb_put(c, &out, s.p, len);
            for (long pad = width - (long)chars; left && pad > 0; pad--)
                jb_putc(c, &out, ' ');
        } else {
            jfail(c, "ValueError", "unsupported format character '%c'", conv);
        }
    }
    /* Python counts anything with __getitem__ except tuple and str as a mapping, and a
     * mapping may go unused. */
    bool mapping_like = args.kind == JV_DICT || args.kind == JV_UNDEF || (args.kind == JV_LIST && !is_tuple);
    if (!used_mapping && argi < nargs && !mapping_like)
        jfail(c, "TypeError", "not all arguments converted during string formatting");
    return jv_buf(&out);
}

/* --------------------------------------------------------------- methods --- */
static const char *const STR_METHODS[] = {
    "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit", "replace",
    "upper", "lower", "title", "capitalize", "find", "rfind", "count", "join", "splitlines",
    "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix",
    "removesuffix", "index", "rindex", "partition", "rpartition", "format", NULL};
static const char *const DICT_METHODS[] = {"get", "items", "keys", "values", "copy", "pop",
                                           "popitem", "setdefault", "update", "clear", NULL};
static const char *const LIST_METHODS[] = {"index", "count", "copy", "append", "extend", "insert",
                                           "pop", "remove", "clear", "sort", "reverse", NULL};
static const char *const LOOP_METHODS[] = {"cycle", "changed", NULL};
static const char *const UNSAFE[] = {"pop", "popitem", "setdefault", "update", "clear", "append",
                                     "extend", "insert", "remove", "sort", "reverse", NULL};

static bool listed(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

jv jmethod_lookup(jctx *c, jv obj, const char *name)
{
    const char *const *list = obj.kind == JV_STR ? STR_METHODS : obj.kind == JV_DICT ? DICT_METHODS
                            : obj.kind == JV_LIST ? LIST_METHODS : obj.kind == JV_LOOP ? LOOP_METHODS
                            : NULL;
    if (!list || !listed(list, name))
        return jv_undef(NULL);
    jmethod *m = jalloc(c, sizeof *m);
    m->self = obj;
    m->name = name;
    return (jv){.kind = JV_METHOD, .method = m};
}

static jv arg_or(jctx *c, const jargs *a, size_t idx, const char *name, jv dflt)
{
    jv v;
    (void)c;
    return jarg(a, idx, name, &v) ? v : dflt;
}

static int64_t int_arg(jctx *c, const jargs *a, size_t idx, const char *name, int64_t dflt)
{
    jv v = arg_or(c, a, idx, name, jv_int(dflt));
    if (v.kind == JV_NONE)
        return dflt;
    if (v.kind != JV_INT && v.kind != JV_BOOL)
        jfail(c, "TypeError", "'%s' object cannot be interpreted as an integer", jv_type(v));
    return v.kind == JV_INT ? v.i : v.b;
}

static jv need_str(jctx *c, const jargs *a, size_t idx, const char *what)
{
    if (idx >= a->npos)
        jfail(c, "TypeError", "%s() takes at least %zu argument(s)", what, idx + 1);
    if (a->pos[idx].kind != JV_STR)
        jfail(c, "TypeError", "%s() argument must be str, not %s", what, jv_type(a->pos[idx]));
    return a->pos[idx];
}

static bool affix_match(jv s, jv x, bool end)
{
    if (x.s.n > s.s.n)
        return false;
    return memcmp(s.s.p + (end ? s.s.n - x.s.n : 0), x.s.p, x.s.n) == 0;
}

static jv str_affix(jctx *c, jv s, const jargs *a, bool end)
{
    const char *what = end ? "endswith" : "startswith";
    if (a->npos < 1)
        jfail(c, "TypeError", "%s() takes at least 1 argument", what);
    jv x = a->pos[0];
    if (x.kind == JV_LIST && (x.flags & JVF_TUPLE)) {
        for (size_t i = 0; i < x.list->n; i++) {
            if (x.list->v[i].kind != JV_STR)
                jfail(c, "TypeError", "tuple for %s must only contain str", what);
            if (affix_match(s, x.list->v[i], end))
                return jv_bool(true);
        }
        return jv_bool(false);
    }
    if (x.kind != JV_STR)
        jfail(c, "TypeError", "%s first arg must be str or a tuple of str, not %s", what, jv_type(x));
    return jv_bool(affix_match(s, x, end));
}

static jv str_find(jctx *c, jv s, const jargs *a, bool rev)
{
    jwork(c, s.s.n);
    jv x = need_str(c, a, 0, rev ? "rfind" : "find");
    const char *hit = NULL;
    for (size_t i = 0; i + x.s.n <= s.s.n; i++)
        if (memcmp(s.s.p + i, x.s.p, x.s.n) == 0) {
            hit = s.s.p + i;
            if (!rev)
                break;
        }
    return jv_int(hit ? (int64_t)ju_len(s.s.p, (size_t)(hit - s.s.p)) : -1);
}

static jv str_class(jv s, int kind)
{
    size_t i = 0;
    bool any_cased = false;
    if (s.s.n == 0)
        return jv_bool(false);
    while (i < s.s.n) {
        uint32_t cp = ju_decode(s.s.p, s.s.n, &i);
        bool ok;
        switch (kind) {
        case 0: ok = cp >= '0' && cp <= '9'; break;
        case 1: ok = ju_lower(cp) != ju_upper(cp) || (cp > 0x7F && !ju_isspace(cp)); break;
        case 2: ok = (cp >= '0' && cp <= '9') || ju_lower(cp) != ju_upper(cp) || cp > 0x7F; break;
        case 3: ok = ju_isspace(cp); break;
        default:
            if (ju_lower(cp) != ju_upper(cp))
                any_cased = true;
            ok = kind == 4 ? ju_upper(cp) == cp || ju_lower(cp) == ju_upper(cp)
                           : ju_lower(cp) == cp || ju_lower(cp) == ju_upper(cp);
            if (kind == 4 && ju_lower(cp) != cp && ju_lower(cp) != ju_upper(cp))
                ok = false;
            if (kind == 5 && ju_upper(cp) != cp && ju_lower(cp) != ju_upper(cp))
                ok = false;
        }
        if (!ok)
            return jv_bool(false);
    }
    return jv_bool(kind < 4 || any_cased);
}

/* str.format with automatic or numbered or named fields and no format specs. */
static jv str_format(jctx *c, jv s, const jargs *a)
{
    jbuf out = {0};
    size_t auto_idx = 0;
    for (size_t i = 0; i < s.s.n; i++) {
        char ch = s.s.p[i];
        if ((ch == '{' || ch == '}') && i + 1 < s.s.n && s.s.p[i + 1] == ch) {
            jb_putc(c, &out, ch);
            i++;
            continue;
        }
        if (ch == '}')
            jfail(c, "ValueError", "Single '}' encountered in format string");
        if (ch != '{') {
            jb_putc(c, &out, ch);
            continue;
        }
        const char *close = memchr(s.s.p + i, '}', s.s.n - i);
        if (!close)
            jfail(c, "ValueError", "Single '{' encountered in format string");
        size_t flen = (size_t)(close - (s.s.p + i + 1));
        const char *field = jstrdup(c, s.s.p + i + 1, flen);
        if (strpbrk(field, ":!.[{"))
            jfail(c, "ValueError", "format specs and conversions are not supported");
        jv v;
        if (flen == 0 || (field[0] >= '0' && field[0] <= '9')) {
            size_t idx = flen ? (size_t)strtoull(field, NULL, 10) : auto_idx++;
            if (idx >= a->npos)
                jfail(c, "IndexError", "Replacement index %zu out of range", idx);
            v = a->pos[idx];
        } else if (!jarg(a, SIZE_MAX, field, &v)) {
            jfail(c, "KeyError", "'%s'", field);
        }
        jv_write_str(c, &out, v);
        i += flen + 1;
    }
    return jv_buf(&out);
}

static jv str_method(jctx *c, jv s, const char *name, const jargs *a)
{
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith"))
        return str_affix(c, s, a, name[0] == 'e');
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip"))
        return jstr_strip(c, s, arg_or(c, a, 0, "chars", jv_none()), name[0] != 'r', name[0] != 'l');
    if (!strcmp(name, "split") || !strcmp(name, "rsplit"))
        return jv_list(jstr_split(c, s, arg_or(c, a, 0, "sep", jv_none()),
                                  int_arg(c, a, 1, "maxsplit", -1), name[0] == 'r'));
    if (!strcmp(name, "replace"))
        return jstr_replace(c, s, need_str(c, a, 0, name), need_str(c, a, 1, name),
                            int_arg(c, a, 2, "count", -1));
    if (!strcmp(name, "lower")) return jstr_case(c, s, 0);
    if (!strcmp(name, "upper")) return jstr_case(c, s, 1);
    if (!strcmp(name, "capitalize")) return jstr_case(c, s, 2);
    if (!strcmp(name, "title")) return jstr_case(c, s, 3);
    if (!strcmp(name, "find") || !strcmp(name, "rfind")) return str_find(c, s, a, name[0] == 'r');
    if (!strcmp(name, "count")) {
        jv x = need_str(c, a, 0, name);
        int64_t n = 0;
        if (x.s.n == 0)
            return jv_int((int64_t)ju_len(s.s.p, s.s.n) + 1);
        for (size_t i = 0; i + x.s.n <= s.s.n;)
            if (memcmp(s.s.p + i, x.s.p, x.s.n) == 0) {
                n++;
                i += x.s.n;
            } else {
                i++;
            }
        return jv_int(n);
    }
    if (!strcmp(name, "join")) {
        if (a->npos < 1)
            jfail(c, "TypeError", "join() takes exactly one argument");
        jlist *l = jv_iterate(c, a->pos[0]);
        jbuf out = {0};
        for (size_t i = 0; i < l->n; i++) {
            if (l->v[i].kind != JV_STR)
                jfail(c, "TypeError", "sequence item %zu: expected str instance, %s found", i,
                      jv_type(l->v[i]));
            if (i)
                jb_put(c, &out, s.s.p, s.s.n);
            jb_put(c, &out, l->v[i].s.p, l->v[i].s.n);
        }
        return jv_buf(&out);
    }
    if (!strcmp(name, "splitlines")) {
        jlist *l = jl_new(c, 0);
        size_t start = 0, i = 0;
        while (i < s.s.n) {
            size_t at = i;
            uint32_t cp = ju_decode(s.s.p, s.s.n, &i);
            if (cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E) ||
                cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
                jl_push(c, l, jv_str(s.s.p + start, at - start));
                if (cp == '\r' && i < s.s.n && s.s.p[i] == '\n')
                    i++;
                start = i;
            }
        }
        if (start < s.s.n)
            jl_push(c, l, jv_str(s.s.p + start, s.s.n - start));
        return jv_list(l);
    }
    if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
        bool suffix = name[6] == 's';
        jv x = need_str(c, a, 0, name);
        if (!affix_match(s, x, suffix))
            return s;
        return jv_str(s.s.p + (suffix ? 0 : x.s.n), s.s.n - x.s.n);
    }
    if (!strcmp(name, "index") || !strcmp(name, "rindex")) {
        jv r = str_find(c, s, a, name[0] == 'r');
        if (r.i < 0)
            jfail(c, "ValueError", "substring not found");
        return r;
    }
    if (!strcmp(name, "partition") || !strcmp(name, "rpartition")) {
        jv sep = need_str(c, a, 0, name);
        if (sep.s.n == 0)
            jfail(c, "ValueError", "empty separator");
        jlist *parts = jstr_split(c, s, sep, 1, name[0] == 'r');
        jlist *t = jl_new(c, 3);
        bool found = parts->n == 2;
        jv empty = jv_str("", 0);
        t->v[0] = found ? parts->v[0] : name[0] == 'r' ? empty : s;
        t->v[1] = found ? sep : empty;
        t->v[2] = found ? parts->v[1] : name[0] == 'r' ? s : empty;
        t->n = 3;
        jv r = jv_list(t);
        r.flags = JVF_TUPLE;
        return r;
    }
    if (!strcmp(name, "isdigit")) return str_class(s, 0);
    if (!strcmp(name, "isalpha")) return str_class(s, 1);
    if (!strcmp(name, "isalnum")) return str_class(s, 2);
    if (!strcmp(name, "isspace")) return str_class(s, 3);
    if (!strcmp(name, "isupper")) return str_class(s, 4);
    if (!strcmp(name, "islower")) return str_class(s, 5);
    return str_format(c, s, a);
}

static jv dict_method(jctx *c, jdict *d, const char *name, const jargs *a)
{
    if (!strcmp(name, "get")) {
        if (a->npos < 1)
            jfail(c, "TypeError", "get expected at least 1 argument, got 0");
        jv *v = jd_get(d, a->pos[0]);
        return v ? *v : a->npos > 1 ? a->pos[1] : jv_none();
    }
    if (!strcmp(name, "copy")) {
        jdict *n = jd_new(c, d->n);
        for (size_t i = 0; i < d->n; i++)
            jd_set(c, n, d->k[i], d->v[i]);
        return jv_dict(n);
    }
    jlist *l = jl_new(c, d->n);
    for (size_t i = 0; i < d->n; i++) {
        if (name[0] == 'k') {
            l->v[l->n++] = d->k[i];
        } else if (name[0] == 'v') {
            l->v[l->n++] = d->v[i];
        } else {
            jlist *pair = jl_new(c, 2);
            pair->v[0] = d->k[i];
            pair->v[1] = d->v[i];
            pair->n = 2;
            jv t = jv_list(pair);
            t.flags = JVF_TUPLE;
            l->v[l->n++] = t;
        }
    }
    l->view = name[0] == 'k' ? "dict_keys" : name[0] == 'v' ? "dict_values" : "dict_items";
    jv r = jv_list(l);
    r.flags = JVF_VIEW;
    return r;
}

jv jmethod_call(jctx *c, const jmethod *m, const jargs *a)
{
    jv self = m->self;
    if (listed(UNSAFE, m->name))
        jfail(c, "SecurityError", "access to attribute '%s' of '%s' object is unsafe.", m->name,
              jv_type(self));
    switch (self.kind) {
    case JV_STR: return str_method(c, self, m->name, a);
    case JV_DICT: return dict_method(c, self.dict, m->name, a);
    case JV_LIST:
        if (!strcmp(m->name, "copy")) {
            jlist *l = jl_new(c, self.list->n);
            if (self.list->n)
                memcpy(l->v, self.list->v, self.list->n * sizeof *l->v);
            l->n = self.list->n;
            return jv_list(l);
        }
        if (a->npos < 1)
            jfail(c, "TypeError", "%s() takes exactly one argument (0 given)", m->name);
        int64_t hits = 0;
        for (size_t i = 0; i < self.list->n; i++)
            if (jv_equal(c, self.list->v[i], a->pos[0])) {
                if (m->name[0] == 'i')
                    return jv_int((int64_t)i);
                hits++;
            }
        if (m->name[0] == 'c')
            return jv_int(hits);
        jfail(c, "ValueError", "value is not in list");
    default: /* loop.cycle, loop.changed */
        if (!strcmp(m->name, "changed")) {
            jlist *vals = jl_new(c, a->npos);
            for (size_t i = 0; i < a->npos; i++)
                vals->v[vals->n++] = a->pos[i];
            jv now = jv_list(vals);
            now.flags = JVF_TUPLE;
            if (self.loop->changed_seen && jv_equal(c, self.loop->changed_last, now))
                return jv_bool(false);
            self.loop->changed_seen = true;
            self.loop->changed_last = now;
            return jv_bool(true);
        }
        if (a->npos == 0)
            jfail(c, "TypeError", "no items for cycling given");
        return a->pos[self.loop->index % a->npos];
    }
}

/* ---------------------------------------------------------------- globals --- */
static const char *const GLOBALS[] = {"range", "namespace", "dict", "raise_exception",
                                      "strftime_now", NULL};

int jglobal_id(const char *name)
{
    for (int i = 0; GLOBALS[i]; i++)
        if (!strcmp(GLOBALS[i], name))
            return i;
    return -1;
}

static jv make_dict(jctx *c, const jargs *a, bool ns)
{
    jdict *d = jd_new(c, 0);
    if (a->npos > 1)
        jfail(c, "TypeError", "%s expected at most 1 argument", ns ? "namespace" : "dict");
    if (a->npos == 1) {
        jv src = a->pos[0];
        if (src.kind == JV_DICT || src.kind == JV_NS) {
            for (size_t i = 0; i < src.dict->n; i++)
                jd_set(c, d, src.dict->k[i], src.dict->v[i]);
        } else {
            jlist *l = jv_iterate(c, src);
            for (size_t i = 0; i < l->n; i++) {
                jlist *kv = jv_iterate(c, l->v[i]);
                if (kv->n != 2)
                    jfail(c, "ValueError", "dictionary update sequence element has wrong length");
                jd_set(c, d, kv->v[0], kv->v[1]);
            }
        }
    }
    for (size_t i = 0; i < a->nkw; i++)
        jd_set(c, d, jv_cstr(a->kwn[i]), a->kwv[i]);
    return (jv){.kind = ns ? JV_NS : JV_DICT, .dict = d};
}

jv jglobal_call(jctx *c, int id, const jargs *a)
{
    switch (id) {
    case 0: { /* range */
        if (a->npos < 1 || a->npos > 3 || a->nkw)
            jfail(c, "TypeError", "range expected 1 to 3 integer arguments");
        int64_t v[3] = {0, 0, 1};
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].kind != JV_INT && a->pos[i].kind != JV_BOOL)
                jfail(c, "TypeError", "'%s' object cannot be interpreted as an integer",
                      jv_type(a->pos[i]));
            v[a->npos == 1 ? 1 : i] = a->pos[i].kind == JV_INT ? a->pos[i].i : a->pos[i].b;
        }
        if (v[2] == 0)
            jfail(c, "ValueError", "range() arg 3 must not be zero");
        jlist *l = jl_new(c, 0);
        for (int64_t x = v[0]; v[2] > 0 ? x < v[1] : x > v[1]; x += v[2]) {
            if (l->n >= 100000)
                jfail(c, "OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
            jl_push(c, l, jv_int(x));
            if ((v[2] > 0 && x > INT64_MAX - v[2]) || (v[2] < 0 && x < INT64_MIN - v[2]))
                break;
        }
        return jv_list(l);
    }
    case 1: return make_dict(c, a, true);
    case 2: return make_dict(c, a, false);
    case 3: {
        jv msg = a->npos ? jv_to_str(c, a->pos[0]) : jv_cstr("");
        jfail(c, "TemplateError", "%.*s", (int)(msg.s.n > 600 ? 600 : msg.s.n), msg.s.p);
    }
    default: { /* strftime_now */
        if (a->npos < 1 || a->pos[0].kind != JV_STR)
            jfail(c, "TypeError", "strftime_now() needs a format string");
        const char *fmt = jstrdup(c, a->pos[0].s.p, a->pos[0].s.n);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char *buf = jalloc(c, 512);
        size_t n = strftime(buf, 512, fmt, &tm);
        return jv_str(buf, n);
    }
    }
}
