/* jinja_parse.c: builds the syntax tree from tokens with jinja2's grammar and precedence;
 * unknown tags (and filters/tests, where jinja2 rejects them too) fail here with line:column.
 *
 * Node fields by kind (see jnode in jinja_internal.h):
 *   CONST cval | NAME name | LIST/TUPLE items | DICT items=keys items2=values
 *   GETATTR a.name | GETITEM a[b] | SLICE a[b:c:d] | CALL a(items, names=items2)
 *   FILTER a|name(items, names=items2), fn; a is NULL in a filter block | TEST a is name(items)
 *   BINOP a op b | AND/OR a b | NOT/NEG/POS a | COND b if a else c
 *   TEXT cval | OUTPUT a | IF a items else items2 | FOR names in a if b: items else items2
 *   SET names = a (ns_attr: name.names[0] = a) | SET_BLOCK name = b(items)
 *   MACRO name(names = items2 defaults) items | CALL_BLOCK a with caller(names=items2) items
 *   FILTER_BLOCK b(items) | WITH names = items2: items | BREAK | CONTINUE */
#include "server/jinja_internal.h"

#include <stdio.h>
#include <string.h>

#define JPARSE_MAX_DEPTH 200

typedef struct {
    jarena *a;
    const jtoken *t;
    size_t n, pos;
    int depth, loop_depth;
    char *err;
    size_t errlen;
    jmp_buf jb;
} parser;

typedef struct { jnode **v; size_t n, cap; } nodevec;

static _Noreturn void pfail(parser *p, const jtoken *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void pfail(parser *p, const jtoken *at, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "chat template line %d col %d: %s", at->line, at->col, msg);
    ju_trim_partial(p->err);
    longjmp(p->jb, 1);
}

static void *palloc(parser *p, size_t n)
{
    void *m = jarena_alloc(p->a, n);
    if (!m)
        pfail(p, &p->t[p->pos], "out of memory");
    return m;
}

static const jtoken *cur(parser *p) { return &p->t[p->pos]; }
static const jtoken *peek(parser *p, size_t k)
{
    return &p->t[p->pos + k < p->n ? p->pos + k : p->n - 1];
}
static const jtoken *next(parser *p)
{
    const jtoken *t = &p->t[p->pos];
    if (p->pos + 1 < p->n)
        p->pos++;
    return t;
}

static bool is_op(const jtoken *t, int op) { return t->type == JT_OP && t->op == op; }
static bool is_name(const jtoken *t, const char *name)
{
    return t->type == JT_NAME && strcmp(t->p, name) == 0;
}

static const char *describe(const jtoken *t)
{
    switch (t->type) {
    case JT_EOF: return "end of template";
    case JT_DATA: return "template text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "end of print statement";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "end of statement block";
    case JT_NAME: return t->p;
    case JT_STRING: return "string";
    case JT_INT: return "integer";
    case JT_FLOAT: return "float";
    default: return jop_text[t->op];
    }
}

static void expect_op(parser *p, int op)
{
    if (!is_op(cur(p), op))
        pfail(p, cur(p), "expected '%s', got '%s'", jop_text[op], describe(cur(p)));
    next(p);
}

static void expect_type(parser *p, int type, const char *what)
{
    if (cur(p)->type != type)
        pfail(p, cur(p), "expected %s, got '%s'", what, describe(cur(p)));
    next(p);
}

static const char *expect_name(parser *p)
{
    if (cur(p)->type != JT_NAME)
        pfail(p, cur(p), "expected a name, got '%s'", describe(cur(p)));
    return next(p)->p;
}

/* Filter and test names may be dotted ("a.b"), as jinja2's parser allows. */
static const char *expect_dotted_name(parser *p)
{
    const char *name = expect_name(p);
    while (is_op(cur(p), JO_DOT)) {
        next(p);
        const char *part = expect_name(p);
        size_t a = strlen(name), b = strlen(part);
        char *joined = palloc(p, a + b + 2);
        memcpy(joined, name, a);
        joined[a] = '.';
        memcpy(joined + a + 1, part, b);
        name = joined;
    }
    return name;
}

