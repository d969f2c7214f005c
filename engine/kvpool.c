/* kvpool.c: page allocator of the shared KV pool (engine/kvpool.h).
 * Pages are handed out from a free stack; a sequence's page table maps position -> page. */
#include "engine/kvpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool init(struct kvpool *p, bool host_rows, uint32_t n_layers, uint32_t k_row_bytes, uint32_t v_row_bytes,
                 uint32_t page_tokens, uint32_t n_pages, uint32_t n_seqs, uint32_t max_seq_tokens,
                 char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!n_layers || !k_row_bytes || !v_row_bytes || !page_tokens || !n_pages || !n_seqs || !max_seq_tokens) {
        snprintf(err, errlen, "KV pool: every size must be positive");
        return false;
    }
    p->n_layers = n_layers;
    p->page_tokens = page_tokens;
    p->n_pages = n_pages;
    p->k_row_bytes = k_row_bytes;
    p->v_row_bytes = v_row_bytes;
    p->n_seqs = n_seqs;
    p->max_seq_pages = (max_seq_tokens + page_tokens - 1) / page_tokens;
    size_t rows = (size_t)n_layers * n_pages * page_tokens;
    if (host_rows) {
        p->k = malloc(rows * k_row_bytes);
        p->v = malloc(rows * v_row_bytes);
    }
    p->free_pages = malloc((size_t)n_pages * sizeof *p->free_pages);
    p->seqs = calloc(n_seqs, sizeof *p->seqs);
    bool ok = (!host_rows || (p->k && p->v)) && p->free_pages && p->seqs;
    for (uint32_t s = 0; ok && s < n_seqs; s++)
        ok = (p->seqs[s].pages = malloc((size_t)p->max_seq_pages * sizeof(uint32_t))) != NULL;
    if (!ok) {
        snprintf(err, errlen, "KV pool: cannot allocate %.1f MiB for %u pages of %u tokens",
                 (double)rows * (k_row_bytes + v_row_bytes) / 1048576.0, n_pages, page_tokens);
        kvpool_free(p);
        return false;
    }
    /* highest ids at the bottom so pages are handed out in ascending order */
    for (uint32_t i = 0; i < n_pages; i++)
        p->free_pages[i] = n_pages - 1 - i;
    p->n_free = n_pages;
    return true;
}

bool kvpool_init(struct kvpool *p, uint32_t n_layers, uint32_t k_row_bytes, uint32_t v_row_bytes,
                 uint32_t page_tokens, uint32_t n_pages, uint32_t n_seqs, uint32_t max_seq_tokens,
                 char *err, size_t errlen)
{
    return init(p, true, n_layers, k_row_bytes, v_row_bytes, page_tokens, n_pages, n_seqs, max_seq_tokens, err,
                errlen);
}

bool kvpool_init_pages(struct kvpool *p, uint32_t n_layers, uint32_t k_row_bytes, uint32_t v_row_bytes,
                       uint32_t page_tokens, uint32_t n_pages, uint32_t n_seqs, uint32_t max_seq_tokens,
                       char *err, size_t errlen)
{
    return init(p, false, n_layers, k_row_bytes, v_row_bytes, page_tokens, n_pages, n_seqs, max_seq_tokens, err,
                errlen);
}

void kvpool_free(struct kvpool *p)
{
    if (p->seqs)
        for (uint32_t s = 0; s < p->n_seqs; s++)
            free(p->seqs[s].pages);
    free(p->seqs);
    free(p->free_pages);
    free(p->k);
    free(p->v);
    memset(p, 0, sizeof *p);
}

bool kvpool_reserve(struct kvpool *p, uint32_t s, uint32_t n_tokens)
{
    struct kv_seq *q = &p->seqs[s];
    uint32_t need = (n_tokens + p->page_tokens - 1) / p->page_tokens;
    if (need > p->max_seq_pages)
        return false;
    if (need <= q->n_pages)
        return true;
    if (need - q->n_pages > p->n_free)
        return false;
    while (q->n_pages < need)
        q->pages[q->n_pages++] = p->free_pages[--p->n_free];
    return true;
}

void kvpool_truncate(struct kvpool *p, uint32_t s, uint32_t n_keep)
{
    struct kv_seq *q = &p->seqs[s];
    if (n_keep < q->n_tokens)
        q->n_tokens = n_keep;
    uint32_t keep_pages = (n_keep + p->page_tokens - 1) / p->page_tokens;
    while (q->n_pages > keep_pages)
        p->free_pages[p->n_free++] = q->pages[--q->n_pages];
}

bool kvpool_copy_prefix(struct kvpool *p, uint32_t src, uint32_t dst, uint32_t n)
{
    if (src == dst)
        return true;
    if (!p->k)  /* the rows live on a device: copying them is the device's job */
        return false;
    kvpool_truncate(p, dst, 0);
    if (n > p->seqs[src].n_tokens || !kvpool_reserve(p, dst, n))
        return false;
    for (uint32_t l = 0; l < p->n_layers; l++)
        for (uint32_t pos = 0; pos < n; pos++) {
            memcpy(kvpool_k(p, l, dst, pos), kvpool_k(p, l, src, pos), p->k_row_bytes);
            memcpy(kvpool_v(p, l, dst, pos), kvpool_v(p, l, src, pos), p->v_row_bytes);
        }
    p->seqs[dst].n_tokens = n;
    return true;
}

uint64_t kvpool_free_tokens(const struct kvpool *p)
{
    return (uint64_t)p->n_free * p->page_tokens;
}

uint64_t kvpool_bytes(const struct kvpool *p)
{
    return (uint64_t)p->n_layers * p->n_pages * p->page_tokens * (p->k_row_bytes + p->v_row_bytes);
}

bool kvpool_check_batch(struct kvpool *p, const struct kvpool_batch_limits *lim, uint32_t n, const int32_t *token,
                        const uint32_t *pos, const uint32_t *seq, char *err, size_t errlen)
{
    if (n == 0 || n > lim->max_batch) {
        snprintf(err, errlen, "batch of %u tokens (1 to %u allowed)", n, lim->max_batch);
        return false;
    }
    for (uint32_t t = 0; t < n; t++) {
        if (seq[t] >= p->n_seqs || token[t] < 0 || (uint32_t)token[t] >= lim->n_vocab) {
            snprintf(err, errlen, "entry %u: sequence %u or token %d out of range", t, seq[t], token[t]);
            return false;
        }
        uint32_t expect = p->seqs[seq[t]].n_tokens;
        for (uint32_t u = 0; u < t; u++)
            expect += seq[u] == seq[t];
        if (pos[t] != expect || pos[t] >= lim->max_seq_tokens) {
            snprintf(err, errlen, "entry %u: position %u of sequence %u, expected %u (at most %u)", t, pos[t], seq[t],
                     expect, lim->max_seq_tokens - 1);
            return false;
        }
    }
    for (uint32_t t = 0; t < n; t++)
        if (!kvpool_reserve(p, seq[t], pos[t] + 1)) {
            snprintf(err, errlen, "the KV pool is full (%llu free tokens)", (unsigned long long)kvpool_free_tokens(p));
            return false;
        }
    return true;
}
