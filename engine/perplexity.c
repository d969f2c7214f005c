/* perplexity.c: llama-perplexity's scoring (engine/perplexity.h): negative log-likelihoods
 * over the second half of each chunk, the compressed log-probability base file (a scale and a
 * minimum, then one uint16 per vocabulary entry), and the KL-divergence statistics. */
#include "engine/perplexity.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Round half to even, as ggml's nearest_int does for these magnitudes. */
static int nearest_int(float v)
{
    return (int)nearbyintf(v);
}

double ppl_nll(uint32_t n_vocab, const float *logits, int32_t tok)
{
    float max = logits[0];
    for (uint32_t i = 1; i < n_vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    double sum = 0;
    for (uint32_t i = 0; i < n_vocab; i++)
        sum += expf(logits[i] - max);
    return -((double)(logits[tok] - max) - log(sum));
}

/* Row of the base file: two floats (scale, min log-prob) then n_vocab uint16, padded to an
 * even count; the values cover the 16 nats below the top log-probability. */
static uint32_t row_u16(uint32_t n_vocab)
{
    return 2 * ((n_vocab + 1) / 2) + 4;
}

static double encode_row(uint32_t n_vocab, const float *logits, int32_t tok, uint16_t *row)
{
    float max = logits[0], min = logits[0];
    for (uint32_t i = 1; i < n_vocab; i++) {
        max = logits[i] > max ? logits[i] : max;
        min = logits[i] < min ? logits[i] : min;
    }
    min = min > max - 16 ? min : max - 16;
    double sum = 0;
    for (uint32_t i = 0; i < n_vocab; i++)
        sum += expf(logits[i] - max);
    const float log_sum = (float)log(sum);
    const float min_log_prob = min - max - log_sum, scale = (max - min) / 65535.f;
    memcpy(row, &scale, 4);
    memcpy(row + 2, &min_log_prob, 4);
    uint16_t *q = row + 4;
    memset(q, 0, (row_u16(n_vocab) - 4) * sizeof *q);
    if (scale != 0) {
        const float inv = 1 / scale;
        for (uint32_t i = 0; i < n_vocab; i++)
            q[i] = logits[i] > min ? (uint16_t)nearest_int(inv * (logits[i] - min)) : 0;
    }
    return (double)(max + log_sum - logits[tok]);
}

struct kld_acc {
    double nll, nll2, nll_base, nll_base2, nll_nll_base, kld, kld2, dp, dp2, dp4;
    uint64_t same_top, count;
    float *kld_values, *dp_values;
};

/* One scored position against the base row (llama-perplexity's log_softmax with a base). */
static void compare_row(uint32_t n_vocab, const float *logits, const uint16_t *row, int32_t tok, struct kld_acc *k)
{
    float max = logits[0];
    uint32_t imax = 0;
    for (uint32_t i = 1; i < n_vocab; i++)
        if (logits[i] > max) {
            max = logits[i];
            imax = i;
        }
    double sum_exp = 0;
    for (uint32_t i = 0; i < n_vocab; i++)
        sum_exp += expf(logits[i] - max);
    const float log_sum = (float)log(sum_exp);
    float scale, min_log_prob;
    memcpy(&scale, row, 4);
    memcpy(&min_log_prob, row + 2, 4);
    const uint16_t *q = row + 4;
    const float nll = max + log_sum - logits[tok];
    const float nll_base = -(scale * q[tok] + min_log_prob);
    k->nll += nll;
    k->nll2 += (double)nll * nll;
    k->nll_base += nll_base;
    k->nll_base2 += (double)nll_base * nll_base;
    k->nll_nll_base += (double)nll * nll_base;
    const float top = max + log_sum;
    double kl = 0;
    uint32_t imax_base = 0;
    float best = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        const float lp_base = scale * q[i] + min_log_prob;
        if (i == 0 || lp_base > best) {
            best = lp_base;
            imax_base = i;
        }
        if (lp_base > -16.f)
            kl += expf(lp_base) * (lp_base - logits[i] + top);
    }
    k->kld += kl;
    k->kld2 += kl * kl;
    k->same_top += imax == imax_base;
    const float dp = expf(-nll) - expf(-nll_base);
    k->dp += dp;
    k->dp2 += (double)dp * dp;
    k->dp4 += (double)dp * dp * dp * dp;
    k->kld_values[k->count] = (float)kl;
    k->dp_values[k->count] = dp;
    k->count++;
}