static void expect_keyword(parser *p, const char *kw)
{
    if (!is_name(cur(p), kw))
        pfail(p, cur(p), "expected '%s', got '%s'", kw, describe(cur(p)));
    next(p);
}

static jnode *mk(parser *p, int kind, const jtoken *at)
{
    jnode *nd = palloc(p, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->line = at->line;
    nd->col = at->col;
    return nd;
}

static void vpush(parser *p, nodevec *v, jnode *nd)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        jnode **m = palloc(p, cap * sizeof *m);
        if (v->n)
            memcpy(m, v->v, v->n * sizeof *m);
        v->v = m;
        v->cap = cap;
    }
    v->v[v->n++] = nd;
}

static jnodes vdone(nodevec *v) { return (jnodes){v->v, v->n}; }

static void enter(parser *p)
{
    if (++p->depth > JPARSE_MAX_DEPTH)
        pfail(p, cur(p), "template nested too deeply");
}

/* ------------------------------------------------------------ expressions --- */
static jnode *parse_expression(parser *p, bool with_condexpr);
static jnode *parse_unary(parser *p, bool with_filter);
static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens);

static void parse_call_args(parser *p, nodevec *args, nodevec *kwvals, const char ***kwnames,
                            size_t *nkw)
{
    expect_op(p, JO_LPAREN);
    const char **names = NULL;
    size_t n = 0, cap = 0;
    while (!is_op(cur(p), JO_RPAREN)) {
        if (args->n || kwvals->n)
            expect_op(p, JO_COMMA);
        if (is_op(cur(p), JO_RPAREN))
            break;
        if (is_op(cur(p), JO_MUL) || is_op(cur(p), JO_POW))
            pfail(p, cur(p), "*args and **kwargs in calls are not supported");
        if (cur(p)->type == JT_NAME && is_op(peek(p, 1), JO_ASSIGN)) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                const char **m = palloc(p, cap * sizeof *m);
                if (n)
                    memcpy(m, names, n * sizeof *m);
                names = m;
            }
            for (size_t k = 0; k < n; k++)
                if (!strcmp(names[k], cur(p)->p))
                    pfail(p, cur(p), "keyword argument repeated: %s", names[k]);
            names[n++] = next(p)->p;
            next(p);
            vpush(p, kwvals, parse_expression(p, true));
        } else {
            if (kwvals->n)
                pfail(p, cur(p), "positional argument after keyword argument");
            vpush(p, args, parse_expression(p, true));
        }
    }
    next(p);
    *kwnames = names;
    *nkw = n;
}

static jnode *parse_call(parser *p, jnode *callee)
{
    jnode *nd = mk(p, JN_CALL, cur(p));
    nodevec args = {0}, kw = {0};
    parse_call_args(p, &args, &kw, &nd->names, &nd->nnames);
    nd->a = callee;
    nd->items = vdone(&args);
    nd->items2 = vdone(&kw);
    return nd;
}

