/* tokenizer.c: loading and validating the tokenizer.ggml.* metadata into lookup tables (token
 * text hash, merge ranks, byte tokens, added tokens), and the simple accessors. */
#include "engine/tok_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MODEL  "tokenizer.ggml.model"
#define KEY_PRE    "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES  "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

uint64_t tok_hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;        /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_pair(uint64_t key)
{
    key = (key ^ (key >> 30)) * 0xbf58476d1ce4e5b9ull;     /* splitmix64's finaliser */
    key = (key ^ (key >> 27)) * 0x94d049bb133111ebull;
    return key ^ (key >> 31);
}

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 bytes for
 * U+0100 onwards in byte order. Returns the byte a code point stands for, or -1. */
static int unicode_to_byte(uint32_t cp)
{
    if (cp < 256) {
        bool printable = (cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || cp >= 174;
        return printable ? (int)cp : -1;
    }
    /* the 68 others, in order: 0-32, 127-160, 173 */
    uint32_t k = cp - 256;
    if (k < 33)
        return (int)k;
    if (k < 67)
        return (int)(127 + k - 33);
    return k == 67 ? 173 : -1;
}

/* Decodes one UTF-8 character (valid sequences only); returns its length or 0. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t need = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!need || need > n || s[0] > 0xF4)
        return 0;
    uint32_t v = s[0] & (0x7F >> need);
    for (size_t k = 1; k < need; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    *cp = v;
    return need;
}

/* A byte-level token's bytes; as Hugging Face's decoder does, a token with any character
 * outside the byte alphabet is taken as its raw text. Writes into out (>= n bytes). */
static size_t byte_level_decode(const char *s, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = utf8_next((const unsigned char *)s + i, n - i, &cp);
        int b = k ? unicode_to_byte(cp) : -1;
        if (b < 0) {
            memcpy(out, s, n);
            return n;
        }
        out[o++] = (char)b;
        i += k;
    }
    return o;
}

static const char *tok_text(const struct tokenizer *t, int32_t id, size_t *len)
{
    *len = (size_t)(t->text_off[id + 1] - t->text_off[id] - 1);
    return t->text + t->text_off[id];
}

int32_t tok_find(const struct tokenizer *t, const char *text, size_t len)
{
    for (uint64_t h = tok_hash_bytes(text, len) & t->by_text_mask;; h = (h + 1) & t->by_text_mask) {
        uint32_t id = t->by_text[h];
        if (id == UINT32_MAX)
            return -1;
        size_t l;
        const char *s = tok_text(t, (int32_t)id, &l);
        if (l == len && memcmp(s, text, len) == 0)
            return (int32_t)id;
    }
}

bool tok_merge_lookup(const struct tokenizer *t, int32_t left, int32_t right, uint32_t *rank,
                      int32_t *merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint64_t h = hash_pair(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        const struct tok_merge_slot *s = &t->merges[h];
        if (s->key == key) {
            *rank = s->rank;
            *merged = s->merged;
            return true;
        }
        if (s->key == UINT64_MAX)
            return false;
    }
}

static uint64_t table_size(uint64_t n)
{
    uint64_t size = 16;
    while (size < 2 * n)
        size <<= 1;
    return size;
}

