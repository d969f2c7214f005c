/* prefault.h: makes the mapped weights resident at load time (page-table entries in place), so
 * the first request does not pay the page faults and the process holds what the planner counts. */
#ifndef MOESERVE_PREFAULT_H
#define MOESERVE_PREFAULT_H

#include <stdbool.h>
#include <stddef.h>

/* Faults in [base, base + len) of a read-only mapping in chunks, calling progress(ctx, done)
 * with the fraction done after each (progress may be NULL). False with a message on failure. */
bool prefault_range(const void *base, size_t len, void (*progress)(void *ctx, double done), void *ctx,
                    char *err, size_t errlen);

#endif
