/* metrics.h: the server's counters, gauges and latency histograms, rendered in Prometheus text
 * format for GET /metrics, with vLLM's gauge names alongside ours for existing gateways. */
#ifndef MOESERVE_METRICS_H
#define MOESERVE_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define METRICS_BUCKETS 14

struct metrics_hist {
    uint64_t counts[METRICS_BUCKETS + 1]; /* last: +Inf */
    double sum;
    uint64_t n;
};

struct metrics {
    pthread_mutex_t mu;                 /* guards the histograms and status counts */
    uint64_t requests_by_status[6];     /* 1xx..5xx (index status/100), [0] other */
    atomic_uint_fast64_t prompt_tokens, generated_tokens, cached_tokens;
    atomic_int requests_running, requests_waiting, slots_busy;
    atomic_uint_fast64_t kv_used_tokens, kv_total_tokens;
    struct metrics_hist ttft, itl, e2e;
    double started;                     /* monotonic seconds at start */
};

void metrics_init(struct metrics *m, double now);
void metrics_destroy(struct metrics *m);
void metrics_request_done(struct metrics *m, int status);
void metrics_observe_ttft(struct metrics *m, double seconds);
void metrics_observe_itl(struct metrics *m, double seconds);
void metrics_observe_e2e(struct metrics *m, double seconds);
/* Prometheus exposition text (malloc'd). */
char *metrics_render(struct metrics *m, double now, const char *model_name);

#endif
