/* sched.c: the engine thread's loop (server/sched.h): admit queued jobs into slots, build one
 * batch per step (a token per generating slot, then prompt chunks under the budget), run it,
 * hand logits to the jobs. Submitters only touch the queue, under one mutex. */
#include "server/sched.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum slot_state { SLOT_IDLE, SLOT_PREFILL, SLOT_GEN };

struct slot {
    enum slot_state state;
    struct sched_job *job;
    int32_t *cache;            /* tokens whose K/V the engine holds for this slot */
    uint32_t n_cache;
    uint32_t reserved;         /* pool tokens promised to the running job */
    uint32_t generated, cached_at_start;
    int32_t next_token;        /* SLOT_GEN: sampled, not yet in the cache */
    uint64_t last_used;        /* for least-recently-used eviction */
    uint64_t admitted;         /* admission order: prompts are chunked first-come */
    double t_first_token, last_token_time;
};

struct sched {
    struct sched_engine eng;
    struct sched_config cfg;
    struct metrics *metrics;
    struct slot *slots;
    /* step buffers, sized for batch_tokens entries */
    int32_t *b_token;
    uint32_t *b_pos, *b_slot;
    bool *b_logits;
    float *logits;
    uint32_t max_logits;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    struct sched_job *head, *tail;  /* FIFO queue */
    uint32_t queued;
    uint32_t active;                /* jobs in slots */
    bool closed, stopping;
    uint64_t tick, admissions;
    _Atomic double heartbeat;
};

double sched_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double sched_heartbeat(struct sched *s)
{
    return atomic_load(&s->heartbeat);
}

/* ------------------------------------------------------------------- jobs --- */

static void finish_job(struct sched *s, struct slot *sl, struct sched_job *job, enum sched_finish why,
                       const char *error)
{
    struct sched_result r = {.reason = why, .prompt_tokens = job->n_prompt, .t_queued = job->t_queued,
                             .t_done = sched_now()};
    if (sl) {
        r.cached_tokens = sl->cached_at_start;
        r.generated = sl->generated;
        r.t_first_token = sl->t_first_token;
        if (s->metrics && sl->t_first_token > 0)
            metrics_observe_ttft(s->metrics, sl->t_first_token - job->t_queued);
        sl->state = SLOT_IDLE;
        sl->job = NULL;
        sl->reserved = 0;
        sl->last_used = ++s->tick;
        if (why == SCHED_ERROR) { /* the engine's state for this slot is unknown now */
            s->eng.seq_keep(s->eng.impl, (uint32_t)(sl - s->slots), 0);
            sl->n_cache = 0;
        }
        pthread_mutex_lock(&s->mu);
        s->active--;
        pthread_mutex_unlock(&s->mu);
    }
    if (error)
        snprintf(r.error, sizeof r.error, "%s", error);
    if (s->metrics) {
        metrics_observe_e2e(s->metrics, r.t_done - job->t_queued);
        atomic_fetch_add(&s->metrics->generated_tokens, r.generated);
    }
    job->finish(job->ctx, &r);
    pthread_cond_broadcast(&s->idle);
}

