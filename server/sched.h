/* sched.h: the request scheduler: a bounded queue, slots over one shared KV pool, continuous
 * batching with chunked prefill, prefix reuse, cancellation and timeouts, on ONE engine thread.
 * It manages resources only; what a token means (sampling, text, stop strings) is the job's. */
#ifndef MOESERVE_SCHED_H
#define MOESERVE_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/metrics.h"

/* One engine step: n entries, each a token at a position of a slot's sequence. */
struct sched_batch {
    uint32_t n;
    const int32_t *token;
    const uint32_t *pos;
    const uint32_t *slot;
    const bool *want_logits;
};

/* What the scheduler needs from a model; all calls come from the engine thread. */
struct sched_engine {
    void *impl;
    uint32_t n_vocab;
    uint32_t n_slots;
    uint32_t n_ctx_max;        /* longest sequence */
    uint64_t kv_tokens;        /* KV pool capacity in tokens, all slots together */
    /* Runs the batch; writes n_vocab logits per wanting entry, in entry order. */
    bool (*decode)(void *impl, const struct sched_batch *b, float *logits, char *err, size_t errlen);
    /* Drops the slot's cached positions >= n_keep; returns the positions really kept, which may
     * be fewer (a recurrent model resumes only where it holds a state snapshot). */
    uint32_t (*seq_keep)(void *impl, uint32_t slot, uint32_t n_keep);
};

enum sched_finish { SCHED_STOP, SCHED_LENGTH, SCHED_CANCELLED, SCHED_TIMEOUT, SCHED_ERROR, SCHED_SHUTDOWN };

struct sched_result {
    enum sched_finish reason;
    uint32_t prompt_tokens, cached_tokens, generated;
    double t_queued, t_first_token, t_done;   /* monotonic seconds */
    char error[256];
};

/* One generation. Memory is the submitter's until `finish` has been called (exactly once). */
struct sched_job {
    const int32_t *prompt;
    uint32_t n_prompt;
    uint32_t max_new;          /* 0: until the context or the pool is full */
    double deadline;           /* monotonic seconds; 0: none */
    void *ctx;
    int32_t (*choose)(void *ctx, const float *logits);    /* pick the next token */
    bool (*accept)(void *ctx, int32_t token);              /* false: generation is complete */
    bool (*cancelled)(void *ctx);                          /* the client went away */
    void (*progress)(void *ctx, uint32_t done, uint32_t total); /* prompt tokens processed */
    void (*finish)(void *ctx, const struct sched_result *r);
    /* private to the scheduler */
    struct sched_job *next;
    double t_queued;
};

struct sched_config {
    uint32_t batch_tokens;     /* tokens per engine step */
    uint32_t queue_size;       /* jobs that may wait beyond the free slots before submit refuses */
};

struct sched;

struct sched *sched_start(const struct sched_engine *eng, const struct sched_config *cfg,
                          struct metrics *metrics, char *err, size_t errlen);

enum sched_submit_result { SCHED_OK, SCHED_QUEUE_FULL, SCHED_CLOSED, SCHED_TOO_LONG };
/* Queues a job (FIFO). On anything but SCHED_OK the job is not taken and finish is not called. */
enum sched_submit_result sched_submit(struct sched *s, struct sched_job *job);

/* Stops taking jobs and waits until every accepted job is done or timeout_s passed.
 * Returns true when all finished. */
bool sched_drain(struct sched *s, double timeout_s);
/* Ends every remaining job (SCHED_SHUTDOWN) and stops the engine thread. */
void sched_stop(struct sched *s);

/* Monotonic time of the engine thread's last loop (for the systemd watchdog). */
double sched_heartbeat(struct sched *s);
double sched_now(void);

#endif
