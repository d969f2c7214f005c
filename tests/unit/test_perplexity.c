/* test_perplexity.c: llama-perplexity's scoring with a fake model: the plain estimate against a
 * direct computation, the base file written and read back (same model: KLD ~ 0, same top 100%),
 * a perturbed model scoring worse, and bad inputs refused with a message. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "engine/perplexity.h"
#include "tests/test.h"

#define VOCAB 50

struct fake {
    float noise;
};

/* Logits depend on the previous token and the position, like a tiny bigram model. */
static void fake_row(const struct fake *f, int32_t prev, uint32_t pos, float *row)
{
    for (int v = 0; v < VOCAB; v++)
        row[v] = 2.0f * sinf(0.37f * (float)(prev * 7 + v)) + 0.1f * cosf((float)pos * 0.01f * (float)v) +
                 f->noise * cosf((float)(v * 13 + prev));
}

static bool fake_eval(void *ctx, const int32_t *tokens, uint32_t n, uint32_t first, float *logits, char *err,
                      size_t errlen)
{
    (void)err;
    (void)errlen;
    for (uint32_t pos = first; pos < n; pos++)
        fake_row(ctx, tokens[pos], pos, logits + (size_t)(pos - first) * VOCAB);
    return true;
}

int main(void)
{
    int32_t tokens[1000];
    for (int i = 0; i < 1000; i++)
        tokens[i] = (i * 31 + (i / 7) * 3) % VOCAB;
    struct fake exact = {0}, off = {0.8f};
    FILE *out = fopen(getenv("PPL_SHOW") ? "/dev/stderr" : "/dev/null", "w");
    struct ppl_params p = {.n_ctx = 64, .n_chunks = -1, .n_vocab = VOCAB, .mode = PPL_PLAIN, .eval = fake_eval,
                           .eval_ctx = &exact, .out = out};
    struct ppl_result r;
    char err[256];
    CHECK(ppl_run(&p, tokens, 1000, &r, err, sizeof err), "%s", err);
    /* direct: chunks of 64, positions 32..62 predict 33..63 */
    double nll = 0;
    uint64_t n = 0;
    float row[VOCAB];
    for (int c = 0; c < 15; c++)
        for (int j = 32; j < 63; j++) {
            fake_row(&exact, tokens[c * 64 + j], (uint32_t)j, row);
            nll += ppl_nll(VOCAB, row, tokens[c * 64 + j + 1]);
            n++;
        }
    CHECK(r.chunks == 15 && r.scored == n, "15 chunks, %llu scored", (unsigned long long)r.scored);
    CHECK(fabs(r.ppl - exp(nll / (double)n)) < 1e-9 * r.ppl, "PPL %.6f vs direct %.6f", r.ppl, exp(nll / (double)n));

    char base[] = "/tmp/moeserve-kld-XXXXXX";
    close(mkstemp(base));
    p.mode = PPL_WRITE_BASE;
    p.base_path = base;
    p.n_chunks = 8;
    struct ppl_result w;
    CHECK(ppl_run(&p, tokens, 1000, &w, err, sizeof err) && w.chunks == 8, "write base: %s", err);
    p.mode = PPL_COMPARE_BASE;
    p.n_chunks = -1;
    CHECK(ppl_run(&p, NULL, 0, &r, err, sizeof err), "compare same: %s", err);
    CHECK(r.chunks == 8 && r.kld_mean < 1e-6 && r.same_top == 1.0 && fabs(r.ppl_ratio - 1) < 1e-4,
          "same model: KLD %.3g, same top %.3f, ratio %.6f", r.kld_mean, r.same_top, r.ppl_ratio);
    CHECK(fabs(r.ppl - w.ppl) < 1e-3 * w.ppl, "compare PPL %.5f equals the base run's %.5f", r.ppl, w.ppl);
    p.eval_ctx = &off;
    CHECK(ppl_run(&p, NULL, 0, &r, err, sizeof err), "compare perturbed: %s", err);
    CHECK(r.kld_mean > 1e-3 && r.same_top < 1.0, "perturbed model: KLD %.4f, same top %.3f", r.kld_mean, r.same_top);

    p.n_vocab = VOCAB + 1;
    CHECK(!ppl_run(&p, NULL, 0, &r, err, sizeof err) && strstr(err, "vocabulary"), "vocab mismatch: %s", err);
    p.n_vocab = VOCAB;
    FILE *g = fopen(base, "wb");
    fputs("garbage", g);
    fclose(g);
    CHECK(!ppl_run(&p, NULL, 0, &r, err, sizeof err) && strstr(err, base), "not a base file: %s", err);
    p.mode = PPL_PLAIN;
    CHECK(!ppl_run(&p, tokens, 100, &r, err, sizeof err) && strstr(err, "at least 128"), "too few tokens: %s", err);
    unlink(base);
    fclose(out);
    return test_finish();
}
