/* test_sample.c: the sampler: PRNG stream, greedy, seeding, the draw's distribution, each
 * truncation, penalties' exact formula, logit bias, logprobs, errors, full-size vocabulary. */
#include "engine/sample.h"
#include "tests/test.h"

#include <math.h>
#include <string.h>
#include <time.h>

static sample_params plain(float temperature)
{
    sample_params p;
    sample_params_default(&p);
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.has_seed = true;
    p.seed = 1234;
    return p;
}

static int32_t draw(sample_state *s, const float *logits, sample_result *r)
{
    char err[128];
    if (sample_next(s, logits, NULL, 0, r, err, sizeof err) != 0)
        return -1;
    return r->token;
}

static void fill_random(float *l, int n, uint64_t seed)
{
    sample_rng rng;
    sample_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++)
        l[i] = (float)(sample_rng_uniform(&rng) * 8.0 - 4.0);
}

static void test_rng(void)
{
    sample_rng rng;
    sample_rng_seed(&rng, 0);
    /* first splitmix64 output for seed 0, a published constant */
    CHECK(rng.s[0] == 0xe220a8397b1dcdafULL, "splitmix64(0) = %llx", (unsigned long long)rng.s[0]);
    sample_rng_seed(&rng, 42);
    const uint64_t want[3] = { 0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL };
    for (int i = 0; i < 3; i++)
        CHECK(sample_rng_next(&rng) == want[i], "xoshiro256** output %d", i);
    bool in_range = true;
    for (int i = 0; i < 10000; i++) {
        double u = sample_rng_uniform(&rng);
        in_range &= u >= 0.0 && u < 1.0;
    }
    CHECK(in_range, "uniform in [0,1)");
}

static void test_greedy(void)
{
    char err[128];
    sample_params p = plain(0.0f);
    sample_state *s = sample_create(&p, 6, 0, err, sizeof err);
    REQUIRE_VOID(s);
    sample_result r;
    float l1[6] = { 0.1f, -2.0f, 3.5f, 3.4f, 0.0f, 1.0f };
    CHECK(draw(s, l1, &r) == 2 && r.prob == 1.0f, "argmax");
    float l2[6] = { 1.0f, 5.0f, 2.0f, 5.0f, 5.0f, -1.0f };
    CHECK(draw(s, l2, &r) == 1, "ties -> lowest id, got %d", r.token);
    float l3[6] = { NAN, -INFINITY, -3.0f, NAN, -4.0f, -INFINITY };
    CHECK(draw(s, l3, &r) == 2, "NaN and -inf never win, got %d", r.token);
    CHECK(l2[1] == 5.0f && l2[5] == -1.0f, "logits untouched");
    sample_free(s);
}

static void test_seeds(void)
{
    enum { V = 1000, N = 200 };
    static float l[V];
    fill_random(l, V, 7);
    int32_t seq[4][N];
    sample_params p = plain(1.0f);
    const uint64_t seeds[4] = { 99, 99, 100, 0 };
    for (int k = 0; k < 4; k++) {
        char err[128];
        p.has_seed = k < 3;
        p.seed = seeds[k];
        /* k == 3: no seed, entropy 99 must give the same stream as seed 99 */
        sample_state *s = sample_create(&p, V, 99, err, sizeof err);
        REQUIRE_VOID(s);
        sample_result r;
        for (int i = 0; i < N; i++)
            seq[k][i] = draw(s, l, &r);
        sample_free(s);
    }
    CHECK(memcmp(seq[0], seq[1], sizeof seq[0]) == 0, "same seed, same sequence");
    CHECK(memcmp(seq[0], seq[2], sizeof seq[0]) != 0, "different seed, different sequence");
    CHECK(memcmp(seq[0], seq[3], sizeof seq[0]) == 0, "no seed: entropy value seeds");
}

static void test_top_k1_is_greedy(void)
{
    enum { V = 500 };
    static float l[V];
    char err[128];
    sample_params p = plain(1.5f);
    p.top_k = 1;
    sample_state *s = sample_create(&p, V, 0, err, sizeof err);
    sample_params pg = plain(0.0f);
    sample_state *g = sample_create(&pg, V, 0, err, sizeof err);
    REQUIRE_VOID(s && g);
    int same = 0;
    for (int t = 0; t < 50; t++) {
        fill_random(l, V, 1000 + (uint64_t)t);
        sample_result a, b;
        same += draw(s, l, &a) == draw(g, l, &b) && a.prob == 1.0f;
    }
    CHECK(same == 50, "top_k=1 matched greedy %d/50", same);
    sample_free(s);
    sample_free(g);
}

