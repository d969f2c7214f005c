/* test_stop.c: the streaming stop-string matcher: hits inside and across pieces, held-back
 * prefixes released, several stop strings, UTF-8 kept whole, flush, and a randomized check. */
#include "engine/stop.h"
#include "tests/test.h"

#include <stdint.h>
#include <string.h>

typedef struct {
    char text[512];      /* everything emitted, concatenated */
    size_t len;
    size_t step_len[16]; /* bytes emitted by each feed */
    bool hit;
    int index;
} run_result;

/* Feeds pieces (NULL-terminated list) one at a time, then flushes if no stop was hit. */
static run_result run(const char *const *stops, size_t n_stops, const char *const *pieces)
{
    run_result r = { .index = -1 };
    char err[128];
    stop_matcher *m = stop_create(stops, n_stops, err, sizeof err);
    if (!m)
        return r;
    stop_out o;
    for (size_t i = 0; pieces[i]; i++) {
        if (stop_feed(m, pieces[i], strlen(pieces[i]), &o, err, sizeof err) != 0)
            break;
        if (i < 16)
            r.step_len[i] = o.len;
        memcpy(r.text + r.len, o.text, o.len);
        r.len += o.len;
        if (o.hit && !r.hit) {
            r.hit = true;
            r.index = o.stop_index;
        }
    }
    stop_flush(m, &o);
    memcpy(r.text + r.len, o.text, o.len);
    r.len += o.len;
    r.text[r.len] = 0;
    stop_free(m);
    return r;
}

#define PIECES(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define STOPS(...) ((const char *const[]){ __VA_ARGS__ }), \
    sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)

static void test_single_piece(void)
{
    run_result r = run(STOPS("STOP"), PIECES("hello STOP world", "more"));
    CHECK(r.hit && r.index == 0 && strcmp(r.text, "hello ") == 0, "inside one piece: '%s'",
          r.text);
    CHECK(r.step_len[1] == 0, "nothing after a hit");
    {
        char err[64];
        const char *st[2] = { "x", "END" };
        stop_matcher *m = stop_create(st, 2, err, sizeof err);
        REQUIRE_VOID(m);
        stop_out o;
        stop_feed(m, "aEND", 4, &o, err, sizeof err);
        CHECK(o.hit && o.stop_index == 1 && o.len == 1, "hit reported with its index");
        stop_feed(m, "more", 4, &o, err, sizeof err);
        CHECK(o.hit && o.stop_index == 1 && o.len == 0, "later feeds repeat the hit");
        stop_flush(m, &o);
        CHECK(o.hit && o.len == 0 && stop_hit(m), "flush after a hit emits nothing");
        stop_free(m);
    }
    r = run(STOPS("STOP"), PIECES("STOP at the start"));
    CHECK(r.hit && r.len == 0, "stop at the very beginning");
    r = run(STOPS("S", "T"), PIECES("xyTS"));
    CHECK(r.hit && r.index == 1 && strcmp(r.text, "xy") == 0, "earliest start wins");
}

static void test_across_pieces(void)
{
    run_result r = run(STOPS("STOP"), PIECES("hello ST", "OP more"));
    CHECK(r.hit && strcmp(r.text, "hello ") == 0 && r.step_len[0] == 6 && r.step_len[1] == 0,
          "across two pieces: '%s' steps %zu %zu", r.text, r.step_len[0], r.step_len[1]);
    r = run(STOPS("<|end|>"), PIECES("ab<", "|e", "nd|>x"));
    CHECK(r.hit && strcmp(r.text, "ab") == 0 && r.step_len[0] == 2 && r.step_len[1] == 0,
          "across three pieces: '%s'", r.text);
    r = run(STOPS("STOP"), PIECES("S", "T", "O", "P"));
    CHECK(r.hit && r.len == 0 && r.step_len[0] == 0 && r.step_len[2] == 0,
          "one byte per piece from the start");
    r = run(STOPS("aab"), PIECES("aa", "aab"));
    CHECK(r.hit && strcmp(r.text, "aa") == 0 && r.step_len[0] == 0, "self-overlapping stop: '%s'",
          r.text);
}

static void test_released(void)
{
    run_result r = run(STOPS("STOP"), PIECES("ST", "ART"));
    CHECK(!r.hit && strcmp(r.text, "START") == 0 && r.step_len[0] == 0 && r.step_len[1] == 5,
          "false prefix released: steps %zu %zu", r.step_len[0], r.step_len[1]);
    r = run(STOPS("STOP"), PIECES("abS", "Tx"));
    CHECK(r.step_len[0] == 2 && r.step_len[1] == 3 && strcmp(r.text, "abSTx") == 0,
          "partial held then released");
    r = run(STOPS("END"), PIECES("foo E", "N"));
    CHECK(!r.hit && strcmp(r.text, "foo EN") == 0 && r.step_len[0] == 4 && r.step_len[1] == 0,
          "flush releases the held tail: '%s'", r.text);
    r = run(NULL, 0, PIECES("plain ", "text"));
    CHECK(!r.hit && strcmp(r.text, "plain text") == 0 && r.step_len[0] == 6, "no stop strings");
    r = run(STOPS("", "zz"), PIECES("abc", "z"));
    CHECK(!r.hit && strcmp(r.text, "abcz") == 0 && r.step_len[0] == 3 && r.step_len[1] == 0,
          "empty stop string ignored");
}

