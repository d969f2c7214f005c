/* test_sched.c: the scheduler against a fake engine whose next token is a hash of the whole
 * sequence so far: results must not depend on batching, chunking, slot choice or neighbours. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "server/sched.h"
#include "tests/test.h"

#define VOCAB 97
#define CTX 512

struct fake {
    uint32_t n_slots;
    int32_t seq[16][CTX];
    uint32_t len[16];
    uint32_t max_slots_in_batch, steps;
    bool bad_position;
    uint32_t keep_step;    /* like a recurrent model: cuts land on multiples of this (0: anywhere) */
};

static uint32_t seq_hash(const int32_t *t, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (uint32_t)t[i]) * 16777619u;
    return h % VOCAB;
}

static bool fake_decode(void *impl, const struct sched_batch *b, float *logits, char *err, size_t errlen)
{
    struct fake *f = impl;
    bool seen[16] = {0};
    uint32_t slots = 0;
    f->steps++;
    for (uint32_t k = 0; k < b->n; k++) {
        uint32_t s = b->slot[k];
        if (b->pos[k] != f->len[s]) { /* positions must continue the slot's sequence exactly */
            f->bad_position = true;
            snprintf(err, errlen, "slot %u: position %u but sequence has %u", s, b->pos[k], f->len[s]);
            return false;
        }
        f->seq[s][f->len[s]++] = b->token[k];
        slots += !seen[s];
        seen[s] = true;
        if (b->want_logits[k]) {
            memset(logits, 0, VOCAB * sizeof *logits);
            logits[seq_hash(f->seq[s], f->len[s])] = 1.0f;
            logits += VOCAB;
        }
    }
    if (slots > f->max_slots_in_batch)
        f->max_slots_in_batch = slots;
    usleep(1000);
    return true;
}

static uint32_t fake_keep(void *impl, uint32_t slot, uint32_t n_keep)
{
    struct fake *f = impl;
    if (f->len[slot] > n_keep)
        f->len[slot] = f->keep_step ? n_keep / f->keep_step * f->keep_step : n_keep;
    return f->len[slot];
}

struct job {
    struct sched_job j;
    int32_t prompt[300];
    int32_t out[CTX];
    uint32_t n_out, cancel_after, progress_calls;
    int32_t stop_token;
    atomic_bool done;
    struct sched_result res;
};