/* Draws n tokens and compares frequencies against want[] (absolute tolerance tol). */
static void check_distribution(const sample_params *p, const float *l, int v, const double *want,
                               int n, double tol, const char *what)
{
    char err[128];
    sample_state *s = sample_create(p, v, 0, err, sizeof err);
    REQUIRE_VOID(s);
    int count[16] = { 0 };
    bool prob_ok = true;
    sample_result r;
    for (int i = 0; i < n; i++) {
        int t = draw(s, l, &r);
        REQUIRE_VOID(t >= 0 && t < v);
        count[t]++;
        prob_ok &= fabs(r.prob - want[t]) < 1e-5;
    }
    for (int t = 0; t < v; t++)
        CHECK(fabs((double)count[t] / n - want[t]) < tol, "%s: token %d freq %.4f want %.4f",
              what, t, (double)count[t] / n, want[t]);
    CHECK(prob_ok, "%s: reported prob equals the truncated softmax", what);
    sample_free(s);
}

static void softmax(const float *l, int n, float temp, const bool *keep, double *out)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += out[i] = keep && !keep[i] ? 0.0 : exp(l[i] / temp);
    for (int i = 0; i < n; i++)
        out[i] /= sum;
}

static void test_distribution(void)
{
    const float l[4] = { 0.0f, 1.0f, 2.0f, 0.5f };
    double want[4];
    sample_params p = plain(1.0f);
    softmax(l, 4, 1.0f, NULL, want);
    check_distribution(&p, l, 4, want, 20000, 0.015, "temp 1");
    p.temperature = 0.5f;
    softmax(l, 4, 0.5f, NULL, want);
    check_distribution(&p, l, 4, want, 20000, 0.015, "temp 0.5");
    p.temperature = 2.0f;
    p.top_k = 2; /* keeps tokens 2 and 1 */
    softmax(l, 4, 2.0f, (const bool[]){ false, true, true, false }, want);
    check_distribution(&p, l, 4, want, 20000, 0.015, "top_k 2, temp 2");
}

static void test_top_p_min_p(void)
{
    /* probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 */
    const float l[4] = { logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f) };
    double want[4];
    sample_params p = plain(1.0f);
    p.top_p = 0.75f; /* 0.5 < 0.75 <= 0.8: keeps 0 and 1 */
    softmax(l, 4, 1.0f, (const bool[]){ true, true, false, false }, want);
    check_distribution(&p, l, 4, want, 5000, 0.03, "top_p 0.75");
    p.top_p = 0.85f; /* keeps 0, 1, 2 */
    softmax(l, 4, 1.0f, (const bool[]){ true, true, true, false }, want);
    check_distribution(&p, l, 4, want, 5000, 0.03, "top_p 0.85");
    p.top_p = 0.4f; /* the top token alone already reaches it */
    softmax(l, 4, 1.0f, (const bool[]){ true, false, false, false }, want);
    check_distribution(&p, l, 4, want, 500, 0.001, "top_p 0.4");
    /* top_p sees temperature-1 probabilities even when the temperature is high */
    p.top_p = 0.75f;
    p.temperature = 3.0f;
    softmax(l, 4, 3.0f, (const bool[]){ true, true, false, false }, want);
    check_distribution(&p, l, 4, want, 5000, 0.03, "top_p 0.75 temp 3");

    p = plain(1.0f);
    p.min_p = 0.2f; /* threshold 0.1: drops only 0.05 */
    softmax(l, 4, 1.0f, (const bool[]){ true, true, true, false }, want);
    check_distribution(&p, l, 4, want, 5000, 0.03, "min_p 0.2");
    p.min_p = 0.7f; /* threshold 0.35: top token only */
    softmax(l, 4, 1.0f, (const bool[]){ true, false, false, false }, want);
    check_distribution(&p, l, 4, want, 500, 0.001, "min_p 0.7");
    p.min_p = 0.2f; /* min_p keeps 0..2, top_p 0.75 then keeps 0..1 */
    p.top_p = 0.75f;
    softmax(l, 4, 1.0f, (const bool[]){ true, true, false, false }, want);
    check_distribution(&p, l, 4, want, 5000, 0.03, "min_p + top_p");
}