/* Copies token texts, checks them, decodes their bytes and builds the text hash. */
static bool load_tokens(struct tokenizer *t, const struct gguf_array *toks, char *err, size_t errlen)
{
    uint64_t total = 0;
    for (uint64_t i = 0; i < toks->count; i++)
        total += toks->strs[i].len + 1;
    t->text = malloc(total ? total : 1);
    t->bytes = malloc(total ? total : 1);
    t->text_off = malloc((toks->count + 1) * sizeof *t->text_off);
    t->bytes_off = malloc((toks->count + 1) * sizeof *t->bytes_off);
    t->by_text_mask = table_size(toks->count) - 1;
    t->by_text = malloc((t->by_text_mask + 1) * sizeof *t->by_text);
    if (!t->text || !t->bytes || !t->text_off || !t->bytes_off || !t->by_text)
        return fail(err, errlen, "%s: out of memory for %llu tokens", KEY_TOKENS,
                    (unsigned long long)toks->count);
    memset(t->by_text, 0xFF, (t->by_text_mask + 1) * sizeof *t->by_text);
    uint64_t to = 0, bo = 0;
    for (uint64_t i = 0; i < toks->count; i++) {
        const struct gguf_str *s = &toks->strs[i];
        uint8_t type = t->type[i];
        if (s->len == 0 && type != TOK_TYPE_UNUSED)
            return fail(err, errlen, "%s[%llu] is empty", KEY_TOKENS, (unsigned long long)i);
        if (memchr(s->ptr, 0, s->len))
            return fail(err, errlen, "%s[%llu] contains a NUL byte", KEY_TOKENS, (unsigned long long)i);
        t->text_off[i] = to;
        memcpy(t->text + to, s->ptr, s->len);
        t->text[to + s->len] = '\0';
        to += s->len + 1;
        t->bytes_off[i] = bo;
        if (type == TOK_TYPE_CONTROL || type == TOK_TYPE_USER_DEFINED) {
            memcpy(t->bytes + bo, s->ptr, s->len);
            bo += s->len;
        } else if (type != TOK_TYPE_UNUSED) {
            bo += byte_level_decode(s->ptr, s->len, t->bytes + bo);
        }
        size_t blen = (size_t)(bo - t->bytes_off[i]);
        if (blen > t->max_bytes)
            t->max_bytes = blen;
        /* hash by text; duplicates would make lookups ambiguous */
        uint64_t h = tok_hash_bytes(s->ptr, s->len) & t->by_text_mask;
        for (;; h = (h + 1) & t->by_text_mask) {
            uint32_t other = t->by_text[h];
            if (other == UINT32_MAX) {
                t->by_text[h] = (uint32_t)i;
                break;
            }
            size_t l;
            const char *o = tok_text(t, (int32_t)other, &l);
            if (l == s->len && memcmp(o, s->ptr, l) == 0)
                return fail(err, errlen, "%s[%llu] \"%.40s\" duplicates token %u", KEY_TOKENS,
                            (unsigned long long)i, t->text + t->text_off[i], other);
        }
    }
    t->text_off[toks->count] = to;
    t->bytes_off[toks->count] = bo;
    return true;
}

static bool load_types(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    t->type = malloc(t->n_vocab ? t->n_vocab : 1);
    if (!t->type)
        return fail(err, errlen, "%s: out of memory", KEY_TYPES);
    memset(t->type, TOK_TYPE_NORMAL, t->n_vocab);
    const struct gguf_kv *kv = gguf_find_kv(f, KEY_TYPES);
    if (!kv)
        return true;                /* llama.cpp's default: every token normal */
    const struct gguf_array *a = &kv->val.a;
    if (kv->val.type != GGUF_ARRAY || (a->elem_type != GGUF_I32 && a->elem_type != GGUF_U32 &&
                                        a->elem_type != GGUF_I8 && a->elem_type != GGUF_U8))
        return fail(err, errlen, "%s is not an integer array", KEY_TYPES);
    if (a->count != t->n_vocab)
        return fail(err, errlen, "%s has %llu entries, %s has %u", KEY_TYPES,
                    (unsigned long long)a->count, KEY_TOKENS, t->n_vocab);
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        int64_t v = gguf_arr_i64(a, i);
        if (v < TOK_TYPE_NORMAL || v > TOK_TYPE_BYTE)
            return fail(err, errlen, "%s[%u] = %lld is not a token type (1-6)", KEY_TYPES, i,
                        (long long)v);
        t->type[i] = (uint8_t)v;
    }
    return true;
}

