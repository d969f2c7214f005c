/* metrics.c: counters and histograms (server/metrics.h) and their Prometheus rendering.
 * Bucket bounds suit both a GPU (milliseconds per token) and two CPU cores (seconds). */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                               0.5,   1.0,  2.5,   5.0,  10.0,  30.0, 60.0};

void metrics_init(struct metrics *m, double now)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->started = now;
}

void metrics_destroy(struct metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void metrics_request_done(struct metrics *m, int status)
{
    int i = status >= 100 && status < 600 ? status / 100 : 0;
    pthread_mutex_lock(&m->mu);
    m->requests_by_status[i]++;
    pthread_mutex_unlock(&m->mu);
}

static void observe(struct metrics *m, struct metrics_hist *h, double v)
{
    int b = 0;
    while (b < METRICS_BUCKETS && v > bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    h->counts[b]++;
    h->sum += v;
    h->n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe_ttft(struct metrics *m, double s) { observe(m, &m->ttft, s); }
void metrics_observe_itl(struct metrics *m, double s) { observe(m, &m->itl, s); }
void metrics_observe_e2e(struct metrics *m, double s) { observe(m, &m->e2e, s); }

struct out {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !o->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n) * 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->failed = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

static void put_hist(struct out *o, const char *name, const char *help, const char *labels,
                     const struct metrics_hist *h)
{
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++) {
        cum += h->counts[b];
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[b],
            (unsigned long long)cum);
    }
    cum += h->counts[METRICS_BUCKETS];
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
        *labels ? "," : "", (unsigned long long)cum, name, labels, h->sum, name, labels,
        (unsigned long long)h->n);
}

static void put_gauge(struct out *o, const char *name, const char *type, const char *help,
                      const char *labels, double v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %.6g\n", name, help, name, type, name, labels, v);
}

char *metrics_render(struct metrics *m, double now, const char *model_name)
{
    struct out o = {0};
    char labels[256];
    char safe[200];
    snprintf(safe, sizeof safe, "%s", model_name);
    for (char *c = safe; *c; c++) /* label values may not hold quotes, backslashes or newlines */
        if (*c == '"' || *c == '\\' || *c == '\n')
            *c = '_';
    snprintf(labels, sizeof labels, "model_name=\"%s\"", safe);
    uint64_t gen = atomic_load(&m->generated_tokens), kv_used = atomic_load(&m->kv_used_tokens);
    uint64_t kv_total = atomic_load(&m->kv_total_tokens);
    double kv_frac = kv_total ? (double)kv_used / (double)kv_total : 0.0, up = now - m->started;
    int running = atomic_load(&m->requests_running), waiting = atomic_load(&m->requests_waiting);
    pthread_mutex_lock(&m->mu);
    put(&o, "# HELP moeserve_requests_total HTTP requests answered, by status class\n"
            "# TYPE moeserve_requests_total counter\n");
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (int i = 0; i < 6; i++)
        put(&o, "moeserve_requests_total{status=\"%s\"} %llu\n", classes[i],
            (unsigned long long)m->requests_by_status[i]);
    put_gauge(&o, "moeserve_prompt_tokens_total", "counter", "prompt tokens received", labels,
              (double)atomic_load(&m->prompt_tokens));
    put_gauge(&o, "moeserve_generation_tokens_total", "counter", "tokens generated", labels, (double)gen);
    put_gauge(&o, "moeserve_prefix_cache_hit_tokens_total", "counter", "prompt tokens reused from the prefix cache",
              labels, (double)atomic_load(&m->cached_tokens));
    put_gauge(&o, "moeserve_generation_tokens_per_second", "gauge", "mean generated tokens/s since start", labels,
              up > 0 ? (double)gen / up : 0.0);
    put_gauge(&o, "moeserve_requests_running", "gauge", "requests being generated", labels, running);
    put_gauge(&o, "moeserve_requests_waiting", "gauge", "requests queued", labels, waiting);
    put_gauge(&o, "moeserve_slots_busy", "gauge", "slots in use", labels, atomic_load(&m->slots_busy));
    put_gauge(&o, "moeserve_kv_cache_used_tokens", "gauge", "KV pool tokens in use", labels, (double)kv_used);
    put_gauge(&o, "moeserve_kv_cache_usage_ratio", "gauge", "KV pool use, 0 to 1", labels, kv_frac);
    put_hist(&o, "moeserve_time_to_first_token_seconds", "time to first token", labels, &m->ttft);
    put_hist(&o, "moeserve_inter_token_latency_seconds", "time between generated tokens", labels, &m->itl);
    put_hist(&o, "moeserve_request_duration_seconds", "end-to-end request time", labels, &m->e2e);
    /* vLLM's names, same meanings, for gateways and autoscalers that already scrape them */
    put_gauge(&o, "vllm:num_requests_running", "gauge", "requests being generated", labels, running);
    put_gauge(&o, "vllm:num_requests_waiting", "gauge", "requests queued", labels, waiting);
    put_gauge(&o, "vllm:gpu_cache_usage_perc", "gauge", "KV cache usage, 0 to 1 (1 means 100 percent)", labels, kv_frac);
    put_gauge(&o, "vllm:kv_cache_usage_perc", "gauge", "KV cache usage, 0 to 1 (1 means 100 percent)", labels, kv_frac);
    pthread_mutex_unlock(&m->mu);
    if (o.failed) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
