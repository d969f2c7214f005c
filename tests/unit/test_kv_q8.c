/* test_kv_q8.c: the Q8_0 KV cache: attention over Q8_0 rows against exact F32 attention, the
 * whole tiny models with a Q8_0 cache against the same models with F16 (last-position KL, top-1
 * agreement) and against llama.cpp's logits, and the planner counting the smaller cache. */
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/arch.h"
#include "engine/attention.h"
#include "engine/memplan.h"
#include "engine/model.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

/* Measured on the five tiny models (docs/correctness.md): Q8_0-vs-F16 KV, last-position KL at
 * most 2.9e-3, mean KL over a prompt's positions at most 1.9e-3, top-1 kept at 91%..100%
 * of positions (10 of 11 at worst). The bounds are those with a little room; a real fault (a
 * wrong row, a wrong scale) gives KLs of order 1. */
#define KL_LAST 5e-3
#define KL_MEAN 5e-3
#define TOP1_MIN 0.90

static double kl_logits(const float *p_logits, const float *q_logits, uint32_t n)
{
    double mp = -1e30, mq = -1e30, sp = 0, sq = 0, kl = 0;
    for (uint32_t i = 0; i < n; i++) {
        mp = fmax(mp, p_logits[i]);
        mq = fmax(mq, q_logits[i]);
    }
    for (uint32_t i = 0; i < n; i++) {
        sp += exp(p_logits[i] - mp);
        sq += exp(q_logits[i] - mq);
    }
    for (uint32_t i = 0; i < n; i++) {
        double lp = p_logits[i] - mp - log(sp), lq = q_logits[i] - mq - log(sq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return b;
}

/* Random K/V/q for 2 KV heads of 64, 4 query heads, 40 positions: Q8_0 attention within 2% of
 * exact F32 attention (rms of the difference over rms of the output). */
static void check_attention_vs_exact(void)
{
    char err[256];
    const struct attn_shape s = {.n_head = 4, .n_head_kv = 2, .head_k = 64, .head_v = 64, .kv_type = Q_Q8_0};
    CHECK(attn_shape_check(&s, err, sizeof err), "%s", err);
    CHECK(attn_k_row_bytes(&s) == 2 * 2 * 34, "Q8_0 K row: %u bytes", attn_k_row_bytes(&s));
    const uint32_t P = 40, W = 2 * 64, Q = 4 * 64;
    struct kvpool kv;
    REQUIRE_VOID(kvpool_init(&kv, 1, attn_k_row_bytes(&s), attn_v_row_bytes(&s), 16, 4, 1, 64, err, sizeof err));
    REQUIRE_VOID(kvpool_reserve(&kv, 0, P));
    static float k[40][128], v[40][128], q[256], out[256];
    const size_t stride = attn_scratch_floats(&s, 64);
    float *scratch = malloc(stride * (size_t)omp_get_max_threads() * sizeof *scratch);
    REQUIRE_VOID(scratch);
    srand(7);
    for (uint32_t j = 0; j < P; j++)
        for (uint32_t d = 0; d < W; d++) {
            k[j][d] = (float)rand() / RAND_MAX * 2 - 1;
            v[j][d] = (float)rand() / RAND_MAX * 2 - 1;
        }
    for (uint32_t d = 0; d < Q; d++)
        q[d] = (float)rand() / RAND_MAX * 4 - 2;
    for (uint32_t j = 0; j < P; j++)
        attn_store_kv(&kv, &s, 0, 0, j, k[j], v[j]);
    const uint32_t pos = P - 1, seq = 0;
    attn_forward(&kv, &s, 0, 1, &pos, &seq, NULL, q, out, scratch, stride);
    free(scratch);
    double num = 0, den = 0;
    for (uint32_t h = 0; h < 4; h++) {
        const uint32_t kvh = h / 2;
        double sc[40], mx = -1e30, sum = 0;
        for (uint32_t j = 0; j < P; j++) {
            double dot = 0;
            for (uint32_t d = 0; d < 64; d++)
                dot += (double)q[h * 64 + d] * k[j][kvh * 64 + d];
            sc[j] = dot / 8.0;
            mx = fmax(mx, sc[j]);
        }
        for (uint32_t j = 0; j < P; j++)
            sum += (sc[j] = exp(sc[j] - mx));
        for (uint32_t d = 0; d < 64; d++) {
            double exact = 0;
            for (uint32_t j = 0; j < P; j++)
                exact += sc[j] / sum * v[j][kvh * 64 + d];
            num += (out[h * 64 + d] - exact) * (out[h * 64 + d] - exact);
            den += exact * exact;
        }
    }
    fprintf(stderr, "  Q8_0 attention vs exact F32: relative rms error %.2e\n", sqrt(num / den));
    CHECK(sqrt(num / den) < 0.02, "Q8_0 attention vs exact: relative rms error %.3g", sqrt(num / den));
    kvpool_free(&kv);
    const struct attn_shape odd = {.n_head = 4, .n_head_kv = 2, .head_k = 48, .head_v = 48, .kv_type = Q_Q8_0};
    CHECK(!attn_shape_check(&odd, err, sizeof err) && strstr(err, "q8_0"), "head 48 refused for q8_0: %s", err);
}

/* Last-position logits of a prompt run as one batch on a fresh context of the given KV type;
 * all positions' logits go to `all`. */
static bool run(struct model *m, uint32_t kv_type, const int32_t *tok, uint32_t n, float *all, char *err)
{
    struct model_ctx *c = model_ctx_new(m, 1, 512, 512, n, kv_type, err, 256);
    if (!c)
        return false;
    uint32_t pos[512], seq[512];
    bool want[512];
    for (uint32_t i = 0; i < n; i++) {
        pos[i] = i;
        seq[i] = 0;
        want[i] = true;
    }
    bool ok = model_decode(c, n, tok, pos, seq, want, all, err, 256);
    model_ctx_free(c);
    return ok;
}

static void check_model(const char *name)
{
    char rel[256], path[1024], err[512];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, rel), err, sizeof err);
    REQUIRE_VOID(f);
    struct model m;
    if (!model_load(&m, f, err, sizeof err)) {
        CHECK(false, "%s: %s", name, err);
        gguf_close(f);
        return;
    }
    snprintf(rel, sizeof rel, "models/%s.ref.json", name);
    json_error_t jerr;
    json_t *ref = json_load_file(testdata_path(path, sizeof path, rel), 0, &jerr);
    CHECK(ref, "%s: %s", rel, jerr.text);
    const uint32_t V = m.hp.n_vocab;
#if defined(__SANITIZE_ADDRESS__)
    const size_t n_prompts = 2;   /* the 276-token prompt only in the release build */
#else
    const size_t n_prompts = 3;
#endif
    for (size_t pi = 0; ref && pi < n_prompts; pi++) {
        json_t *jp = json_array_get(json_object_get(ref, "prompts"), pi), *toks = json_object_get(jp, "tokens");
        uint32_t n = (uint32_t)json_array_size(toks);
        REQUIRE_VOID(n > 0 && n <= 512);
        int32_t tok[512];
        for (uint32_t i = 0; i < n; i++)
            tok[i] = (int32_t)json_integer_value(json_array_get(toks, i));
        float *lf = malloc((size_t)n * V * sizeof *lf), *lq = malloc((size_t)n * V * sizeof *lq);
        REQUIRE_VOID(lf && lq);
        CHECK(run(&m, Q_F16, tok, n, lf, err), "%s f16: %s", name, err);
        CHECK(run(&m, Q_Q8_0, tok, n, lq, err), "%s q8_0: %s", name, err);
        double kl_last = kl_logits(lf + (size_t)(n - 1) * V, lq + (size_t)(n - 1) * V, V), kl_max = 0, kl_sum = 0;
        uint32_t agree = 0;
        for (uint32_t i = 0; i < n; i++) {
            double kl = kl_logits(lf + (size_t)i * V, lq + (size_t)i * V, V);
            kl_max = fmax(kl_max, kl);
            kl_sum += kl;
            agree += argmax(lf + (size_t)i * V, V) == argmax(lq + (size_t)i * V, V);
        }
        float ref_last[8192];
        json_t *jl = json_object_get(jp, "last_logits");
        REQUIRE_VOID(json_array_size(jl) == V && V <= 8192);
        for (uint32_t i = 0; i < V; i++)
            ref_last[i] = (float)json_number_value(json_array_get(jl, i));
        double kl_ref = kl_logits(ref_last, lq + (size_t)(n - 1) * V, V);
        CHECK(kl_last <= KL_LAST, "%s prompt %zu: Q8_0 vs F16 KV, last-position KL %.3g", name, pi, kl_last);
        CHECK(kl_sum / n <= KL_MEAN, "%s prompt %zu: Q8_0 vs F16 KV, mean KL %.3g", name, pi, kl_sum / n);
        CHECK(agree >= TOP1_MIN * n, "%s prompt %zu: top-1 agrees at %u/%u positions", name, pi, agree, n);
        CHECK(kl_ref <= KL_LAST, "%s prompt %zu: Q8_0 KV vs llama.cpp (F16 KV) last KL %.3g", name, pi, kl_ref);
        fprintf(stderr, "  %-26s prompt %zu (%3u tok): KL(f16||q8_0) last %.2e mean %.2e max %.2e, top-1 %u/%u, "
                "KL vs llama.cpp %.2e\n", name, pi, n, kl_last, kl_sum / n, kl_max, agree, n, kl_ref);
        free(lf);
        free(lq);
    }
    json_decref(ref);
    model_free(&m);
    gguf_close(f);
}

