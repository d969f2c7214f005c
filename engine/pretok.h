/* pretok.h: the text preparation before byte-level BPE in Qwen2-style tokenizers: Unicode NFC
 * normalisation and the Qwen2 pre-tokenizer split (the regex, implemented by hand). */
#ifndef MOESERVE_PRETOK_H
#define MOESERVE_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NFC of s[0..len): *out is a malloc'd copy, or NULL when s is pure ASCII (always NFC).
 * Bytes that are not UTF-8 are kept as they are and the valid runs between them normalised.
 * Returns false only on allocation failure. */
bool pretok_nfc(const char *s, size_t len, char **out, size_t *out_len);

/* Reusable buffers for pretok_split (one per call chain; not shared between threads). */
struct pretok_scratch {
    uint8_t *cls;      /* per character: class bits */
    uint32_t *off;     /* byte offset of each character, plus the end */
    size_t cap;
};

void pretok_scratch_free(struct pretok_scratch *s);

/* Splits s[0..len) into the pieces the Qwen2 pattern
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+
 * finds (leftmost-first alternatives, as Oniguruma runs it), calling emit for each piece in
 * order. Bytes that are not valid UTF-8 count as single non-letter, non-space characters.
 * Returns false when emit does or allocation fails. */
bool pretok_split(struct pretok_scratch *scr, const char *s, size_t len,
                  bool (*emit)(void *ctx, size_t start, size_t end), void *ctx);

#endif
