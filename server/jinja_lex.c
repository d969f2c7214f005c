/* jinja_lex.c: turns template source into tokens the way jinja2's lexer does under Hugging
 * Face's settings: text, {{ }} {% %} {# #}, '-' strip markers, trim_blocks, lstrip_blocks, raw. */
#include "server/jinja_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const jop_text[JO_COUNT] = {
    "+", "-", "/", "//", "*", "%", "**", "~", "[", "]", "(", ")", "{", "}",
    "==", "!=", ">", ">=", "<", "<=", "=", ".", ":", "|", ",", ";", "in", "not in"
};

#define JLEX_MAX_NEST 256

typedef struct {
    jarena *a;
    const char *s;
    size_t n, pos;
    jtoken *toks;
    size_t ntok, cap;
    size_t cpos, cls; /* incremental line/column bookkeeping */
    int cline;
    char *err;
    size_t errlen;
    jmp_buf jb;
} lexer;

static void locate(lexer *lx, size_t pos, int *line, int *col)
{
    if (pos < lx->cpos) {
        lx->cpos = lx->cls = 0;
        lx->cline = 1;
    }
    for (; lx->cpos < pos; lx->cpos++)
        if (lx->s[lx->cpos] == '\n') {
            lx->cline++;
            lx->cls = lx->cpos + 1;
        }
    *line = lx->cline;
    *col = (int)(pos - lx->cls) + 1;
}

