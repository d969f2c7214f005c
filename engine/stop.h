/* stop.h: streaming stop-string matcher over generated text. Decoded pieces go in; what comes out
 * is the text safe to show now, holding back a tail that could still begin a stop string. */
#ifndef MOESERVE_STOP_H
#define MOESERVE_STOP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct stop_matcher stop_matcher;

typedef struct {
    const char *text; /* bytes safe to emit now; valid until the next call on the matcher */
    size_t len;
    bool hit;         /* a stop string was found: `text` ends right before it and is the last
                         output; the stop string and anything after it are dropped */
    int stop_index;   /* index of the stop string that hit (earliest start, then the earlier
                         listed), -1 if none */
} stop_out;

/* Copies the stop strings (bytes, any content; empty strings are ignored). n_stops may be 0:
 * the matcher then only keeps UTF-8 characters whole. Returns NULL with a message on error. */
stop_matcher *stop_create(const char *const *stops, size_t n_stops, char *err, size_t errlen);
void stop_free(stop_matcher *m);

/* Feeds the next decoded piece. Emits everything up to the earliest stop string, or, without a
 * hit, everything except the longest tail that is a proper prefix of some stop string, further
 * held back so a multi-byte UTF-8 character is never split (an incomplete trailing character
 * waits for its remaining bytes). After a hit every further feed emits nothing.
 * Returns 0, or -1 with a message when memory runs out. */
int stop_feed(stop_matcher *m, const char *piece, size_t len, stop_out *out, char *err,
              size_t errlen);

/* End of generation: emits all held-back text as is (no hit possible any more). */
void stop_flush(stop_matcher *m, stop_out *out);

/* True once a stop string has been hit. */
bool stop_hit(const stop_matcher *m);

#endif
