/* test_tokenizer.c: the Qwen tokenizer against Hugging Face's ids on the real Qwen3 vocabulary,
 * llama.cpp's tokens for the tiny models, round trips, streaming, and bad metadata. */
#include "engine/gguf.h"
#include "engine/pretok.h"
#include "engine/synth_vocab.h"
#include "engine/tokenizer.h"
#include "tests/test.h"

#include <glob.h>
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Whether s[0..n) is valid UTF-8 (complete characters only). */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t need = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                    : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!need || i + need > n)
            return false;
        for (size_t k = 1; k < need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        i += need;
    }
    return true;
}

static bool ids_equal(const int32_t *a, size_t na, const json_t *arr)
{
    if (na != json_array_size(arr))
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i] != json_integer_value(json_array_get(arr, i)))
            return false;
    return true;
}

static void print_ids(const char *label, const int32_t *a, size_t n)
{
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, " %d", a[i]);
    fputc('\n', stderr);
}

/* Streams ids through tok_stream and checks every piece is whole characters and the pieces
 * add up to the plain decode. Returns how many tokens on their own were not valid UTF-8. */
static size_t check_stream(const struct tokenizer *t, const int32_t *ids, size_t n, const char *full,
                           size_t full_len)
{
    struct tok_stream st;
    tok_stream_init(&st, false);
    size_t cap = tok_stream_cap(t), at = 0, partial = 0;
    char *buf = malloc(cap), *all = malloc(full_len + 8);
    bool pieces_ok = true;
    for (size_t i = 0; i < n; i++) {
        size_t len, got;
        const char *b = tok_token_bytes(t, ids[i], &len);
        partial += !valid_utf8((const unsigned char *)b, len);
        CHECK(tok_stream_push(&st, t, ids[i], buf, cap, &got), "push %zu", i);
        pieces_ok &= valid_utf8((const unsigned char *)buf, got) || !valid_utf8((const unsigned char *)full, full_len);
        if (at + got <= full_len + 4)
            memcpy(all + at, buf, got);
        at += got;
    }
    char tail[4];
    size_t nt = tok_stream_flush(&st, tail);
    CHECK(nt == 0, "valid text leaves nothing held (%zu)", nt);
    if (at + nt <= full_len + 4)
        memcpy(all + at, tail, nt);
    at += nt;
    CHECK(pieces_ok, "every streamed piece is whole UTF-8 characters");
    CHECK(at == full_len && memcmp(all, full, at) == 0, "stream adds up to the decode");
    free(buf);
    free(all);
    return partial;
}

static void test_cases(const struct tokenizer *t)
{
    char path[512];
    json_error_t jerr;
    FILE *fp = fopen(testdata_path(path, sizeof path, "tokenizer-cases.jsonl"), "r");
    CHECK(fp != NULL, "open %s", path);
    if (!fp)
        return;
    char *line = NULL;
    size_t lcap = 0, total = 0, matched = 0, partial_tokens = 0;
    while (getline(&line, &lcap, fp) > 0) {
        json_t *c = json_loads(line, 0, &jerr);
        CHECK(c != NULL, "case parses: %s", jerr.text);
        if (!c)
            continue;
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t tlen = json_string_length(json_object_get(c, "text"));
        size_t n;
        int32_t *ids = tok_encode(t, text, tlen, true, &n);
        total++;
        if (ids && ids_equal(ids, n, json_object_get(c, "ids"))) {
            matched++;
        } else {
            fprintf(stderr, "MISMATCH %.60s\n", text);
            print_ids("ours", ids, n);
        }
        /* round trip: the decode is the NFC form of the text */
        char *nfc;
        size_t nfc_len;
        CHECK(pretok_nfc(text, tlen, &nfc, &nfc_len), "nfc");
        const char *want = nfc ? nfc : text;
        size_t want_len = nfc ? nfc_len : tlen;
        size_t dlen;
        char *dec = tok_decode(t, ids, n, false, &dlen);
        CHECK(dec && dlen == want_len && memcmp(dec, want, dlen) == 0, "round trip of %.40s", text);
        if (dec)
            partial_tokens += check_stream(t, ids, n, dec, dlen);
        free(dec);
        free(nfc);
        free(ids);
        json_decref(c);
    }
    free(line);
    fclose(fp);
    fprintf(stderr, "tokenizer-cases: %zu / %zu match HF\n", matched, total);
    CHECK(total == 149 && matched == total, "%zu of %zu cases match", matched, total);
    CHECK(partial_tokens > 10, "the stream test saw tokens ending inside a character (%zu)",
          partial_tokens);
}

