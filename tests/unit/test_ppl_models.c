/* test_ppl_models.c: `moeserve perplexity`'s scoring on every tiny qwen3moe and qwen3next model against
 * llama-perplexity's results on ppl-text.txt (ctx 128, 16 chunks): within 0.5%, and the running
 * estimate after each chunk too. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/perplexity.h"
#include "kernels/quants.h"
#include "tests/test.h"

static bool eval_chunk(void *ctx, const int32_t *tokens, uint32_t n, uint32_t first, float *logits, char *err,
                       size_t errlen)
{
    struct engine *e = ctx;
    engine_seq_keep(e, 0, 0);
    uint32_t pos[128], seq[128] = {0};
    bool want[128];
    for (uint32_t i = 0; i < n; i++) {
        pos[i] = i;
        want[i] = i >= first;
    }
    return engine_decode(e, n, tokens, pos, seq, want, logits, err, errlen);
}

static void check_model(const char *name, json_t *ref, const char *text, size_t len)
{
    char path[1024], rel[256], err[4096];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    struct engine_params p = {.path = testdata_path(path, sizeof path, rel), .slots = 1, .ctx_size = 256,
                              .max_ctx = 128, .batch_tokens = 128, .kv_type = "f16", .device = "cpu"};
    struct engine *e = engine_open(&p, err, sizeof err);
    REQUIRE_VOID(e);
    size_t n = 0;
    int32_t *toks = engine_tokenize(e, text, len, false, &n);
    FILE *out = fopen("/dev/null", "w");
    struct ppl_params pp = {.n_ctx = 128, .n_chunks = 16, .n_vocab = engine_info(e)->n_vocab, .mode = PPL_PLAIN,
                            .eval = eval_chunk, .eval_ctx = e, .out = out};
    struct ppl_result r;
    CHECK(ppl_run(&pp, toks, n, &r, err, sizeof err), "%s: %s", name, err);
    double want = json_number_value(json_object_get(json_object_get(json_object_get(ref, "models"), name), "ppl"));
    double rel_err = fabs(r.ppl - want) / want;
    CHECK(rel_err <= 0.005, "%s: PPL %.1f vs llama.cpp %.1f (%.3f%%)", name, r.ppl, want, 100 * rel_err);
    /* the SIMD kernels sum in llama.cpp's order (docs/correctness.md): beyond the 0.5% bound, the
     * result must equal the printed reference to its last digits */
    if (strcmp(q_kernels_get(Q_Q8_0)->dot_isa, "scalar") != 0)
        CHECK(rel_err <= 1e-9, "%s: PPL %.4f vs llama.cpp %.4f: not llama.cpp's float order", name, r.ppl, want);
    fprintf(stderr, "  %-28s PPL %.4f, llama.cpp %.4f (%.2e)\n", name, r.ppl, want, rel_err);
    fclose(out);
    free(toks);
    engine_close(e);
}

int main(void)
{
    char path[1024];
    json_error_t jerr;
    json_t *ref = json_load_file(testdata_path(path, sizeof path, "models/perplexity.json"), 0, &jerr);
    REQUIRE(ref, "perplexity.json: %s", jerr.text);
    FILE *f = fopen(testdata_path(path, sizeof path, "ppl-text.txt"), "rb");
    REQUIRE(f, "ppl-text.txt");
    static char text[1 << 17];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    const char *models[] = {"tiny-qwen3moe-q8_0", "tiny-qwen3next-q8_0", "tiny-qwen3moe-q4_k_m",
                            "tiny-qwen3moe-asym", "tiny-qwen3moe-asym-pruned", "tiny-qwen3moe-mxfp4",
                            "tiny-qwen3next-mxfp4", "tiny-qwen3next-reap8-mxfp4"};
#if defined(__SANITIZE_ADDRESS__)
    size_t n_models = 2; /* one of each architecture; the release build of this test checks all */
#else
    size_t n_models = sizeof models / sizeof models[0];
#endif
    for (size_t i = 0; i < n_models; i++)
        check_model(models[i], ref, text, len);
    json_decref(ref);
    return test_finish();
}