enum sched_submit_result sched_submit(struct sched *s, struct sched_job *job)
{
    if (job->n_prompt == 0 || job->n_prompt >= s->eng.n_ctx_max || job->n_prompt >= s->eng.kv_tokens)
        return SCHED_TOO_LONG;
    job->next = NULL;
    job->t_queued = sched_now();
    pthread_mutex_lock(&s->mu);
    enum sched_submit_result r = SCHED_OK;
    if (s->closed)
        r = SCHED_CLOSED;
    else if (s->queued >= s->cfg.queue_size + (s->eng.n_slots - s->active)) /* waiting beyond the free slots */
        r = SCHED_QUEUE_FULL;
    else {
        if (s->tail)
            s->tail->next = job;
        else
            s->head = job;
        s->tail = job;
        s->queued++;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* --------------------------------------------------------------- admission --- */

static uint32_t common_prefix(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    uint32_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Pool tokens spoken for: running jobs' reservations (or more, if they outgrew them) and the
 * caches idle slots keep for prefix reuse. */
static uint64_t pool_used(const struct sched *s)
{
    uint64_t used = 0;
    for (uint32_t i = 0; i < s->eng.n_slots; i++) {
        const struct slot *sl = &s->slots[i];
        used += sl->state == SLOT_IDLE ? sl->n_cache : (sl->reserved > sl->n_cache ? sl->reserved : sl->n_cache);
    }
    return used;
}

/* The idle slot that already holds the longest prefix of the prompt; least recently used on ties. */
static struct slot *pick_slot(struct sched *s, const struct sched_job *job, uint32_t *reuse)
{
    struct slot *best = NULL;
    uint32_t best_len = 0;
    for (uint32_t i = 0; i < s->eng.n_slots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state != SLOT_IDLE)
            continue;
        uint32_t l = common_prefix(sl->cache, sl->n_cache, job->prompt, job->n_prompt);
        if (!best || l > best_len || (l == best_len && sl->last_used < best->last_used)) {
            best = sl;
            best_len = l;
        }
    }
    *reuse = best_len;
    return best;
}

/* Frees idle caches, least recently used first, until `need` pool tokens are free. */
static bool make_room(struct sched *s, uint64_t need, const struct slot *keep)
{
    while (pool_used(s) + need > s->eng.kv_tokens) {
        struct slot *victim = NULL;
        for (uint32_t i = 0; i < s->eng.n_slots; i++) {
            struct slot *sl = &s->slots[i];
            if (sl->state == SLOT_IDLE && sl != keep && sl->n_cache &&
                (!victim || sl->last_used < victim->last_used))
                victim = sl;
        }
        if (!victim)
            return false;
        s->eng.seq_keep(s->eng.impl, (uint32_t)(victim - s->slots), 0);
        victim->n_cache = 0;
    }
    return true;
}

/* Tokens a job is promised: its prompt plus its completion, capped so that a request without a
 * limit does not lock the whole pool (it may still grow while the pool has room). */
static uint32_t reservation(const struct sched *s, const struct sched_job *job)
{
    uint32_t fair = (uint32_t)(s->eng.kv_tokens / s->eng.n_slots);
    uint32_t want = job->max_new ? job->max_new : fair;
    uint64_t total = (uint64_t)job->n_prompt + (want < fair ? want : fair);
    if (total > s->eng.n_ctx_max)
        total = s->eng.n_ctx_max;
    if (total > s->eng.kv_tokens) /* with nothing running, every job must be admissible */
        total = s->eng.kv_tokens;
    return (uint32_t)total;
}

/* Moves queue heads into slots while a slot and pool room exist (strictly first-come). */
static void admit(struct sched *s)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        struct sched_job *job = s->head;
        pthread_mutex_unlock(&s->mu);
        if (!job)
            return;
        uint32_t reuse;
        struct slot *sl = pick_slot(s, job, &reuse);
        if (!sl)
            return;
        uint32_t need = reservation(s, job);
        /* the reused prefix is already counted as this slot's cache */
        uint64_t extra = need > sl->n_cache ? need - sl->n_cache : 0;
        if (!make_room(s, extra, sl))
            return;
        pthread_mutex_lock(&s->mu);
        s->head = job->next;
        if (!s->head)
            s->tail = NULL;
        s->queued--;
        s->active++;
        pthread_mutex_unlock(&s->mu);
        if (reuse == job->n_prompt) /* the last prompt token must run again to get its logits */
            reuse--;
        reuse = s->eng.seq_keep(s->eng.impl, (uint32_t)(sl - s->slots), reuse);
        sl->n_cache = reuse;
        sl->job = job;
        sl->state = SLOT_PREFILL;
        sl->reserved = need;
        sl->generated = 0;
        sl->cached_at_start = reuse;
        sl->t_first_token = 0;
        sl->admitted = ++s->admissions;
        if (s->metrics)
            atomic_fetch_add(&s->metrics->cached_tokens, reuse);
    }
}

/* Drops queued jobs whose client left or whose deadline passed. */
static void prune_queue(struct sched *s, double now)
{
    pthread_mutex_lock(&s->mu);
    struct sched_job **pp = &s->head, *dead = NULL, *prev = NULL;
    while (*pp) {
        struct sched_job *j = *pp;
        bool drop = j->cancelled(j->ctx) || (j->deadline > 0 && now > j->deadline);
        if (drop) {
            *pp = j->next;
            s->queued--;
            j->next = dead;
            dead = j;
        } else {
            prev = j;
            pp = &j->next;
        }
    }
    s->tail = prev;
    pthread_mutex_unlock(&s->mu);
    while (dead) {
        struct sched_job *j = dead;
        dead = j->next;
        bool timed_out = j->deadline > 0 && now > j->deadline;
        finish_job(s, NULL, j, timed_out ? SCHED_TIMEOUT : SCHED_CANCELLED, NULL);
    }
}

/* --------------------------------------------------------------------- step --- */

static void add_entry(struct sched *s, uint32_t *n, uint32_t slot, int32_t token, uint32_t pos, bool logits)
{
    s->b_token[*n] = token;
    s->b_pos[*n] = pos;
    s->b_slot[*n] = slot;
    s->b_logits[*n] = logits;
    (*n)++;
}

