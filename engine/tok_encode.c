/* tok_encode.c: text to token ids: added tokens found in the text, then per stretch between
 * them NFC, the Qwen2 split and byte-level BPE (merges by rank, leftmost first, as HF does). */
#include "engine/tok_internal.h"
#include "engine/pretok.h"

#include <stdlib.h>
#include <string.h>

struct bpe_sym {
    int32_t id;
    int32_t prev, next;      /* -1 at the ends */
    bool dead;
};

struct bpe_cand {
    uint32_t rank;
    int32_t pos;             /* the left symbol */
    int32_t merged;
};

/* A word seen before in this call: its ids are out[start .. start+count). */
struct cache_slot {
    uint64_t hash;
    uint32_t start, count;   /* count 0 = empty */
};

struct enc {
    const struct tokenizer *t;
    int32_t *out;
    size_t n, cap;
    const char *seg;         /* the (normalised) stretch being split */
    struct pretok_scratch scr;
    struct bpe_sym *sym;
    struct bpe_cand *heap;
    size_t sym_cap;
    struct cache_slot *cache;
    size_t cache_mask, cache_used;
};

static bool push_id(struct enc *e, int32_t id)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 256;
        int32_t *o = realloc(e->out, cap * sizeof *o);
        if (!o)
            return false;
        e->out = o;
        e->cap = cap;
    }
    e->out[e->n++] = id;
    return true;
}

