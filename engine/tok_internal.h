/* tok_internal.h: the tokenizer's loaded tables, shared by its load, encode and decode files.
 * Nothing outside engine/tok*.c should include this. */
#ifndef MOESERVE_TOK_INTERNAL_H
#define MOESERVE_TOK_INTERNAL_H

#include "engine/tokenizer.h"

struct tok_merge_slot {
    uint64_t key;              /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t merged;
};

struct tokenizer {
    uint32_t n_vocab;
    char *text;                /* every token's vocabulary text, NUL after each */
    uint64_t *text_off;        /* n_vocab + 1 */
    char *bytes;               /* every token's decoded bytes */
    uint64_t *bytes_off;       /* n_vocab + 1 */
    uint8_t *type;             /* enum tok_type */
    uint32_t *by_text;         /* hash of vocabulary text -> id; UINT32_MAX = empty */
    uint64_t by_text_mask;
    struct tok_merge_slot *merges;
    uint64_t merge_mask;
    int32_t byte_token[256];   /* the token of each single byte */
    int32_t *special;          /* matchable in text (control, user-defined), longest first */
    size_t n_special;
    bool special_first[256];   /* first bytes of the special tokens */
    int32_t *control;
    size_t n_control;
    int32_t eog[24];           /* end-of-generation tokens, ascending */
    size_t n_eog;
    int32_t eos, bos, pad;
    bool add_bos;
    size_t max_bytes;
};

uint64_t tok_hash_bytes(const void *p, size_t n);
/* Merge of the pair (left, right): true with its rank and result. */
bool tok_merge_lookup(const struct tokenizer *t, int32_t left, int32_t right, uint32_t *rank,
                      int32_t *merged);

static inline const char *tok_bytes_of(const struct tokenizer *t, int32_t id, size_t *len)
{
    *len = (size_t)(t->bytes_off[id + 1] - t->bytes_off[id]);
    return t->bytes + t->bytes_off[id];
}

#endif
