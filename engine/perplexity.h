/* perplexity.h: perplexity and KL divergence over a token stream, scored exactly as
 * llama.cpp's llama-perplexity does (chunks of n_ctx, the second half of each chunk scored),
 * with its KL-divergence base file format, so results of both programs can be compared. */
#ifndef MOESERVE_PERPLEXITY_H
#define MOESERVE_PERPLEXITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Evaluates one chunk from an empty cache: n tokens at positions 0..n-1; writes logits for
 * positions first..n-1 (n - first rows of n_vocab floats). */
typedef bool (*ppl_eval_fn)(void *ctx, const int32_t *tokens, uint32_t n, uint32_t first, float *logits,
                            char *err, size_t errlen);

enum ppl_mode { PPL_PLAIN, PPL_WRITE_BASE, PPL_COMPARE_BASE };

struct ppl_params {
    uint32_t n_ctx;        /* tokens per chunk */
    int32_t n_chunks;      /* -1: as many as the text holds */
    uint32_t n_vocab;
    enum ppl_mode mode;
    const char *base_path; /* PPL_WRITE_BASE / PPL_COMPARE_BASE */
    ppl_eval_fn eval;
    void *eval_ctx;
    FILE *out;             /* the result lines */
};

struct ppl_result {
    double ppl, ppl_unc;   /* final estimate and its uncertainty */
    uint32_t chunks;
    uint64_t scored;       /* tokens scored */
    /* compare mode */
    double kld_mean, kld_unc, same_top, rms_dp, ppl_ratio;
};

/* Runs over tokens (PPL_COMPARE_BASE reads its tokens from the base file instead, and ignores
 * `tokens`). False with a message naming the file or the chunk at fault. */
bool ppl_run(const struct ppl_params *p, const int32_t *tokens, size_t n_tokens, struct ppl_result *res,
             char *err, size_t errlen);

/* -log p(tok) of one logits row, computed as llama-perplexity does. */
double ppl_nll(uint32_t n_vocab, const float *logits, int32_t tok);

#endif
