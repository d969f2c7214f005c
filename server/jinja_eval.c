/* jinja_eval.c: executes a parsed template: expressions, statements, scopes, macros, loops;
 * plus the public entry points (jinja_parse, jinja_render, jinja_chat_vars). */
#include "server/jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE };

void jwork(jctx *c, size_t bytes)
{
    c->steps += bytes >> 6;
    jstep(c);
}

void jstep(jctx *c)
{
    if (++c->steps > c->max_steps)
        jfail(c, "RuntimeError", "template took more than %llu steps",
              (unsigned long long)c->max_steps);
}

static void enter(jctx *c)
{
    if (++c->depth > JINJA_MAX_DEPTH)
        jfail(c, "RecursionError", "template recursion deeper than %d", JINJA_MAX_DEPTH);
}

/* ---------------------------------------------------------------- scopes --- */
static jscope *scope_new(jctx *c, jscope *parent)
{
    jscope *s = jalloc(c, sizeof *s);
    s->parent = parent;
    return s;
}

static void scope_set(jctx *c, jscope *s, const char *name, jv v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            s->vals[i] = v;
            return;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const char **nn = jalloc(c, cap * sizeof *nn);
        jv *nv = jalloc(c, cap * sizeof *nv);
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
}

static jv scope_get(jctx *c, const jscope *s, const char *name)
{
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (!strcmp(s->names[i], name))
                return s->vals[i];
    int g = jglobal_id(name);
    if (g >= 0)
        return (jv){.kind = JV_FUNC, .func = g};
    char *msg = jalloc(c, strlen(name) + 20);
    sprintf(msg, "'%s' is undefined", name);
    return jv_undef(msg);
}

/* ----------------------------------------------------------- expressions --- */
static jv eval(jctx *c, jscope *s, const jnode *nd);
static int exec_body(jctx *c, jscope *s, const jnodes *body);

static _Noreturn void fail_undef(jctx *c, jv v)
{
    jfail(c, "UndefinedError", "%s", v.undef ? v.undef : "value is undefined");
}

static void html_escape(jctx *c, jbuf *b, jv v)
{
    jv s = jv_to_str(c, v);
    for (size_t i = 0; i < s.s.n; i++) {
        char ch = s.s.p[i];
        const char *e = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;"
                      : ch == '"' ? "&#34;" : ch == '\'' ? "&#39;" : NULL;
        if (e)
            jb_puts(c, b, e);
        else
            jb_putc(c, b, ch);
    }
}

static jv concat_str(jctx *c, jv a, jv b)
{
    jbuf out = {0};
    bool markup = (a.flags | b.flags) & JVF_MARKUP;
    /* Markup + str escapes the plain side, as markupsafe's __add__/__radd__ do. */
    if (markup && !(a.flags & JVF_MARKUP))
        html_escape(c, &out, a);
    else
        jb_put(c, &out, a.s.p, a.s.n);
    if (markup && !(b.flags & JVF_MARKUP))
        html_escape(c, &out, b);
    else
        jb_put(c, &out, b.s.p, b.s.n);
    jv r = jv_buf(&out);
    r.flags = markup ? JVF_MARKUP : 0;
    return r;
}

static jv int_or_overflow(jctx *c, bool overflow, int64_t r)
{
    if (overflow)
        jfail(c, "OverflowError", "integer result does not fit in 64 bits");
    return jv_int(r);
}

static int64_t as_int(jv v) { return v.kind == JV_INT ? v.i : v.b; }