static void test_specials(const struct tokenizer *t)
{
    CHECK(tok_vocab_size(t) == 151936, "n_vocab %u", tok_vocab_size(t));
    CHECK(tok_eos(t) == 151645, "eos %d", tok_eos(t));
    CHECK(tok_pad(t) == 151643 && tok_bos(t) == 151643 && !tok_add_bos(t), "bos/pad");
    CHECK(tok_find(t, "<|fim_prefix|>", 14) == 151659, "find fim_prefix");
    CHECK(tok_find(t, "<|im_start|>", 12) == 151644, "find im_start");
    CHECK(tok_find(t, "Ġhello", strlen("Ġhello")) >= 0, "find a normal token by its text");
    CHECK(tok_find(t, "<|nope|>", 8) == -1, "absent token");
    size_t nc;
    const int32_t *ctl = tok_control_tokens(t, &nc);
    CHECK(nc == 14 && ctl[0] == 151643 && ctl[13] == 151656, "14 control tokens (%zu)", nc);
    size_t ne;
    const int32_t *eog = tok_eog_tokens(t, &ne);
    CHECK(ne == 5 && eog[0] == 151643 && eog[1] == 151645 && eog[2] == 151662 && eog[3] == 151663 &&
          eog[4] == 151664, "eog: endoftext, im_end, fim_pad, repo_name, file_sep (%zu)", ne);
    CHECK(tok_is_eog(t, 151645) && !tok_is_eog(t, 151644), "is_eog");
    CHECK(tok_is_control(t, 151644) && !tok_is_control(t, 151667) && !tok_is_control(t, 100),
          "is_control");

    const char *chat = "<|im_start|>user\nhi<|im_end|>";
    size_t n, n2;
    int32_t *with = tok_encode(t, chat, strlen(chat), true, &n);
    int32_t *plain = tok_encode(t, chat, strlen(chat), false, &n2);
    CHECK(with && n > 0 && with[0] == 151644, "special recognised");
    bool any_special = false;
    for (size_t i = 0; plain && i < n2; i++)
        any_special |= plain[i] >= 151643;
    CHECK(plain && !any_special && n2 > n, "parse_special off: ordinary tokens only (%zu)", n2);
    size_t dl;
    char *d = tok_decode(t, plain, n2, true, &dl);
    CHECK(d && strcmp(d, chat) == 0, "plain tokens decode back to the text");
    free(d);
    d = tok_decode(t, with, n, true, &dl);
    CHECK(d && strcmp(d, "user\nhi") == 0, "skip_special drops control tokens: %s", d);
    free(d);
    free(with);
    free(plain);

    /* streaming holds back a split character and flushes an unfinished one at the end */
    int32_t e0 = tok_find(t, "ð", strlen("ð"));        /* byte 0xF0 */
    int32_t e1 = tok_find(t, "Ł", strlen("Ł"));        /* byte 0x9F */
    int32_t e2 = tok_find(t, "ĺ", strlen("ĺ"));        /* byte 0x98 */
    int32_t e3 = tok_find(t, "Ģ", strlen("Ģ"));        /* byte 0x80 (F0 9F 98 80 = U+1F600) */
    CHECK(e0 >= 0 && e1 >= 0 && e2 >= 0 && e3 >= 0, "byte tokens");
    struct tok_stream st;
    tok_stream_init(&st, true);
    char buf[512], tail[4];
    size_t got;
    CHECK(tok_stream_push(&st, t, e0, buf, sizeof buf, &got) && got == 0, "F0 held");
    CHECK(tok_stream_push(&st, t, e1, buf, sizeof buf, &got) && got == 0, "F0 9F held");
    CHECK(tok_stream_push(&st, t, 151644, buf, sizeof buf, &got) && got == 0, "skipped control");
    CHECK(tok_stream_push(&st, t, e2, buf, sizeof buf, &got) && got == 0, "F0 9F 98 held");
    CHECK(tok_stream_push(&st, t, e3, buf, sizeof buf, &got) && got == 4 &&
          memcmp(buf, "\xF0\x9F\x98\x80", 4) == 0, "emoji released whole");
    CHECK(tok_stream_push(&st, t, e0, buf, sizeof buf, &got) && got == 0, "F0 held again");
    CHECK(tok_stream_flush(&st, tail) == 1 && (unsigned char)tail[0] == 0xF0, "flush releases it");
    CHECK(!tok_stream_push(&st, t, 9707, buf, 2, &got), "too small a buffer is refused");
}