static bool add_merge(struct tokenizer *t, uint64_t key, uint32_t rank, int32_t merged)
{
    for (uint64_t h = hash_pair(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        struct tok_merge_slot *s = &t->merges[h];
        if (s->key == key)
            return false;            /* duplicate: the first (better) rank stays */
        if (s->key == UINT64_MAX) {
            s->key = key;
            s->rank = rank;
            s->merged = merged;
            return true;
        }
    }
}

static bool load_merges(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    const struct gguf_array *a = gguf_get_arr(f, KEY_MERGES, GGUF_STRING);
    if (!a)
        return fail(err, errlen, "%s is missing or not a string array", KEY_MERGES);
    if (a->count >= UINT32_MAX)
        return fail(err, errlen, "%s: too many merges", KEY_MERGES);
    t->merge_mask = table_size(a->count) - 1;
    t->merges = malloc((t->merge_mask + 1) * sizeof *t->merges);
    /* a merged text longer than every token's cannot name a token */
    size_t max_text = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        if (t->text_off[i + 1] - t->text_off[i] - 1 > max_text)
            max_text = (size_t)(t->text_off[i + 1] - t->text_off[i] - 1);
    char *buf = malloc(max_text + 1);
    if (!t->merges || !buf) {
        free(buf);
        return fail(err, errlen, "%s: out of memory", KEY_MERGES);
    }
    memset(t->merges, 0xFF, (t->merge_mask + 1) * sizeof *t->merges);
    bool ok = true;
    for (uint64_t i = 0; i < a->count && ok; i++) {
        const struct gguf_str *s = &a->strs[i];
        const char *sp = s->len > 1 ? memchr(s->ptr + 1, ' ', s->len - 1) : NULL;
        if (!sp) {
            ok = fail(err, errlen, "%s[%llu] \"%.*s\" is not \"left right\"", KEY_MERGES,
                      (unsigned long long)i, (int)(s->len > 60 ? 60 : s->len), s->ptr);
            break;
        }
        size_t ll = (size_t)(sp - s->ptr), rl = s->len - ll - 1;
        int32_t left = tok_find(t, s->ptr, ll), right = tok_find(t, sp + 1, rl);
        int32_t merged = -1;
        if (left >= 0 && right >= 0 && ll + rl <= max_text) {
            memcpy(buf, s->ptr, ll);
            memcpy(buf + ll, sp + 1, rl);
            merged = tok_find(t, buf, ll + rl);
        }
        if (left < 0 || right < 0 || merged < 0) {
            ok = fail(err, errlen, "%s[%llu] \"%.*s\": %s is not in %s", KEY_MERGES,
                      (unsigned long long)i, (int)(s->len > 60 ? 60 : s->len), s->ptr,
                      left < 0 ? "its left part" : right < 0 ? "its right part" : "the merged token",
                      KEY_TOKENS);
            break;
        }
        add_merge(t, (uint64_t)(uint32_t)left << 32 | (uint32_t)right, (uint32_t)i, merged);
    }
    free(buf);
    return ok;
}

/* The single-byte tokens every input byte starts as. */
static bool load_byte_tokens(struct tokenizer *t, char *err, size_t errlen)
{
    uint32_t cp_of_byte[256];
    for (uint32_t cp = 0; cp < 256 + 68; cp++)
        if (unicode_to_byte(cp) >= 0)
            cp_of_byte[unicode_to_byte(cp)] = cp;
    for (int b = 0; b < 256; b++) {
        char u[2];
        uint32_t cp = cp_of_byte[b];
        size_t n = 1;
        if (cp < 0x80) {
            u[0] = (char)cp;
        } else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            n = 2;
        }
        t->byte_token[b] = tok_find(t, u, n);
        if (t->byte_token[b] < 0)
            return fail(err, errlen, "%s has no token for byte 0x%02x (\"%.*s\")", KEY_TOKENS, b,
                        (int)n, u);
    }
    return true;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const struct tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint64_t lx = t->bytes_off[x + 1] - t->bytes_off[x], ly = t->bytes_off[y + 1] - t->bytes_off[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : 1;
}

static bool load_special(struct tokenizer *t, char *err, size_t errlen)
{
    size_t ns = 0, nc = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        ns += t->type[i] == TOK_TYPE_CONTROL || t->type[i] == TOK_TYPE_USER_DEFINED;
        nc += t->type[i] == TOK_TYPE_CONTROL;
    }
    t->special = malloc((ns + 1) * sizeof *t->special);
    t->control = malloc((nc + 1) * sizeof *t->control);
    if (!t->special || !t->control)
        return fail(err, errlen, "%s: out of memory", KEY_TYPES);
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        if (t->type[i] == TOK_TYPE_CONTROL || t->type[i] == TOK_TYPE_USER_DEFINED) {
            t->special[t->n_special++] = (int32_t)i;
            t->special_first[(unsigned char)t->bytes[t->bytes_off[i]]] = true;
        }
        if (t->type[i] == TOK_TYPE_CONTROL)
            t->control[t->n_control++] = (int32_t)i;
    }
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    return true;
}

/* An optional token id key: absent leaves *out at -1; present must be an id in range. */
static bool load_id(const struct gguf_file *f, const char *key, uint32_t n_vocab, int32_t *out,
                    char *err, size_t errlen)
{
    *out = -1;
    if (!gguf_find_kv(f, key))
        return true;
    uint64_t v;
    if (!gguf_get_u64(f, key, &v))
        return fail(err, errlen, "%s is not a non-negative integer", key);
    if (v >= n_vocab)
        return fail(err, errlen, "%s = %llu is out of range (vocabulary of %u)", key,
                    (unsigned long long)v, n_vocab);
    *out = (int32_t)v;
    return true;
}

static bool load_header(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    char *model = gguf_get_str_dup(f, KEY_MODEL);
    bool ok = model && strcmp(model, "gpt2") == 0;
    if (!ok)
        fail(err, errlen, "%s is %s%s%s; only \"gpt2\" (byte-level BPE) is supported", KEY_MODEL,
             model ? "\"" : "missing", model ? model : "", model ? "\"" : "");
    free(model);
    if (!ok)
        return false;
    char *pre = gguf_get_str_dup(f, KEY_PRE);
    ok = pre && strcmp(pre, "qwen2") == 0;
    if (!ok)
        fail(err, errlen, "%s is %s%s%s; only \"qwen2\" is supported", KEY_PRE,
             pre ? "\"" : "missing", pre ? pre : "", pre ? "\"" : "");
    free(pre);
    return ok;
}

