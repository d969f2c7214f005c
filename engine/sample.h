/* sample.h: per-request token sampler (logit bias, penalties, top-k/top-p/min-p, temperature,
 * seeded draw) following llama-server's default sampler chain, plus OpenAI-style logprobs. */
#ifndef MOESERVE_SAMPLE_H
#define MOESERVE_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- PRNG: xoshiro256** (Blackman & Vigna), state seeded by expanding a 64-bit seed with
 * splitmix64. Pure integer arithmetic, so a seed gives the same stream on every platform. */
typedef struct {
    uint64_t s[4];
} sample_rng;

void sample_rng_seed(sample_rng *rng, uint64_t seed);
uint64_t sample_rng_next(sample_rng *rng);
/* Uniform double in [0, 1) from the top 53 bits of the next output. */
double sample_rng_uniform(sample_rng *rng);

/* ---- parameters */
typedef struct {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
} sample_bias;

typedef struct {
    float temperature;       /* <= 0: greedy argmax (ties -> lowest id) */
    int32_t top_k;           /* <= 0 or >= n_vocab: disabled */
    float top_p;             /* >= 1: disabled */
    float min_p;             /* <= 0: disabled */
    float repeat_penalty;    /* 1: disabled. Positive logits /= it, non-positive *= it */
    int32_t repeat_last_n;   /* window of history all penalties look at; 0 off, -1 whole history */
    float presence_penalty;  /* subtracted once from each token present in the window */
    float frequency_penalty; /* subtracted count times (count within the window) */
    const sample_bias *logit_bias; /* copied by sample_create; entries for one token add up */
    size_t n_logit_bias;
    bool has_seed; /* false: the seed is taken from the caller's entropy value */
    uint64_t seed;
} sample_params;

/* llama-server defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat 1.0 over 64,
 * presence/frequency 0, no bias, no seed. */
void sample_params_default(sample_params *p);

typedef struct sample_state sample_state;

/* Validates the parameters (finite numbers, bias tokens in range) and allocates scratch space
 * for n_vocab tokens. `entropy` seeds the PRNG when p->has_seed is false, so the core itself
 * never reads clocks or devices. Returns NULL with a message on error. */
sample_state *sample_create(const sample_params *p, int32_t n_vocab, uint64_t entropy,
                            char *err, size_t errlen);
void sample_free(sample_state *s);

typedef struct {
    int32_t token;
    float prob; /* probability in the final (truncated, temperature-scaled) distribution the
                   token was drawn from; 1 for greedy */
} sample_result;

/* Picks the next token. `logits` (n_vocab floats) is not modified. `history` holds the tokens
 * the penalties look at (the caller decides whether the prompt counts; llama-server counts only
 * generated tokens), oldest first. Chain order, as llama-server applies it by default:
 * logit bias, penalties, top_k, top_p, min_p, temperature, draw. top_p and min_p therefore see
 * temperature-1 probabilities. NaN logits count as banned. Fails (returns -1) when every token
 * is banned or a history token is out of range. */
int sample_next(sample_state *s, const float *logits, const int32_t *history, size_t n_history,
                sample_result *res, char *err, size_t errlen);

typedef struct {
    int32_t token;
    float logprob;
} sample_logprob;

/* OpenAI logprobs for the last sample_next call: log-softmax, at temperature 1, of the logits
 * after logit bias and penalties but before any truncation (top_k/top_p/min_p) or temperature,
 * i.e. the model's own distribution as the request shaped it. Writes the chosen `token`'s
 * logprob (-INFINITY if banned) and the n_top most likely tokens (descending, ties -> lower id,
 * banned tokens never listed) into top[]; returns how many were written (<= n_top), or -1 when
 * sample_next has not run successfully yet. */
int sample_logprobs(sample_state *s, int32_t token, float *token_logprob, sample_logprob *top,
                    int n_top);

#endif