/* The pool a Q8_0 context allocates is what the planner counts, 34/64 of F16's. */
static void check_planner_counts_q8(void)
{
    char path[1024], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "models/tiny-qwen3moe-q8_0.gguf"), err, sizeof err);
    REQUIRE_VOID(f);
    struct model m;
    struct arch_hparams hp;
    REQUIRE_VOID(model_load(&m, f, err, sizeof err));
    REQUIRE_VOID(arch_read_hparams(f, &hp));
    uint64_t bytes[2];
    const uint32_t types[2] = {Q_F16, Q_Q8_0};
    for (int i = 0; i < 2; i++) {
        struct model_ctx *c = model_ctx_new(&m, 2, 1024, 512, 64, types[i], err, sizeof err);
        REQUIRE_VOID(c);
        bytes[i] = kvpool_bytes(model_ctx_kv(c));
        CHECK(bytes[i] == mp_kv_bytes(&hp, 1024, 1, types[i]), "type %u: pool %llu bytes, planner %llu", types[i],
              (unsigned long long)bytes[i], (unsigned long long)mp_kv_bytes(&hp, 1024, 1, types[i]));
        model_ctx_free(c);
    }
    CHECK(bytes[1] * 64 == bytes[0] * 34, "Q8_0 pool %llu bytes = 34/64 of F16's %llu", (unsigned long long)bytes[1],
          (unsigned long long)bytes[0]);
    model_free(&m);
    gguf_close(f);
}

int main(void)
{
    check_attention_vs_exact();
    check_planner_counts_q8();
    const char *models[] = {"tiny-qwen3moe-q8_0", "tiny-qwen3moe-q4_k_m", "tiny-qwen3moe-asym",
                            "tiny-qwen3moe-asym-pruned", "tiny-qwen3moe-mxfp4"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_model(models[i]);
    return test_finish();
}