/* top_p over many equal logits needs more than the first partial selection of 256. */
static void test_top_p_wide(void)
{
    enum { V = 2000 };
    static float l[V];
    for (int i = 0; i < V; i++)
        l[i] = i < 1000 ? 1.0f : 0.0f;
    char err[128];
    sample_params p = plain(1.0f);
    p.top_p = 0.5f; /* mass of the 1000 ones: e/(e+1) = 0.73, so ~685 of them are kept */
    sample_state *s = sample_create(&p, V, 0, err, sizeof err);
    REQUIRE_VOID(s);
    const int kept = (int)ceil(0.5 * (1000 * M_E + 1000) / M_E);
    int max_tok = -1, over = 0;
    sample_result r;
    for (int i = 0; i < 4000; i++) {
        int t = draw(s, l, &r);
        max_tok = t > max_tok ? t : max_tok;
        over += t >= kept + 1;
    }
    CHECK(over == 0 && max_tok > 600, "top_p wide: kept ~%d, max drawn %d, beyond %d", kept,
          max_tok, over);
    CHECK(fabs(r.prob - 1.0 / kept) < 0.01 / kept, "uniform over the kept set: %g", r.prob);
    sample_free(s);
}

/* Reads back the logits after bias and penalties through logprob differences. */
static float shaped(sample_state *s, int32_t tok, int32_t ref, float ref_logit)
{
    float a, b;
    sample_logprobs(s, tok, &a, NULL, 0);
    sample_logprobs(s, ref, &b, NULL, 0);
    return a - b + ref_logit;
}

static void test_penalties(void)
{
    char err[128];
    const float l[6] = { 1.0f, 2.0f, -1.0f, 0.5f, 3.0f, 0.0f };
    sample_params p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    p.frequency_penalty = 0.1f;
    p.presence_penalty = 0.2f;
    p.repeat_last_n = -1;
    sample_state *s = sample_create(&p, 6, 0, err, sizeof err);
    REQUIRE_VOID(s);
    const int32_t hist[5] = { 1, 2, 1, 4, 5 };
    sample_result r;
    REQUIRE_VOID(sample_next(s, l, hist, 5, &r, err, sizeof err) == 0);
    const float want[6] = {
        1.0f,                        /* not in history */
        2.0f / 1.5f - 2 * 0.1f - 0.2f, /* positive: divided; seen twice */
        -1.0f * 1.5f - 0.1f - 0.2f,  /* negative: multiplied */
        0.5f,
        3.0f / 1.5f - 0.1f - 0.2f,
        0.0f * 1.5f - 0.1f - 0.2f,   /* zero counts as non-positive */
    };
    for (int t = 0; t < 6; t++)
        CHECK(fabsf(shaped(s, t, 0, 1.0f) - want[t]) < 1e-5f, "penalty token %d: %g want %g", t,
              shaped(s, t, 0, 1.0f), want[t]);
    CHECK(r.token == 4, "greedy after penalties: %d", r.token);
    sample_free(s);

    /* window: only the last 2 tokens of {1, 1, 1, 4} count */
    p.repeat_last_n = 2;
    s = sample_create(&p, 6, 0, err, sizeof err);
    REQUIRE_VOID(s);
    const int32_t hist2[4] = { 1, 1, 1, 4 };
    REQUIRE_VOID(sample_next(s, l, hist2, 4, &r, err, sizeof err) == 0);
    CHECK(fabsf(shaped(s, 1, 0, 1.0f) - (2.0f / 1.5f - 0.1f - 0.2f)) < 1e-5f, "window count 1");
    CHECK(fabsf(shaped(s, 4, 0, 1.0f) - (3.0f / 1.5f - 0.3f)) < 1e-5f, "window token 4");
    CHECK(fabsf(shaped(s, 2, 0, 1.0f) - -1.0f) < 1e-5f, "outside window untouched");
    const int32_t bad[2] = { 3, 6 };
    CHECK(sample_next(s, l, bad, 2, &r, err, sizeof err) == -1 && strstr(err, "range"),
          "history token out of range is an error");
    sample_free(s);

    /* repeat_last_n = 0 disables everything */
    p.repeat_last_n = 0;
    s = sample_create(&p, 6, 0, err, sizeof err);
    REQUIRE_VOID(s);
    REQUIRE_VOID(sample_next(s, l, hist, 5, &r, err, sizeof err) == 0);
    CHECK(fabsf(shaped(s, 4, 0, 1.0f) - 3.0f) < 1e-5f, "last_n 0 disables penalties");
    sample_free(s);
}

