/* kvpool.h: the KV cache as one pool of fixed-size pages shared by all sequences (slots).
 * A sequence takes pages as it grows and returns them when truncated, so one long request can
 * use most of the pool while several short ones share it: no fixed context/slots split. */
#ifndef MOESERVE_KVPOOL_H
#define MOESERVE_KVPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv_seq {
    uint32_t *pages;       /* page ids in position order */
    uint32_t n_pages;
    uint32_t n_tokens;     /* positions stored */
};

struct kvpool {
    uint32_t n_layers;
    uint32_t page_tokens;  /* positions per page */
    uint32_t n_pages;
    uint32_t k_row_bytes, v_row_bytes;  /* one position of one layer */
    uint32_t max_seq_pages;
    uint8_t *k, *v;        /* [layer][page][page_tokens][row] */
    uint32_t *free_pages;  /* stack of free page ids */
    uint32_t n_free;
    struct kv_seq *seqs;
    uint32_t n_seqs;
};

/* Allocates a pool of n_pages pages of page_tokens positions for n_seqs sequences, each at most
 * max_seq_tokens long. Row sizes are bytes per position and layer (KV heads x head size x type). */
bool kvpool_init(struct kvpool *p, uint32_t n_layers, uint32_t k_row_bytes, uint32_t v_row_bytes,
                 uint32_t page_tokens, uint32_t n_pages, uint32_t n_seqs, uint32_t max_seq_tokens,
                 char *err, size_t errlen);
/* The same bookkeeping for a cache whose rows live elsewhere (on a GPU): k and v stay NULL, and
 * kvpool_k / kvpool_v / kvpool_copy_prefix must not be used; the page tables are what counts. */
bool kvpool_init_pages(struct kvpool *p, uint32_t n_layers, uint32_t k_row_bytes, uint32_t v_row_bytes,
                       uint32_t page_tokens, uint32_t n_pages, uint32_t n_seqs, uint32_t max_seq_tokens,
                       char *err, size_t errlen);
void kvpool_free(struct kvpool *p);

/* Makes room in sequence s for positions [0, n_tokens). False when the pool is out of pages
 * (nothing changes then). */
bool kvpool_reserve(struct kvpool *p, uint32_t s, uint32_t n_tokens);
/* Keeps positions [0, n_keep) of sequence s and returns whole unused pages to the pool. */
void kvpool_truncate(struct kvpool *p, uint32_t s, uint32_t n_keep);
/* Copies positions [0, n) of src into dst (dst is truncated first). False if out of pages (or the
 * rows are not on the host). */
bool kvpool_copy_prefix(struct kvpool *p, uint32_t src, uint32_t dst, uint32_t n);

/* Row of position pos (< reserved capacity) of sequence s in layer l. */
static inline uint8_t *kvpool_k(const struct kvpool *p, uint32_t l, uint32_t s, uint32_t pos)
{
    uint32_t page = p->seqs[s].pages[pos / p->page_tokens];
    size_t idx = ((size_t)l * p->n_pages + page) * p->page_tokens + pos % p->page_tokens;
    return p->k + idx * p->k_row_bytes;
}

static inline uint8_t *kvpool_v(const struct kvpool *p, uint32_t l, uint32_t s, uint32_t pos)
{
    uint32_t page = p->seqs[s].pages[pos / p->page_tokens];
    size_t idx = ((size_t)l * p->n_pages + page) * p->page_tokens + pos % p->page_tokens;
    return p->v + idx * p->v_row_bytes;
}

/* The limits a batch of a forward pass must respect (model_decode and its siblings). */
struct kvpool_batch_limits {
    uint32_t max_batch, n_vocab, max_seq_tokens;
};

/* Checks n entries (token, position, sequence) before a forward pass: tokens in the vocabulary,
 * each sequence's positions continuing its cache without gaps and below max_seq_tokens; then
 * reserves their pages. False with a message naming the entry (or the full pool). */
bool kvpool_check_batch(struct kvpool *p, const struct kvpool_batch_limits *lim, uint32_t n, const int32_t *token,
                        const uint32_t *pos, const uint32_t *seq, char *err, size_t errlen);

/* Positions the pool can still hold (whole free pages). */
uint64_t kvpool_free_tokens(const struct kvpool *p);
/* Bytes of K and V storage (for the memory planner and metrics). */
uint64_t kvpool_bytes(const struct kvpool *p);

#endif