static void test_shared_prefixes(void)
{
    run_result r = run(STOPS("</answer>", "</a>", "\n\n"), PIECES("x </a", "nswer> y"));
    CHECK(r.hit && r.index == 0 && strcmp(r.text, "x ") == 0 && r.step_len[0] == 2,
          "longer of two shared-prefix stops: '%s' idx %d", r.text, r.index);
    r = run(STOPS("</answer>", "</a>", "\n\n"), PIECES("x </a", "> y"));
    CHECK(r.hit && r.index == 1 && strcmp(r.text, "x ") == 0, "shorter one");
    r = run(STOPS("</answer>", "</a>"), PIECES("x </an", "t>"));
    CHECK(!r.hit && strcmp(r.text, "x </ant>") == 0 && r.step_len[0] == 2,
          "neither: all released '%s'", r.text);
    r = run(STOPS("abc", "bcd"), PIECES("xab", "cz"));
    CHECK(r.hit && r.index == 0 && strcmp(r.text, "x") == 0 && r.step_len[0] == 1,
          "longest held tail");
    r = run(STOPS("abcd", "bc"), PIECES("xabce"));
    CHECK(r.hit && r.index == 1 && strcmp(r.text, "xa") == 0, "inner stop starts earlier");
}

static void test_utf8(void)
{
    run_result r = run(NULL, 0, PIECES("a\xC3", "\xA9" "b"));
    CHECK(r.step_len[0] == 1 && r.step_len[1] == 3 && strcmp(r.text, "a\xC3\xA9" "b") == 0,
          "2-byte char completed by the next piece");
    r = run(NULL, 0, PIECES("\xF0\x9F", "\x98", "\x80!"));
    CHECK(r.step_len[0] == 0 && r.step_len[1] == 0 && r.step_len[2] == 5,
          "4-byte char over three pieces");
    /* a (malformed) stop starting with a continuation byte must not split "é" */
    r = run(STOPS("\xA9!"), PIECES("caf\xC3\xA9", "?"));
    CHECK(!r.hit && r.step_len[0] == 3 && r.step_len[1] == 3, "hold back to the lead byte");
    r = run(STOPS("\xC3\xA9!"), PIECES("caf\xC3", "\xA9", "!x"));
    CHECK(r.hit && strcmp(r.text, "caf") == 0 && r.step_len[0] == 3, "multi-byte stop string");
    r = run(NULL, 0, PIECES("\x80\x80\x80\x80\x80"));
    CHECK(r.step_len[0] == 5, "stray continuation bytes are not held");
    r = run(NULL, 0, PIECES("a\xF0", "b"));
    CHECK(r.step_len[0] == 1 && r.step_len[1] == 2, "broken lead byte released by the next");
    r = run(NULL, 0, PIECES("x\xE2\x82"));
    CHECK(r.step_len[0] == 1 && r.len == 3, "flush emits an incomplete char as is");
}

/* Random texts over {a,b,c} split at random: the emitted text must be exactly the text up to
 * the earliest stop occurrence, and nothing may stay held longer than a stop prefix. */
static void test_random(void)
{
    const char *stops[3] = { "abc", "bca", "cc" };
    uint64_t x = 88172645463325252ULL;
    int bad = 0, bad_hold = 0;
    for (int iter = 0; iter < 2000; iter++) {
        char text[64];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = 1 + x % 40;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            text[i] = (char)('a' + x % 3);
        }
        text[n] = 0;
        size_t want = n;
        for (int k = 0; k < 3; k++) {
            const char *p = strstr(text, stops[k]);
            if (p && (size_t)(p - text) < want)
                want = (size_t)(p - text);
        }
        char err[64];
        stop_matcher *m = stop_create(stops, 3, err, sizeof err);
        REQUIRE_VOID(m);
        char out[64];
        size_t got = 0, fed = 0;
        stop_out o;
        while (fed < n && !stop_hit(m)) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t len = 1 + x % 5;
            len = len > n - fed ? n - fed : len;
            stop_feed(m, text + fed, len, &o, err, sizeof err);
            fed += len;
            memcpy(out + got, o.text, o.len);
            got += o.len;
            bad_hold += !o.hit && fed - got > 2;
        }
        stop_flush(m, &o);
        memcpy(out + got, o.text, o.len);
        got += o.len;
        bad += got != want || memcmp(out, text, got) != 0 || stop_hit(m) != (want < n);
        stop_free(m);
    }
    CHECK(bad == 0, "random split texts: %d mismatches", bad);
    CHECK(bad_hold == 0, "held back more than a stop prefix %d times", bad_hold);
}

int main(void)
{
    test_single_piece();
    test_across_pieces();
    test_released();
    test_shared_prefixes();
    test_utf8();
    test_random();
    return test_finish();
}