static void test_bias(void)
{
    char err[128];
    const float l[5] = { 0.0f, 1.0f, 4.0f, 3.0f, 2.0f };
    const sample_bias bias[3] = { { 2, -INFINITY }, { 0, 1.5f }, { 0, 0.25f } };
    sample_params p = plain(1.0f);
    p.logit_bias = bias;
    p.n_logit_bias = 3;
    sample_state *s = sample_create(&p, 5, 0, err, sizeof err);
    REQUIRE_VOID(s);
    sample_result r;
    int banned = 0;
    for (int i = 0; i < 3000; i++)
        banned += draw(s, l, &r) == 2;
    CHECK(banned == 0, "banned token drawn %d times", banned);
    float lp;
    sample_logprobs(s, 2, &lp, NULL, 0);
    CHECK(lp == -INFINITY, "banned token logprob -inf");
    CHECK(fabsf(shaped(s, 0, 1, 1.0f) - 1.75f) < 1e-5f, "biases add up: %g", shaped(s, 0, 1, 1.0f));
    sample_logprob top[5];
    int n = sample_logprobs(s, 3, &lp, top, 5);
    CHECK(n == 4 && top[0].token == 3 && top[3].token == 1, "banned token not listed (n=%d)", n);
    sample_free(s);

    p.temperature = 0.0f;
    s = sample_create(&p, 5, 0, err, sizeof err);
    REQUIRE_VOID(s);
    CHECK(draw(s, l, &r) == 3, "greedy skips the banned argmax");
    sample_free(s);

    const sample_bias all[2] = { { 0, -INFINITY }, { 1, -INFINITY } };
    p.logit_bias = all;
    p.n_logit_bias = 2;
    s = sample_create(&p, 2, 0, err, sizeof err);
    REQUIRE_VOID(s);
    CHECK(sample_next(s, l, NULL, 0, &r, err, sizeof err) == -1 && strstr(err, "banned"),
          "all banned is an error");
    CHECK(sample_logprobs(s, 0, &lp, NULL, 0) == -1, "no logprobs after a failed draw");
    sample_free(s);

    const sample_bias out[1] = { { 5, 1.0f } };
    p.logit_bias = out;
    p.n_logit_bias = 1;
    s = sample_create(&p, 5, 0, err, sizeof err);
    CHECK(!s && strstr(err, "out of range"), "bias token out of range rejected");
    p.n_logit_bias = 0;
    p.temperature = NAN;
    s = sample_create(&p, 5, 0, err, sizeof err);
    CHECK(!s && strstr(err, "temperature"), "NaN temperature rejected");
}

static void test_logprobs(void)
{
    enum { V = 1000 };
    static float l[V];
    fill_random(l, V, 3);
    char err[128];
    sample_params p = plain(0.7f);
    p.top_k = 5;
    sample_state *s = sample_create(&p, V, 0, err, sizeof err);
    REQUIRE_VOID(s);
    sample_result r;
    REQUIRE_VOID(draw(s, l, &r) >= 0);
    double sum = 0;
    for (int t = 0; t < V; t++) {
        float lp;
        sample_logprobs(s, t, &lp, NULL, 0);
        sum += exp(lp);
    }
    CHECK(fabs(sum - 1.0) < 1e-4, "logprobs sum to 1: %g", sum);
    sample_logprob top[20];
    int n = sample_logprobs(s, r.token, NULL, top, 20);
    CHECK(n == 20, "20 alternatives");
    bool desc = true;
    for (int i = 1; i < n; i++)
        desc &= top[i].logprob <= top[i - 1].logprob;
    CHECK(desc, "alternatives best first");
    int best = 0;
    for (int t = 1; t < V; t++)
        best = l[t] > l[best] ? t : best;
    CHECK(top[0].token == best, "first alternative is the argmax");
    bool among = false;
    for (int i = 0; i < 5; i++)
        among |= top[i].token == r.token;
    CHECK(among, "top_k 5 draw is among the 5 best");
    /* logprobs are untruncated, temperature 1: exp(top[0]) is the plain softmax value */
    double z = 0;
    for (int t = 0; t < V; t++)
        z += exp(l[t] - l[best]);
    CHECK(fabs(exp(top[0].logprob) - 1.0 / z) < 1e-5, "temperature-1 untruncated logprob");
    sample_free(s);
}

