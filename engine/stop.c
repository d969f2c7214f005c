/* stop.c: the stop-string matcher: a pending buffer searched for stop strings on every piece,
 * emitting all but a held-back tail that may still grow into a stop string or a UTF-8 char. */
#include "engine/stop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stop_matcher {
    char **stops;
    size_t *stop_len;
    size_t n_stops;
    char *buf;      /* pending bytes: buf[drop..len) not emitted yet */
    size_t len, cap;
    size_t drop;    /* bytes handed out by the previous call, removed at the next one */
    bool hit;
    int hit_index;  /* which stop string hit, reported again on later calls */
};

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

stop_matcher *stop_create(const char *const *stops, size_t n_stops, char *err, size_t errlen)
{
    if (n_stops && !stops)
        return fail(err, errlen, "stop: list missing"), NULL;
    stop_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return fail(err, errlen, "stop: out of memory"), NULL;
    if (n_stops) {
        m->stops = calloc(n_stops, sizeof *m->stops);
        m->stop_len = calloc(n_stops, sizeof *m->stop_len);
        if (!m->stops || !m->stop_len)
            goto oom;
    }
    for (size_t i = 0; i < n_stops; i++) {
        /* keep the caller's indices: an ignored (NULL or empty) string stays as length 0 */
        size_t n = stops[i] ? strlen(stops[i]) : 0;
        m->stop_len[i] = n;
        m->n_stops = i + 1;
        if (!n)
            continue;
        m->stops[i] = malloc(n);
        if (!m->stops[i])
            goto oom;
        memcpy(m->stops[i], stops[i], n);
    }
    return m;
oom:
    stop_free(m);
    return fail(err, errlen, "stop: out of memory"), NULL;
}

void stop_free(stop_matcher *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_stops; i++)
        free(m->stops[i]);
    free(m->stops);
    free(m->stop_len);
    free(m->buf);
    free(m);
}

bool stop_hit(const stop_matcher *m)
{
    return m->hit;
}

/* Removes what the previous call handed out, so buf[0..len) is all pending. */
static void drop_emitted(stop_matcher *m)
{
    if (m->drop) {
        memmove(m->buf, m->buf + m->drop, m->len - m->drop);
        m->len -= m->drop;
        m->drop = 0;
    }
}

/* Earliest position where any stop string occurs in buf[0..len); sets *which. */
static size_t find_stop(const stop_matcher *m, int *which)
{
    for (size_t pos = 0; pos < m->len; pos++)
        for (size_t i = 0; i < m->n_stops; i++) {
            size_t n = m->stop_len[i];
            if (n && n <= m->len - pos && memcmp(m->buf + pos, m->stops[i], n) == 0) {
                *which = (int)i;
                return pos;
            }
        }
    return SIZE_MAX;
}

/* Length of the longest tail of buf that is a proper prefix of some stop string. */
static size_t partial_tail(const stop_matcher *m)
{
    size_t best = 0;
    for (size_t i = 0; i < m->n_stops; i++) {
        size_t n = m->stop_len[i];
        size_t k = n - (n > 0); /* proper prefix: at most n - 1 bytes */
        if (k > m->len)
            k = m->len;
        for (; k > best; k--)
            if (memcmp(m->buf + m->len - k, m->stops[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static size_t utf8_seq_len(unsigned char lead)
{
    return lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3
         : (lead & 0xF8) == 0xF0 ? 4 : 1; /* stray continuation / invalid byte: stands alone */
}

/* Moves an emit boundary back so no UTF-8 character straddles it: off a continuation byte, and
 * at the end of the buffer off a character whose remaining bytes have not arrived. Invalid
 * sequences are never held back longer than a valid one could be. */
static size_t utf8_safe_end(const unsigned char *b, size_t len, size_t end)
{
    if (end < len) {
        size_t back = 0;
        while (end > 0 && back < 3 && is_cont(b[end]))
            end--, back++;
        return end;
    }
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = b[len - back];
        if (is_cont(c))
            continue;
        size_t need = utf8_seq_len(c);
        return need > back ? len - back : len;
    }
    return len;
}

int stop_feed(stop_matcher *m, const char *piece, size_t len, stop_out *out, char *err,
              size_t errlen)
{
    drop_emitted(m);
    *out = (stop_out){ m->buf, 0, m->hit, m->hit ? m->hit_index : -1 };
    if (m->hit)
        return 0;
    if (len) {
        if (!piece)
            return fail(err, errlen, "stop: piece missing");
        if (m->len + len > m->cap) {
            size_t cap = m->cap ? m->cap : 64;
            while (cap < m->len + len)
                cap *= 2;
            char *b = realloc(m->buf, cap);
            if (!b)
                return fail(err, errlen, "stop: out of memory");
            m->buf = b;
            m->cap = cap;
        }
        memcpy(m->buf + m->len, piece, len);
        m->len += len;
    }
    out->text = m->buf;
    int which = -1;
    size_t pos = find_stop(m, &which);
    if (pos != SIZE_MAX) {
        m->hit = true;
        m->hit_index = which;
        m->len = pos; /* the stop string and what follows are dropped */
        *out = (stop_out){ m->buf, pos, true, which };
        m->drop = pos;
        return 0;
    }
    size_t end = utf8_safe_end((const unsigned char *)m->buf, m->len, m->len - partial_tail(m));
    out->len = end;
    m->drop = end;
    return 0;
}

void stop_flush(stop_matcher *m, stop_out *out)
{
    drop_emitted(m);
    *out = (stop_out){ m->buf, m->hit ? 0 : m->len, m->hit, m->hit ? m->hit_index : -1 };
    m->drop = out->len;
}