static jnode *parse_subscript(parser *p, jnode *obj)
{
    const jtoken *at = next(p);
    if (at->op == JO_DOT) {
        const jtoken *t = cur(p);
        if (t->type == JT_NAME) {
            jnode *nd = mk(p, JN_GETATTR, at);
            nd->a = obj;
            nd->name = next(p)->p;
            return nd;
        }
        if (t->type != JT_INT)
            pfail(p, t, "expected name or number after '.'");
        jnode *nd = mk(p, JN_GETITEM, at);
        nd->a = obj;
        nd->b = mk(p, JN_CONST, t);
        nd->b->cval = jv_int(next(p)->ival);
        return nd;
    }
    /* '[' index or slice ']' ; a comma list makes a tuple index */
    nodevec idx = {0};
    jnode *slice = NULL;
    while (!is_op(cur(p), JO_RBRACKET)) {
        if (idx.n)
            expect_op(p, JO_COMMA);
        jnode *start = NULL;
        if (!is_op(cur(p), JO_COLON)) {
            start = parse_expression(p, true);
            if (!is_op(cur(p), JO_COLON)) {
                vpush(p, &idx, start);
                continue;
            }
        }
        slice = mk(p, JN_SLICE, cur(p));
        next(p);
        slice->b = start;
        if (!is_op(cur(p), JO_RBRACKET) && !is_op(cur(p), JO_COMMA) && !is_op(cur(p), JO_COLON))
            slice->c = parse_expression(p, true);
        if (is_op(cur(p), JO_COLON)) {
            next(p);
            if (!is_op(cur(p), JO_RBRACKET) && !is_op(cur(p), JO_COMMA))
                slice->d = parse_expression(p, true);
        }
        vpush(p, &idx, slice);
    }
    next(p);
    if (idx.n == 1 && slice) {
        slice->a = obj;
        return slice;
    }
    if (slice)
        pfail(p, at, "slices inside tuple indexes are not supported");
    jnode *nd = mk(p, JN_GETITEM, at);
    nd->a = obj;
    if (idx.n == 1 && !slice) {
        nd->b = idx.v[0];
    } else {
        nd->b = mk(p, JN_TUPLE, at);
        nd->b->items = vdone(&idx);
    }
    return nd;
}

static jnode *parse_postfix(parser *p, jnode *nd)
{
    for (;;) {
        if (is_op(cur(p), JO_DOT) || is_op(cur(p), JO_LBRACKET))
            nd = parse_subscript(p, nd);
        else if (is_op(cur(p), JO_LPAREN))
            nd = parse_call(p, nd);
        else
            return nd;
    }
}

static jnode *parse_filter(parser *p, jnode *operand)
{
    while (is_op(cur(p), JO_PIPE)) {
        next(p);
        jnode *nd = mk(p, JN_FILTER, cur(p));
        nd->name = expect_dotted_name(p);
        nd->fn = jfilter_id(nd->name); /* unknown names are judged by check_names() */
        if (is_op(cur(p), JO_LPAREN)) {
            nodevec args = {0}, kw = {0};
            parse_call_args(p, &args, &kw, &nd->names, &nd->nnames);
            nd->items = vdone(&args);
            nd->items2 = vdone(&kw);
        }
        nd->a = operand;
        operand = nd;
    }
    return operand;
}

static jnode *parse_primary(parser *p);

static jnode *parse_test(parser *p, jnode *operand)
{
    next(p); /* 'is' */
    bool negated = false;
    if (is_name(cur(p), "not")) {
        next(p);
        negated = true;
    }
    jnode *nd = mk(p, JN_TEST, cur(p));
    nd->negated = negated;
    nd->name = expect_dotted_name(p);
    nd->fn = jtest_id(nd->name);
    nd->a = operand;
    const jtoken *t = cur(p);
    if (is_op(t, JO_LPAREN)) {
        nodevec args = {0}, kw = {0};
        parse_call_args(p, &args, &kw, &nd->names, &nd->nnames);
        nd->items = vdone(&args);
        nd->items2 = vdone(&kw);
    } else if ((t->type == JT_NAME || t->type == JT_STRING || t->type == JT_INT ||
                t->type == JT_FLOAT || is_op(t, JO_LBRACKET) || is_op(t, JO_LBRACE)) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is"))
            pfail(p, t, "you cannot chain multiple tests with 'is'");
        nodevec args = {0};
        vpush(p, &args, parse_postfix(p, parse_primary(p)));
        nd->items = vdone(&args);
    }
    return nd;
}

static jnode *parse_filter_expr(parser *p, jnode *nd)
{
    for (;;) {
        if (is_op(cur(p), JO_PIPE))
            nd = parse_filter(p, nd);
        else if (is_name(cur(p), "is"))
            nd = parse_test(p, nd);
        else if (is_op(cur(p), JO_LPAREN))
            nd = parse_call(p, nd);
        else
            return nd;
    }
}

