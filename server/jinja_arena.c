/* jinja_arena.c: the Jinja interpreter's bump allocator, growable string buffers and the
 * render-error exit (formats the message and unwinds to jinja_render). */
#include "server/jinja_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jarena_chunk {
    jarena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

#define JARENA_CHUNK (64u << 10)

void *jarena_alloc(jarena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    jarena_chunk *h = a->head;
    if (!h || h->size - h->used < n) {
        size_t size = n > JARENA_CHUNK / 4 ? n : JARENA_CHUNK;
        if (a->limit && (size > a->limit || a->total > a->limit - size))
            return NULL;
        jarena_chunk *nc = malloc(sizeof *nc + size);
        if (!nc)
            return NULL;
        nc->size = size;
        nc->used = 0;
        a->total += size;
        /* A big one-off block goes behind the current chunk so its free space stays usable. */
        if (h && size != JARENA_CHUNK) {
            nc->next = h->next;
            h->next = nc;
        } else {
            nc->next = h;
            a->head = nc;
        }
        h = nc;
    }
    void *p = h->data + h->used;
    h->used += n;
    memset(p, 0, n);
    return p;
}

void jarena_free(jarena *a)
{
    jarena_chunk *h = a->head;
    while (h) {
        jarena_chunk *next = h->next;
        free(h);
        h = next;
    }
    a->head = NULL;
    a->total = 0;
}

_Noreturn void jfail(jctx *c, const char *kind, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->errlen) {
        snprintf(c->err, c->errlen, "chat template line %d: %s: %s", c->line, kind, msg);
        ju_trim_partial(c->err);
    }
    longjmp(c->jb, 1);
}

void *jalloc(jctx *c, size_t n)
{
    void *p = jarena_alloc(&c->arena, n);
    if (!p)
        jfail(c, "MemoryError", "template rendering needs more than %zu MiB",
              JINJA_MAX_MEMORY >> 20);
    return p;
}

const char *jstrdup(jctx *c, const char *p, size_t n)
{
    char *d = jalloc(c, n + 1);
    memcpy(d, p, n);
    return d;
}

static void jb_reserve(jctx *c, jbuf *b, size_t extra)
{
    if (b->cap - b->n >= extra)
        return;
    if (extra > JINJA_MAX_OUTPUT || b->n > JINJA_MAX_OUTPUT - extra)
        jfail(c, "MemoryError", "template output longer than %zu MiB", JINJA_MAX_OUTPUT >> 20);
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap - b->n < extra)
        cap *= 2;
    char *p = jalloc(c, cap);
    if (b->n)
        memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
}

void jb_put(jctx *c, jbuf *b, const char *p, size_t n)
{
    if (!n)
        return;
    if (n >= 64)
        jwork(c, n);
    jb_reserve(c, b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void jb_puts(jctx *c, jbuf *b, const char *s) { jb_put(c, b, s, strlen(s)); }

void jb_putc(jctx *c, jbuf *b, char ch) { jb_put(c, b, &ch, 1); }

void jb_printf(jctx *c, jbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    jb_put(c, b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
