/* tok_decode.c: token ids back to bytes, and the streaming decoder that never cuts a UTF-8
 * character in two (a server can send each piece as soon as it is returned). */
#include "engine/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static bool skipped(const struct tokenizer *t, int32_t id, bool skip_special)
{
    return id < 0 || (uint32_t)id >= t->n_vocab || (skip_special && t->type[id] == TOK_TYPE_CONTROL);
}

char *tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                 size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = 0;
        if (!skipped(t, ids[i], skip_special))
            tok_bytes_of(t, ids[i], &l);
        total += l;
    }
    char *out = malloc(total + 1);
    if (!out) {
        *len = 0;
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (skipped(t, ids[i], skip_special))
            continue;
        size_t l;
        const char *b = tok_bytes_of(t, ids[i], &l);
        memcpy(out + at, b, l);
        at += l;
    }
    out[at] = '\0';
    *len = at;
    return out;
}

void tok_stream_init(struct tok_stream *s, bool skip_special)
{
    memset(s, 0, sizeof *s);
    s->skip_special = skip_special;
}

size_t tok_stream_cap(const struct tokenizer *t)
{
    return t->max_bytes + sizeof ((struct tok_stream *)0)->held;
}

/* How many bytes at the end of s[0..n) are the start of a character still missing bytes. */
static size_t incomplete_tail(const unsigned char *s, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80)
            continue;                          /* continuation: look further back */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        return back < need ? back : 0;
    }
    return 0;                                  /* ASCII, or continuation bytes with no lead */
}

bool tok_stream_push(struct tok_stream *s, const struct tokenizer *t, int32_t id,
                     char *out, size_t cap, size_t *n_out)
{
    *n_out = 0;
    size_t len = 0;
    const char *b = skipped(t, id, s->skip_special) ? "" : tok_bytes_of(t, id, &len);
    if (s->n_held + len > cap)
        return false;
    memcpy(out, s->held, s->n_held);
    memcpy(out + s->n_held, b, len);
    size_t total = s->n_held + len;
    size_t hold = incomplete_tail((const unsigned char *)out, total);
    memcpy(s->held, out + total - hold, hold);
    s->n_held = hold;
    *n_out = total - hold;
    return true;
}

size_t tok_stream_flush(struct tok_stream *s, char out[4])
{
    size_t n = s->n_held;
    memcpy(out, s->held, n);
    s->n_held = 0;
    return n;
}