static jnode *parse_primary(parser *p)
{
    enter(p);
    const jtoken *t = cur(p);
    jnode *nd;
    if (t->type == JT_NAME) {
        next(p);
        nd = mk(p, JN_CONST, t);
        if (!strcmp(t->p, "true") || !strcmp(t->p, "True"))
            nd->cval = jv_bool(true);
        else if (!strcmp(t->p, "false") || !strcmp(t->p, "False"))
            nd->cval = jv_bool(false);
        else if (!strcmp(t->p, "none") || !strcmp(t->p, "None"))
            nd->cval = jv_none();
        else {
            nd->kind = JN_NAME;
            nd->name = t->p;
        }
    } else if (t->type == JT_STRING) {
        /* adjacent literals concatenate */
        size_t total = 0, k = p->pos;
        while (p->t[k].type == JT_STRING)
            total += p->t[k++].n;
        char *s = palloc(p, total + 1);
        total = 0;
        while (cur(p)->type == JT_STRING) {
            memcpy(s + total, cur(p)->p, cur(p)->n);
            total += next(p)->n;
        }
        nd = mk(p, JN_CONST, t);
        nd->cval = jv_str(s, total);
    } else if (t->type == JT_INT || t->type == JT_FLOAT) {
        next(p);
        nd = mk(p, JN_CONST, t);
        nd->cval = t->type == JT_INT ? jv_int(t->ival) : jv_float(t->fval);
    } else if (is_op(t, JO_LPAREN)) {
        next(p);
        nd = parse_tuple(p, false, true, NULL, true);
        expect_op(p, JO_RPAREN);
    } else if (is_op(t, JO_LBRACKET)) {
        next(p);
        nodevec items = {0};
        while (!is_op(cur(p), JO_RBRACKET)) {
            if (items.n)
                expect_op(p, JO_COMMA);
            if (is_op(cur(p), JO_RBRACKET))
                break;
            vpush(p, &items, parse_expression(p, true));
        }
        next(p);
        nd = mk(p, JN_LIST, t);
        nd->items = vdone(&items);
    } else if (is_op(t, JO_LBRACE)) {
        next(p);
        nodevec keys = {0}, vals = {0};
        while (!is_op(cur(p), JO_RBRACE)) {
            if (keys.n)
                expect_op(p, JO_COMMA);
            if (is_op(cur(p), JO_RBRACE))
                break;
            vpush(p, &keys, parse_expression(p, true));
            expect_op(p, JO_COLON);
            vpush(p, &vals, parse_expression(p, true));
        }
        next(p);
        nd = mk(p, JN_DICT, t);
        nd->items = vdone(&keys);
        nd->items2 = vdone(&vals);
    } else {
        pfail(p, t, "unexpected '%s'", describe(t));
    }
    p->depth--;
    return nd;
}

static jnode *parse_unary(parser *p, bool with_filter)
{
    enter(p);
    const jtoken *t = cur(p);
    jnode *nd;
    if (is_op(t, JO_SUB) || is_op(t, JO_ADD)) {
        next(p);
        nd = mk(p, t->op == JO_SUB ? JN_NEG : JN_POS, t);
        nd->a = parse_unary(p, false);
    } else {
        nd = parse_primary(p);
    }
    nd = parse_postfix(p, nd);
    if (with_filter)
        nd = parse_filter_expr(p, nd);
    p->depth--;
    return nd;
}

static jnode *binop(parser *p, const jtoken *at, int op, jnode *l, jnode *r)
{
    jnode *nd = mk(p, JN_BINOP, at);
    nd->op = (uint8_t)op;
    nd->a = l;
    nd->b = r;
    return nd;
}

static jnode *parse_pow(parser *p)
{
    jnode *l = parse_unary(p, true);
    while (is_op(cur(p), JO_POW)) {
        const jtoken *at = next(p);
        l = binop(p, at, JO_POW, l, parse_unary(p, true));
    }
    return l;
}

static jnode *parse_math2(parser *p)
{
    jnode *l = parse_pow(p);
    while (is_op(cur(p), JO_MUL) || is_op(cur(p), JO_DIV) || is_op(cur(p), JO_FLOORDIV) ||
           is_op(cur(p), JO_MOD)) {
        const jtoken *at = next(p);
        l = binop(p, at, at->op, l, parse_pow(p));
    }
    return l;
}