static _Noreturn void lex_fail(lexer *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void lex_fail(lexer *lx, size_t pos, const char *fmt, ...)
{
    int line, col;
    locate(lx, pos, &line, &col);
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(lx->err, lx->errlen, "chat template line %d col %d: %s", line, col, msg);
    ju_trim_partial(lx->err);
    longjmp(lx->jb, 1);
}

static void *lex_alloc(lexer *lx, size_t n)
{
    void *p = jarena_alloc(lx->a, n);
    if (!p)
        lex_fail(lx, lx->pos, "out of memory");
    return p;
}

static jtoken *emit(lexer *lx, int type, size_t pos)
{
    if (lx->ntok == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        jtoken *t = lex_alloc(lx, cap * sizeof *t);
        if (lx->ntok)
            memcpy(t, lx->toks, lx->ntok * sizeof *t);
        lx->toks = t;
        lx->cap = cap;
    }
    jtoken *t = &lx->toks[lx->ntok++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    locate(lx, pos, &t->line, &t->col);
    return t;
}

static void emit_data(lexer *lx, size_t from, size_t to)
{
    if (to <= from)
        return;
    jtoken *t = emit(lx, JT_DATA, from);
    t->p = lx->s + from;
    t->n = to - from;
}

static bool at(const lexer *lx, size_t pos, const char *lit)
{
    size_t k = strlen(lit);
    return pos <= lx->n && lx->n - pos >= k && memcmp(lx->s + pos, lit, k) == 0;
}

static size_t skip_ws(const lexer *lx, size_t pos)
{
    return pos + ju_lstrip_ws(lx->s + pos, lx->n - pos);
}

/* Text before a tag, after the tag's '-' marker or lstrip_blocks have had their say. */
static size_t strip_text_end(lexer *lx, size_t from, size_t tag, char sign, bool lstrip_ok,
                             bool line_starting)
{
    if (sign == '-')
        return from + ju_rstrip_ws(lx->s + from, tag - from);
    if (sign == '+' || !lstrip_ok)
        return tag;
    size_t lp = tag;
    while (lp > from && lx->s[lp - 1] != '\n')
        lp--;
    bool had_newline = lp > from;
    if ((had_newline || line_starting) && ju_lstrip_ws(lx->s + lp, tag - lp) == tag - lp)
        return lp;
    return tag;
}

/* Closing '%}' variants; returns the position after it, 0 if not at one. */
static size_t block_close(lexer *lx, size_t pos)
{
    if (at(lx, pos, "-%}"))
        return skip_ws(lx, pos + 3);
    if (at(lx, pos, "+%}"))
        return pos + 3;
    if (at(lx, pos, "%}"))
        return pos + 2 + (pos + 2 < lx->n && lx->s[pos + 2] == '\n');
    return 0;
}

/* {% raw %}...{% endraw %}: the body is text, copied verbatim. */
static bool lex_raw(lexer *lx, size_t tag, bool *line_starting)
{
    size_t p = skip_ws(lx, tag + 2 + (lx->s[tag + 2] == '-' || lx->s[tag + 2] == '+'));
    if (!at(lx, p, "raw"))
        return false;
    p = skip_ws(lx, p + 3);
    if (at(lx, p, "-%}"))
        p = skip_ws(lx, p + 3);
    else if (at(lx, p, "%}"))
        p += 2;
    else
        return false;
    for (size_t q = p; q + 1 < lx->n; q++) {
        if (lx->s[q] != '{' || lx->s[q + 1] != '%')
            continue;
        char sign = q + 2 < lx->n ? lx->s[q + 2] : 0;
        size_t r = skip_ws(lx, q + 2 + (sign == '-' || sign == '+'));
        if (!at(lx, r, "endraw"))
            continue;
        size_t end = block_close(lx, skip_ws(lx, r + 6));
        if (!end)
            continue;
        bool ls = lx->s[p - 1] == '\n';
        emit_data(lx, p, strip_text_end(lx, p, q, sign, true, ls));
        *line_starting = lx->s[end - 1] == '\n';
        lx->pos = end;
        return true;
    }
    lex_fail(lx, tag, "missing end of raw directive");
}

static void lex_comment(lexer *lx, size_t tag, bool *line_starting)
{
    size_t p = tag + 2 + (tag + 2 < lx->n && (lx->s[tag + 2] == '-' || lx->s[tag + 2] == '+'));
    if (p >= lx->n) { /* jinja2 quietly accepts an opener that ends the template */
        lx->pos = lx->n;
        return;
    }
    for (size_t e = p; e + 1 < lx->n; e++) {
        if (lx->s[e] != '#' || lx->s[e + 1] != '}')
            continue;
        size_t end = e + 2;
        if (e > p && lx->s[e - 1] == '-')
            end = skip_ws(lx, end);
        else if (!(e > p && lx->s[e - 1] == '+') && end < lx->n && lx->s[end] == '\n')
            end++;
        *line_starting = lx->s[end - 1] == '\n';
        lx->pos = end;
        return;
    }
    lex_fail(lx, tag, "missing end of comment tag");
}

static size_t scan_digits(const lexer *lx, size_t p, int base)
{
    size_t start = p;
    while (p < lx->n) {
        char ch = lx->s[p];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : 99;
        if (d < base)
            p++;
        else if (ch == '_' && p > start && p + 1 < lx->n && lx->s[p + 1] != '_')
            p++;
        else
            break;
    }
    while (p > start && lx->s[p - 1] == '_')
        p--;
    return p;
}

static void lex_number(lexer *lx)
{
    size_t start = lx->pos, p = start;
    int base = 10;
    if (lx->s[p] == '0' && p + 1 < lx->n && strchr("bBoOxX", lx->s[p + 1]) && lx->s[p + 1]) {
        char k = (char)(lx->s[p + 1] | 0x20);
        base = k == 'b' ? 2 : k == 'o' ? 8 : 16;
        p += 2;
    }
    size_t digits_end = scan_digits(lx, p, base);
    if (digits_end == p)
        lex_fail(lx, start, "invalid number");
    bool is_float = false;
    size_t end = digits_end;
    bool after_dot = start > 0 && lx->s[start - 1] == '.';
    if (base == 10 && !after_dot) {
        if (end + 1 < lx->n && lx->s[end] == '.' && lx->s[end + 1] >= '0' && lx->s[end + 1] <= '9') {
            end = scan_digits(lx, end + 1, 10);
            is_float = true;
        }
        if (end < lx->n && (lx->s[end] == 'e' || lx->s[end] == 'E')) {
            size_t q = end + 1;
            if (q < lx->n && (lx->s[q] == '+' || lx->s[q] == '-'))
                q++;
            size_t qe = scan_digits(lx, q, 10);
            if (qe > q) {
                end = qe;
                is_float = true;
            }
        }
    }
    char buf[128];
    size_t k = 0;
    for (size_t i = (base == 10 ? start : p); i < end && k + 1 < sizeof buf; i++)
        if (lx->s[i] != '_')
            buf[k++] = lx->s[i];
    buf[k] = 0;
    jtoken *t = emit(lx, is_float ? JT_FLOAT : JT_INT, start);
    errno = 0;
    if (is_float) {
        t->fval = strtod(buf, NULL);
    } else {
        char *ep;
        unsigned long long v = strtoull(buf, &ep, base);
        if (errno || v > INT64_MAX)
            lex_fail(lx, start, "integer literal too large");
        t->ival = (int64_t)v;
    }
    lx->pos = end;
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'
           ? (ch | 0x20) - 'a' + 10 : -1;
}

/* Python "unicode-escape" decoding of a literal's body; unknown escapes stay as written. */
static void lex_string(lexer *lx)
{
    size_t start = lx->pos;
    char q = lx->s[start];
    size_t p = start + 1;
    while (p < lx->n && lx->s[p] != q)
        p += lx->s[p] == '\\' ? 2 : 1;
    if (p >= lx->n)
        lex_fail(lx, start, "unterminated string literal");
    char *out = lex_alloc(lx, 2 * (p - start) + 8);
    size_t k = 0;
    for (size_t i = start + 1; i < p; i++) {
        char ch = lx->s[i];
        if (ch != '\\') {
            out[k++] = ch;
            continue;
        }
        char e = lx->s[++i];
        const char *simple = strchr("n\nt\tr\r\\\\''\"\"a\ab\bf\fv\v", e);
        if (e && simple && (simple - "n\nt\tr\r\\\\''\"\"a\ab\bf\fv\v") % 2 == 0) {
            out[k++] = simple[1];
        } else if (e == '\n') {
            /* line continuation: both characters vanish */
        } else if (e >= '0' && e <= '7') {
            unsigned v = 0;
            int nd = 0;
            while (nd < 3 && i < p && lx->s[i] >= '0' && lx->s[i] <= '7')
                v = v * 8 + (unsigned)(lx->s[i++] - '0'), nd++;
            i--;
            k += ju_encode(v, out + k);
        } else if (e == 'x' || e == 'u' || e == 'U') {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int d = 0; d < nd; d++) {
                int h = i + 1 + (size_t)d < p ? hexval(lx->s[i + 1 + d]) : -1;
                if (h < 0)
                    lex_fail(lx, i - 1, "truncated \\%c escape in string literal", e);
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                lex_fail(lx, i - 1, "invalid \\%c escape in string literal", e);
            i += (size_t)nd;
            k += ju_encode(v, out + k);
        } else if ((unsigned char)e >= 0x80) {
            /* jinja2 backslash-escapes non-ASCII text before decoding, so "\\é" becomes
             * a backslash followed by the letters of "xe9" */
            size_t j = i;
            uint32_t cp = ju_decode(lx->s, p, &j);
            k += (size_t)sprintf(out + k, cp <= 0xFF ? "\\x%02x" : cp <= 0xFFFF ? "\\u%04x" : "\\U%08x", cp);
            i = j - 1;
        } else {
            out[k++] = '\\';
            out[k++] = e;
        }
    }
    jtoken *t = emit(lx, JT_STRING, start);
    t->p = out;
    t->n = k;
    lx->pos = p + 1;
}

static void lex_operator(lexer *lx, char *stack, int *depth)
{
    static const struct { const char *text; int op; } ops[] = {
        {"//", JO_FLOORDIV}, {"**", JO_POW}, {"==", JO_EQ}, {"!=", JO_NE}, {">=", JO_GE},
        {"<=", JO_LE}, {"+", JO_ADD}, {"-", JO_SUB}, {"/", JO_DIV}, {"*", JO_MUL},
        {"%", JO_MOD}, {"~", JO_TILDE}, {"[", JO_LBRACKET}, {"]", JO_RBRACKET},
        {"(", JO_LPAREN}, {")", JO_RPAREN}, {"{", JO_LBRACE}, {"}", JO_RBRACE}, {">", JO_GT},
        {"<", JO_LT}, {"=", JO_ASSIGN}, {".", JO_DOT}, {":", JO_COLON}, {"|", JO_PIPE},
        {",", JO_COMMA}, {";", JO_SEMICOLON},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (!at(lx, lx->pos, ops[i].text))
            continue;
        char ch = ops[i].text[0];
        if (strchr("([{", ch) && !ops[i].text[1]) {
            if (*depth >= JLEX_MAX_NEST)
                lex_fail(lx, lx->pos, "brackets nested too deeply");
            stack[(*depth)++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
        } else if (strchr(")]}", ch)) {
            if (*depth == 0)
                lex_fail(lx, lx->pos, "unexpected '%c'", ch);
            if (stack[*depth - 1] != ch)
                lex_fail(lx, lx->pos, "unexpected '%c', expected '%c'", ch, stack[*depth - 1]);
            (*depth)--;
        }
        jtoken *t = emit(lx, JT_OP, lx->pos);
        t->op = (uint8_t)ops[i].op;
        lx->pos += strlen(ops[i].text);
        return;
    }
    size_t end = lx->pos;
    ju_decode(lx->s, lx->n, &end);
    lex_fail(lx, lx->pos, "unexpected char '%.*s'", (int)(end - lx->pos), lx->s + lx->pos);
}

/* Tokens between {{ / {% and the matching close; returns whether the close ended a line. */
static bool lex_tag(lexer *lx, bool is_block, size_t tag)
{
    char stack[JLEX_MAX_NEST];
    int depth = 0;
    for (;;) {
        lx->pos = skip_ws(lx, lx->pos);
        if (lx->pos >= lx->n)
            lex_fail(lx, tag, "unexpected end of template, expected '%s'", is_block ? "%}" : "}}");
        size_t end = 0;
        if (depth == 0) {
            if (is_block)
                end = block_close(lx, lx->pos);
            else if (at(lx, lx->pos, "-}}"))
                end = skip_ws(lx, lx->pos + 3);
            else if (at(lx, lx->pos, "}}"))
                end = lx->pos + 2;
        }
        if (end) {
            emit(lx, is_block ? JT_BLOCK_END : JT_VAR_END, lx->pos);
            lx->pos = end;
            return lx->s[end - 1] == '\n';
        }
        char ch = lx->s[lx->pos];
        size_t after = lx->pos;
        if (ch >= '0' && ch <= '9') {
            lex_number(lx);
        } else if (ju_isident(ju_decode(lx->s, lx->n, &after), true)) {
            size_t p = after;
            for (size_t q = p; p < lx->n && ju_isident(ju_decode(lx->s, lx->n, &q), false); q = p)
                p = q;
            jtoken *t = emit(lx, JT_NAME, lx->pos);
            char *name = lex_alloc(lx, p - lx->pos + 1);
            memcpy(name, lx->s + lx->pos, p - lx->pos);
            t->p = name;
            t->n = p - lx->pos;
            lx->pos = p;
        } else if (ch == '\'' || ch == '"') {
            lex_string(lx);
        } else {
            lex_operator(lx, stack, &depth);
        }
    }
}

/* Newlines normalised to \n and one trailing newline dropped, as jinja2 does first. */
static char *normalize_source(lexer *lx, const char *src, size_t len, size_t *outlen)
{
    char *s = lex_alloc(lx, len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[k++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            s[k++] = src[i];
        }
    }
    if (k > 0 && s[k - 1] == '\n')
        k--;
    *outlen = k;
    return s;
}

bool jlex(jarena *a, const char *src, size_t len, jtoken **toks, size_t *ntoks,
          char *err, size_t errlen)
{
    lexer lx = {.a = a, .err = err, .errlen = errlen, .cline = 1};
    if (setjmp(lx.jb))
        return false;
    if (!ju_valid(src, len)) {
        snprintf(err, errlen, "chat template is not valid UTF-8");
        return false;
    }
    lx.s = normalize_source(&lx, src, len, &lx.n);
    bool line_starting = true;
    while (lx.pos < lx.n) {
        size_t from = lx.pos, tag = from;
        while (tag + 1 < lx.n && !(lx.s[tag] == '{' && strchr("{%#", lx.s[tag + 1])))
            tag++;
        if (tag + 1 >= lx.n) {
            emit_data(&lx, from, lx.n);
            break;
        }
        char kind = lx.s[tag + 1];
        char sign = tag + 2 < lx.n ? lx.s[tag + 2] : 0;
        emit_data(&lx, from, strip_text_end(&lx, from, tag, sign, kind != '{', line_starting));
        if (kind == '#') {
            lex_comment(&lx, tag, &line_starting);
            continue;
        }
        if (kind == '%' && lex_raw(&lx, tag, &line_starting))
            continue;
        emit(&lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, tag);
        lx.pos = tag + 2 + (sign == '-' || sign == '+');
        line_starting = lex_tag(&lx, kind == '%', tag);
    }
    emit(&lx, JT_EOF, lx.n);
    *toks = lx.toks;
    *ntoks = lx.ntok;
    return true;
}