/* Active slots whose client left or whose time ran out end before the step. */
static void end_abandoned(struct sched *s, double now)
{
    for (uint32_t i = 0; i < s->eng.n_slots; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state == SLOT_IDLE)
            continue;
        if (sl->job->cancelled(sl->job->ctx))
            finish_job(s, sl, sl->job, SCHED_CANCELLED, NULL);
        else if (sl->job->deadline > 0 && now > sl->job->deadline)
            finish_job(s, sl, sl->job, SCHED_TIMEOUT, "request timeout");
    }
}

/* One token per generating slot first (streams never stall), then prompt chunks, oldest first. */
static uint32_t build_batch(struct sched *s)
{
    uint32_t n = 0, budget = s->cfg.batch_tokens;
    for (uint32_t i = 0; i < s->eng.n_slots && n < budget; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state == SLOT_GEN)
            add_entry(s, &n, i, sl->next_token, sl->n_cache, true);
    }
    for (;;) {
        struct slot *oldest = NULL;
        for (uint32_t i = 0; i < s->eng.n_slots; i++) {
            struct slot *sl = &s->slots[i];
            bool queued_here = false;
            for (uint32_t k = 0; k < n; k++)
                queued_here |= s->b_slot[k] == i && sl->state == SLOT_PREFILL;
            if (sl->state == SLOT_PREFILL && !queued_here && (!oldest || sl->admitted < oldest->admitted))
                oldest = sl;
        }
        if (!oldest || n >= budget)
            break;
        uint32_t id = (uint32_t)(oldest - s->slots), left = oldest->job->n_prompt - oldest->n_cache;
        uint32_t take = left < budget - n ? left : budget - n;
        for (uint32_t k = 0; k < take; k++) {
            uint32_t pos = oldest->n_cache + k;
            add_entry(s, &n, id, oldest->job->prompt[pos], pos, pos == oldest->job->n_prompt - 1);
        }
    }
    return n;
}

/* After a step: record what entered each cache, and give logits to their jobs. */
static void absorb(struct sched *s, uint32_t n, double now)
{
    const float *logits = s->logits;
    for (uint32_t k = 0; k < n; k++) {
        struct slot *sl = &s->slots[s->b_slot[k]];
        if (sl->state == SLOT_IDLE) /* ended earlier in this loop */
            continue;
        sl->cache[sl->n_cache++] = s->b_token[k];
        if (!s->b_logits[k]) {
            bool chunk_end = k + 1 == n || s->b_slot[k + 1] != s->b_slot[k];
            if (sl->state == SLOT_PREFILL && chunk_end && sl->job->progress)
                sl->job->progress(sl->job->ctx, sl->n_cache, sl->job->n_prompt);
            continue;
        }
        struct sched_job *job = sl->job;
        if (sl->state == SLOT_PREFILL && s->metrics)
            atomic_fetch_add(&s->metrics->prompt_tokens, job->n_prompt - sl->cached_at_start);
        int32_t tok = job->choose(job->ctx, logits);
        logits += s->eng.n_vocab;
        if (sl->t_first_token == 0)
            sl->t_first_token = now;
        else if (s->metrics)
            metrics_observe_itl(s->metrics, now - sl->last_token_time);
        sl->last_token_time = now;
        sl->generated++;
        sl->state = SLOT_GEN;
        sl->next_token = tok;
        bool more = job->accept(job->ctx, tok);
        /* past its reservation a job grows only into free (or evictable idle) pool space */
        bool pool_full = sl->n_cache + 1 > sl->reserved && !make_room(s, 1, sl);
        if (!more)
            finish_job(s, sl, job, SCHED_STOP, NULL);
        else if ((job->max_new && sl->generated >= job->max_new) || sl->n_cache + 1 >= s->eng.n_ctx_max ||
                 pool_full)
            finish_job(s, sl, job, SCHED_LENGTH, NULL);
    }
}

static void publish_gauges(struct sched *s)
{
    if (!s->metrics)
        return;
    uint32_t busy = 0;
    uint64_t used = 0;
    for (uint32_t i = 0; i < s->eng.n_slots; i++) {
        busy += s->slots[i].state != SLOT_IDLE;
        used += s->slots[i].n_cache;
    }
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->metrics->requests_waiting, (int)s->queued);
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->metrics->requests_running, (int)busy);
    atomic_store(&s->metrics->slots_busy, (int)busy);
    atomic_store(&s->metrics->kv_used_tokens, used);
    atomic_store(&s->metrics->kv_total_tokens, s->eng.kv_tokens);
}