static jnode *parse_concat(parser *p)
{
    jnode *l = parse_math2(p);
    while (is_op(cur(p), JO_TILDE)) {
        const jtoken *at = next(p);
        l = binop(p, at, JO_TILDE, l, parse_math2(p));
    }
    return l;
}

static jnode *parse_math1(parser *p)
{
    jnode *l = parse_concat(p);
    while (is_op(cur(p), JO_ADD) || is_op(cur(p), JO_SUB)) {
        const jtoken *at = next(p);
        l = binop(p, at, at->op, l, parse_concat(p));
    }
    return l;
}

/* Python-style chained comparison: a < b < c means (a < b) and (b < c). */
static jnode *parse_compare(parser *p)
{
    jnode *left = parse_math1(p), *result = NULL;
    for (;;) {
        const jtoken *t = cur(p);
        int op;
        if (t->type == JT_OP && (t->op == JO_EQ || t->op == JO_NE || t->op == JO_LT ||
                                 t->op == JO_LE || t->op == JO_GT || t->op == JO_GE)) {
            op = t->op;
            next(p);
        } else if (is_name(t, "in")) {
            op = JO_IN;
            next(p);
        } else if (is_name(t, "not") && is_name(peek(p, 1), "in")) {
            op = JO_NOTIN;
            next(p);
            next(p);
        } else {
            break;
        }
        jnode *right = parse_math1(p);
        jnode *cmp = binop(p, t, op, left, right);
        if (result) {
            jnode *both = mk(p, JN_AND, t);
            both->a = result;
            both->b = cmp;
            result = both;
        } else {
            result = cmp;
        }
        left = right;
    }
    return result ? result : left;
}

static jnode *parse_not(parser *p)
{
    if (is_name(cur(p), "not")) {
        enter(p);
        jnode *nd = mk(p, JN_NOT, next(p));
        nd->a = parse_not(p);
        p->depth--;
        return nd;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p)
{
    jnode *l = parse_not(p);
    while (is_name(cur(p), "and")) {
        jnode *nd = mk(p, JN_AND, next(p));
        nd->a = l;
        nd->b = parse_not(p);
        l = nd;
    }
    return l;
}

static jnode *parse_or(parser *p)
{
    jnode *l = parse_and(p);
    while (is_name(cur(p), "or")) {
        jnode *nd = mk(p, JN_OR, next(p));
        nd->a = l;
        nd->b = parse_and(p);
        l = nd;
    }
    return l;
}

static jnode *parse_expression(parser *p, bool with_condexpr)
{
    enter(p);
    jnode *e = parse_or(p);
    while (with_condexpr && is_name(cur(p), "if")) {
        jnode *nd = mk(p, JN_COND, next(p));
        nd->b = e;
        nd->a = parse_or(p);
        if (is_name(cur(p), "else")) {
            next(p);
            nd->c = parse_expression(p, true);
        }
        e = nd;
    }
    p->depth--;
    return e;
}

static bool tuple_end(parser *p, const char *extra_end)
{
    const jtoken *t = cur(p);
    return t->type == JT_VAR_END || t->type == JT_BLOCK_END || is_op(t, JO_RPAREN) ||
           (extra_end && is_name(t, extra_end));
}

static jnode *parse_tuple(parser *p, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens)
{
    const jtoken *at = cur(p);
    nodevec items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.n)
            expect_op(p, JO_COMMA);
        if (tuple_end(p, extra_end))
            break;
        vpush(p, &items, simplified ? parse_primary(p) : parse_expression(p, with_condexpr));
        if (is_op(cur(p), JO_COMMA))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items.n == 1)
            return items.v[0];
        if (!explicit_parens)
            pfail(p, at, "expected an expression, got '%s'", describe(at));
    }
    jnode *nd = mk(p, JN_TUPLE, at);
    nd->items = vdone(&items);
    return nd;
}

