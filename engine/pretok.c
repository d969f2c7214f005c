/* pretok.c: NFC normalisation (utf8proc) and the Qwen2 pre-tokenizer split, a hand-written
 * matcher equivalent to the regex that Hugging Face's tokenizers runs with Oniguruma. */
#include "engine/pretok.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

enum {
    CLS_OTHER = 0,
    CLS_L = 1,      /* \p{L} */
    CLS_N = 2,      /* \p{N} */
    CLS_WS = 4,     /* \s */
    CLS_NL = 8,     /* \r or \n (also CLS_WS) */
};

static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* NFC of text holding bytes that are not UTF-8 (Hugging Face cannot take such input at all):
 * each valid run is normalised on its own, the stray bytes are kept as they are. */
static bool nfc_runs(const char *s, size_t len, char **out, size_t *out_len)
{
    /* NFC can grow text (up to 3x for some scripts); grow the buffer as needed */
    size_t cap = len + 16, o = 0, i = 0;
    char *buf = malloc(cap);
    if (!buf)
        return false;
    while (i < len) {
        size_t j = i;
        uint32_t cp;
        size_t k;
        while (j < len && (k = utf8_decode((const unsigned char *)s + j, len - j, &cp)) != 0)
            j += k;
        utf8proc_uint8_t *run = NULL;
        utf8proc_ssize_t rn = 0;
        if (j > i) {
            rn = utf8proc_map((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(j - i), &run,
                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (rn < 0) {
                free(buf);
                return false;
            }
        }
        size_t need = o + (size_t)rn + (j < len ? 1 : 0);
        if (need > cap) {
            cap = 2 * need;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(run);
                free(buf);
                return false;
            }
            buf = nb;
        }
        if (rn)
            memcpy(buf + o, run, (size_t)rn);
        o += (size_t)rn;
        free(run);
        if (j < len)
            buf[o++] = s[j++];            /* the stray byte */
        i = j;
    }
    *out = buf;
    *out_len = o;
    return true;
}

bool pretok_nfc(const char *s, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    if (i == len)
        return true;            /* ASCII is always NFC */
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n == UTF8PROC_ERROR_NOMEM)
        return false;
    if (n < 0) {
        free(dst);
        return nfc_runs(s, len, out, out_len);
    }
    *out = (char *)dst;
    *out_len = (size_t)n;
    return true;
}

void pretok_scratch_free(struct pretok_scratch *s)
{
    free(s->cls);
    free(s->off);
    memset(s, 0, sizeof *s);
}

/* Length of the valid UTF-8 sequence at s (1-4) and its code point, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2; v = c & 0x1F; min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3; v = c & 0x0F; min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4; v = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return need;
}

static uint8_t ascii_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return CLS_L;
    if (c >= '0' && c <= '9')
        return CLS_N;
    if (c == '\r' || c == '\n')
        return CLS_WS | CLS_NL;
    if ((c >= 0x09 && c <= 0x0D) || c == ' ')
        return CLS_WS;
    return CLS_OTHER;
}

/* \s as Oniguruma defines it for Unicode: the White_Space property, which is exactly the
 * separators Zs/Zl/Zp plus the controls 0x09-0x0D and 0x85. */
static uint8_t unicode_class(uint32_t cp)
{
    if (cp < 0x80)
        return ascii_class((unsigned char)cp);
    if (cp == 0x85)
        return CLS_WS;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CLS_L;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CLS_N;
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
        return CLS_WS;
    default:
        return CLS_OTHER;
    }
}