static void test_tiny_models(void)
{
    char pattern[512];
    glob_t g;
    testdata_path(pattern, sizeof pattern, "models/*.ref.json");
    CHECK(glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc >= 8, "ref.json files found");
    for (size_t m = 0; m < g.gl_pathc; m++) {
        json_error_t jerr;
        json_t *ref = json_load_file(g.gl_pathv[m], 0, &jerr);
        CHECK(ref != NULL, "%s: %s", g.gl_pathv[m], jerr.text);
        if (!ref)
            continue;
        char gpath[1024], err[512];
        snprintf(gpath, sizeof gpath, "%.*s.gguf", (int)(strlen(g.gl_pathv[m]) - 9), g.gl_pathv[m]);
        struct gguf_file *f = gguf_open(gpath, err, sizeof err);
        CHECK(f != NULL, "%s", err);
        struct tokenizer *t = f ? tok_load_gguf(f, err, sizeof err) : NULL;
        CHECK(t != NULL, "%s: %s", gpath, err);
        json_t *prompts = json_object_get(ref, "prompts");
        for (size_t p = 0; t && p < json_array_size(prompts); p++) {
            json_t *pr = json_array_get(prompts, p);
            json_t *jt = json_object_get(pr, "text");
            size_t n;
            int32_t *ids = tok_encode(t, json_string_value(jt), json_string_length(jt), true, &n);
            CHECK(ids && ids_equal(ids, n, json_object_get(pr, "tokens")), "%s prompt %zu", gpath, p);
            free(ids);
        }
        tok_free(t);
        gguf_close(f);
        json_decref(ref);
    }
    globfree(&g);
}

/* ----------------------------------------------------------- bad metadata --- */

enum breakage { OK, BAD_MODEL, BAD_PRE, NO_TOKENS, TYPES_SHORT, BAD_TYPE, MERGE_UNKNOWN,
                MERGE_RESULT, MERGE_FORMAT, EOS_RANGE, DUP_TOKEN, NO_BYTE, N_BREAKAGE };