static void run_step(struct sched *s)
{
    double now = sched_now();
    prune_queue(s, now);
    end_abandoned(s, now);
    admit(s);
    uint32_t n = build_batch(s);
    if (n) {
        struct sched_batch b = {n, s->b_token, s->b_pos, s->b_slot, s->b_logits};
        char err[256] = "";
        if (s->eng.decode(s->eng.impl, &b, s->logits, err, sizeof err)) {
            absorb(s, n, sched_now());
        } else {
            for (uint32_t k = 0; k < n; k++) {
                struct slot *sl = &s->slots[s->b_slot[k]];
                if (sl->state != SLOT_IDLE)
                    finish_job(s, sl, sl->job, SCHED_ERROR, err[0] ? err : "engine step failed");
            }
        }
    }
    publish_gauges(s);
}

static bool has_work(struct sched *s)
{
    return s->active > 0 || s->head != NULL;
}

static void end_everything(struct sched *s)
{
    for (uint32_t i = 0; i < s->eng.n_slots; i++)
        if (s->slots[i].state != SLOT_IDLE)
            finish_job(s, &s->slots[i], s->slots[i].job, SCHED_SHUTDOWN, "server shutting down");
    pthread_mutex_lock(&s->mu);
    struct sched_job *j = s->head;
    s->head = s->tail = NULL;
    s->queued = 0;
    pthread_mutex_unlock(&s->mu);
    while (j) {
        struct sched_job *next = j->next;
        finish_job(s, NULL, j, SCHED_SHUTDOWN, "server shutting down");
        j = next;
    }
}

static void *engine_thread(void *arg)
{
    struct sched *s = arg;
    for (;;) {
        atomic_store(&s->heartbeat, sched_now());
        pthread_mutex_lock(&s->mu);
        /* sleep while there is nothing to do; wake at least once a second for the heartbeat */
        while (!s->stopping && !has_work(s)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
            atomic_store(&s->heartbeat, sched_now());
        }
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping)
            break;
        run_step(s);
        /* a queued job that cannot be admitted yet with nothing running would spin: wait */
        pthread_mutex_lock(&s->mu);
        if (s->active == 0 && s->head && !s->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 10 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->wake, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
    }
    end_everything(s);
    publish_gauges(s);
    return NULL;
}

/* ----------------------------------------------------------------- lifecycle --- */

static void free_sched(struct sched *s)
{
    if (s->slots)
        for (uint32_t i = 0; i < s->eng.n_slots; i++)
            free(s->slots[i].cache);
    free(s->slots);
    free(s->b_token);
    free(s->b_pos);
    free(s->b_slot);
    free(s->b_logits);
    free(s->logits);
    free(s);
}

struct sched *sched_start(const struct sched_engine *eng, const struct sched_config *cfg, struct metrics *metrics,
                          char *err, size_t errlen)
{
    struct sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->eng = *eng;
    s->cfg = *cfg;
    s->metrics = metrics;
    uint32_t nb = cfg->batch_tokens + eng->n_slots;
    s->cfg.batch_tokens = nb - eng->n_slots;
    s->max_logits = eng->n_slots;
    s->slots = calloc(eng->n_slots, sizeof *s->slots);
    s->b_token = malloc(nb * sizeof *s->b_token);
    s->b_pos = malloc(nb * sizeof *s->b_pos);
    s->b_slot = malloc(nb * sizeof *s->b_slot);
    s->b_logits = malloc(nb * sizeof *s->b_logits);
    s->logits = malloc((size_t)s->max_logits * eng->n_vocab * sizeof *s->logits);
    bool ok = s->slots && s->b_token && s->b_pos && s->b_slot && s->b_logits && s->logits;
    for (uint32_t i = 0; ok && i < eng->n_slots; i++)
        ok = (s->slots[i].cache = malloc((size_t)eng->n_ctx_max * sizeof(int32_t))) != NULL;
    if (!ok) {
        snprintf(err, errlen, "out of memory for %u slots of %u tokens", eng->n_slots, eng->n_ctx_max);
        free_sched(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->idle, NULL);
    atomic_store(&s->heartbeat, sched_now());
    if (pthread_create(&s->thread, NULL, engine_thread, s) != 0) {
        snprintf(err, errlen, "cannot start the engine thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->idle);
        free_sched(s);
        return NULL;
    }
    return s;
}

bool sched_drain(struct sched *s, double timeout_s)
{
    double end = sched_now() + timeout_s;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    while (has_work(s) && sched_now() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->idle, &s->mu, &ts);
    }
    bool done = !has_work(s);
    pthread_mutex_unlock(&s->mu);
    return done;
}

void sched_stop(struct sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    s->stopping = true;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->idle);
    free_sched(s);
}
