/* progress.h: the loading progress bar `serve` and `run` draw on stderr, only when stderr is a
 * terminal (a log file, a pipe or the journal get nothing from it). */
#ifndef MOESERVE_PROGRESS_H
#define MOESERVE_PROGRESS_H

#include <stdbool.h>

struct progress_bar {
    bool tty;       /* stderr is a terminal */
    int last_pct;   /* last percentage drawn (-1: none yet) */
};

void progress_bar_init(struct progress_bar *b);
/* Redraws "loading <stage> [#####.....]  NN%" in place when the percentage changed; at 1.0 ends
 * the line. Nothing when stderr is not a terminal. */
void progress_bar_draw(struct progress_bar *b, const char *stage, double fraction);

/* Ends a bar left unfinished (loading failed) so the next message starts on its own line. */
void progress_bar_end(struct progress_bar *b);

#endif
