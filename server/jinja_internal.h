/* jinja_internal.h: types shared by the Jinja interpreter's lexer, parser, values and evaluator
 * (arena, tokens, syntax tree, runtime values, render context). Server code uses jinja.h. */
#ifndef MOESERVE_JINJA_INTERNAL_H
#define MOESERVE_JINJA_INTERNAL_H

#include "server/jinja.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ arena --- */
/* Everything a parse or a render allocates lives in one arena freed at once, so error paths
 * (which longjmp out) leak nothing and values need no reference counting. */
typedef struct jarena_chunk jarena_chunk;
typedef struct {
    jarena_chunk *head;
    size_t total, limit;
} jarena;

void *jarena_alloc(jarena *a, size_t n); /* zeroed, 16-aligned; NULL past the limit or on OOM */
void jarena_free(jarena *a);

/* ------------------------------------------------------------------ UTF-8 --- */
uint32_t ju_decode(const char *p, size_t n, size_t *i); /* code point at *i, advances *i */
size_t ju_encode(uint32_t cp, char out[4]);
size_t ju_len(const char *p, size_t n);                 /* code points (Python len) */
bool ju_valid(const char *p, size_t n);
bool ju_isspace(uint32_t cp);                           /* Python str.isspace */
bool ju_isprintable(uint32_t cp);                       /* Python str.isprintable */
bool ju_isident(uint32_t cp, bool start);            /* Python identifier character */
uint32_t ju_upper(uint32_t cp);
uint32_t ju_lower(uint32_t cp);
void ju_trim_partial(char *s); /* cuts an incomplete UTF-8 sequence off the end */
size_t ju_rstrip_ws(const char *p, size_t n);           /* length without trailing whitespace */
size_t ju_lstrip_ws(const char *p, size_t n);           /* bytes of leading whitespace */

/* ------------------------------------------------------------------ tokens --- */
enum jtok_type {
    JT_EOF, JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP
};
enum jop {
    JO_ADD, JO_SUB, JO_DIV, JO_FLOORDIV, JO_MUL, JO_MOD, JO_POW, JO_TILDE,
    JO_LBRACKET, JO_RBRACKET, JO_LPAREN, JO_RPAREN, JO_LBRACE, JO_RBRACE,
    JO_EQ, JO_NE, JO_GT, JO_GE, JO_LT, JO_LE, JO_ASSIGN, JO_DOT, JO_COLON,
    JO_PIPE, JO_COMMA, JO_SEMICOLON,
    JO_IN, JO_NOTIN, JO_COUNT /* IN/NOTIN: binary operators made by the parser */
};
extern const char *const jop_text[JO_COUNT];

typedef struct {
    uint8_t type, op;
    int line, col;
    const char *p; /* DATA, NAME, STRING (unescaped) text */
    size_t n;
    int64_t ival;
    double fval;
} jtoken;

/* Tokenizes the whole template into arena memory. false with "line L col C: msg" in err. */
bool jlex(jarena *a, const char *src, size_t len, jtoken **toks, size_t *ntoks,
          char *err, size_t errlen);

/* ----------------------------------------------------------------- values --- */
enum jv_kind {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS, JV_MACRO, JV_FUNC, JV_METHOD, JV_LOOP
};
/* JVF_GEN marks what jinja2 returns as a lazy generator (map, select, items...): always
 * truthy, no len(), not JSON-serialisable, not indexable. Materialised here all the same. */
enum { JVF_MARKUP = 1, JVF_TUPLE = 2, JVF_GEN = 4, JVF_VIEW = 8 };
/* JVF_VIEW: dict.items()/keys()/values(), printed as dict_items([...]) and not JSON-able;
 * which one is kept in jlist.view. */

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jmacro jmacro;
typedef struct jmethod jmethod;
typedef struct jloop jloop;

typedef struct jv {
    uint8_t kind, flags;
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;
        jlist *list;        /* LIST (tuple when JVF_TUPLE) */
        jdict *dict;        /* DICT, NS */
        const char *undef;  /* UNDEF: message for UndefinedError, NULL for a generic one */
        jmacro *macro;
        int func;           /* FUNC: global function id */
        jmethod *method;
        jloop *loop;
    };
} jv;

/* lazy_error: a generator whose TypeError surfaces only when it is iterated (`5|items`). */
struct jlist { size_t n, cap; jv *v; const char *lazy_error, *view; };
struct jdict { size_t n, cap; jv *k, *v; };
struct jmethod { jv self; const char *name; };

/* ------------------------------------------------------------- syntax tree --- */
enum jnode_kind {
    JN_CONST, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_GETATTR, JN_GETITEM, JN_SLICE,
    JN_CALL, JN_FILTER, JN_TEST, JN_BINOP, JN_AND, JN_OR, JN_NOT, JN_NEG, JN_POS, JN_COND,
    JS_TEXT, JS_OUTPUT, JS_IF, JS_FOR, JS_SET, JS_SET_BLOCK, JS_MACRO, JS_CALL_BLOCK,
    JS_FILTER_BLOCK, JS_WITH, JS_BREAK, JS_CONTINUE
};
/* MACRO node op bits: which implicit names its body reads, so calls may pass extra args */
enum { JMACRO_VARARGS = 1, JMACRO_KWARGS = 2 };

typedef struct jnode jnode;
typedef struct { jnode **v; size_t n; } jnodes;

