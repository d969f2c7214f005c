/* membw.h: measures the machine's memory bandwidth (STREAM-style copy and triad),
 * the yardstick every benchmark figure is divided by. */
#ifndef MOESERVE_MEMBW_H
#define MOESERVE_MEMBW_H

#include <stdbool.h>

struct membw {
    double copy_gbs;   /* bytes read + written per second / 1e9 */
    double triad_gbs;
    double read_gbs;   /* a sum over one array: read-only streaming, what a matvec does */
    int threads;
};

/* Runs copy (b = a), triad (a = b + s*c) and read (sum of a) over arrays of `mib` MiB each with `threads`
 * OpenMP threads, best of `reps`. Returns false if memory could not be allocated. */
bool membw_measure(int threads, int mib, int reps, struct membw *out);

double membw_now_seconds(void);

#endif
