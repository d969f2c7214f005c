/* tokenizer.h: the Qwen2/Qwen3 byte-level BPE tokenizer, loaded from GGUF metadata and run
 * exactly as Hugging Face's tokenizers does (added tokens, NFC, Qwen2 split, merges by rank). */
#ifndef MOESERVE_TOKENIZER_H
#define MOESERVE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"

/* tokenizer.ggml.token_type values */
enum tok_type {
    TOK_TYPE_UNDEFINED = 0, TOK_TYPE_NORMAL = 1, TOK_TYPE_UNKNOWN = 2, TOK_TYPE_CONTROL = 3,
    TOK_TYPE_USER_DEFINED = 4, TOK_TYPE_UNUSED = 5, TOK_TYPE_BYTE = 6
};

struct tokenizer;

/* Reads and validates tokenizer.ggml.* (model "gpt2", pre "qwen2"). NULL with a message naming
 * the key at fault. The result copies what it needs: f may be closed afterwards.
 * Immutable once loaded, so one tokenizer may be used from several threads at once. */
struct tokenizer *tok_load_gguf(const struct gguf_file *f, char *err, size_t errlen);
void tok_free(struct tokenizer *t);

/* Token ids of text[0..len) (any bytes; invalid UTF-8 is tokenized byte by byte). With
 * parse_special, control and user-defined tokens (<|im_start|>, <think>, <|fim_prefix|>...) in
 * the text become their ids (longest match first); without it, they are ordinary text (use for
 * untrusted input). No BOS is added (see tok_add_bos). Returns a malloc'd array (non-NULL even
 * when *n_out is 0), or NULL on allocation failure or text of 4 GiB or more. */
int32_t *tok_encode(const struct tokenizer *t, const char *text, size_t len, bool parse_special,
                    size_t *n_out);

/* The bytes token id stands for (the text itself for control and user-defined tokens; empty for
 * unused ones), NULL with *len 0 when id is out of range. Not NUL-terminated. */
const char *tok_token_bytes(const struct tokenizer *t, int32_t id, size_t *len);
/* The token as written in the vocabulary (byte-level form, e.g. "Ġhello"), NUL-terminated. */
const char *tok_token_text(const struct tokenizer *t, int32_t id);

/* Bytes of ids[0..n) concatenated, NUL-terminated, malloc'd (length in *len); control tokens
 * left out with skip_special. Out-of-range ids are skipped. NULL on allocation failure. */
char *tok_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                 size_t *len);

/* Id of the token whose vocabulary text is exactly text[0..len) (e.g. "<|fim_prefix|>"), or -1. */
int32_t tok_find(const struct tokenizer *t, const char *text, size_t len);

uint32_t tok_vocab_size(const struct tokenizer *t);
int32_t tok_eos(const struct tokenizer *t);        /* -1 if absent */
int32_t tok_bos(const struct tokenizer *t);        /* -1 if absent */
int32_t tok_pad(const struct tokenizer *t);        /* -1 if absent */
bool tok_add_bos(const struct tokenizer *t);       /* tokenizer.ggml.add_bos_token (false if absent) */
enum tok_type tok_token_type(const struct tokenizer *t, int32_t id); /* UNDEFINED if out of range */
bool tok_is_control(const struct tokenizer *t, int32_t id);
/* The control tokens' ids, ascending; count in *n. */
const int32_t *tok_control_tokens(const struct tokenizer *t, size_t *n);
/* End of generation, as llama.cpp decides it: eos (and eot/eom ids when given) plus the tokens
 * named <|im_end|>, <|endoftext|>, <|fim_pad|>, <|repo_name|>, <|file_sep|> and the like. */
bool tok_is_eog(const struct tokenizer *t, int32_t id);
const int32_t *tok_eog_tokens(const struct tokenizer *t, size_t *n);
/* Longest tok_token_bytes of any token. */
size_t tok_max_token_bytes(const struct tokenizer *t);

/* ------------------------------------------------------------- streaming ---
 * Turns tokens into text pieces that never end inside a UTF-8 character: the incomplete tail
 * of a multi-byte character is held back until a later token completes it. */
struct tok_stream {
    unsigned char held[4];
    size_t n_held;
    bool skip_special;
};

void tok_stream_init(struct tok_stream *s, bool skip_special);
/* Capacity tok_stream_push needs for any token. */
size_t tok_stream_cap(const struct tokenizer *t);
/* Appends token id's bytes; writes what is safe to emit into out (at most cap bytes) and its
 * length into *n_out. Returns false (writing nothing, holding nothing new) if cap is too small. */
bool tok_stream_push(struct tok_stream *s, const struct tokenizer *t, int32_t id,
                     char *out, size_t cap, size_t *n_out);
/* End of the stream: the held bytes (an unfinished character, emitted as they are; at most 3). */
size_t tok_stream_flush(struct tok_stream *s, char out[4]);

#endif