/* A small vocabulary: 256 byte tokens, "ab" "abc", two specials; broken as asked. */
static struct tokenizer *small_vocab(enum breakage b, char *err, size_t errlen)
{
    static char names[256][4];
    const char *toks[262];
    int32_t types[262];
    size_t n = 0;
    for (int c = 0; c < 256; c++) {
        int cp = c;
        bool printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
        if (!printable)
            cp = 256 + (c < 33 ? c : c < 161 ? 33 + c - 127 : 67);
        if (cp < 0x80) {
            names[c][0] = (char)cp;
            names[c][1] = 0;
        } else {
            names[c][0] = (char)(0xC0 | (cp >> 6));
            names[c][1] = (char)(0x80 | (cp & 0x3F));
            names[c][2] = 0;
        }
        toks[n] = names[c];
        types[n++] = 1;
    }
    if (b == NO_BYTE)
        toks['q'] = "qq";
    if (b == DUP_TOKEN)
        toks['q'] = "r";
    toks[n] = "ab"; types[n++] = 1;
    toks[n] = "abc"; types[n++] = 1;
    toks[n] = "<|im_start|>"; types[n++] = 3;
    toks[n] = "<think>"; types[n++] = 4;
    if (b == BAD_TYPE)
        types[5] = 9;
    const char *merges[] = { "a b", b == MERGE_UNKNOWN ? "ab zz" : b == MERGE_RESULT ? "b c"
                                  : b == MERGE_FORMAT ? "abc" : "ab c" };
    struct gguf_writer *w = gguf_w_new();
    gguf_w_str(w, "tokenizer.ggml.model", b == BAD_MODEL ? "llama" : "gpt2");
    gguf_w_str(w, "tokenizer.ggml.pre", b == BAD_PRE ? "llama3" : "qwen2");
    if (b != NO_TOKENS)
        gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, n);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, b == TYPES_SHORT ? n - 1 : n);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", b == EOS_RANGE ? 5000 : 258);
    char path[] = "/tmp/moeserve-tok-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    CHECK(gguf_w_write_file(w, path, err, errlen), "%s", err);
    gguf_w_free(w);
    struct gguf_file *f = gguf_open(path, err, errlen);
    CHECK(f != NULL, "%s", err);
    struct tokenizer *t = f ? tok_load_gguf(f, err, errlen) : NULL;
    gguf_close(f);
    unlink(path);
    return t;
}

static void test_bad_metadata(void)
{
    static const char *const expect[N_BREAKAGE] = {
        [BAD_MODEL] = "tokenizer.ggml.model", [BAD_PRE] = "tokenizer.ggml.pre",
        [NO_TOKENS] = "tokenizer.ggml.tokens", [TYPES_SHORT] = "tokenizer.ggml.token_type",
        [BAD_TYPE] = "tokenizer.ggml.token_type[5]", [MERGE_UNKNOWN] = "tokenizer.ggml.merges[1]",
        [MERGE_RESULT] = "merged token", [MERGE_FORMAT] = "tokenizer.ggml.merges[1]",
        [EOS_RANGE] = "tokenizer.ggml.eos_token_id", [DUP_TOKEN] = "duplicates",
        [NO_BYTE] = "no token for byte 0x71",
    };
    char err[512];
    struct tokenizer *t = small_vocab(OK, err, sizeof err);
    CHECK(t != NULL, "the intact small vocabulary loads: %s", err);
    if (t) {
        size_t n;
        int32_t *ids = tok_encode(t, "abc<think>ab<|im_start|>x", 25, true, &n);
        CHECK(ids && n == 5 && ids[0] == 257 && ids[1] == 259 && ids[2] == 256 && ids[3] == 258 &&
              ids[4] == 'x', "small vocabulary encodes (%zu)", n);
        free(ids);
        tok_free(t);
    }
    for (int b = 1; b < N_BREAKAGE; b++) {
        err[0] = 0;
        t = small_vocab((enum breakage)b, err, sizeof err);
        CHECK(t == NULL && strstr(err, expect[b]) != NULL, "breakage %d: \"%s\"", b, err);
        tok_free(t);
    }
}

/* The synthetic models' vocabulary (engine/synth_vocab.c) loads and works. */
static void test_synth_vocab(void)
{
    char err[512], path[] = "/tmp/moeserve-tokv-XXXXXX";
    struct gguf_writer *w = gguf_w_new();
    CHECK(w && synth_vocab_write(w, synth_vocab_min_size() + 100), "synth vocab written");
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    CHECK(gguf_w_write_file(w, path, err, sizeof err), "%s", err);
    gguf_w_free(w);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    struct tokenizer *t = f ? tok_load_gguf(f, err, sizeof err) : NULL;
    CHECK(t != NULL, "synth vocab loads: %s", err);
    if (t) {
        static const char text[] = "<|im_start|>user\nhello world, return the value<|im_end|>";
        size_t n, dl;
        int32_t *ids = tok_encode(t, text, sizeof text - 1, true, &n);
        char *d = ids ? tok_decode(t, ids, n, false, &dl) : NULL;
        CHECK(d && strcmp(d, text) == 0 && ids[0] == tok_find(t, "<|im_start|>", 12),
              "synth vocab round trip");
        /* its merges are built word by word without regard to rank order, so not every word
         * comes out whole; but merging happens: fewer tokens than the 34 plain bytes + 2 */
        CHECK(n < 34 + 2, "synth merges apply (%zu tokens)", n);
        free(d);
        free(ids);
    }
    tok_free(t);
    gguf_close(f);
    unlink(path);
}