/* ------------------------------------------------------------- statements --- */
static jnodes parse_body(parser *p, const char *const *ends, const char **which,
                         const jtoken *opened);

static void assign_targets(parser *p, jnode *target, jnode *owner)
{
    jnode **v = &target;
    size_t n = 1;
    if (target->kind == JN_TUPLE) {
        v = target->items.v;
        n = target->items.n;
    }
    owner->names = palloc(p, (n ? n : 1) * sizeof *owner->names);
    for (size_t i = 0; i < n; i++) {
        if (v[i]->kind != JN_NAME)
            pfail(p, &(jtoken){.line = v[i]->line, .col = v[i]->col}, "can't assign to this expression");
        owner->names[i] = v[i]->name;
    }
    owner->nnames = n;
}

static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_FOR[] = {"else", "endfor", NULL};

static jnode *parse_if(parser *p, const jtoken *at)
{
    jnode *nd = mk(p, JS_IF, at);
    nd->a = parse_tuple(p, false, false, NULL, false);
    expect_type(p, JT_BLOCK_END, "end of statement block");
    const char *which;
    nd->items = parse_body(p, END_IF, &which, at);
    if (!strcmp(which, "elif")) {
        const jtoken *et = &p->t[p->pos - 1];
        jnode *inner = parse_if(p, et);
        nd->items2 = (jnodes){palloc(p, sizeof(jnode *)), 1};
        nd->items2.v[0] = inner;
        return nd;
    }
    if (!strcmp(which, "else")) {
        expect_type(p, JT_BLOCK_END, "end of statement block");
        static const char *const end[] = {"endif", NULL};
        nd->items2 = parse_body(p, end, &which, at);
    }
    expect_type(p, JT_BLOCK_END, "end of statement block");
    return nd;
}

static jnode *parse_for(parser *p, const jtoken *at)
{
    jnode *nd = mk(p, JS_FOR, at);
    assign_targets(p, parse_tuple(p, true, true, "in", false), nd);
    expect_keyword(p, "in");
    nd->a = parse_tuple(p, false, false, "recursive", false);
    if (is_name(cur(p), "if")) {
        next(p);
        nd->b = parse_expression(p, true);
    }
    if (is_name(cur(p), "recursive"))
        pfail(p, cur(p), "recursive loops are not supported");
    expect_type(p, JT_BLOCK_END, "end of statement block");
    const char *which;
    p->loop_depth++;
    nd->items = parse_body(p, END_FOR, &which, at);
    p->loop_depth--;
    if (!strcmp(which, "else")) {
        expect_type(p, JT_BLOCK_END, "end of statement block");
        static const char *const end[] = {"endfor", NULL};
        nd->items2 = parse_body(p, end, &which, at);
    }
    expect_type(p, JT_BLOCK_END, "end of statement block");
    return nd;
}

static jnode *parse_set(parser *p, const jtoken *at)
{
    jnode *nd = mk(p, JS_SET, at);
    if (cur(p)->type == JT_NAME && is_op(peek(p, 1), JO_DOT) && peek(p, 2)->type == JT_NAME) {
        nd->ns_attr = true;
        nd->name = next(p)->p;
        next(p);
        nd->names = palloc(p, sizeof *nd->names);
        nd->names[0] = next(p)->p;
        nd->nnames = 1;
    } else {
        assign_targets(p, parse_tuple(p, true, true, NULL, false), nd);
    }
    if (is_op(cur(p), JO_ASSIGN)) {
        next(p);
        nd->a = parse_tuple(p, false, true, NULL, false);
        expect_type(p, JT_BLOCK_END, "end of statement block");
        return nd;
    }
    if (nd->ns_attr || nd->nnames != 1)
        pfail(p, cur(p), "a block set needs a single variable name");
    nd->kind = JS_SET_BLOCK;
    nd->name = nd->names[0];
    nd->b = parse_filter(p, NULL);
    expect_type(p, JT_BLOCK_END, "end of statement block");
    static const char *const end[] = {"endset", NULL};
    const char *which;
    nd->items = parse_body(p, end, &which, at);
    expect_type(p, JT_BLOCK_END, "end of statement block");
    return nd;
}