static void mean_unc(double sum, double sum2, uint64_t n, double *mean, double *unc)
{
    *mean = n ? sum / (double)n : 0;
    double var = n ? sum2 / (double)n - *mean * *mean : 0;
    *unc = var > 0 && n > 10 ? sqrt(var / (double)(n - 1)) : 0;
}

static double covariance(double a, double b, double ab, uint64_t n)
{
    if (n < 10)
        return 0;
    return (ab / (double)n - (a / (double)n) * (b / (double)n)) / (double)(n - 1);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static float percentile(const float *v, uint64_t n, float fraction)
{
    if (fraction <= 0)
        return v[0];
    if (fraction >= 1)
        return v[n - 1];
    float p = fraction * (float)(n - 1);
    uint64_t ip = (uint64_t)p;
    p -= (float)ip;
    return (1 - p) * v[ip] + p * v[ip + 1 < n ? ip + 1 : n - 1];
}

static float median(const float *v, uint64_t n)
{
    return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

/* The per-chunk line of the comparison table. */
static void print_compare_line(FILE *out, uint32_t chunk, const struct kld_acc *k)
{
    double lp, lpu, lb, lbu, kl, klu, mse, mseu;
    mean_unc(k->nll, k->nll2, k->count, &lp, &lpu);
    mean_unc(k->nll_base, k->nll_base2, k->count, &lb, &lbu);
    mean_unc(k->kld, k->kld2, k->count, &kl, &klu);
    mean_unc(k->dp2, k->dp4, k->count, &mse, &mseu);
    double cov = covariance(k->nll, k->nll_base, k->nll_nll_base, k->count);
    double rms = sqrt(mse), top = (double)k->same_top / (double)k->count;
    fprintf(out, "%4u    %9.4lf ± %9.4lf    %10.5lf ± %10.5lf    %10.5lf ± %10.5lf    %6.3lf ± %6.3lf %%    %6.3lf ± %6.3lf %%\n",
            chunk, exp(lp), exp(lp) * lpu, lp - lb, sqrt(lpu * lpu + lbu * lbu - 2 * cov), kl, klu, 100 * rms,
            rms > 0 ? 100 * 0.5 / rms * mseu : 0, 100 * top, 100 * sqrt(top * (1 - top) / (double)(k->count - 1)));
}

/* The closing statistics, line for line as llama-perplexity prints them. */
static void print_compare_stats(FILE *out, struct kld_acc *k, struct ppl_result *res)
{
    uint64_t n = k->count;
    qsort(k->kld_values, n, sizeof(float), cmp_float);
    qsort(k->dp_values, n, sizeof(float), cmp_float);
    double lp, lpu, lb, lbu, kl, klu, dp, dpu, mse, mseu;
    mean_unc(k->nll, k->nll2, n, &lp, &lpu);
    mean_unc(k->nll_base, k->nll_base2, n, &lb, &lbu);
    mean_unc(k->kld, k->kld2, n, &kl, &klu);
    mean_unc(k->dp, k->dp2, n, &dp, &dpu);
    mean_unc(k->dp2, k->dp4, n, &mse, &mseu);
    double cov = covariance(k->nll, k->nll_base, k->nll_nll_base, n);
    double ppl = exp(lp), ppl_u = ppl * lpu, base = exp(lb), base_u = base * lbu;
    double ratio_log = lp - lb, ratio_log_u = sqrt(lpu * lpu + lbu * lbu - 2 * cov);
    fprintf(out, "====== Perplexity statistics ======\n");
    fprintf(out, "Mean PPL(Q)                   : %10.6lf ± %10.6lf\n", ppl, ppl_u);
    fprintf(out, "Mean PPL(base)                : %10.6lf ± %10.6lf\n", base, base_u);
    fprintf(out, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2lf%%\n", 100.0 * cov / (lpu * lbu));
    fprintf(out, "Mean ln(PPL(Q)/PPL(base))     : %10.6lf ± %10.6lf\n", ratio_log, ratio_log_u);
    fprintf(out, "Mean PPL(Q)/PPL(base)         : %10.6lf ± %10.6lf\n", exp(ratio_log), exp(ratio_log) * ratio_log_u);
    fprintf(out, "Mean PPL(Q)-PPL(base)         : %10.6lf ± %10.6lf\n", ppl - base,
            sqrt(ppl_u * ppl_u + base_u * base_u - 2.0 * ppl * base * cov));
    fprintf(out, "\n====== KL divergence statistics ======\n");
    fprintf(out, "Mean    KLD: %10.6lf ± %10.6lf\n", kl, klu);
    static const struct {
        const char *label;
        float f;
    } kq[] = {{"99.9%   KLD", 0.999f}, {"99.0%   KLD", 0.990f}, {"95.0%   KLD", 0.950f}, {"90.0%   KLD", 0.900f}},
      kq2[] = {{"10.0%   KLD", 0.100f}, {" 5.0%   KLD", 0.050f}, {" 1.0%   KLD", 0.010f}, {" 0.1%   KLD", 0.001f}};
    fprintf(out, "Maximum KLD: %10.6f\n", k->kld_values[n - 1]);
    for (size_t i = 0; i < 4; i++)
        fprintf(out, "%s: %10.6f\n", kq[i].label, percentile(k->kld_values, n, kq[i].f));
    fprintf(out, "Median  KLD: %10.6f\n", median(k->kld_values, n));
    for (size_t i = 0; i < 4; i++)
        fprintf(out, "%s: %10.6f\n", kq2[i].label, percentile(k->kld_values, n, kq2[i].f));
    fprintf(out, "Minimum KLD: %10.6f\n", k->kld_values[0]);
    fprintf(out, "\n====== Token probability statistics ======\n");
    fprintf(out, "Mean    Δp: %6.3lf ± %5.3lf %%\n", 100.0 * dp, 100.0 * dpu);
    fprintf(out, "Maximum Δp: %6.3lf%%\n", 100.0 * k->dp_values[n - 1]);
    static const float pq[] = {0.999f, 0.990f, 0.950f, 0.900f, 0.750f};
    static const float pq2[] = {0.250f, 0.100f, 0.050f, 0.010f, 0.001f};
    for (size_t i = 0; i < 5; i++)
        fprintf(out, "%4.1f%%   Δp: %6.3lf%%\n", 100.0 * pq[i], 100.0 * percentile(k->dp_values, n, pq[i]));
    fprintf(out, "Median  Δp: %6.3lf%%\n", 100.0 * median(k->dp_values, n));
    for (size_t i = 0; i < 5; i++)
        fprintf(out, "%4.1f%%   Δp: %6.3lf%%\n", 100.0 * pq2[i], 100.0 * percentile(k->dp_values, n, pq2[i]));
    fprintf(out, "Minimum Δp: %6.3lf%%\n", 100.0 * k->dp_values[0]);
    double rms = sqrt(mse), top = (double)k->same_top / (double)n;
    fprintf(out, "RMS Δp    : %6.3lf ± %5.3lf %%\n", 100.0 * rms, rms > 0 ? 100.0 * 0.5 / rms * mseu : 0);
    fprintf(out, "Same top p: %6.3lf ± %5.3lf %%\n", 100.0 * top, 100.0 * sqrt(top * (1.0 - top) / (double)(n - 1)));
    res->ppl = ppl;
    res->ppl_unc = ppl_u;
    res->kld_mean = kl;
    res->kld_unc = klu;
    res->same_top = top;
    res->rms_dp = rms;
    res->ppl_ratio = exp(ratio_log);
}

/* ---------------------------------------------------------------- the run --- */

struct base_header {
    uint32_t n_ctx;
    int32_t n_vocab, n_chunk;
};

static bool read_base(const struct ppl_params *p, FILE *f, struct base_header *h, int32_t **tokens,
                      char *err, size_t errlen)
{
    char magic[8];
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "_logits_", 8) != 0) {
        snprintf(err, errlen, "%s: not a llama-perplexity log-probability file (no _logits_ header)", p->base_path);
        return false;
    }
    if (fread(&h->n_ctx, 4, 1, f) != 1 || fread(&h->n_vocab, 4, 1, f) != 1 || fread(&h->n_chunk, 4, 1, f) != 1 ||
        h->n_ctx < 4 || h->n_ctx > (1u << 24) || h->n_chunk < 1 || h->n_chunk > (1 << 20)) {
        snprintf(err, errlen, "%s: truncated or implausible header", p->base_path);
        return false;
    }
    if ((uint32_t)h->n_vocab != p->n_vocab) {
        snprintf(err, errlen, "%s: vocabulary of %d tokens, the model has %u", p->base_path, h->n_vocab, p->n_vocab);
        return false;
    }
    size_t n = (size_t)h->n_ctx * (size_t)h->n_chunk;
    *tokens = malloc(n * sizeof **tokens);
    if (!*tokens || fread(*tokens, sizeof **tokens, n, f) != n) {
        snprintf(err, errlen, "%s: cannot read its %zu evaluation tokens", p->base_path, n);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((*tokens)[i] < 0 || (uint32_t)(*tokens)[i] >= p->n_vocab) {
            snprintf(err, errlen, "%s: token %zu (%d) is outside the vocabulary", p->base_path, i, (*tokens)[i]);
            return false;
        }
    return true;
}

static bool write_base_header(const struct ppl_params *p, FILE *f, uint32_t n_ctx, int32_t n_chunk,
                              const int32_t *tokens)
{
    int32_t nv = (int32_t)p->n_vocab;
    return fwrite("_logits_", 1, 8, f) == 8 && fwrite(&n_ctx, 4, 1, f) == 1 && fwrite(&nv, 4, 1, f) == 1 &&
           fwrite(&n_chunk, 4, 1, f) == 1 &&
           fwrite(tokens, sizeof *tokens, (size_t)n_ctx * (size_t)n_chunk, f) == (size_t)n_ctx * (size_t)n_chunk;
}

bool ppl_run(const struct ppl_params *p, const int32_t *tokens, size_t n_tokens, struct ppl_result *res,
             char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    FILE *base = NULL;
    int32_t *file_tokens = NULL;
    uint32_t n_ctx = p->n_ctx;
    int32_t n_chunk;
    bool ok = true;
    if (p->mode == PPL_COMPARE_BASE) {
        struct base_header h;
        base = fopen(p->base_path, "rb");
        if (!base) {
            snprintf(err, errlen, "%s: %s", p->base_path, strerror(errno));
            return false;
        }
        ok = read_base(p, base, &h, &file_tokens, err, errlen);
        n_ctx = h.n_ctx;
        n_chunk = h.n_chunk;
        tokens = file_tokens;
    } else {
        if (n_ctx < 4 || n_tokens < 2 * (size_t)n_ctx) {
            snprintf(err, errlen, "need at least %zu tokens for a context of %u; the text has %zu", 2 * (size_t)n_ctx,
                     n_ctx, n_tokens);
            return false;
        }
        n_chunk = (int32_t)(n_tokens / n_ctx);
    }
    if (p->n_chunks >= 0 && p->n_chunks < n_chunk)
        n_chunk = p->n_chunks;
    if (ok && p->mode == PPL_WRITE_BASE) {
        base = fopen(p->base_path, "wb");
        ok = base && write_base_header(p, base, n_ctx, n_chunk, tokens);
        if (!ok)
            snprintf(err, errlen, "%s: %s", p->base_path, strerror(errno));
    }
    const uint32_t first = n_ctx / 2, n_score = n_ctx - 1 - first, nv = row_u16(p->n_vocab);
    float *logits = ok ? malloc((size_t)(n_ctx - first) * p->n_vocab * sizeof *logits) : NULL;
    uint16_t *rows = ok ? malloc((size_t)n_score * nv * sizeof *rows) : NULL;
    struct kld_acc k = {0};
    if (ok && p->mode == PPL_COMPARE_BASE) {
        k.kld_values = malloc((size_t)n_score * (size_t)n_chunk * sizeof(float));
        k.dp_values = malloc((size_t)n_score * (size_t)n_chunk * sizeof(float));
        ok = k.kld_values && k.dp_values;
    }
    if (ok && (!logits || !rows)) {
        snprintf(err, errlen, "out of memory for %u x %u logits", n_ctx - first, p->n_vocab);
        ok = false;
    }
    if (ok && p->mode == PPL_COMPARE_BASE)
        fprintf(p->out, "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p\n");
    double nll = 0, nll2 = 0;
    uint64_t count = 0;
    for (int32_t c = 0; ok && c < n_chunk; c++) {
        const int32_t *chunk = tokens + (size_t)c * n_ctx;
        ok = p->eval(p->eval_ctx, chunk, n_ctx, first, logits, err, errlen);
        if (!ok)
            break;
        if (p->mode == PPL_COMPARE_BASE) {
            if (fread(rows, sizeof *rows, (size_t)n_score * nv, base) != (size_t)n_score * nv) {
                snprintf(err, errlen, "%s: truncated at chunk %d", p->base_path, c + 1);
                ok = false;
                break;
            }
            for (uint32_t j = 0; j < n_score; j++)
                compare_row(p->n_vocab, logits + (size_t)j * p->n_vocab, rows + (size_t)j * nv, chunk[first + j + 1], &k);
            print_compare_line(p->out, (uint32_t)c + 1, &k);
            continue;
        }
        for (uint32_t j = 0; j < n_score; j++) {
            const float *row = logits + (size_t)j * p->n_vocab;
            int32_t next = chunk[first + j + 1];
            double v = p->mode == PPL_WRITE_BASE ? encode_row(p->n_vocab, row, next, rows + (size_t)j * nv)
                                                 : ppl_nll(p->n_vocab, row, next);
            nll += v;
            nll2 += v * v;
        }
        count += n_score;
        if (p->mode == PPL_WRITE_BASE && fwrite(rows, sizeof *rows, (size_t)n_score * nv, base) != (size_t)n_score * nv) {
            snprintf(err, errlen, "%s: %s", p->base_path, strerror(errno));
            ok = false;
        }
        fprintf(p->out, "[%d]%.4lf,", c + 1, exp(nll / (double)count));
        fflush(p->out);
    }
    if (ok && p->mode != PPL_COMPARE_BASE) {
        double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
        res->ppl = exp(mean);
        res->ppl_unc = var > 0 ? sqrt(var / (double)(count - 1)) * res->ppl : 0;
        fprintf(p->out, "\nFinal estimate: PPL = %.4lf +/- %.5lf\n", res->ppl, res->ppl_unc);
    } else if (ok) {
        fprintf(p->out, "\n");
        if (k.count >= 100)
            print_compare_stats(p->out, &k, res);
        count = k.count;
    }
    res->chunks = (uint32_t)n_chunk;
    res->scored = count;
    if (base && fclose(base) != 0 && ok && p->mode == PPL_WRITE_BASE) {
        snprintf(err, errlen, "%s: %s", p->base_path, strerror(errno));
        ok = false;
    }
    free(k.kld_values);
    free(k.dp_values);
    free(logits);
    free(rows);
    free(file_tokens);
    return ok;
}