static int32_t choose(void *ctx, const float *logits)
{
    (void)ctx;
    int32_t best = 0;
    for (int32_t i = 1; i < VOCAB; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

static bool accept(void *ctx, int32_t tok)
{
    struct job *jb = ctx;
    jb->out[jb->n_out++] = tok;
    return tok != jb->stop_token;
}

static bool cancelled(void *ctx)
{
    struct job *jb = ctx;
    return jb->cancel_after && jb->n_out >= jb->cancel_after;
}

static void progress(void *ctx, uint32_t done, uint32_t total)
{
    (void)done;
    (void)total;
    ((struct job *)ctx)->progress_calls++;
}

static void finish(void *ctx, const struct sched_result *r)
{
    struct job *jb = ctx;
    jb->res = *r;
    atomic_store(&jb->done, true);
}

static void make_job(struct job *jb, uint32_t n_prompt, uint32_t seed, uint32_t max_new)
{
    memset(jb, 0, sizeof *jb);
    for (uint32_t i = 0; i < n_prompt; i++)
        jb->prompt[i] = (int32_t)((seed * 31 + i * 7) % VOCAB);
    jb->stop_token = -1;
    jb->j = (struct sched_job){.prompt = jb->prompt, .n_prompt = n_prompt, .max_new = max_new, .ctx = jb,
                               .choose = choose, .accept = accept, .cancelled = cancelled,
                               .progress = progress, .finish = finish};
}

/* The continuation a correct scheduler must produce, computed without one. */
static bool matches_reference(const struct job *jb)
{
    int32_t seq[CTX];
    uint32_t n = jb->j.n_prompt;
    memcpy(seq, jb->prompt, n * sizeof *seq);
    for (uint32_t i = 0; i < jb->n_out; i++) {
        if (jb->out[i] != (int32_t)seq_hash(seq, n))
            return false;
        seq[n++] = jb->out[i];
    }
    return true;
}

static void wait_all(struct job *jobs, int n)
{
    for (int t = 0; t < 3000; t++) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += atomic_load(&jobs[i].done);
        if (done == n)
            return;
        usleep(2000);
    }
}

static struct sched *start(struct fake *f, uint32_t slots, uint64_t pool, uint32_t batch, uint32_t queue)
{
    memset(f, 0, sizeof *f);
    f->n_slots = slots;
    struct sched_engine eng = {.impl = f, .n_vocab = VOCAB, .n_slots = slots, .n_ctx_max = CTX,
                               .kv_tokens = pool, .decode = fake_decode, .seq_keep = fake_keep};
    struct sched_config cfg = {.batch_tokens = batch, .queue_size = queue};
    char err[128];
    struct sched *s = sched_start(&eng, &cfg, NULL, err, sizeof err);
    CHECK(s != NULL, "%s", err);
    return s;
}

static void check_concurrent_equals_alone(void)
{
    struct fake f;
    struct sched *s = start(&f, 8, 4096, 64, 64);
    static struct job jobs[8];
    for (int i = 0; i < 8; i++) {
        make_job(&jobs[i], 5 + 23 * (uint32_t)i % 200, (uint32_t)i, 20 + (uint32_t)i);
        CHECK(sched_submit(s, &jobs[i].j) == SCHED_OK, "submit %d", i);
    }
    wait_all(jobs, 8);
    for (int i = 0; i < 8; i++) {
        CHECK(atomic_load(&jobs[i].done) && jobs[i].res.reason == SCHED_LENGTH, "job %d finished by length", i);
        CHECK(jobs[i].n_out == 20 + (uint32_t)i && jobs[i].res.generated == jobs[i].n_out, "job %d generated %u", i, jobs[i].n_out);
        CHECK(matches_reference(&jobs[i]), "job %d text independent of neighbours", i);
    }
    CHECK(f.max_slots_in_batch >= 4, "steps batched several slots (max %u)", f.max_slots_in_batch);
    CHECK(!f.bad_position, "positions contiguous");
    sched_stop(s);
}

static void check_prefix_reuse(void)
{
    struct fake f;
    struct sched *s = start(&f, 2, 4096, 32, 8);
    static struct job a, b, c;
    make_job(&a, 100, 3, 10);
    CHECK(sched_submit(s, &a.j) == SCHED_OK, "submit a");
    wait_all(&a, 1);
    /* the follow-up turn: a's prompt, a's answer, and a new message */
    make_job(&b, 0, 0, 5);
    memcpy(b.prompt, a.prompt, 100 * sizeof(int32_t));
    memcpy(b.prompt + 100, a.out, 10 * sizeof(int32_t));
    for (int i = 0; i < 20; i++)
        b.prompt[110 + i] = i;
    b.j.n_prompt = 130;
    CHECK(sched_submit(s, &b.j) == SCHED_OK, "submit b");
    wait_all(&b, 1);
    CHECK(b.res.cached_tokens == 109, "follow-up reuses prompt + answer in cache (got %u)", b.res.cached_tokens);
    CHECK(a.progress_calls >= 1, "prompt progress reported");
    CHECK(matches_reference(&b), "reused prefix gives the same text");
    /* the same prompt again: everything but the last token comes from the cache */
    make_job(&c, 100, 3, 10);
    CHECK(sched_submit(s, &c.j) == SCHED_OK, "submit c");
    wait_all(&c, 1);
    CHECK(c.res.cached_tokens == 99 && matches_reference(&c) && memcmp(c.out, a.out, sizeof a.out[0] * 10) == 0,
          "identical prompt: 99 cached, same answer (got %u)", c.res.cached_tokens);
    sched_stop(s);
}

/* An engine that keeps less than asked (a recurrent model resuming from a snapshot): the
 * scheduler recomputes from what was really kept and reports that as cached. */
static void check_prefix_reuse_partial_keep(void)
{
    struct fake f;
    struct sched *s = start(&f, 1, 4096, 32, 8);
    f.keep_step = 16;
    static struct job a, c;
    make_job(&a, 100, 3, 10);
    CHECK(sched_submit(s, &a.j) == SCHED_OK, "submit a");
    wait_all(&a, 1);
    make_job(&c, 100, 3, 10);
    CHECK(sched_submit(s, &c.j) == SCHED_OK, "submit c");
    wait_all(&c, 1);
    CHECK(c.res.cached_tokens == 96, "asked to keep 99, the engine kept 96: reported 96 (got %u)", c.res.cached_tokens);
    CHECK(matches_reference(&c) && memcmp(c.out, a.out, sizeof a.out[0] * 10) == 0, "same answer after a partial keep");
    CHECK(!f.bad_position, "positions continue from what was kept");
    sched_stop(s);
}

static void check_cancel_queue_timeout(void)
{
    struct fake f;
    struct sched *s = start(&f, 1, 4096, 32, 2);
    static struct job j[4];
    make_job(&j[0], 10, 1, 0);
    j[0].cancel_after = 60; /* still running when the queue fills below */
    make_job(&j[1], 10, 2, 5);
    make_job(&j[2], 10, 3, 5);
    make_job(&j[3], 10, 4, 5);
    CHECK(sched_submit(s, &j[0].j) == SCHED_OK, "submit");
    usleep(20000);
    CHECK(sched_submit(s, &j[1].j) == SCHED_OK && sched_submit(s, &j[2].j) == SCHED_OK, "queue two");
    CHECK(sched_submit(s, &j[3].j) == SCHED_QUEUE_FULL, "third waiting job refused: queue full");
    wait_all(j, 3);
    CHECK(j[0].res.reason == SCHED_CANCELLED && j[0].n_out <= 61, "cancelled within a step (%u tokens)", j[0].n_out);
    CHECK(j[1].res.reason == SCHED_LENGTH && j[2].res.reason == SCHED_LENGTH, "queued jobs ran after the cancel");
    make_job(&j[3], 10, 4, 5);
    j[3].j.deadline = sched_now() - 1;
    CHECK(sched_submit(s, &j[3].j) == SCHED_OK, "submit expired");
    wait_all(&j[3], 1);
    CHECK(j[3].res.reason == SCHED_TIMEOUT, "deadline passed: timeout");
    struct job too_long;
    make_job(&too_long, 10, 1, 5);
    too_long.j.n_prompt = CTX;
    CHECK(sched_submit(s, &too_long.j) == SCHED_TOO_LONG, "prompt over the context refused");
    sched_stop(s);
}

static void check_chunked_prefill_keeps_streams_going(void)
{
    struct fake f;
    struct sched *s = start(&f, 2, 4096, 16, 8);
    static struct job gen, longp;
    make_job(&gen, 4, 9, 60);
    make_job(&longp, 290, 5, 2);
    CHECK(sched_submit(s, &gen.j) == SCHED_OK, "submit generator");
    while (gen.n_out < 2)
        usleep(1000);
    uint32_t before = gen.n_out;
    CHECK(sched_submit(s, &longp.j) == SCHED_OK, "submit long prompt");
    while (longp.n_out == 0 && !atomic_load(&longp.done))
        usleep(500);
    /* 290 prompt tokens at <= 15 per step take >= 19 steps; the stream got a token each step */
    CHECK(gen.n_out - before >= 15, "stream kept generating during prefill (%u tokens)", gen.n_out - before);
    wait_all(&gen, 1);
    wait_all(&longp, 1);
    CHECK(matches_reference(&gen) && matches_reference(&longp), "both correct");
    sched_stop(s);
}

static void check_pool_and_stop(void)
{
    struct fake f;
    /* pool of 150 tokens: two 100-token jobs cannot run at once */
    struct sched *s = start(&f, 2, 150, 64, 8);
    static struct job a, b, q;
    make_job(&a, 90, 1, 10);
    make_job(&b, 90, 2, 10);
    CHECK(sched_submit(s, &a.j) == SCHED_OK && sched_submit(s, &b.j) == SCHED_OK, "submit both");
    wait_all(&a, 1);
    wait_all(&b, 1);
    CHECK(f.max_slots_in_batch == 1, "pool admitted one at a time (max %u slots per batch)", f.max_slots_in_batch);
    CHECK(matches_reference(&a) && matches_reference(&b) && a.n_out == 10 && b.n_out == 10, "both complete");
    CHECK(sched_drain(s, 5.0), "drain with nothing running");
    make_job(&q, 10, 3, 5);
    CHECK(sched_submit(s, &q.j) == SCHED_CLOSED, "closed after drain");
    sched_stop(s);

    s = start(&f, 1, 4096, 64, 8);
    static struct job r[3];
    for (int i = 0; i < 3; i++) {
        make_job(&r[i], 10, (uint32_t)i, 0);
        CHECK(sched_submit(s, &r[i].j) == SCHED_OK, "submit");
    }
    usleep(20000);
    sched_stop(s);
    for (int i = 0; i < 3; i++)
        CHECK(atomic_load(&r[i].done) && (r[i].res.reason == SCHED_SHUTDOWN || r[i].res.reason == SCHED_LENGTH),
              "stop ends job %d", i);
}

int main(void)
{
    check_concurrent_equals_alone();
    check_prefix_reuse();
    check_prefix_reuse_partial_keep();
    check_cancel_queue_timeout();
    check_chunked_prefill_keeps_streams_going();
    check_pool_and_stop();
    return test_finish();
}
