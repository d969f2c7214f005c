/* progress.c: the terminal progress bar of server/progress.h, redrawn in place with '\r'. */
#include "server/progress.h"

#include <stdio.h>
#include <unistd.h>

#define BAR_WIDTH 30

void progress_bar_init(struct progress_bar *b)
{
    b->tty = isatty(STDERR_FILENO) == 1;
    b->last_pct = -1;
}

void progress_bar_draw(struct progress_bar *b, const char *stage, double fraction)
{
    if (!b->tty)
        return;
    if (fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    const int pct = (int)(fraction * 100);
    if (pct == b->last_pct)
        return;
    b->last_pct = pct;
    char bar[BAR_WIDTH + 1];
    const int full = (int)(fraction * BAR_WIDTH);
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < full ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    /* the trailing spaces clear a longer stage name drawn before */
    fprintf(stderr, "\rloading: %-10s [%s] %3d%%%s", stage, bar, pct, pct == 100 ? "\n" : "");
    fflush(stderr);
}

void progress_bar_end(struct progress_bar *b)
{
    if (b->tty && b->last_pct >= 0 && b->last_pct < 100)
        fputc('\n', stderr);
    b->last_pct = -1;
}