static jv arith(jctx *c, int op, jv a, jv b)
{
    if (op == JO_MOD && a.kind == JV_STR) /* str.__mod__ runs before Undefined.__rmod__ */
        return jstr_printf(c, a, b);
    if (a.kind == JV_UNDEF)
        fail_undef(c, a);
    if (b.kind == JV_UNDEF)
        fail_undef(c, b);
    const char *sym = jop_text[op];
    if (jv_is_num(a) && jv_is_num(b)) {
        bool ints = a.kind != JV_FLOAT && b.kind != JV_FLOAT;
        int64_t x = ints ? as_int(a) : 0, y = ints ? as_int(b) : 0, r = 0;
        double fx = jv_num(a), fy = jv_num(b);
        switch (op) {
        case JO_ADD: {
            if (!ints)
                return jv_float(fx + fy);
            bool over = __builtin_add_overflow(x, y, &r);
            return int_or_overflow(c, over, r);
        }
        case JO_SUB: {
            if (!ints)
                return jv_float(fx - fy);
            bool over = __builtin_sub_overflow(x, y, &r);
            return int_or_overflow(c, over, r);
        }
        case JO_MUL: {
            if (!ints)
                return jv_float(fx * fy);
            bool over = __builtin_mul_overflow(x, y, &r);
            return int_or_overflow(c, over, r);
        }
        case JO_DIV:
            if (fy == 0)
                jfail(c, "ZeroDivisionError", "division by zero");
            return jv_float(fx / fy);
        case JO_FLOORDIV: case JO_MOD:
            if (ints) {
                if (y == 0)
                    jfail(c, "ZeroDivisionError", "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1)
                    return op == JO_MOD ? jv_int(0) : int_or_overflow(c, true, 0);
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return jv_int(op == JO_MOD ? m : q);
            }
            if (fy == 0)
                jfail(c, "ZeroDivisionError", "float division by zero");
            if (op == JO_FLOORDIV)
                return jv_float(floor(fx / fy));
            double m = fmod(fx, fy);
            if (m != 0 && ((m < 0) != (fy < 0)))
                m += fy;
            return jv_float(m);
        case JO_POW:
            if (ints && y >= 0) {
                int64_t acc = 1, base = x;
                bool overflow = false;
                for (uint64_t e = (uint64_t)y; e; e >>= 1) {
                    if (e & 1)
                        overflow |= __builtin_mul_overflow(acc, base, &acc);
                    if (e > 1)
                        overflow |= __builtin_mul_overflow(base, base, &base);
                }
                return int_or_overflow(c, overflow, acc);
            }
            if (fx == 0 && fy < 0)
                jfail(c, "ZeroDivisionError", "0.0 cannot be raised to a negative power");
            return jv_float(pow(fx, fy));
        default: break;
        }
    }
    if (op == JO_ADD && a.kind == JV_STR && b.kind == JV_STR)
        return concat_str(c, a, b);
    if (op == JO_ADD && a.kind == JV_LIST && b.kind == JV_LIST &&
        !((a.flags | b.flags) & (JVF_GEN | JVF_VIEW)) &&
        (a.flags & JVF_TUPLE) == (b.flags & JVF_TUPLE)) {
        jlist *l = jl_new(c, a.list->n + b.list->n);
        if (a.list->n)
            memcpy(l->v, a.list->v, a.list->n * sizeof *l->v);
        if (b.list->n)
            memcpy(l->v + a.list->n, b.list->v, b.list->n * sizeof *l->v);
        l->n = a.list->n + b.list->n;
        jv r = jv_list(l);
        r.flags = a.flags & JVF_TUPLE;
        return r;
    }
    if (op == JO_MUL && !((a.flags | b.flags) & (JVF_GEN | JVF_VIEW)) &&
        (a.kind == JV_STR || a.kind == JV_LIST || b.kind == JV_STR || b.kind == JV_LIST) &&
        (a.kind == JV_INT || a.kind == JV_BOOL || b.kind == JV_INT || b.kind == JV_BOOL)) {
        jv seq = a.kind == JV_STR || a.kind == JV_LIST ? a : b, cnt = seq.kind == a.kind ? b : a;
        int64_t n = as_int(cnt);
        if (cnt.kind == JV_INT || cnt.kind == JV_BOOL) {
            size_t unit = seq.kind == JV_STR ? seq.s.n : seq.list->n;
            if (unit == 0 || n < 0)
                n = 0; /* nothing to repeat: no need to loop n times */
            if (n > 0 && (uint64_t)n > JINJA_MAX_OUTPUT / unit)
                jfail(c, "MemoryError", "repeated sequence too long");
            if (seq.kind == JV_STR) {
                jbuf out = {0};
                for (int64_t i = 0; i < n; i++)
                    jb_put(c, &out, seq.s.p, seq.s.n);
                return jv_buf(&out);
            }
            jlist *l = jl_new(c, 0);
            for (int64_t i = 0; i < n; i++)
                for (size_t k = 0; k < seq.list->n; k++)
                    jl_push(c, l, seq.list->v[k]);
            jv r = jv_list(l);
            r.flags = seq.flags & JVF_TUPLE;
            return r;
        }
    }
    if (op == JO_ADD && a.kind == JV_STR)
        jfail(c, "TypeError", "can only concatenate str (not \"%s\") to str", jv_type(b));
    if (op == JO_ADD && a.kind == JV_LIST)
        jfail(c, "TypeError", "can only concatenate %s (not \"%s\") to %s", jv_type(a), jv_type(b),
              jv_type(a));
    if (op == JO_MOD && a.kind == JV_STR)
        return jstr_printf(c, a, b);
    jfail(c, "TypeError", "unsupported operand type(s) for %s: '%s' and '%s'", sym, jv_type(a),
          jv_type(b));
}

static jv binop(jctx *c, int op, jv a, jv b)
{
    switch (op) {
    case JO_TILDE: {
        jv x = jv_to_str(c, a), y = jv_to_str(c, b);
        jbuf out = {0};
        jb_put(c, &out, x.s.p, x.s.n);
        jb_put(c, &out, y.s.p, y.s.n);
        return jv_buf(&out);
    }
    case JO_EQ: return jv_bool(jv_equal(c, a, b));
    case JO_NE: return jv_bool(!jv_equal(c, a, b));
    case JO_LT: return jv_bool(jv_compare(c, a, b, "<") < 0);
    case JO_LE: return jv_bool(jv_compare(c, a, b, "<=") <= 0);
    case JO_GT: return jv_bool(jv_compare(c, a, b, ">") > 0);
    case JO_GE: return jv_bool(jv_compare(c, a, b, ">=") >= 0);
    case JO_IN: return jv_bool(jv_contains(c, b, a));
    case JO_NOTIN: return jv_bool(!jv_contains(c, b, a));
    default: return arith(c, op, a, b);
    }
}

/* Positional and keyword arguments of a call, filter or test node, evaluated. */
static void eval_args(jctx *c, jscope *s, const jnode *nd, jargs *a)
{
    a->npos = nd->items.n;
    a->pos = a->npos ? jalloc(c, a->npos * sizeof *a->pos) : NULL;
    for (size_t i = 0; i < a->npos; i++)
        a->pos[i] = eval(c, s, nd->items.v[i]);
    a->nkw = nd->nnames;
    a->kwn = nd->names;
    a->kwv = a->nkw ? jalloc(c, a->nkw * sizeof *a->kwv) : NULL;
    for (size_t i = 0; i < a->nkw; i++)
        a->kwv[i] = eval(c, s, nd->items2.v[i]);
}

static jv call_macro(jctx *c, const jmacro *m, const jargs *a, jv caller)
{
    const jnode *def = m->node;
    const char *mname = def->kind == JS_MACRO ? def->name : "caller";
    jscope *ms = scope_new(c, m->closure);
    jlist *varargs = jl_new(c, 0);
    jdict *kwargs = jd_new(c, 0);
    bool takes_varargs = def->kind != JS_MACRO || (def->op & JMACRO_VARARGS);
    bool takes_kwargs = def->kind != JS_MACRO || (def->op & JMACRO_KWARGS);
    if (a->npos > def->nnames && !takes_varargs)
        jfail(c, "TypeError", "macro '%s' takes not more than %zu argument(s)", mname, def->nnames);
    for (size_t i = def->nnames; i < a->npos; i++)
        jl_push(c, varargs, a->pos[i]);
    for (size_t k = 0; k < a->nkw; k++) {
        bool known = false;
        for (size_t i = 0; i < def->nnames; i++)
            if (!strcmp(def->names[i], a->kwn[k])) {
                if (i < a->npos)
                    jfail(c, "TypeError", "macro '%s' got multiple values for argument '%s'", mname,
                          a->kwn[k]);
                known = true;
            }
        if (!known && !takes_kwargs)
            jfail(c, "TypeError", "macro '%s' takes no keyword argument '%s'", mname, a->kwn[k]);
        if (!known)
            jd_set(c, kwargs, jv_cstr(a->kwn[k]), a->kwv[k]);
    }
    for (size_t i = 0; i < def->nnames; i++) {
        jv v;
        bool have = i < a->npos;
        if (have)
            v = a->pos[i];
        for (size_t k = 0; !have && k < a->nkw; k++)
            if (!strcmp(def->names[i], a->kwn[k])) {
                v = a->kwv[k];
                have = true;
            }
        if (!have) {
            if (def->items2.v[i]) {
                v = eval(c, ms, def->items2.v[i]);
            } else {
                char *msg = jalloc(c, strlen(def->names[i]) + 40);
                sprintf(msg, "parameter '%s' was not provided", def->names[i]);
                v = jv_undef(msg);
            }
        }
        scope_set(c, ms, def->names[i], v);
    }
    jv va = jv_list(varargs);
    va.flags = JVF_TUPLE;
    scope_set(c, ms, "varargs", va);
    scope_set(c, ms, "kwargs", jv_dict(kwargs));
    if (caller.kind != JV_UNDEF)
        scope_set(c, ms, "caller", caller);
    jbuf out = {0}, *saved = c->out;
    int saved_line = c->line;
    c->out = &out;
    enter(c);
    exec_body(c, ms, &def->items);
    c->depth--;
    c->out = saved;
    c->line = saved_line;
    return jv_buf(&out);
}

jv jcall_value(jctx *c, jv callee, const jargs *a)
{
    switch (callee.kind) {
    case JV_MACRO: return call_macro(c, callee.macro, a, jv_undef(NULL));
    case JV_FUNC: return jglobal_call(c, callee.func, a);
    case JV_METHOD: return jmethod_call(c, callee.method, a);
    case JV_UNDEF: fail_undef(c, callee);
    default: jfail(c, "TypeError", "'%s' object is not callable", jv_type(callee));
    }
}

static jv eval_filter(jctx *c, jscope *s, const jnode *nd, jv input)
{
    jv v = nd->a ? (nd->a->kind == JN_FILTER ? eval_filter(c, s, nd->a, input) : eval(c, s, nd->a))
                 : input;
    jargs a;
    eval_args(c, s, nd, &a);
    c->line = nd->line;
    if (nd->fn < 0)
        jfail(c, "TemplateRuntimeError", "No filter named '%s' found.", nd->name);
    return jfilter_apply(c, nd->fn, v, &a);
}

/* Made only of literals, so jinja2 folds it at compile time when it is printed. */
static bool is_constant(const jnode *nd)
{
    if (!nd)
        return true;
    switch (nd->kind) {
    case JN_CONST: return true;
    case JN_LIST: case JN_TUPLE: case JN_DICT: case JN_NOT: case JN_NEG: case JN_POS:
    case JN_BINOP: case JN_AND: case JN_OR: case JN_COND: case JN_TEST: case JN_FILTER:
    case JN_GETATTR: case JN_GETITEM: case JN_SLICE:
        for (size_t i = 0; i < nd->items.n; i++)
            if (!is_constant(nd->items.v[i]))
                return false;
        for (size_t i = 0; i < nd->items2.n; i++)
            if (!is_constant(nd->items2.v[i]))
                return false;
        return (nd->kind != JN_FILTER || nd->a) && is_constant(nd->a) && is_constant(nd->b) &&
               is_constant(nd->c) && is_constant(nd->d);
    default: return false;
    }
}

static jv eval(jctx *c, jscope *s, const jnode *nd)
{
    jstep(c);
    enter(c);
    c->line = nd->line;
    jv r;
    switch (nd->kind) {
    case JN_CONST: r = nd->cval; break;
    case JN_NAME: r = scope_get(c, s, nd->name); break;
    case JN_LIST: case JN_TUPLE: {
        jlist *l = jl_new(c, nd->items.n);
        for (size_t i = 0; i < nd->items.n; i++)
            l->v[l->n++] = eval(c, s, nd->items.v[i]);
        r = jv_list(l);
        r.flags = nd->kind == JN_TUPLE ? JVF_TUPLE : 0;
        break;
    }
    case JN_DICT: {
        jdict *d = jd_new(c, nd->items.n);
        for (size_t i = 0; i < nd->items.n; i++) {
            jv k = eval(c, s, nd->items.v[i]);
            if (k.kind == JV_LIST && !(k.flags & JVF_TUPLE))
                jfail(c, "TypeError", "unhashable type: 'list'");
            if (k.kind == JV_DICT)
                jfail(c, "TypeError", "unhashable type: 'dict'");
            jd_set(c, d, k, eval(c, s, nd->items2.v[i]));
        }
        r = jv_dict(d);
        break;
    }
    case JN_GETATTR: {
        jv obj = eval(c, s, nd->a);
        c->line = nd->line;
        r = jv_getattr(c, obj, nd->name);
        break;
    }
    case JN_GETITEM: {
        jv obj = eval(c, s, nd->a), key = eval(c, s, nd->b);
        c->line = nd->line;
        r = jv_getitem(c, obj, key);
        break;
    }
    case JN_SLICE: {
        jv obj = eval(c, s, nd->a);
        jv a = nd->b ? eval(c, s, nd->b) : jv_none(), b = nd->c ? eval(c, s, nd->c) : jv_none(),
           st = nd->d ? eval(c, s, nd->d) : jv_none();
        c->line = nd->line;
        /* jinja2 slices with plain Python, which raises, except when it folds a constant
         * {{ }} at compile time: that goes through the sandbox's lenient getitem. */
        if (c->folding && obj.kind != JV_LIST && obj.kind != JV_STR && obj.kind != JV_UNDEF)
            r = jv_undef("object is not subscriptable");
        else
            r = jv_slice(c, obj, a, b, st);
        break;
    }
    case JN_CALL: {
        jv callee = eval(c, s, nd->a);
        jargs a;
        eval_args(c, s, nd, &a);
        c->line = nd->line;
        r = jcall_value(c, callee, &a);
        break;
    }
    case JN_FILTER: r = eval_filter(c, s, nd, jv_undef(NULL)); break;
    case JN_TEST: {
        jv v = eval(c, s, nd->a);
        jargs a;
        eval_args(c, s, nd, &a);
        c->line = nd->line;
        if (nd->fn < 0)
            jfail(c, "TemplateRuntimeError", "No test named '%s' found.", nd->name);
        r = jv_bool(jtest_apply(c, nd->fn, v, &a) != nd->negated);
        break;
    }
    case JN_BINOP: {
        jv a = eval(c, s, nd->a), b = eval(c, s, nd->b);
        c->line = nd->line;
        r = binop(c, nd->op, a, b);
        break;
    }
    case JN_AND: {
        jv a = eval(c, s, nd->a);
        r = jv_truthy(a) ? eval(c, s, nd->b) : a;
        break;
    }
    case JN_OR: {
        jv a = eval(c, s, nd->a);
        r = jv_truthy(a) ? a : eval(c, s, nd->b);
        break;
    }
    case JN_NOT: r = jv_bool(!jv_truthy(eval(c, s, nd->a))); break;
    case JN_NEG: case JN_POS: {
        jv v = eval(c, s, nd->a);
        c->line = nd->line;
        if (v.kind == JV_UNDEF)
            fail_undef(c, v);
        if (v.kind == JV_FLOAT)
            r = jv_float(nd->kind == JN_NEG ? -v.f : v.f);
        else if (v.kind == JV_INT || v.kind == JV_BOOL)
            r = nd->kind == JN_POS ? jv_int(as_int(v))
                : int_or_overflow(c, as_int(v) == INT64_MIN, -as_int(v));
        else
            jfail(c, "TypeError", "bad operand type for unary %s: '%s'",
                  nd->kind == JN_NEG ? "-" : "+", jv_type(v));
        break;
    }
    case JN_COND:
        if (jv_truthy(eval(c, s, nd->a)))
            r = eval(c, s, nd->b);
        else
            r = nd->c ? eval(c, s, nd->c) : jv_undef("the inline if-expression evaluated to false and no else section was defined.");
        break;
    default: jfail(c, "RuntimeError", "internal: node %d is not an expression", nd->kind);
    }
    c->depth--;
    return r;
}

/* ------------------------------------------------------------ statements --- */
static void assign(jctx *c, jscope *s, const char *const *names, size_t n, jv v)
{
    if (n == 1) {
        scope_set(c, s, names[0], v);
        return;
    }
    jlist *items = jv_iterate(c, v);
    if (items->n != n)
        jfail(c, "ValueError", "%s values to unpack (expected %zu, got %zu)",
              items->n < n ? "not enough" : "too many", n, items->n);
    for (size_t i = 0; i < n; i++)
        scope_set(c, s, names[i], items->v[i]);
}

static jv render_to_string(jctx *c, jscope *s, const jnodes *body)
{
    jbuf out = {0}, *saved = c->out;
    c->out = &out;
    exec_body(c, s, body);
    c->out = saved;
    return jv_buf(&out);
}

static int exec_for(jctx *c, jscope *s, const jnode *nd)
{
    jlist *items = jv_iterate(c, eval(c, s, nd->a));
    if (nd->b) {
        jlist *kept = jl_new(c, 0);
        for (size_t i = 0; i < items->n; i++) {
            jscope *fs = scope_new(c, s);
            assign(c, fs, nd->names, nd->nnames, items->v[i]);
            if (jv_truthy(eval(c, fs, nd->b)))
                jl_push(c, kept, items->v[i]);
        }
        items = kept;
    }
    if (items->n == 0)
        return exec_body(c, s, &nd->items2);
    jloop *lp = jalloc(c, sizeof *lp);
    lp->items = items;
    lp->depth = 1;
    jscope *is = NULL;
    for (size_t i = 0; i < items->n; i++) {
        jstep(c);
        lp->index = i;
        /* One scope serves every iteration unless a macro defined in the body captured it. */
        if (!is || is->captured)
            is = scope_new(c, s);
        is->n = 0;
        assign(c, is, nd->names, nd->nnames, items->v[i]);
        scope_set(c, is, "loop", (jv){.kind = JV_LOOP, .loop = lp});
        if (exec_body(c, is, &nd->items) == FLOW_BREAK)
            break;
    }
    return FLOW_NORMAL;
}

static int exec_stmt(jctx *c, jscope *s, const jnode *nd)
{
    jstep(c);
    c->line = nd->line;
    switch (nd->kind) {
    case JS_TEXT: jb_put(c, c->out, nd->cval.s.p, nd->cval.s.n); return FLOW_NORMAL;
    case JS_OUTPUT: {
        c->folding = is_constant(nd->a);
        jv v = eval(c, s, nd->a);
        c->folding = false;
        jv_write_str(c, c->out, v);
        return FLOW_NORMAL;
    }
    case JS_IF:
        return exec_body(c, s, jv_truthy(eval(c, s, nd->a)) ? &nd->items : &nd->items2);
    case JS_FOR: return exec_for(c, s, nd);
    case JS_SET: {
        jv v = eval(c, s, nd->a);
        if (!nd->ns_attr) {
            assign(c, s, nd->names, nd->nnames, v);
            return FLOW_NORMAL;
        }
        jv ns = scope_get(c, s, nd->name);
        c->line = nd->line;
        if (ns.kind != JV_NS)
            jfail(c, "TemplateRuntimeError", "cannot assign attribute on non-namespace object");
        jd_set(c, ns.dict, jv_cstr(nd->names[0]), v);
        return FLOW_NORMAL;
    }
    case JS_SET_BLOCK: {
        jv v = render_to_string(c, scope_new(c, s), &nd->items);
        scope_set(c, s, nd->name, nd->b ? eval_filter(c, s, nd->b, v) : v);
        return FLOW_NORMAL;
    }
    case JS_MACRO: {
        jmacro *m = jalloc(c, sizeof *m);
        m->node = nd;
        m->closure = s;
        s->captured = true;
        scope_set(c, s, nd->name, (jv){.kind = JV_MACRO, .macro = m});
        return FLOW_NORMAL;
    }
    case JS_CALL_BLOCK: {
        jmacro *caller = jalloc(c, sizeof *caller);
        caller->node = nd;
        caller->closure = s;
        s->captured = true;
        jv callee = eval(c, s, nd->a->a);
        jargs a;
        eval_args(c, s, nd->a, &a);
        c->line = nd->line;
        if (callee.kind != JV_MACRO)
            jcall_value(c, callee, &a); /* fails with the right error */
        jv r = call_macro(c, callee.macro, &a, (jv){.kind = JV_MACRO, .macro = caller});
        jb_put(c, c->out, r.s.p, r.s.n);
        return FLOW_NORMAL;
    }
    case JS_FILTER_BLOCK: {
        jv v = eval_filter(c, s, nd->b, render_to_string(c, scope_new(c, s), &nd->items));
        jv_write_str(c, c->out, v);
        return FLOW_NORMAL;
    }
    case JS_WITH: {
        jscope *ws = scope_new(c, s);
        for (size_t i = 0; i < nd->nnames; i++)
            scope_set(c, ws, nd->names[i], eval(c, s, nd->items2.v[i]));
        return exec_body(c, ws, &nd->items);
    }
    case JS_BREAK: return FLOW_BREAK;
    case JS_CONTINUE: return FLOW_CONTINUE;
    default: jfail(c, "RuntimeError", "internal: node %d is not a statement", nd->kind);
    }
}

static int exec_body(jctx *c, jscope *s, const jnodes *body)
{
    enter(c);
    int flow = FLOW_NORMAL;
    for (size_t i = 0; i < body->n && flow == FLOW_NORMAL; i++)
        flow = exec_stmt(c, s, body->v[i]);
    c->depth--;
    return flow;
}

/* ------------------------------------------------------------ public API --- */
jinja_template *jinja_parse(const char *src, size_t len, char *err, size_t errlen)
{
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->arena.limit = (size_t)256 << 20;
    t->max_steps = JINJA_MAX_STEPS;
    jtoken *toks;
    size_t ntoks;
    if (!src || !jlex(&t->arena, src ? src : "", len, &toks, &ntoks, err, errlen) ||
        !jparse(&t->arena, toks, ntoks, &t->body, err, errlen)) {
        if (!src)
            snprintf(err, errlen, "no chat template given");
        jinja_free(t);
        return NULL;
    }
    return t;
}

void jinja_set_step_limit(jinja_template *t, uint64_t max_steps)
{
    t->max_steps = max_steps ? max_steps : JINJA_MAX_STEPS;
}

void jinja_free(jinja_template *t)
{
    if (!t)
        return;
    jarena_free(&t->arena);
    free(t);
}

typedef struct {
    jctx c;
    char *result;
    size_t result_len;
} render_state;

static void render(render_state *st, const jinja_template *t, const json_t *vars)
{
    jctx *c = &st->c;
    jscope *root = scope_new(c, NULL);
    c->root = root;
    if (!json_is_object(vars))
        jfail(c, "TypeError", "template variables must be a JSON object");
    for (void *it = json_object_iter((json_t *)vars); it; it = json_object_iter_next((json_t *)vars, it))
        scope_set(c, root, json_object_iter_key(it), jv_from_json(c, json_object_iter_value(it)));
    jbuf out = {0};
    c->out = &out;
    exec_body(c, root, &t->body);
    st->result = malloc(out.n + 1);
    if (!st->result)
        jfail(c, "MemoryError", "out of memory");
    if (out.n)
        memcpy(st->result, out.p, out.n);
    st->result[out.n] = 0;
    st->result_len = out.n;
}

char *jinja_render(const jinja_template *t, const json_t *vars, size_t *out_len,
                   char *err, size_t errlen)
{
    render_state *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->c.arena.limit = JINJA_MAX_MEMORY;
    st->c.max_steps = t->max_steps;
    st->c.err = err;
    st->c.errlen = errlen;
    st->c.line = 1;
    if (setjmp(st->c.jb) == 0)
        render(st, t, vars);
    char *result = st->result;
    if (result && out_len)
        *out_len = st->result_len;
    jarena_free(&st->c.arena);
    free(st);
    return result;
}

json_t *jinja_chat_vars(const json_t *messages, const json_t *tools, bool add_generation_prompt,
                        const json_t *kwargs)
{
    json_t *v = json_object();
    if (!v)
        return NULL;
    int bad = json_object_set(v, "messages", messages ? (json_t *)messages : json_null());
    bad |= json_object_set(v, "tools", tools ? (json_t *)tools : json_null());
    bad |= json_object_set_new(v, "documents", json_null());
    bad |= json_object_set_new(v, "add_generation_prompt", json_boolean(add_generation_prompt));
    if (json_is_object(kwargs))
        bad |= json_object_update(v, (json_t *)kwargs);
    if (bad) {
        json_decref(v);
        return NULL;
    }
    return v;
}