/* '(' name [= default], ... ')' for macro and call-block signatures. */
static void parse_signature(parser *p, jnode *nd)
{
    nodevec defaults = {0};
    const char **names = NULL;
    size_t n = 0, cap = 0;
    expect_op(p, JO_LPAREN);
    while (!is_op(cur(p), JO_RPAREN)) {
        if (n)
            expect_op(p, JO_COMMA);
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            const char **m = palloc(p, cap * sizeof *m);
            if (n)
                memcpy(m, names, n * sizeof *m);
            names = m;
        }
        names[n++] = expect_name(p);
        jnode *dflt = NULL;
        if (is_op(cur(p), JO_ASSIGN)) {
            next(p);
            dflt = parse_expression(p, true);
        } else if (defaults.n && defaults.v[defaults.n - 1]) {
            pfail(p, cur(p), "non-default argument follows default argument");
        }
        vpush(p, &defaults, dflt);
    }
    next(p);
    nd->names = names;
    nd->nnames = n;
    nd->items2 = vdone(&defaults);
}

static jnode *parse_macro(parser *p, const jtoken *at)
{
    jnode *nd = mk(p, JS_MACRO, at);
    nd->name = expect_name(p);
    parse_signature(p, nd);
    expect_type(p, JT_BLOCK_END, "end of statement block");
    static const char *const end[] = {"endmacro", NULL};
    const char *which;
    int saved_loops = p->loop_depth;
    p->loop_depth = 0;
    nd->items = parse_body(p, end, &which, at);
    p->loop_depth = saved_loops;
    if (cur(p)->type == JT_NAME && !strcmp(cur(p)->p, nd->name))
        next(p);
    expect_type(p, JT_BLOCK_END, "end of statement block");
    return nd;
}

static jnode *parse_block_with_end(parser *p, jnode *nd, const char *endname, const jtoken *at)
{
    const char *const end[] = {endname, NULL};
    const char *which;
    nd->items = parse_body(p, end, &which, at);
    expect_type(p, JT_BLOCK_END, "end of statement block");
    return nd;
}

static jnode *parse_statement(parser *p)
{
    const jtoken *at = cur(p);
    if (at->type != JT_NAME)
        pfail(p, at, "tag name expected");
    const char *kw = next(p)->p;
    jnode *nd;
    if (!strcmp(kw, "if"))
        return parse_if(p, at);
    if (!strcmp(kw, "for"))
        return parse_for(p, at);
    if (!strcmp(kw, "set"))
        return parse_set(p, at);
    if (!strcmp(kw, "macro"))
        return parse_macro(p, at);
    if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        if (!p->loop_depth)
            pfail(p, at, "'%s' outside of a loop", kw);
        nd = mk(p, kw[0] == 'b' ? JS_BREAK : JS_CONTINUE, at);
        expect_type(p, JT_BLOCK_END, "end of statement block");
        return nd;
    }
    if (!strcmp(kw, "call")) {
        nd = mk(p, JS_CALL_BLOCK, at);
        if (is_op(cur(p), JO_LPAREN))
            parse_signature(p, nd);
        nd->a = parse_expression(p, true);
        if (nd->a->kind != JN_CALL)
            pfail(p, at, "expected a call after 'call'");
        expect_type(p, JT_BLOCK_END, "end of statement block");
        return parse_block_with_end(p, nd, "endcall", at);
    }
    if (!strcmp(kw, "filter")) {
        nd = mk(p, JS_FILTER_BLOCK, at);
        if (!is_op(cur(p), JO_PIPE)) {
            /* the first filter has no leading '|': parse it as if it had one */
            jnode *f = mk(p, JN_FILTER, cur(p));
            f->name = expect_dotted_name(p);
            f->fn = jfilter_id(f->name);
            if (is_op(cur(p), JO_LPAREN)) {
                nodevec args = {0}, kwv = {0};
                parse_call_args(p, &args, &kwv, &f->names, &f->nnames);
                f->items = vdone(&args);
                f->items2 = vdone(&kwv);
            }
            nd->b = parse_filter(p, f);
        } else {
            nd->b = parse_filter(p, NULL);
        }
        expect_type(p, JT_BLOCK_END, "end of statement block");
        return parse_block_with_end(p, nd, "endfilter", at);
    }
    if (!strcmp(kw, "with") || !strcmp(kw, "generation")) {
        nd = mk(p, JS_WITH, at);
        nodevec vals = {0};
        const char **names = NULL;
        size_t n = 0;
        while (kw[0] == 'w' && cur(p)->type != JT_BLOCK_END) {
            if (n)
                expect_op(p, JO_COMMA);
            const char **m = palloc(p, (n + 1) * sizeof *m);
            if (n)
                memcpy(m, names, n * sizeof *m);
            names = m;
            names[n++] = expect_name(p);
            expect_op(p, JO_ASSIGN);
            vpush(p, &vals, parse_expression(p, true));
        }
        nd->names = names;
        nd->nnames = n;
        nd->items2 = vdone(&vals);
        expect_type(p, JT_BLOCK_END, "end of statement block");
        return parse_block_with_end(p, nd, kw[0] == 'w' ? "endwith" : "endgeneration", at);
    }
    static const char *const unsupported[] = {"include", "import", "from", "extends", "block",
                                              "do", "autoescape", "trans", NULL};
    for (int i = 0; unsupported[i]; i++)
        if (!strcmp(kw, unsupported[i]))
            pfail(p, at, "unsupported tag '%s'", kw);
    pfail(p, at, "unknown tag '%s'", kw);
}