/* Random strings mixing ASCII, multi-byte characters, combining marks, specials and stray bytes:
 * decoding gives back the NFC form, byte for byte. */
static void test_random_round_trips(const struct tokenizer *t)
{
    static const char *const bits[] = {
        "a", "Z", "7", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "\xc3\xa9", "e\xcc\x81",
        "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xc2\xa0", "\xe2\x80\xa8", "<|im_start|>", "<think>",
        "<|im", "\xff", "\xc3", "\xe2\x82", ".", "->", "{", "123", "\xd9\xa3", "\xe2\x85\xa7",
        "\xcc\x88", "\x00", "\xef\xbb\xbf", "\xc2\x85",
    };
    unsigned k = 7;
    size_t failures = 0;
    for (int round = 0; round < 3000; round++) {
        char text[512];
        size_t len = 0;
        k = k * 1103515245u + 12345u;
        size_t parts = (k >> 16) % 24;
        for (size_t p = 0; p < parts; p++) {
            k = k * 1103515245u + 12345u;
            const char *b = bits[(k >> 16) % (sizeof bits / sizeof *bits)];
            size_t bl = b == bits[29] ? 1 : strlen(b);    /* bits[29] is a NUL byte */
            memcpy(text + len, b, bl);
            len += bl;
        }
        bool special = (k >> 9) & 1;
        size_t n, dl;
        int32_t *ids = tok_encode(t, text, len, special, &n);
        char *d = ids ? tok_decode(t, ids, n, false, &dl) : NULL;
        char *nfc;
        size_t nfc_len;
        bool ok = pretok_nfc(text, len, &nfc, &nfc_len);
        const char *want = nfc ? nfc : text;
        size_t want_len = nfc ? nfc_len : len;
        if (!ok || !d || dl != want_len || memcmp(d, want, dl) != 0)
            failures++;
        for (size_t i = 0; ids && !special && i < n; i++)
            if (tok_token_type(t, ids[i]) != TOK_TYPE_NORMAL)
                failures++;
        free(nfc);
        free(d);
        free(ids);
    }
    CHECK(failures == 0, "%zu random round trips failed", failures);
}

/* ---------------------------------------------------------------- timing --- */

/* A random identifier from syllables, so that words vary as in real code. */
static size_t random_ident(char *out, unsigned *k)
{
    static const char *const syl[] = { "get", "set", "node", "buf", "len", "parse", "item", "count",
                                       "tmp", "ctx", "hash", "key", "Map", "List", "idx", "_",
                                       "value", "Str", "ptr", "next", "2", "x", "alloc", "err" };
    size_t n = 0, parts = 1 + (*k >> 13) % 3;
    for (size_t p = 0; p < parts; p++) {
        *k = *k * 1103515245u + 12345u;
        n += (size_t)sprintf(out + n, "%s", syl[(*k >> 16) % (sizeof syl / sizeof *syl)]);
    }
    return n;
}