static bool cand_less(const struct bpe_cand *a, const struct bpe_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct bpe_cand *h, size_t *n, struct bpe_cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static struct bpe_cand heap_pop(struct bpe_cand *h, size_t *n)
{
    struct bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c]))
            c++;
        if (!cand_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static void try_pair(const struct tokenizer *t, const struct bpe_sym *sym, int32_t pos,
                     struct bpe_cand *heap, size_t *nh)
{
    if (pos < 0 || sym[pos].next < 0)
        return;
    struct bpe_cand c = { .pos = pos };
    if (tok_merge_lookup(t, sym[pos].id, sym[sym[pos].next].id, &c.rank, &c.merged))
        heap_push(heap, nh, c);
}

/* BPE of one piece; appends its ids. Each merge pushes at most two candidates, so the heap
 * never holds more than 3n. */
static bool bpe_piece(struct enc *e, const unsigned char *s, size_t n)
{
    const struct tokenizer *t = e->t;
    if (n == 1)
        return push_id(e, t->byte_token[s[0]]);
    if (n > INT32_MAX / 4)
        return false;
    if (n > e->sym_cap) {
        size_t cap = n > 2 * e->sym_cap ? n : 2 * e->sym_cap;
        struct bpe_sym *sym = realloc(e->sym, cap * sizeof *sym);
        if (!sym)
            return false;
        e->sym = sym;
        struct bpe_cand *heap = realloc(e->heap, 3 * cap * sizeof *heap);
        if (!heap)
            return false;
        e->heap = heap;
        e->sym_cap = cap;
    }
    struct bpe_sym *sym = e->sym;
    for (size_t i = 0; i < n; i++)
        sym[i] = (struct bpe_sym){ t->byte_token[s[i]], (int32_t)i - 1,
                                   i + 1 < n ? (int32_t)i + 1 : -1, false };
    size_t nh = 0;
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(t, sym, (int32_t)i, e->heap, &nh);
    while (nh) {
        struct bpe_cand c = heap_pop(e->heap, &nh);
        struct bpe_sym *l = &sym[c.pos];
        if (l->dead || l->next < 0)
            continue;
        uint32_t rank;
        int32_t merged;
        /* stale if either side changed since the candidate was pushed */
        if (!tok_merge_lookup(t, l->id, sym[l->next].id, &rank, &merged) || merged != c.merged)
            continue;
        struct bpe_sym *r = &sym[l->next];
        l->id = merged;
        r->dead = true;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = c.pos;
        try_pair(t, sym, l->prev, e->heap, &nh);
        try_pair(t, sym, c.pos, e->heap, &nh);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (!push_id(e, sym[i].id))
            return false;
    return true;
}

/* Whether the ids out[start..start+count) spell exactly s[0..n). */
static bool ids_spell(const struct enc *e, const struct cache_slot *c, const char *s, size_t n)
{
    size_t at = 0;
    for (uint32_t k = 0; k < c->count; k++) {
        size_t len;
        const char *b = tok_bytes_of(e->t, e->out[c->start + k], &len);
        if (at + len > n || memcmp(b, s + at, len) != 0)
            return false;
        at += len;
    }
    return at == n;
}

static bool cache_grow(struct enc *e)
{
    size_t size = e->cache ? 2 * (e->cache_mask + 1) : 4096;
    struct cache_slot *c = calloc(size, sizeof *c);
    if (!c)
        return false;
    for (size_t i = 0; e->cache && i <= e->cache_mask; i++) {
        if (!e->cache[i].count)
            continue;
        size_t h = e->cache[i].hash & (size - 1);
        while (c[h].count)
            h = (h + 1) & (size - 1);
        c[h] = e->cache[i];
    }
    free(e->cache);
    e->cache = c;
    e->cache_mask = size - 1;
    return true;
}

/* One piece of the split: from the cache when this word was seen before in the call. */
static bool emit_piece(void *ctx, size_t start, size_t end)
{
    struct enc *e = ctx;
    const char *s = e->seg + start;
    size_t n = end - start;
    if (n == 1)
        return push_id(e, e->t->byte_token[(unsigned char)s[0]]);
    uint64_t hash = tok_hash_bytes(s, n);
    if (e->cache) {
        for (size_t h = hash & e->cache_mask; e->cache[h].count; h = (h + 1) & e->cache_mask) {
            const struct cache_slot *c = &e->cache[h];
            if (c->hash == hash && ids_spell(e, c, s, n)) {
                for (uint32_t k = 0; k < c->count; k++)
                    if (!push_id(e, e->out[c->start + k]))
                        return false;
                return true;
            }
        }
    }
    size_t first = e->n;
    if (!bpe_piece(e, (const unsigned char *)s, n))
        return false;
    if (e->n > UINT32_MAX)
        return true;                    /* too far in to index; just don't cache */
    if ((!e->cache || 2 * (e->cache_used + 1) > e->cache_mask + 1) && !cache_grow(e))
        return false;
    size_t h = hash & e->cache_mask;
    while (e->cache[h].count)
        h = (h + 1) & e->cache_mask;
    e->cache[h] = (struct cache_slot){ hash, (uint32_t)first, (uint32_t)(e->n - first) };
    e->cache_used++;
    return true;
}

/* A stretch of ordinary text: NFC, split, BPE. */
static bool encode_text(struct enc *e, const char *s, size_t n)
{
    if (!n)
        return true;
    char *nfc;
    size_t nfc_len;
    if (!pretok_nfc(s, n, &nfc, &nfc_len))
        return false;
    e->seg = nfc ? nfc : s;
    bool ok = pretok_split(&e->scr, e->seg, nfc ? nfc_len : n, emit_piece, e);
    free(nfc);
    return ok;
}

/* The longest added token starting at s, or -1. */
static int32_t match_special(const struct tokenizer *t, const char *s, size_t n)
{
    if (!t->special_first[(unsigned char)s[0]])
        return -1;
    for (size_t k = 0; k < t->n_special; k++) {     /* longest first */
        size_t len;
        const char *b = tok_bytes_of(t, t->special[k], &len);
        if (len <= n && memcmp(b, s, len) == 0)
            return t->special[k];
    }
    return -1;
}

int32_t *tok_encode(const struct tokenizer *t, const char *text, size_t len, bool parse_special,
                    size_t *n_out)
{
    struct enc e = { .t = t };
    bool ok = true;
    if (!parse_special) {
        ok = encode_text(&e, text, len);
    } else {
        size_t from = 0;
        for (size_t i = 0; i < len && ok;) {
            int32_t id = match_special(t, text + i, len - i);
            if (id < 0) {
                i++;
                continue;
            }
            size_t tl;
            tok_bytes_of(t, id, &tl);
            ok = encode_text(&e, text + from, i - from) && push_id(&e, id);
            i += tl;
            from = i;
        }
        if (ok)
            ok = encode_text(&e, text + from, len - from);
    }
    if (ok && !e.out)
        ok = (e.out = malloc(sizeof *e.out)) != NULL;
    pretok_scratch_free(&e.scr);
    free(e.sym);
    free(e.heap);
    free(e.cache);
    if (!ok) {
        free(e.out);
        *n_out = 0;
        return NULL;
    }
    *n_out = e.n;
    return e.out;
}