/* Statements until one of `ends` (its name consumed, *which set) or, with ends NULL, EOF. */
static jnodes parse_body(parser *p, const char *const *ends, const char **which,
                         const jtoken *opened)
{
    enter(p);
    nodevec body = {0};
    for (;;) {
        const jtoken *t = cur(p);
        if (t->type == JT_EOF) {
            if (ends) {
                size_t last = 0;
                while (ends[last + 1])
                    last++;
                pfail(p, opened, "'%s' block is never closed (expected '%s')", opened->p,
                      ends[last]);
            }
            break;
        }
        if (t->type == JT_DATA) {
            jnode *nd = mk(p, JS_TEXT, t);
            nd->cval = jv_str(t->p, t->n);
            vpush(p, &body, nd);
            next(p);
        } else if (t->type == JT_VAR_BEGIN) {
            next(p);
            jnode *nd = mk(p, JS_OUTPUT, t);
            nd->a = parse_tuple(p, false, true, NULL, false);
            expect_type(p, JT_VAR_END, "end of print statement");
            vpush(p, &body, nd);
        } else if (t->type == JT_BLOCK_BEGIN) {
            next(p);
            const jtoken *name = cur(p);
            bool is_end = false;
            for (size_t i = 0; ends && ends[i]; i++)
                if (is_name(name, ends[i])) {
                    *which = ends[i];
                    is_end = true;
                }
            if (is_end) {
                next(p);
                break;
            }
            if (name->type == JT_NAME && (!strncmp(name->p, "end", 3) || !strcmp(name->p, "elif") ||
                                          !strcmp(name->p, "else")))
                pfail(p, name, "unexpected '%s'%s%s", name->p, ends ? ", expected " : "",
                      ends ? ends[0] : "");
            vpush(p, &body, parse_statement(p));
        } else {
            pfail(p, t, "unexpected '%s'", describe(t));
        }
    }
    p->depth--;
    return vdone(&body);
}

bool jparse(jarena *a, const jtoken *toks, size_t ntoks, jnodes *body, char *err, size_t errlen)
{
    parser p = {.a = a, .t = toks, .n = ntoks, .err = err, .errlen = errlen};
    if (setjmp(p.jb))
        return false;
    const char *which = NULL;
    *body = parse_body(&p, NULL, &which, toks);
    return jcheck(body, err, errlen);
}