/* One node type for everything; which fields a kind uses is listed in jinja_parse.c. */
struct jnode {
    uint8_t kind, op;
    bool negated, ns_attr;
    int line, col;
    int fn;            /* filter or test id */
    jv cval;           /* CONST value, TEXT text */
    const char *name;  /* NAME, GETATTR attribute, FILTER/TEST/MACRO name, SET target */
    jnode *a, *b, *c, *d;
    jnodes items, items2;
    const char **names;
    size_t nnames;
};

struct jinja_template {
    jarena arena;
    uint64_t max_steps;
    jnodes body;
};

bool jparse(jarena *a, const jtoken *toks, size_t ntoks, jnodes *body, char *err, size_t errlen);
/* jinja_check.c: whole-tree checks after parsing (also records what macros read) */
bool jcheck(const jnodes *body, char *err, size_t errlen);

/* ---------------------------------------------------------------- render --- */
typedef struct jscope {
    struct jscope *parent;
    bool captured; /* a macro closes over it: it must outlive its loop iteration */
    size_t n, cap;
    const char **names;
    jv *vals;
} jscope;

struct jmacro { const jnode *node; jscope *closure; jv caller; };
struct jloop { jlist *items; size_t index; int depth; bool changed_seen; jv changed_last; };

typedef struct { char *p; size_t n, cap; } jbuf;

typedef struct jctx {
    jarena arena;
    jmp_buf jb;
    char *err;
    size_t errlen;
    int line;
    uint64_t steps, max_steps;
    int depth, loop_depth;
    bool folding; /* evaluating a constant {{ }} the way jinja2 folds it */
    jbuf *out;
    jscope *root;
} jctx;

typedef struct {
    jv *pos;
    size_t npos;
    const char **kwn;
    jv *kwv;
    size_t nkw;
} jargs;

_Noreturn void jfail(jctx *c, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *jalloc(jctx *c, size_t n);
const char *jstrdup(jctx *c, const char *p, size_t n);

void jb_put(jctx *c, jbuf *b, const char *p, size_t n);
void jb_puts(jctx *c, jbuf *b, const char *s);
void jb_putc(jctx *c, jbuf *b, char ch);
void jb_printf(jctx *c, jbuf *b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* jinja_value.c */
jv jv_undef(const char *msg);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *p, size_t n);
jv jv_cstr(const char *s);
jv jv_buf(jbuf *b);
jv jv_list(jlist *l);
jv jv_dict(jdict *d);
jlist *jl_new(jctx *c, size_t cap);
void jl_push(jctx *c, jlist *l, jv v);
jdict *jd_new(jctx *c, size_t cap);
void jd_set(jctx *c, jdict *d, jv key, jv val);
jv *jd_get(const jdict *d, jv key);
jv *jd_gets(const jdict *d, const char *p, size_t n);
jv jv_from_json(jctx *c, const json_t *j);
bool jv_truthy(jv v);
bool jv_eq(jv a, jv b);              /* for dict keys; see jv_equal */
bool jv_equal(jctx *c, jv a, jv b);  /* Python ==, RecursionError on absurd nesting */
bool jv_is_str(jv v);
bool jv_is_num(jv v);
double jv_num(jv v);
int jv_compare(jctx *c, jv a, jv b, const char *opname); /* <0, 0, >0 or TypeError */
const char *jv_type(jv v);      /* Python type name: 'str', 'NoneType', ... */
const char *jv_objrepr(jctx *c, jv v); /* "'dict object'" style name for messages */
void jv_write_str(jctx *c, jbuf *b, jv v);  /* Python str() */
void jv_write_repr(jctx *c, jbuf *b, jv v); /* Python repr() */
jv jv_to_str(jctx *c, jv v);                /* Python str() as a value */
void jv_float_repr(double f, char out[40]);
typedef struct { int indent; const char *indent_str; const char *item_sep, *key_sep; bool ensure_ascii, sort_keys; } jjson_opts;
void jv_write_json(jctx *c, jbuf *b, jv v, const jjson_opts *o, int level);
jlist *jv_iterate(jctx *c, jv v); /* items a for loop visits; TypeError if not iterable */
jv jv_getattr(jctx *c, jv obj, const char *name);
jv jv_getitem(jctx *c, jv obj, jv key);
jv jv_slice(jctx *c, jv obj, jv start, jv stop, jv step);
bool jv_contains(jctx *c, jv container, jv item);

/* jinja_filters.c */
int jfilter_id(const char *name);
int jtest_id(const char *name);
jv jfilter_apply(jctx *c, int id, jv v, const jargs *a);
bool jtest_apply(jctx *c, int id, jv v, const jargs *a);
bool jarg(const jargs *a, size_t idx, const char *name, jv *out);

/* jinja_methods.c */
jv jmethod_lookup(jctx *c, jv obj, const char *name); /* JV_METHOD, or JV_UNDEF if none */
jv jmethod_call(jctx *c, const jmethod *m, const jargs *a);
int jglobal_id(const char *name);
jv jglobal_call(jctx *c, int id, const jargs *a);
jv jstr_strip(jctx *c, jv s, jv chars, bool left, bool right);
jlist *jstr_split(jctx *c, jv s, jv sep, int64_t maxsplit, bool from_right);
jv jstr_case(jctx *c, jv s, int mode); /* 0 lower, 1 upper, 2 capitalize, 3 title */
jv jstr_replace(jctx *c, jv s, jv old, jv new_, int64_t count);
jv jstr_printf(jctx *c, jv fmt, jv args); /* Python's fmt % args */

/* jinja_eval.c */
jv jcall_value(jctx *c, jv callee, const jargs *a);
void jstep(jctx *c);                 /* one unit of the render's step budget */
void jwork(jctx *c, size_t bytes);   /* charges string work: a step per 64 bytes */

#endif
