/* prefault.c: faulting in mapped weights (engine/prefault.h), with MADV_POPULATE_READ where the
 * kernel has it (5.14+) and reading one byte per page where it does not. */
#include "engine/prefault.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#define CHUNK (UINT64_C(64) << 20)   /* progress steps; small enough to update a bar smoothly */

/* Reads one byte of every page; volatile so the loads are not optimised away. */
static void touch_pages(const uint8_t *p, size_t len, size_t page)
{
    const volatile uint8_t *v = p;
    uint8_t sink = 0;
    for (size_t off = 0; off < len; off += page)
        sink ^= v[off];
    (void)sink;
}

bool prefault_range(const void *base, size_t len, void (*progress)(void *ctx, double done), void *ctx,
                    char *err, size_t errlen)
{
    const long ps = sysconf(_SC_PAGESIZE);
    const size_t page = ps > 0 ? (size_t)ps : 4096;
    /* madvise wants a page-aligned start */
    const uintptr_t start = (uintptr_t)base & ~(uintptr_t)(page - 1);
    len += (uintptr_t)base - start;
    bool have_populate = true;
    for (size_t off = 0; off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        uint8_t *p = (uint8_t *)(start + off);
        if (have_populate && madvise(p, n, MADV_POPULATE_READ) != 0) {
            if (errno != EINVAL) {
                snprintf(err, errlen, "faulting in the weights: %s", strerror(errno));
                return false;
            }
            have_populate = false;   /* older kernel: fall back to reading */
        }
        if (!have_populate)
            touch_pages(p, n, page);
        if (progress)
            progress(ctx, (double)(off + n) / (double)len);
    }
    return true;
}
