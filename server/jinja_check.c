/* jinja_check.c: checks of a freshly parsed template that need the whole tree: which unknown
 * filters/tests jinja2 would reject at compile time, and which implicit names macros read. */
#include "server/jinja_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char *err;
    size_t errlen;
    jmp_buf jb;
} jchecker;

static _Noreturn void check_fail(jchecker *k, const jnode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void check_fail(jchecker *k, const jnode *at, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(k->err, k->errlen, "chat template line %d col %d: %s", at->line, at->col, msg);
    ju_trim_partial(k->err);
    longjmp(k->jb, 1);
}

/* Which of varargs/kwargs a macro body reads (nested macros have their own). */
static int implicit_names(const jnode *nd)
{
    if (!nd || nd->kind == JS_MACRO)
        return 0;
    int bits = 0;
    if (nd->kind == JN_NAME)
        bits = !strcmp(nd->name, "varargs") ? JMACRO_VARARGS : !strcmp(nd->name, "kwargs") ? JMACRO_KWARGS : 0;
    bits |= implicit_names(nd->a) | implicit_names(nd->b) | implicit_names(nd->c) | implicit_names(nd->d);
    for (size_t i = 0; i < nd->items.n; i++)
        bits |= implicit_names(nd->items.v[i]);
    for (size_t i = 0; i < nd->items2.n; i++)
        bits |= implicit_names(nd->items2.v[i]);
    return bits;
}

/* jinja2 filters and tests this interpreter lacks: always a load-time error. */
static const char *const UNSUPPORTED_FILTERS[] = {
    "batch", "center", "filesizeformat", "forceescape", "groupby", "pprint", "random",
    "slice", "striptags", "truncate", "urlencode", "urlize", "wordwrap", "xmlattr", NULL};

static void check_names(jchecker *k, jnode *nd, bool soft);

static void check_all(jchecker *k, const jnodes *v, bool soft)
{
    for (size_t i = 0; i < v->n; i++)
        check_names(k, v->v[i], soft);
}

/* jinja2 rejects an unknown filter or test when it compiles the template, except inside an
 * if statement or an inline if (its "soft" frames, which for loops, macros, call/filter/set
 * blocks and with do not inherit): there it fails only if evaluated. Same rule here. */
static void check_names(jchecker *k, jnode *nd, bool soft)
{
    if (!nd)
        return;
    if ((nd->kind == JN_FILTER || nd->kind == JN_TEST) && nd->fn < 0) {
        const char *what = nd->kind == JN_FILTER ? "filter" : "test";
        for (int i = 0; nd->kind == JN_FILTER && UNSUPPORTED_FILTERS[i]; i++)
            if (!strcmp(nd->name, UNSUPPORTED_FILTERS[i]))
                check_fail(k, nd, "filter '%s' is not supported", nd->name);
        if (!soft)
            check_fail(k, nd, "unknown %s '%s'", what, nd->name);
    }
    if (nd->kind == JS_MACRO)
        for (size_t i = 0; i < nd->items.n; i++)
            nd->op |= (uint8_t)implicit_names(nd->items.v[i]);
    switch (nd->kind) {
    case JS_IF: case JN_COND:
        check_names(k, nd->a, true);
        check_names(k, nd->b, true);
        check_names(k, nd->c, true);
        check_all(k, &nd->items, true);
        check_all(k, &nd->items2, true);
        return;
    case JS_FOR:
        check_names(k, nd->a, soft);
        check_names(k, nd->b, false);
        check_all(k, &nd->items, false);
        check_all(k, &nd->items2, false);
        return;
    case JS_MACRO: case JS_FILTER_BLOCK: case JS_SET_BLOCK:
        check_names(k, nd->b, false);
        check_all(k, &nd->items, false);
        check_all(k, &nd->items2, false);
        return;
    case JS_CALL_BLOCK: case JS_WITH:
        check_names(k, nd->a, soft);
        check_all(k, &nd->items2, nd->kind == JS_WITH && soft);
        check_all(k, &nd->items, false);
        return;
    default:
        check_names(k, nd->a, soft);
        check_names(k, nd->b, soft);
        check_names(k, nd->c, soft);
        check_names(k, nd->d, soft);
        check_all(k, &nd->items, soft);
        check_all(k, &nd->items2, soft);
    }
}

bool jcheck(const jnodes *body, char *err, size_t errlen)
{
    jchecker k = {.err = err, .errlen = errlen};
    if (setjmp(k.jb))
        return false;
    check_all(&k, body, false);
    return true;
}