/* Inputs where a softmax would divide infinities must still give a sane answer. */
static void test_degenerate(void)
{
    char err[128];
    sample_params p = plain(1.0f);
    sample_state *s = sample_create(&p, 4, 0, err, sizeof err);
    REQUIRE_VOID(s);
    const float l[4] = { 1.0f, INFINITY, 2.0f, INFINITY };
    sample_result r;
    CHECK(draw(s, l, &r) == 1 && r.prob == 1.0f, "+inf logit wins, lowest id");
    float lp0, lp1;
    sample_logprob top[4];
    int n = sample_logprobs(s, 1, &lp1, top, 4);
    sample_logprobs(s, 0, &lp0, NULL, 0);
    CHECK(n == 2 && fabsf(lp1 - logf(0.5f)) < 1e-6f && lp0 == -INFINITY,
          "+inf tokens share the mass (n=%d lp1=%g)", n, lp1);
    sample_free(s);

    p.min_p = 5.0f; /* above 1: only the best survives */
    s = sample_create(&p, 4, 0, err, sizeof err);
    REQUIRE_VOID(s);
    const float l2[4] = { 1.0f, 3.0f, 2.9f, 0.0f };
    int ones = 0;
    for (int i = 0; i < 200; i++)
        ones += draw(s, l2, &r) == 1;
    CHECK(ones == 200, "min_p > 1 keeps the best only (%d/200)", ones);
    sample_free(s);

    p = plain(1e-42f); /* 1/T overflows: greedy */
    s = sample_create(&p, 4, 0, err, sizeof err);
    REQUIRE_VOID(s);
    CHECK(draw(s, l2, &r) == 1, "denormal temperature is greedy");
    sample_free(s);
}

/* The real vocabulary size: results stay in the kept set; timing printed for the record. */
static void test_full_vocab(void)
{
    enum { V = 151936 };
    float *l = malloc(V * sizeof *l);
    REQUIRE_VOID(l);
    fill_random(l, V, 11);
    char err[128];
    sample_params p;
    sample_params_default(&p); /* top_k 40, top_p 0.95, min_p 0.05, temp 0.8 */
    sample_state *s = sample_create(&p, V, 5, err, sizeof err);
    REQUIRE_VOID(s);
    int rank_ok = 0;
    sample_result r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int32_t drawn[20];
    for (int i = 0; i < 20; i++)
        drawn[i] = draw(s, l, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (int i = 0; i < 20; i++) {
        int better_count = 0;
        for (int t = 0; t < V; t++)
            better_count += drawn[i] < 0 || l[t] > l[drawn[i]];
        rank_ok += better_count < 40;
    }
    CHECK(rank_ok == 20, "defaults: draw within top 40 (%d/20)", rank_ok);
    sample_free(s);

    p.top_k = 0; /* top_p 0.95 + min_p over the whole vocabulary */
    s = sample_create(&p, V, 5, err, sizeof err);
    REQUIRE_VOID(s);
    struct timespec t2, t3;
    clock_gettime(CLOCK_MONOTONIC, &t2);
    for (int i = 0; i < 5; i++)
        drawn[i] = draw(s, l, &r);
    clock_gettime(CLOCK_MONOTONIC, &t3);
    float mx = -INFINITY;
    for (int t = 0; t < V; t++)
        mx = l[t] > mx ? l[t] : mx;
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += drawn[i] >= 0 && l[drawn[i]] >= mx + logf(0.05f);
    CHECK(ok == 5, "min_p bound holds over the full vocabulary");
    sample_logprob top[5];
    struct timespec t4, t5;
    clock_gettime(CLOCK_MONOTONIC, &t4);
    int n = sample_logprobs(s, r.token, NULL, top, 5);
    clock_gettime(CLOCK_MONOTONIC, &t5);
    CHECK(n == 5, "top 5 logprobs");
    double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / 20;
    double ms2 = ((t3.tv_sec - t2.tv_sec) * 1e3 + (t3.tv_nsec - t2.tv_nsec) / 1e6) / 5;
    double ms3 = (t5.tv_sec - t4.tv_sec) * 1e3 + (t5.tv_nsec - t4.tv_nsec) / 1e6;
    printf("V=%d: defaults %.3f ms/token, top_k off %.3f ms/token, logprobs %.3f ms\n", V, ms,
           ms2, ms3);
    sample_free(s);
    free(l);
}

int main(void)
{
    test_rng();
    test_greedy();
    test_seeds();
    test_top_k1_is_greedy();
    test_distribution();
    test_top_p_min_p();
    test_top_p_wide();
    test_penalties();
    test_bias();
    test_logprobs();
    test_degenerate();
    test_full_vocab();
    return test_finish();
}
