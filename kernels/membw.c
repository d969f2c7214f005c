/* membw.c: STREAM-style memory bandwidth measurement for benchmarks (kernels/membw.h).
 * Arrays are far larger than the caches and touched first, so page faults are not timed. */
#include "kernels/membw.h"

#include <omp.h>
#include <stdlib.h>
#include <time.h>

double membw_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool membw_measure(int threads, int mib, int reps, struct membw *out)
{
    size_t n = (size_t)mib * 1024 * 1024 / sizeof(double);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return false;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.5;
    }
    double best_copy = 1e30, best_triad = 1e30, best_read = 1e30, sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = membw_now_seconds();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++)
            b[i] = a[i];
        double t1 = membw_now_seconds();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + 0.5 * c[i];
        double t2 = membw_now_seconds(), sum = 0;
        /* four independent sums per thread, so float add latency never limits the stream */
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : s0, s1, s2, s3)
        for (size_t i = 0; i < n / 8; i++) {
            const double *p = a + 8 * i;
            s0 += p[0] + p[1];
            s1 += p[2] + p[3];
            s2 += p[4] + p[5];
            s3 += p[6] + p[7];
        }
        sum = (s0 + s1) + (s2 + s3);
        double t3 = membw_now_seconds();
        sink += sum;
        if (t3 - t2 < best_read)
            best_read = t3 - t2;
        if (t1 - t0 < best_copy)
            best_copy = t1 - t0;
        if (t2 - t1 < best_triad)
            best_triad = t2 - t1;
    }
    out->copy_gbs = 2.0 * (double)(n * sizeof(double)) / best_copy / 1e9;
    out->triad_gbs = 3.0 * (double)(n * sizeof(double)) / best_triad / 1e9;
    /* the sum is kept (positive: every a[i] is 1.25) so the read loop cannot be dropped */
    out->read_gbs = sink > 0 ? (double)(n / 8 * 8 * sizeof(double)) / best_read / 1e9 : 0;
    out->threads = threads;
    free(a);
    free(b);
    free(c);
    return true;
}
