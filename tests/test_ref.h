/* test_ref.h: what the model tests share for comparing logits with llama.cpp's *.ref.json: one
 * prompt's recorded outputs, argmax, and KL divergence over the softmax of two logit vectors. */
#ifndef MOESERVE_TEST_REF_H
#define MOESERVE_TEST_REF_H

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* One prompt of a *.ref.json: its tokens (owned) and llama.cpp's outputs (borrowed from the JSON). */
struct prompt {
    int32_t *tokens;
    size_t n;
    json_t *top20, *last, *greedy;
};

/* Reads a prompt object; false if a field is missing, the prompt is empty or longer than
 * max_tokens, or out of memory. */
static inline bool load_prompt(json_t *jp, struct prompt *p, size_t max_tokens)
{
    json_t *toks = json_object_get(jp, "tokens");
    p->n = json_array_size(toks);
    p->tokens = malloc((p->n ? p->n : 1) * sizeof *p->tokens);
    if (!p->tokens)
        return false;
    for (size_t i = 0; i < p->n; i++)
        p->tokens[i] = (int32_t)json_integer_value(json_array_get(toks, i));
    p->top20 = json_object_get(jp, "top20");
    p->last = json_object_get(jp, "last_logits");
    p->greedy = json_object_get(jp, "greedy");
    return p->n > 0 && p->n <= max_tokens && p->top20 && p->last && p->greedy;
}

static inline int32_t argmax(const float *x, uint32_t n)
{
    int32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = (int32_t)i;
    return b;
}

/* KL(p || q) over the softmax of two logit vectors. */
static inline double kl_logits(const float *p, const float *q, uint32_t n)
{
    double mp = -1e30, mq = -1e30, sp = 0, sq = 0, kl = 0;
    for (uint32_t i = 0; i < n; i++) {
        mp = fmax(mp, p[i]);
        mq = fmax(mq, q[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        sp += exp(p[i] - mp);
        sq += exp(q[i] - mq);
    }
    for (uint32_t i = 0; i < n; i++) {
        double lp = p[i] - mp - log(sp), lq = q[i] - mq - log(sq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* The first n numbers of a JSON array as floats (malloc'd; NULL when out of memory). */
static inline float *json_floats(const json_t *a, uint32_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (uint32_t i = 0; x && i < n; i++)
        x[i] = (float)json_number_value(json_array_get(a, i));
    return x;
}

/* KL(reference || ours), the reference as a JSON array of logits. */
static inline double kl_div(const json_t *ref, const float *ours, uint32_t n)
{
    float *r = json_floats(ref, n);
    const double kl = r ? kl_logits(r, ours, n) : INFINITY;
    free(r);
    return kl;
}

/* Greedy decoding from `tok` (the argmax after the prompt) against the recorded continuation:
 * `step` runs one token at position p->n + s and writes its logits (false stops). *same: steps
 * that match before the first difference; *required: steps before the first reference margin
 * below 0.1 (the README's bound). logits: V floats of scratch. */
typedef bool (*greedy_step_fn)(void *ctx, int32_t tok, uint32_t pos, float *logits);

static inline void greedy_compare(const struct prompt *p, int32_t tok, uint32_t V, greedy_step_fn step, void *ctx,
                                  float *logits, size_t *same, size_t *required)
{
    const size_t steps = json_array_size(p->greedy);
    bool diverged = false;
    *same = 0;
    *required = steps;
    for (size_t s = 0; s < steps; s++) {
        json_t *g = json_array_get(p->greedy, s);
        if (json_number_value(json_array_get(g, 1)) < 0.1 && *required == steps)
            *required = s;
        if (!diverged && tok == json_integer_value(json_array_get(g, 0)))
            (*same)++;
        else
            diverged = true;
        if (!step(ctx, tok, (uint32_t)(p->n + s), logits))
            break;
        tok = argmax(logits, V);
    }
}

#endif