static void add_eog(struct tokenizer *t, int32_t id)
{
    if (id < 0 || t->n_eog == sizeof t->eog / sizeof *t->eog)
        return;
    size_t i = 0;
    while (i < t->n_eog && t->eog[i] < id)
        i++;
    if (i < t->n_eog && t->eog[i] == id)
        return;
    memmove(t->eog + i + 1, t->eog + i, (t->n_eog - i) * sizeof *t->eog);
    t->eog[i] = id;
    t->n_eog++;
}

/* The end-of-generation set: the ids the metadata names, then tokens recognised by their text
 * (llama.cpp's rule; the FIM pad/repo/separator tokens end a completion too). */
static bool load_eog(struct tokenizer *t, const struct gguf_file *f, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
        "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id",
        "tokenizer.ggml.fim_sep_token_id",
    };
    static const char *const names[] = {
        "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
        "<EOT>", "<|end_of_text|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    };
    add_eog(t, t->eos);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        int32_t id;
        if (!load_id(f, keys[i], t->n_vocab, &id, err, errlen))
            return false;
        add_eog(t, id);
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        add_eog(t, tok_find(t, names[i], strlen(names[i])));
    return true;
}

struct tokenizer *tok_load_gguf(const struct gguf_file *f, char *err, size_t errlen)
{
    struct tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        fail(err, errlen, "tokenizer: out of memory");
        return NULL;
    }
    const struct gguf_array *toks = gguf_get_arr(f, KEY_TOKENS, GGUF_STRING);
    bool ok = load_header(t, f, err, errlen);
    if (ok && !toks)
        ok = fail(err, errlen, "%s is missing or not a string array", KEY_TOKENS);
    if (ok && (toks->count < 256 || toks->count >= INT32_MAX))
        ok = fail(err, errlen, "%s has %llu tokens (need 256 to 2^31-1)", KEY_TOKENS,
                  (unsigned long long)toks->count);
    if (ok) {
        t->n_vocab = (uint32_t)toks->count;
        ok = load_types(t, f, err, errlen) && load_tokens(t, toks, err, errlen) &&
             load_byte_tokens(t, err, errlen) && load_merges(t, f, err, errlen) &&
             load_special(t, err, errlen) &&
             load_id(f, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err, errlen) &&
             load_id(f, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err, errlen) &&
             load_id(f, "tokenizer.ggml.padding_token_id", t->n_vocab, &t->pad, err, errlen) &&
             load_eog(t, f, err, errlen);
    }
    if (ok && gguf_find_kv(f, "tokenizer.ggml.add_bos_token") &&
        !gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &t->add_bos))
        ok = fail(err, errlen, "tokenizer.ggml.add_bos_token is not a bool");
    if (ok && t->add_bos && t->bos < 0)
        ok = fail(err, errlen, "tokenizer.ggml.add_bos_token is true but there is no bos_token_id");
    if (!ok) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_free(struct tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->text_off);
    free(t->bytes);
    free(t->bytes_off);
    free(t->type);
    free(t->by_text);
    free(t->merges);
    free(t->special);
    free(t->control);
    free(t);
}

uint32_t tok_vocab_size(const struct tokenizer *t) { return t->n_vocab; }
int32_t tok_eos(const struct tokenizer *t) { return t->eos; }
int32_t tok_bos(const struct tokenizer *t) { return t->bos; }
int32_t tok_pad(const struct tokenizer *t) { return t->pad; }
bool tok_add_bos(const struct tokenizer *t) { return t->add_bos; }
size_t tok_max_token_bytes(const struct tokenizer *t) { return t->max_bytes; }

enum tok_type tok_token_type(const struct tokenizer *t, int32_t id)
{
    return id >= 0 && (uint32_t)id < t->n_vocab ? (enum tok_type)t->type[id] : TOK_TYPE_UNDEFINED;
}

bool tok_is_control(const struct tokenizer *t, int32_t id)
{
    return tok_token_type(t, id) == TOK_TYPE_CONTROL;
}

const int32_t *tok_control_tokens(const struct tokenizer *t, size_t *n)
{
    *n = t->n_control;
    return t->control;
}

bool tok_is_eog(const struct tokenizer *t, int32_t id)
{
    for (size_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return true;
    return false;
}

const int32_t *tok_eog_tokens(const struct tokenizer *t, size_t *n)
{
    *n = t->n_eog;
    return t->eog;
}

const char *tok_token_text(const struct tokenizer *t, int32_t id)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab)
        return NULL;
    return t->text + t->text_off[id];
}

const char *tok_token_bytes(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    return tok_bytes_of(t, id, len);
}