/* Classifies every character of s; returns the character count, or SIZE_MAX on allocation failure. */
static size_t classify(struct pretok_scratch *scr, const unsigned char *s, size_t len)
{
    if (len + 1 > scr->cap) {
        size_t cap = len + 1 > 2 * scr->cap ? len + 1 : 2 * scr->cap;
        uint8_t *cls = realloc(scr->cls, cap);
        if (!cls)
            return SIZE_MAX;
        scr->cls = cls;
        uint32_t *off = realloc(scr->off, cap * sizeof *off);
        if (!off)
            return SIZE_MAX;
        scr->off = off;
        scr->cap = cap;
    }
    size_t n = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k;
        if (s[i] < 0x80) {
            scr->cls[n] = ascii_class(s[i]);
            k = 1;
        } else if ((k = utf8_decode(s + i, len - i, &cp)) != 0) {
            scr->cls[n] = unicode_class(cp);
        } else {
            scr->cls[n] = CLS_OTHER;      /* a stray byte */
            k = 1;
        }
        scr->off[n++] = (uint32_t)i;
        i += k;
    }
    scr->off[n] = (uint32_t)len;
    return n;
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at byte p: the match length in bytes, or 0. Case folding also
 * takes U+017F LATIN SMALL LETTER LONG S for s, as Oniguruma's case-insensitive match does. */
static size_t match_contraction(const unsigned char *s, size_t len, size_t p)
{
    if (s[p] != '\'' || p + 1 >= len)
        return 0;
    unsigned char a = ascii_lower(s[p + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (s[p + 1] == 0xC5 && p + 2 < len && s[p + 2] == 0xBF)
        return 3;
    if (p + 2 >= len)
        return 0;
    unsigned char b = ascii_lower(s[p + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* The end (character index) of the piece starting at character i. */
static size_t match_piece(const uint8_t *cls, const uint32_t *off, size_t n,
                          const unsigned char *s, size_t len, size_t i)
{
    /* 1: contractions; every alternative byte is ASCII, so characters = bytes here */
    size_t k = match_contraction(s, len, off[i]);
    if (k) {
        size_t j = i + 1;
        while (j < n && off[j] < off[i] + k)
            j++;
        return j;
    }
    uint8_t c = cls[i];
    /* 2: [^\r\n\p{L}\p{N}]?\p{L}+ */
    size_t j = i;
    if (!(c & (CLS_L | CLS_N | CLS_NL)) && i + 1 < n && (cls[i + 1] & CLS_L))
        j = i + 1;
    if (cls[j] & CLS_L) {
        while (j < n && (cls[j] & CLS_L))
            j++;
        return j;
    }
    /* 3: \p{N}, one character */
    if (c & CLS_N)
        return i + 1;
    /* 4:  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = i;
    if (s[off[i]] == ' ' && i + 1 < n)
        j = i + 1;
    if (cls[j] == CLS_OTHER) {
        while (j < n && cls[j] == CLS_OTHER)
            j++;
        while (j < n && (cls[j] & CLS_NL))
            j++;
        return j;
    }
    /* Only whitespace is left (c & CLS_WS). Find the run and its last line break. */
    size_t end = i, last_nl = SIZE_MAX;
    while (end < n && (cls[end] & CLS_WS)) {
        if (cls[end] & CLS_NL)
            last_nl = end;
        end++;
    }
    /* 5: \s*[\r\n]+ backtracks to the last line break of the run */
    if (last_nl != SIZE_MAX)
        return last_nl + 1;
    /* 6: \s+(?!\S): the whole run at the end of text, else all but its last character */
    if (end == n)
        return end;
    if (end - 1 > i)
        return end - 1;
    /* 7: \s+ */
    return end;
}

bool pretok_split(struct pretok_scratch *scr, const char *text, size_t len,
                  bool (*emit)(void *ctx, size_t start, size_t end), void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    if (len > UINT32_MAX - 1)
        return false;
    size_t n = classify(scr, s, len);
    if (n == SIZE_MAX)
        return false;
    size_t i = 0;
    while (i < n) {
        size_t j = match_piece(scr->cls, scr->off, n, s, len, i);
        if (!emit(ctx, scr->off[i], scr->off[j]))
            return false;
        i = j;
    }
    return true;
}