/* About 1 MB of C-like source: varied statement shapes with random identifiers and numbers. */
static char *make_source(size_t want, size_t *len_out)
{
    static const char *const shapes[] = {
        "static int @(struct @ *c, const char *@, size_t @) {\n",
        "    for (size_t @ = 0; @ < @; @++) {\n",
        "        if (@[@] == '\\n' && @->@ != @) return -#;\n",
        "    uint64_t @ = 0x#ull; // @ @ offset\n",
        "    printf(\"%s: %d @ (%.2f%%)\\n\", @, @, 100.0 * @ / @);\n",
        "    }\n",
        "\n",
        "/* Returns the @ of @, or -1 when the @ is too small. */\n",
        "#define @ #\n",
        "    struct @ *@ = @->@[@ % @];\n",
        "    return memcmp(@->@, @->@, @ < @ ? @ : @);\n",
        "\tcase @: @ = @(@, @.@, @.@); break;\n",
        "        @ += @ * # - (@ >> #);\n",
    };
    char *src = malloc(want + 4096);
    size_t len = 0;
    unsigned k = 12345;
    while (src && len < want) {
        k = k * 1103515245u + 12345u;
        for (const char *p = shapes[(k >> 16) % (sizeof shapes / sizeof *shapes)]; *p; p++) {
            if (*p == '@') {
                len += random_ident(src + len, &k);
            } else if (*p == '#') {
                k = k * 1103515245u + 12345u;
                len += (size_t)sprintf(src + len, "%u", (k >> 8) % 100000);
            } else {
                src[len++] = *p;
            }
        }
    }
    *len_out = len;
    return src;
}

static double seconds_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + 1e-9 * (double)(b.tv_nsec - a->tv_nsec);
}

static void time_source_code(const struct tokenizer *t)
{
    size_t len, n, dl;
    char *src = make_source(1 << 20, &len);
    CHECK(src != NULL, "source");
    if (!src)
        return;
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int32_t *ids = tok_encode(t, src, len, true, &n);
    double s = seconds_since(&a);
    fprintf(stderr, "timing: %zu bytes of C-like source -> %zu tokens in %.3f s (%.1f MB/s)\n",
            len, n, s, (double)len / s / 1e6);
    char *d = tok_decode(t, ids, n, false, &dl);
    CHECK(ids && d && dl == len && memcmp(d, src, len) == 0, "1 MB round trip");
    free(d);
    free(ids);
    /* one 256 KB word: BPE must not be quadratic in the word length */
    for (size_t i = 0; i < (256u << 10); i++)
        src[i] = "abcdefghij"[(i * 7 + i / 13) % 10];
    clock_gettime(CLOCK_MONOTONIC, &a);
    ids = tok_encode(t, src, 256u << 10, false, &n);
    s = seconds_since(&a);
    fprintf(stderr, "timing: one 256 KB word -> %zu tokens in %.3f s\n", n, s);
    d = tok_decode(t, ids, n, false, &dl);
    CHECK(ids && d && dl == (256u << 10) && memcmp(d, src, dl) == 0, "long word round trip");
    free(d);
    free(ids);
    free(src);
}

/* Bytes that are not UTF-8 are tokenized byte by byte and come back unchanged. */
static void test_invalid_utf8(const struct tokenizer *t)
{
    static const char text[] = "\xff\xfe abc \xc3( caf\xc3\xa9 \xe2\x82 end\xf0\x9f";
    size_t n, dl;
    int32_t *ids = tok_encode(t, text, sizeof text - 1, true, &n);
    char *d = ids ? tok_decode(t, ids, n, false, &dl) : NULL;
    CHECK(d && dl == sizeof text - 1 && memcmp(d, text, dl) == 0, "invalid UTF-8 round trip");
    free(d);
    free(ids);
    /* NFC still applies around stray bytes */
    ids = tok_encode(t, "\xff e\xcc\x81 \xfe", 7, true, &n);
    d = ids ? tok_decode(t, ids, n, false, &dl) : NULL;
    CHECK(d && dl == 6 && memcmp(d, "\xff \xc3\xa9 \xfe", 6) == 0, "NFC around stray bytes");
    free(d);
    free(ids);
    ids = tok_encode(t, "", 0, true, &n);
    CHECK(ids && n == 0, "empty text");
    free(ids);
}

int main(void)
{
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "qwen3-vocab.gguf"), err, sizeof err);
    REQUIRE(f != NULL, "%s", err);
    struct tokenizer *t = tok_load_gguf(f, err, sizeof err);
    gguf_close(f);
    REQUIRE(t != NULL, "%s", err);
    test_specials(t);
    test_cases(t);
    test_invalid_utf8(t);
    test_random_round_trips(t);
    time_source_code(t);
    tok_free(t);
    test_tiny_models();
    test_bad_metadata();
    test_synth_vocab();
    return test_finish();
}
