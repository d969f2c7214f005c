/* sample.c: the token sampler: xoshiro256** PRNG, the llama-server sampler chain on a scratch
 * copy of the logits, partial selection instead of full sorts, and logprobs. */
#include "engine/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- PRNG --- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sample_rng_seed(sample_rng *rng, uint64_t seed)
{
    /* splitmix64 never yields four zero words, so the xoshiro state is always valid */
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sample_rng_next(sample_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

double sample_rng_uniform(sample_rng *rng)
{
    return (double)(sample_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------- state --- */

typedef struct {
    int32_t id;
    float logit;
} cand;

struct sample_state {
    sample_params p;       /* p.logit_bias points at `bias` below */
    sample_bias *bias;
    int32_t n_vocab;
    sample_rng rng;
    float *work;           /* logits after bias and penalties, kept for sample_logprobs */
    cand *cands;           /* candidate scratch, n_vocab entries */
    int32_t *window;       /* sorted copy of the penalty window */
    size_t window_cap;
    bool have_work;
};

void sample_params_default(sample_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

static bool params_valid(const sample_params *p, int32_t n_vocab, char *err, size_t errlen)
{
    if (n_vocab <= 0)
        return fail(err, errlen, "sampler: n_vocab must be positive"), false;
    if (isnan(p->temperature) || isinf(p->temperature))
        return fail(err, errlen, "sampler: temperature must be finite"), false;
    if (isnan(p->top_p) || isnan(p->min_p) || !isfinite(p->repeat_penalty) ||
        !isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return fail(err, errlen, "sampler: top_p, min_p and penalties must be finite"), false;
    if (p->repeat_penalty <= 0.0f)
        return fail(err, errlen, "sampler: repeat_penalty must be positive"), false;
    if (p->repeat_last_n < -1)
        return fail(err, errlen, "sampler: repeat_last_n must be >= -1"), false;
    if (p->n_logit_bias && !p->logit_bias)
        return fail(err, errlen, "sampler: logit_bias list missing"), false;
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        const sample_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab) {
            if (err && errlen)
                snprintf(err, errlen, "sampler: logit_bias token %d out of range [0, %d)",
                         (int)b->token, (int)n_vocab);
            return false;
        }
        if (isnan(b->bias) || b->bias == INFINITY) {
            if (err && errlen)
                snprintf(err, errlen, "sampler: logit_bias for token %d must be finite or -inf",
                         (int)b->token);
            return false;
        }
    }
    return true;
}

sample_state *sample_create(const sample_params *p, int32_t n_vocab, uint64_t entropy,
                            char *err, size_t errlen)
{
    if (!p || !params_valid(p, n_vocab, err, errlen))
        return NULL;
    sample_state *s = calloc(1, sizeof *s);
    if (!s)
        return fail(err, errlen, "sampler: out of memory"), NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    if (p->n_logit_bias) {
        s->bias = malloc(p->n_logit_bias * sizeof *s->bias);
        if (s->bias)
            memcpy(s->bias, p->logit_bias, p->n_logit_bias * sizeof *s->bias);
    }
    if (!s->work || !s->cands || (p->n_logit_bias && !s->bias)) {
        sample_free(s);
        return fail(err, errlen, "sampler: out of memory"), NULL;
    }
    s->p.logit_bias = s->bias;
    sample_rng_seed(&s->rng, p->has_seed ? p->seed : entropy);
    return s;
}

void sample_free(sample_state *s)
{
    if (!s)
        return;
    free(s->work);
    free(s->cands);
    free(s->window);
    free(s->bias);
    free(s);
}

/* ------------------------------------------------------------ selection --- */

/* Strict order used everywhere: higher logit first, ties -> lower id (deterministic). */
static bool better(const cand *a, const cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_better(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* Min-heap on `better`: the root is the worst of the kept elements. */
static void sift_down(cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (r < n && better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Rearranges c[0..n) so that c[0..m) holds the m best, sorted best first: O(n log m), since
 * most elements lose a single comparison against the heap root. */
static void select_top(cand *c, size_t n, size_t m)
{
    if (m >= n) {
        qsort(c, n, sizeof *c, cmp_better);
        return;
    }
    if (m == 0)
        return;
    for (size_t i = m / 2; i-- > 0;)
        sift_down(c, m, i);
    for (size_t i = m; i < n; i++) {
        if (better(&c[i], &c[0])) {
            cand t = c[0];
            c[0] = c[i];
            c[i] = t;
            sift_down(c, m, 0);
        }
    }
    /* heap sort: pop the worst to the back until the prefix is ordered best first */
    for (size_t k = m; k > 1; k--) {
        cand t = c[0];
        c[0] = c[k - 1];
        c[k - 1] = t;
        sift_down(c, k - 1, 0);
    }
}

static bool is_live(float x)
{
    return x > -INFINITY; /* false for -inf and NaN */
}

/* ------------------------------------------------------------- chain ------ */

static int cmp_int32(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return (a > b) - (a < b);
}

static bool penalties_enabled(const sample_params *p)
{
    return p->repeat_last_n != 0 &&
           (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
            p->frequency_penalty != 0.0f);
}

/* Counts each token of the window once per run of a sorted copy, then penalises it. */
static int apply_penalties(sample_state *s, const int32_t *history, size_t n_history,
                           char *err, size_t errlen)
{
    const sample_params *p = &s->p;
    if (!penalties_enabled(p) || n_history == 0)
        return 0;
    size_t n = n_history;
    if (p->repeat_last_n > 0 && (size_t)p->repeat_last_n < n)
        n = (size_t)p->repeat_last_n;
    if (!history)
        return fail(err, errlen, "sampler: history missing");
    if (n > s->window_cap) {
        int32_t *w = realloc(s->window, n * sizeof *w);
        if (!w)
            return fail(err, errlen, "sampler: out of memory");
        s->window = w;
        s->window_cap = n;
    }
    memcpy(s->window, history + (n_history - n), n * sizeof *s->window);
    qsort(s->window, n, sizeof *s->window, cmp_int32);
    if (s->window[0] < 0 || s->window[n - 1] >= s->n_vocab)
        return fail(err, errlen, "sampler: history token out of range");
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s->window[j] == s->window[i])
            j++;
        float *l = &s->work[s->window[i]];
        float count = (float)(j - i);
        *l = *l <= 0.0f ? *l * p->repeat_penalty : *l / p->repeat_penalty;
        *l -= count * p->frequency_penalty + p->presence_penalty;
        i = j;
    }
    return 0;
}

static int32_t argmax_lowest_id(const float *l, int32_t n)
{
    int32_t best = -1;
    for (int32_t i = 0; i < n; i++)
        if (is_live(l[i]) && (best < 0 || l[i] > l[best]))
            best = i;
    return best;
}

/* Keeps the smallest best-first prefix whose probability (normalised over the n candidates,
 * which all have logit <= max_logit) reaches top_p; returns its length. Sorts lazily: the best
 * 256 first, everything only when they are not enough. */
static size_t top_p_cut(cand *c, size_t n_kept, bool sorted, float max_logit, double z,
                        float top_p)
{
    size_t sorted_len = sorted ? n_kept : 0;
    double cum = 0.0;
    for (size_t i = 0; i < n_kept; i++) {
        if (i == sorted_len) {
            /* c[0..sorted_len) already holds the best, so only the rest needs selecting */
            size_t want = sorted_len == 0 ? 256 : sorted_len * 4;
            if (want > n_kept)
                want = n_kept;
            select_top(c + sorted_len, n_kept - sorted_len, want - sorted_len);
            sorted_len = want;
        }
        cum += expf(c[i].logit - max_logit) / z;
        if (cum >= top_p)
            return i + 1;
    }
    return n_kept; /* rounding kept cum just below top_p: keep everything */
}

int sample_next(sample_state *s, const float *logits, const int32_t *history, size_t n_history,
                sample_result *res, char *err, size_t errlen)
{
    const sample_params *p = &s->p;
    const int32_t nv = s->n_vocab;
    s->have_work = false;
    if (!logits || !res)
        return fail(err, errlen, "sampler: missing logits or result");

    memcpy(s->work, logits, (size_t)nv * sizeof *s->work);
    for (size_t i = 0; i < p->n_logit_bias; i++)
        s->work[p->logit_bias[i].token] += p->logit_bias[i].bias;
    if (apply_penalties(s, history, n_history, err, errlen))
        return -1;

    int32_t best = argmax_lowest_id(s->work, nv);
    if (best < 0)
        return fail(err, errlen, "sampler: every token is banned");
    s->have_work = true;
    /* greedy, and the degenerate cases where a softmax would divide infinities: a temperature
     * whose inverse overflows, or a logit that is (or was biased to) +inf */
    if (p->temperature <= 0.0f || !isfinite(1.0f / p->temperature) ||
        s->work[best] == INFINITY) {
        res->token = best;
        res->prob = 1.0f;
        return 0;
    }
    const float max_logit = s->work[best];

    size_t n = 0;
    for (int32_t i = 0; i < nv; i++)
        if (is_live(s->work[i]))
            s->cands[n++] = (cand){ i, s->work[i] };
    bool sorted = false;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        select_top(s->cands, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        sorted = true;
    }

    /* top_p normalises over the post-top_k set; min_p keeps logit >= max + log(min_p). Both
     * keep a best-first prefix and min_p does not depend on what top_p removed, so filtering
     * by min_p first (cheap, shrinks the set) then cutting by top_p gives the same set. */
    double z = 0.0;
    if (p->top_p < 1.0f)
        for (size_t i = 0; i < n; i++)
            z += expf(s->cands[i].logit - max_logit);
    if (p->min_p > 0.0f) {
        /* min_p >= 1 keeps just the tokens tied with the best */
        const float min_logit = p->min_p >= 1.0f ? max_logit : max_logit + logf(p->min_p);
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (s->cands[i].logit >= min_logit)
                s->cands[k++] = s->cands[i];
        n = k; /* the best token always survives */
    }
    if (p->top_p < 1.0f)
        n = top_p_cut(s->cands, n, sorted, max_logit, z, p->top_p);

    /* temperature, softmax and the draw */
    const float inv_t = 1.0f / p->temperature;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += expf((s->cands[i].logit - max_logit) * inv_t);
    const double target = sample_rng_uniform(&s->rng) * sum;
    double cum = 0.0;
    size_t pick = n - 1;
    for (size_t i = 0; i < n; i++) {
        cum += expf((s->cands[i].logit - max_logit) * inv_t);
        if (cum > target) {
            pick = i;
            break;
        }
    }
    res->token = s->cands[pick].id;
    res->prob = (float)(expf((s->cands[pick].logit - max_logit) * inv_t) / sum);
    return 0;
}

int sample_logprobs(sample_state *s, int32_t token, float *token_logprob, sample_logprob *top,
                    int n_top)
{
    if (!s->have_work)
        return -1;
    const int32_t nv = s->n_vocab;
    size_t n = 0;
    float max_logit = -INFINITY;
    for (int32_t i = 0; i < nv; i++)
        if (is_live(s->work[i])) {
            s->cands[n++] = (cand){ i, s->work[i] };
            if (s->work[i] > max_logit)
                max_logit = s->work[i];
        }
    double log_z;
    if (max_logit == INFINITY) {
        /* the +inf tokens share all the mass equally; finite ones drop out like banned ones */
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (s->cands[i].logit == INFINITY)
                s->cands[k++] = (cand){ s->cands[i].id, 0.0f };
        n = k;
        log_z = log((double)n);
        if (token_logprob) {
            bool top_tok = token >= 0 && token < nv && s->work[token] == INFINITY;
            *token_logprob = top_tok ? (float)-log_z : -INFINITY;
            token_logprob = NULL;
        }
    } else {
        double z = 0.0;
        for (size_t i = 0; i < n; i++)
            z += expf(s->cands[i].logit - max_logit);
        log_z = log(z) + max_logit;
    }
    if (token_logprob) {
        bool live = token >= 0 && token < nv && is_live(s->work[token]);
        *token_logprob = live ? (float)((double)s->work[token] - log_z) : -INFINITY;
    }
    if (!top || n_top <= 0)
        return 0;
    size_t m = (size_t)n_top < n ? (size_t)n_top : n;
    select_top(s->cands, n, m);
    for (size_t i = 0; i < m; i++)
        top[i] = (sample_logprob){ s->cands[i].id, (float)((double)s->cands[i].logit - log_z) };
    return (int)m;
}
