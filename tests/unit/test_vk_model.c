/* test_vk_model.c: the whole qwen3moe forward pass on Vulkan (engine/vk_model.h) for the tiny
 * models, against the CPU engine and llama.cpp's references; batching; errors; validation layer on. */
#include <dlfcn.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/arch.h"
#include "engine/engine.h"
#include "engine/memplan.h"
#include "engine/model.h"
#include "engine/vk_model.h"
#include "engine/vulkan.h"
#include "kernels/qtypes.h"
#include "tests/test.h"
#include "tests/test_ref.h"

struct run {
    const char *name;
    struct model *m;
    struct vk_model *vm;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Gap between the largest and the second largest value. */
static float top_margin(const float *x, uint32_t n)
{
    int32_t b = argmax(x, n);
    float second = -INFINITY;
    for (uint32_t i = 0; i < n; i++)
        if ((int32_t)i != b && x[i] > second)
            second = x[i];
    return x[b] - second;
}

static double kl_bound(size_t n_tokens)
{
    return n_tokens <= 42 ? 5e-4 : 2e-3;
}

/* One prompt as a single batch on sequence seq with logits at every position (CPU or GPU). */
static bool run_prompt(struct model_ctx *cpu, struct vk_model_ctx *gpu, const struct prompt *p, uint32_t seq,
                       float *logits, char *err, size_t errlen)
{
    uint32_t *pos = malloc(p->n * sizeof *pos), *sq = malloc(p->n * sizeof *sq);
    bool *want = malloc(p->n * sizeof *want);
    bool ok = pos && sq && want;
    for (size_t i = 0; ok && i < p->n; i++) {
        pos[i] = (uint32_t)i;
        sq[i] = seq;
        want[i] = true;
    }
    if (ok)
        ok = cpu ? model_decode(cpu, (uint32_t)p->n, p->tokens, pos, sq, want, logits, err, errlen)
                 : vk_model_decode(gpu, (uint32_t)p->n, p->tokens, pos, sq, want, logits, err, errlen);
    free(pos);
    free(sq);
    free(want);
    return ok;
}

/* What one prompt measured, judged against testdata/README.md's bounds in one place. */
struct outcome {
    size_t n;
    double kl_ref, kl_cpu, worst_kl_cpu;
    size_t agree, clear_misses;
    bool in_top5, steps_ok;
    size_t greedy_ref, required, greedy_cpu, cpu_required;
};

/* Top-1 over the prompt positions as test_qwen3moe counts it: misses, and misses where the
 * reference's margin is clear (>= 0.05); whether every top-1 is in the reference's top 5. */
static void measure_top1(const struct prompt *p, const float *logits, uint32_t V, struct outcome *o)
{
    o->in_top5 = true;
    for (size_t i = 0; i < p->n; i++) {
        json_t *top = json_array_get(p->top20, i);
        int32_t ours = argmax(logits + i * V, V);
        bool same = ours == json_integer_value(json_array_get(json_array_get(top, 0), 0));
        double margin = json_number_value(json_array_get(json_array_get(top, 0), 1)) -
                        json_number_value(json_array_get(json_array_get(top, 1), 1));
        o->agree += same;
        o->clear_misses += !same && margin >= 0.05;
        bool found = false;
        for (size_t j = 0; j < 5; j++)
            found |= ours == json_integer_value(json_array_get(json_array_get(top, j), 0));
        o->in_top5 &= found;
    }
}

/* Greedy steps after the prompt on both engines, side by side, until the GPU leaves the CPU
 * engine: how far it follows llama.cpp (required: up to its first margin below 0.1) and the CPU
 * engine (required: up to the CPU's own first margin below 0.1). */
static void measure_greedy(const struct prompt *p, struct model_ctx *cpu, struct vk_model_ctx *gpu, int32_t tok,
                           uint32_t V, float *lc, float *lg, struct outcome *o)
{
    char err[512];
    size_t steps = json_array_size(p->greedy);
    bool off_ref = false, off_cpu = false;
    int32_t tc = tok, tg = tok;
    o->required = o->cpu_required = steps;
    o->steps_ok = true;
    for (size_t s = 0; s < steps && !off_cpu; s++) {
        json_t *g = json_array_get(p->greedy, s);
        if (json_number_value(json_array_get(g, 1)) < 0.1 && o->required == steps)
            o->required = s;
        off_ref |= tg != json_integer_value(json_array_get(g, 0));
        o->greedy_ref += !off_ref;
        off_cpu |= tg != tc;
        o->greedy_cpu += !off_cpu;
        uint32_t pos = (uint32_t)(p->n + s), seq = 0;
        bool want = true;
        if (off_cpu || !model_decode(cpu, 1, &tc, &pos, &seq, &want, lc, err, sizeof err) ||
            !vk_model_decode(gpu, 1, &tg, &pos, &seq, &want, lg, err, sizeof err)) {
            o->steps_ok = off_cpu;
            CHECK(off_cpu, "greedy step %zu: %s", s, err);
            break;
        }
        if (top_margin(lc, V) < 0.1f && o->cpu_required == steps)
            o->cpu_required = s + 1;
        tc = argmax(lc, V);
        tg = argmax(lg, V);
    }
    if (o->cpu_required > o->required)
        o->cpu_required = o->required;
}

static void judge(const char *name, int pi, const struct outcome *o)
{
    const double bound = kl_bound(o->n);
    const bool kl_ref_ok = o->kl_ref <= bound, kl_cpu_ok = o->kl_cpu <= bound;
    const bool top1_ok = (o->agree * 100 >= o->n * 98 || o->clear_misses == 0) && o->in_top5;
    const bool greedy_ok = o->greedy_ref >= o->required && o->greedy_cpu >= o->cpu_required;
    fprintf(stderr, "  %-26s prompt %d (%3zu tok): KL ref %.2e, KL cpu %.2e (worst position %.2e), top-1 %zu/%zu, "
            "greedy ref %zu (required %zu), cpu %zu (required %zu)\n", name, pi, o->n, o->kl_ref, o->kl_cpu,
            o->worst_kl_cpu, o->agree, o->n, o->greedy_ref, o->required, o->greedy_cpu, o->cpu_required);
    CHECK(kl_ref_ok, "%s prompt %d: KL to llama.cpp %.3g > %.1g", name, pi, o->kl_ref, bound);
    CHECK(kl_cpu_ok, "%s prompt %d: KL to the CPU engine %.3g > %.1g", name, pi, o->kl_cpu, bound);
    CHECK(top1_ok, "%s prompt %d: top-1 %zu/%zu, %zu clear misses, all in the top 5: %d", name, pi, o->agree, o->n,
          o->clear_misses, o->in_top5);
    CHECK(greedy_ok, "%s prompt %d: greedy follows llama.cpp %zu steps (required %zu), the CPU engine %zu "
          "(required %zu)", name, pi, o->greedy_ref, o->required, o->greedy_cpu, o->cpu_required);
}

static void check_prompt(const struct run *r, struct prompt *p, int pi)
{
    char err[512];
    const uint32_t V = r->m->hp.n_vocab;
    struct model_ctx *cpu = model_ctx_new(r->m, 2, 1024, 512, 512, Q_F16, err, sizeof err);
    struct vk_model_ctx *gpu = vk_model_ctx_new(r->vm, 2, 1024, 512, 512, err, sizeof err);
    CHECK(gpu, "%s: GPU context: %s", r->name, err);
    float *lc = malloc(p->n * V * sizeof *lc), *lg = malloc(p->n * V * sizeof *lg);
    if (!cpu || !gpu || !lc || !lg)
        goto done;
    bool ok = run_prompt(NULL, gpu, p, 0, lg, err, sizeof err);
    CHECK(ok, "%s prompt %d (GPU): %s", r->name, pi, err);
    bool cok = run_prompt(cpu, NULL, p, 0, lc, err, sizeof err);
    CHECK(cok, "%s prompt %d (CPU): %s", r->name, pi, err);
    if (!ok || !cok)
        goto done;
    const float *last = lg + (p->n - 1) * V;
    struct outcome o = {.n = p->n, .kl_ref = kl_div(p->last, last, V),
                        .kl_cpu = kl_logits(lc + (p->n - 1) * V, last, V)};
    for (size_t i = 0; i < p->n; i++) {
        double k = kl_logits(lc + i * V, lg + i * V, V);
        o.worst_kl_cpu = k > o.worst_kl_cpu ? k : o.worst_kl_cpu;
    }
    measure_top1(p, lg, V, &o);
    measure_greedy(p, cpu, gpu, argmax(last, V), V, lc, lg, &o);
    CHECK(o.steps_ok, "%s prompt %d: every greedy step ran", r->name, pi);
    judge(r->name, pi, &o);
done:
    free(lc);
    free(lg);
    model_ctx_free(cpu);
    vk_model_ctx_free(gpu);
}

/* The prompts in one batch on separate sequences (wanting only their last rows) give the logits
 * of each prompt run alone, and a decode step for all of them at once those of single steps. */
static void check_batched(const struct run *r, struct prompt *ps, int np)
{
    char err[512];
    const uint32_t V = r->m->hp.n_vocab;
    size_t total = 0;
    for (int s = 0; s < np; s++)
        total += ps[s].n;
    struct vk_model_ctx *all = vk_model_ctx_new(r->vm, (uint32_t)np, 2048, 512, (uint32_t)total, err, sizeof err);
    struct vk_model_ctx *one = vk_model_ctx_new(r->vm, 1, 1024, 512, (uint32_t)total, err, sizeof err);
    int32_t *tok = malloc(total * sizeof *tok);
    uint32_t *pos = malloc(total * sizeof *pos), *seq = malloc(total * sizeof *seq);
    bool *want = calloc(total, sizeof *want);
    float *lb = malloc((size_t)np * V * sizeof *lb), *la = malloc(total * V * sizeof *la);
    REQUIRE_VOID(all && one && tok && pos && seq && want && lb && la);
    /* interleaved: sequence s's i-th token sits among the others' */
    size_t k = 0;
    for (size_t i = 0; k < total; i++)
        for (int s = 0; s < np; s++)
            if (i < ps[s].n) {
                tok[k] = ps[s].tokens[i];
                pos[k] = (uint32_t)i;
                seq[k] = (uint32_t)s;
                want[k] = i + 1 == ps[s].n;
                k++;
            }
    bool ok = vk_model_decode(all, (uint32_t)total, tok, pos, seq, want, lb, err, sizeof err);
    CHECK(ok, "%s batched: %s", r->name, err);
    int32_t next[8];
    for (int s = 0; ok && s < np; s++) {
        kvpool_truncate(vk_model_ctx_kv(one), 0, 0);
        CHECK(run_prompt(NULL, one, &ps[s], 0, la, err, sizeof err), "%s alone: %s", r->name, err);
        double kl = kl_logits(la + (ps[s].n - 1) * V, lb + (size_t)s * V, V);
        CHECK(kl <= 1e-6, "%s: prompt %d batched with the others: KL to alone %.3g", r->name, s, kl);
        next[s] = argmax(lb + (size_t)s * V, V);
    }
    /* one decode step for every sequence at once against single steps on a fresh pass */
    uint32_t npos[8], nseq[8];
    bool nwant[8];
    for (int s = 0; ok && s < np; s++) {
        npos[s] = (uint32_t)ps[s].n;
        nseq[s] = (uint32_t)s;
        nwant[s] = true;
    }
    ok = ok && vk_model_decode(all, (uint32_t)np, next, npos, nseq, nwant, lb, err, sizeof err);
    CHECK(ok, "%s batched decode step: %s", r->name, err);
    for (int s = 0; ok && s < np; s++) {
        kvpool_truncate(vk_model_ctx_kv(one), 0, 0);
        bool rok = run_prompt(NULL, one, &ps[s], 0, la, err, sizeof err);
        uint32_t p1 = (uint32_t)ps[s].n, s0 = 0;
        bool w = true;
        rok = rok && vk_model_decode(one, 1, &next[s], &p1, &s0, &w, la, err, sizeof err);
        CHECK(rok, "%s single step: %s", r->name, err);
        double kl = rok ? kl_logits(la, lb + (size_t)s * V, V) : 1;
        CHECK(kl <= 1e-6, "%s: decode step of sequence %d batched: KL to alone %.3g", r->name, s, kl);
    }
    free(tok);
    free(pos);
    free(seq);
    free(want);
    free(lb);
    free(la);
    vk_model_ctx_free(all);
    vk_model_ctx_free(one);
}

/* Refusals: a gap in positions, an unknown sequence, a batch above the context's limit. */
static void check_errors(const struct run *r)
{
    char err[512];
    struct vk_model_ctx *c = vk_model_ctx_new(r->vm, 1, 64, 64, 4, err, sizeof err);
    REQUIRE_VOID(c);
    int32_t tok[5] = {1, 2, 3, 4, 5};
    uint32_t pos[5] = {0, 2, 0, 0, 0}, seq[5] = {0};
    bool want[5] = {true, true, true, true, true};
    float *logits = malloc(5ull * r->m->hp.n_vocab * sizeof *logits);
    REQUIRE_VOID(logits);
    CHECK(!vk_model_decode(c, 2, tok, pos, seq, want, logits, err, sizeof err) && strstr(err, "expected 1"),
          "position gap refused: %s", err);
    seq[0] = 3;
    CHECK(!vk_model_decode(c, 1, tok, pos, seq, want, logits, err, sizeof err) && strstr(err, "sequence 3"),
          "unknown sequence refused: %s", err);
    seq[0] = 0;
    CHECK(!vk_model_decode(c, 5, tok, pos, seq, want, logits, err, sizeof err) && strstr(err, "batch of 5"),
          "batch too large refused: %s", err);
    CHECK(vk_model_decode(c, 1, tok, pos, seq, want, logits, err, sizeof err), "valid step after refusals: %s", err);
    free(logits);
    vk_model_ctx_free(c);
}

/* The planner's device total for a context against what upload and context really allocated. */
/* Hybrid placement: a device that holds everything but half of layer 0's experts gets exactly
 * layer 0's experts moved to the host (auto picks the fewest), the device then allocates what that
 * plan says, and a device too small even without experts moves them all and still does not fit. */
static void check_hybrid_plan(struct vk_ctx *ctx, const struct gguf_file *f, const struct model *m,
                              const struct arch_hparams *hp)
{
    char err[512];
    const uint32_t L = hp->n_layer;
    struct mp_expert_layer *ex = calloc(L, sizeof *ex);
    REQUIRE_VOID(ex);
    CHECK(mp_expert_layers(f, L, ex, err, sizeof err), "expert layers: %s", err);
    const struct mp_weights w = {.total = mp_weight_bytes(f), .experts = ex};
    struct mp_request rq = {.n_ctx = 1024, .n_slots = 1, .n_batch = 64};
    struct mp_plan all, pl;
    mp_plan_vulkan(hp, &w, &rq, UINT64_MAX, UINT64_MAX, &all);
    rq.n_cpu_moe = MP_CPU_MOE_AUTO;
    mp_plan_vulkan(hp, &w, &rq, all.dev[0].total - ex[0].bytes / 2, UINT64_MAX, &pl);
    CHECK(pl.dev[0].fits && pl.dev[1].fits && pl.n_cpu_moe == 1, "auto placement: %u layers' experts on the CPU",
          pl.n_cpu_moe);
    CHECK(pl.dev[1].part[MP_WEIGHTS] == ex[0].bytes && pl.dev[0].part[MP_WEIGHTS] == w.total - ex[0].bytes,
          "layer 0's experts (%llu bytes) counted on the host, not the device",
          (unsigned long long)ex[0].bytes);
    uint64_t before = vk_allocated_bytes(ctx, VK_MEM_DEVICE);
    struct vk_model *vm = vk_model_upload(ctx, m, pl.n_cpu_moe, NULL, NULL, err, sizeof err);
    struct vk_model_ctx *c = vm ? vk_model_ctx_new(vm, 1, 1024, 1024, 64, err, sizeof err) : NULL;
    CHECK(c, "hybrid upload: %s", err);
    double ratio = (double)pl.dev[0].total / (double)(vk_allocated_bytes(ctx, VK_MEM_DEVICE) - before);
    CHECK(ratio > 0.95 && ratio < 1.05, "hybrid plan: planned / allocated device bytes %.4f", ratio);
    printf("  hybrid plan: layer 0's experts on the CPU, planned / allocated device bytes %.4f\n", ratio);
    vk_model_ctx_free(c);
    vk_model_free(vm);
    uint64_t experts = 0;
    for (uint32_t l = 0; l < L; l++)
        experts += ex[l].bytes;
    mp_plan_vulkan(hp, &w, &rq, all.dev[0].total - experts - 1, UINT64_MAX, &pl);
    CHECK(!pl.dev[0].fits && pl.n_cpu_moe == L, "a device too small even without experts: all %u layers' "
          "experts on the CPU (%u) and no fit", L, pl.n_cpu_moe);
    rq.n_cpu_moe = (int32_t)L + 5;
    mp_plan_vulkan(hp, &w, &rq, UINT64_MAX, UINT64_MAX, &pl);
    CHECK(pl.n_cpu_moe == L, "--n-cpu-moe past the layer count means every layer (%u)", pl.n_cpu_moe);
    free(ex);
}

static void check_plan(struct vk_ctx *ctx, const struct gguf_file *f, const struct model *m)
{
    char err[512];
    struct arch_hparams hp;
    REQUIRE_VOID(arch_read_hparams(f, &hp));
    hp.n_vocab = m->hp.n_vocab;
    const uint32_t shapes[][4] = {{2, 1024, 512, 512}, {4, 8192, 4096, 64}};  /* seqs, pool, longest, batch */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const uint32_t *s = shapes[i];
        uint64_t before = vk_allocated_bytes(ctx, VK_MEM_DEVICE);
        struct vk_model *vm = vk_model_upload(ctx, m, 0, NULL, NULL, err, sizeof err);
        struct vk_model_ctx *c = vm ? vk_model_ctx_new(vm, s[0], s[1], s[2], s[3], err, sizeof err) : NULL;
        CHECK(c, "plan shape %zu: %s", i, err);
        uint64_t used = vk_allocated_bytes(ctx, VK_MEM_DEVICE) - before;
        struct mp_request rq = {.n_ctx = s[1], .n_slots = 1, .n_batch = s[3]};
        struct mp_plan pl;
        const struct mp_weights all_on_device = {.total = mp_weight_bytes(f)};
        mp_plan_vulkan(&hp, &all_on_device, &rq, UINT64_MAX, UINT64_MAX, &pl);
        double ratio = (double)pl.dev[0].total / (double)used;
        CHECK(ratio > 0.95 && ratio < 1.05, "plan shape %zu: planned %llu device bytes, allocated %llu (%.3f)", i,
              (unsigned long long)pl.dev[0].total, (unsigned long long)used, ratio);
        printf("  plan: pool %u, batch %u: planned %.2f MiB on the device, allocated %.2f MiB (ratio %.4f)\n", s[1],
               s[3], pl.dev[0].total / 1048576.0, used / 1048576.0, ratio);
        vk_model_ctx_free(c);
        vk_model_free(vm);
        CHECK(vk_allocated_bytes(ctx, VK_MEM_DEVICE) == before, "plan shape %zu: everything freed", i);
    }
    /* a budget below the need: the plan says so and names the largest pool that fits */
    struct mp_request rq = {.n_ctx = 1u << 20, .n_slots = 1, .n_batch = 64};
    struct mp_plan pl;
    const struct mp_weights w = {.total = mp_weight_bytes(f)};
    mp_plan_vulkan(&hp, &w, &rq, 64u << 20, UINT64_MAX, &pl);
    CHECK(!pl.dev[0].fits && pl.max_ctx > 0 && pl.max_ctx < rq.n_ctx && pl.n_cpu_moe == 0,
          "64 MiB device: a 1M-token pool does not fit (largest %llu)", (unsigned long long)pl.max_ctx);
    check_hybrid_plan(ctx, f, m, &hp);
}

/* engine_open with --device: vulkan runs on lavapipe and agrees with cpu; auto passes over a CPU
 * device with a note; an unknown device is refused; no driver: vulkan fails, auto falls back. */
static void check_engine(const char *model)
{
    char path[1024], err[1024];
    testdata_path(path, sizeof path, model);
    struct engine_params p = {.path = path, .slots = 2, .ctx_size = 512, .batch_tokens = 64, .kv_type = "f16",
                              .device = "vulkan"};
    struct engine *gpu = engine_open(&p, err, sizeof err);
    CHECK(gpu, "--device vulkan: %s", err);
    p.device = "cpu";
    struct engine *cpu = engine_open(&p, err, sizeof err);
    CHECK(cpu, "--device cpu: %s", err);
    if (gpu && cpu) {
        const struct engine_info *i = engine_info(gpu);
        CHECK(strstr(i->device_name, "llvmpipe") && i->device_note && strstr(i->device_note, "running on Vulkan"),
              "vulkan engine on %s (%s)", i->device_name, i->device_note ? i->device_note : "no note");
        CHECK(engine_info(cpu)->kv_bytes == i->kv_bytes, "same KV pool size on both devices");
        int32_t tok[6] = {3000, 11, 1879, 0, 100, 2000};
        uint32_t pos[6] = {0, 1, 2, 3, 4, 5}, seq[6] = {0};
        bool want[6] = {false, false, false, false, false, true};
        uint32_t V = i->n_vocab;
        float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b);
        REQUIRE_VOID(a && b);
        bool ok = engine_decode(gpu, 6, tok, pos, seq, want, a, err, sizeof err);
        CHECK(ok, "engine_decode on vulkan: %s", err);
        ok = ok && engine_decode(cpu, 6, tok, pos, seq, want, b, err, sizeof err);
        double kl = ok ? kl_logits(b, a, V) : 1;
        CHECK(kl <= 5e-4, "engine on vulkan vs cpu: KL %.3g", kl);
        engine_seq_keep(gpu, 0, 3);  /* continue from position 3 on both */
        engine_seq_keep(cpu, 0, 3);
        ok = ok && engine_decode(gpu, 3, tok + 3, pos + 3, seq, want + 3, a, err, sizeof err) &&
             engine_decode(cpu, 3, tok + 3, pos + 3, seq, want + 3, b, err, sizeof err);
        kl = ok ? kl_logits(b, a, V) : 1;
        CHECK(ok && kl <= 5e-4, "after engine_seq_keep: KL %.3g (%s)", kl, ok ? "" : err);
        free(a);
        free(b);
        }
    engine_close(gpu);
    engine_close(cpu);
    p.device = "auto";
    struct engine *au = engine_open(&p, err, sizeof err);
    CHECK(au, "--device auto: %s", err);
    if (au)
        CHECK(strcmp(engine_info(au)->device_name, "cpu") == 0 && engine_info(au)->device_note &&
                  strstr(engine_info(au)->device_note, "CPU implementation"),
              "auto passes over lavapipe: %s (%s)", engine_info(au)->device_name,
              engine_info(au)->device_note ? engine_info(au)->device_note : "no note");
    engine_close(au);
    /* --gpu and --n-cpu-moe: a named device is taken even by auto; a forced split is reported */
    p.gpu = "llvmpipe";
    p.n_cpu_moe = "1";
    au = engine_open(&p, err, sizeof err);
    CHECK(au && strstr(engine_info(au)->device_name, "llvmpipe") && engine_info(au)->n_cpu_moe == 1 &&
              strstr(engine_info(au)->device_note, "experts of layers 0-0 run on the CPU"),
          "auto with --gpu llvmpipe --n-cpu-moe 1: %s", au ? engine_info(au)->device_note : err);
    engine_close(au);
    p.gpu = "0";
    p.device = "vulkan";
    au = engine_open(&p, err, sizeof err);
    CHECK(au && strstr(engine_info(au)->device_name, "llvmpipe"), "--gpu 0: %s", au ? engine_info(au)->device_name : err);
    engine_close(au);
    p.gpu = "7";
    CHECK(!engine_open(&p, err, sizeof err) && strstr(err, "7"), "--gpu 7 (no such device) refused: %s", err);
    p.gpu = "no-such-gpu";
    CHECK(!engine_open(&p, err, sizeof err) && strstr(err, "no-such-gpu"), "--gpu no-such-gpu refused: %s", err);
    p.gpu = NULL;
    p.n_cpu_moe = "some";
    CHECK(!engine_open(&p, err, sizeof err) && strstr(err, "--n-cpu-moe some"), "--n-cpu-moe some refused: %s", err);
    p.n_cpu_moe = NULL;
    p.device = "gpu";
    CHECK(!engine_open(&p, err, sizeof err) && strstr(err, "--device gpu"), "unknown device refused: %s", err);
    /* no driver: the loader finds no ICD */
    setenv("VK_DRIVER_FILES", "/nonexistent/icd.json", 1);
    p.device = "vulkan";
    CHECK(!engine_open(&p, err, sizeof err) && strstr(err, "--device vulkan"), "vulkan without a driver: %s", err);
    p.device = "auto";
    au = engine_open(&p, err, sizeof err);
    CHECK(au && strcmp(engine_info(au)->device_name, "cpu") == 0 && engine_info(au)->device_note &&
              strstr(engine_info(au)->device_note, "no usable Vulkan device"),
          "auto without a driver runs on the CPU: %s", au && engine_info(au)->device_note ? engine_info(au)->device_note : err);
    engine_close(au);
    unsetenv("VK_DRIVER_FILES");
}

/* The forward pass with the experts of the first layer, then of every layer, on the CPU: within
 * the same bounds of llama.cpp and the CPU engine and the same greedy text (check_prompt), batched
 * sequences unchanged by their neighbours (check_batched), fewer weight bytes on the device. */
static void check_hybrid(struct vk_ctx *ctx, const struct run *r, struct prompt *ps, int np)
{
    char err[512];
    const uint32_t splits[2] = {1, r->m->hp.n_layer};
    for (int i = 0; i < 2; i++) {
        struct run h = *r;
        h.vm = vk_model_upload(ctx, r->m, splits[i], NULL, NULL, err, sizeof err);
        CHECK(h.vm, "%s: upload with %u layers' experts on the CPU: %s", r->name, splits[i], err);
        if (!h.vm)
            continue;
        CHECK(vk_model_cpu_moe_layers(h.vm) == splits[i] &&
                  vk_model_weight_bytes(h.vm) < vk_model_weight_bytes(r->vm),
              "%s: %u layers' experts on the CPU: %llu device weight bytes against %llu", r->name,
              vk_model_cpu_moe_layers(h.vm), (unsigned long long)vk_model_weight_bytes(h.vm),
              (unsigned long long)vk_model_weight_bytes(r->vm));
        printf("  hybrid: experts of %u of %u layers on the CPU\n", splits[i], r->m->hp.n_layer);
        check_prompt(&h, &ps[0], 0);
        if (i == 0)
            check_batched(&h, ps, np);
        vk_model_free(h.vm);
    }
}

/* After a prompt on both GPU contexts: `steps` greedy steps from token `tok` (the first context's
 * choices, so both see the same tokens); the steps whose logits differ in any bit. */
static size_t differing_steps(struct vk_model_ctx *a, struct vk_model_ctx *b, const struct prompt *p, int32_t tok,
                              size_t steps, uint32_t V, float *la, float *lb, bool *ok, char *err, size_t errlen)
{
    size_t differ = 0;
    for (size_t s = 0; *ok && s < steps; s++) {
        uint32_t pos = (uint32_t)(p->n + s), seq = 0;
        bool want = true;
        *ok = vk_model_decode(a, 1, &tok, &pos, &seq, &want, la, err, errlen) &&
              vk_model_decode(b, 1, &tok, &pos, &seq, &want, lb, err, errlen);
        differ += *ok && memcmp(la, lb, V * sizeof *la) != 0;
        tok = argmax(la, V);
    }
    return differ;
}

/* The shared-memory shader variants (vk_config.force_no_subgroups), which devices without
 * subgroup arithmetic run, on one prompt and 8 greedy steps (a few seconds per model): the
 * subgroup path's bounds (KL to llama.cpp, top-1), and on lavapipe, whose subgroupAdd adds the
 * lanes in index order (the order the variants reproduce, shaders/reduce.glsl), the subgroup
 * path's logits bit for bit. */
static void check_no_subgroups(struct vk_ctx *sg_ctx, const struct vk_config *base, const struct run *r,
                               const struct prompt *p)
{
    char err[512];
    const uint32_t V = r->m->hp.n_vocab;
    const size_t steps = 8;
    double t0 = now_ms();
    struct vk_config cfg = *base;
    cfg.force_no_subgroups = true;
    struct vk_ctx *ctx = vk_ctx_create(&cfg, err, sizeof err);
    CHECK(ctx && !vk_ctx_info(ctx)->subgroups, "context without subgroups: %s", ctx ? "subgroups still on" : err);
    struct vk_model *vm = ctx ? vk_model_upload(ctx, r->m, 0, NULL, NULL, err, sizeof err) : NULL;
    CHECK(!ctx || vm, "%s: upload without subgroups: %s", r->name, err);
    struct vk_model_ctx *a = vm ? vk_model_ctx_new(r->vm, 1, 1024, 512, 512, err, sizeof err) : NULL;
    struct vk_model_ctx *b = a ? vk_model_ctx_new(vm, 1, 1024, 512, 512, err, sizeof err) : NULL;
    CHECK(!vm || b, "%s: contexts: %s", r->name, err);
    float *la = malloc(p->n * V * sizeof *la), *lb = malloc(p->n * V * sizeof *lb);
    if (b && la && lb) {
        bool ok = run_prompt(NULL, a, p, 0, la, err, sizeof err) && run_prompt(NULL, b, p, 0, lb, err, sizeof err);
        CHECK(ok, "%s without subgroups: %s", r->name, err);
        struct outcome o = {.n = p->n, .kl_ref = ok ? kl_div(p->last, lb + (p->n - 1) * V, V) : INFINITY};
        size_t differ = 0;
        if (ok) {
            measure_top1(p, lb, V, &o);
            for (size_t i = 0; i < p->n; i++)
                differ += memcmp(la + i * V, lb + i * V, V * sizeof *la) != 0;
            differ += differing_steps(a, b, p, argmax(la + (p->n - 1) * V, V), steps, V, la, lb, &ok, err,
                                      sizeof err);
            CHECK(ok, "%s without subgroups, greedy steps: %s", r->name, err);
        }
        bool bits = strncmp(vk_ctx_info(ctx)->name, "llvmpipe", 8) == 0 && vk_ctx_info(sg_ctx)->subgroups;
        fprintf(stderr, "  %-26s without subgroups (%zu tok + %zu steps): KL ref %.2e, top-1 %zu/%zu, %zu of %zu rows "
                "differ from the subgroup path's bits (%.0f ms)\n", r->name, p->n, steps, o.kl_ref, o.agree, o.n,
                differ, p->n + steps, now_ms() - t0);
        CHECK(o.kl_ref <= kl_bound(p->n), "%s without subgroups: KL to llama.cpp %.3g", r->name, o.kl_ref);
        CHECK(ok && (o.agree * 100 >= o.n * 98 || o.clear_misses == 0) && o.in_top5,
              "%s without subgroups: top-1 %zu/%zu", r->name, o.agree, o.n);
        CHECK(!bits || differ == 0, "%s without subgroups: %zu of %zu rows differ from the subgroup path's bits",
              r->name, differ, p->n + steps);
    }
    free(la);
    free(lb);
    vk_model_ctx_free(b);
    vk_model_ctx_free(a);
    vk_model_free(vm);
    char first[512];
    uint32_t n_msg = ctx ? vk_validation_messages(ctx, first, sizeof first) : 0;
    CHECK(n_msg == 0, "validation layer reported %u messages without subgroups; first: %s", n_msg, first);
    vk_ctx_destroy(ctx);
}

static void progress(void *pctx, double fraction)
{
    double *last = pctx;
    CHECK(fraction >= *last && fraction <= 1.0, "upload progress %.3f after %.3f", fraction, *last);
    *last = fraction;
}

/* n_prompts of the model's prompts; batched, error and plan checks where asked; the first prompt on
 * the shared-memory shader variants; hybrid placement where asked. */
static void check_model(struct vk_ctx *ctx, const struct vk_config *cfg, const char *name, int n_prompts,
                        bool extras, bool hybrid)
{
    char path[512], full[1024], err[512];
    snprintf(path, sizeof path, "models/%s.gguf", name);
    struct gguf_file *f = gguf_open(testdata_path(full, sizeof full, path), err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (!f)
        return;
    struct model m;
    bool ok = model_load(&m, f, err, sizeof err);
    CHECK(ok, "%s", err);
    snprintf(path, sizeof path, "models/%s.ref.json", name);
    json_error_t jerr;
    json_t *ref = ok ? json_load_file(testdata_path(full, sizeof full, path), 0, &jerr) : NULL;
    CHECK(!ok || ref, "%s: %s", path, jerr.text);
    double fraction = 0;
    struct run r = {.name = name, .m = &m};
    if (ref) {
        r.vm = vk_model_upload(ctx, &m, 0, progress, &fraction, err, sizeof err);
        CHECK(r.vm, "%s: upload: %s", name, err);
        CHECK(!r.vm || fraction == 1.0, "%s: upload progress ends at %.3f", name, fraction);
    }
    struct prompt ps[3] = {0};
    for (int i = 0; r.vm && i < 3; i++) {
        CHECK(load_prompt(json_array_get(json_object_get(ref, "prompts"), (size_t)i), &ps[i], 4096), "%s prompt %d", name, i);
        if (i < n_prompts)
            check_prompt(&r, &ps[i], i);
    }
    if (r.vm)
        check_no_subgroups(ctx, cfg, &r, &ps[0]);
    if (r.vm && extras) {
        check_batched(&r, ps, n_prompts < 2 ? 2 : n_prompts);
        check_errors(&r);
        check_plan(ctx, f, &m);
    }
    if (r.vm && hybrid)
        check_hybrid(ctx, &r, ps, 2);
    for (int i = 0; i < 3; i++)
        free(ps[i].tokens);
    vk_model_free(r.vm);
    json_decref(ref);
    if (ok)
        model_free(&m);
    gguf_close(f);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *no_vk = getenv("MOESERVE_NO_VULKAN");
    if (no_vk && strcmp(no_vk, "1") == 0) {
        printf("MOESERVE_NO_VULKAN=1: Vulkan tests not run\n");
        return test_finish();
    }
    /* See test_vulkan.c: keeps the ICD and the layer loaded so LeakSanitizer can attribute them. */
    dlopen("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
    dlopen("libVkLayer_khronos_validation.so", RTLD_NOW | RTLD_NODELETE);
    char err[1024];
    double t0 = now_ms();
    struct vk_config cfg = VK_CONFIG_DEFAULT;
    cfg.validation = vk_validation_available();
    struct vk_ctx *ctx = vk_ctx_create(&cfg, err, sizeof err);
    REQUIRE(ctx, "no Vulkan device (set MOESERVE_NO_VULKAN=1 to skip on purpose): %s", err);
    printf("device: %s, validation %s\n", vk_ctx_info(ctx)->name, cfg.validation ? "on" : "not installed");
    const char *models[] = {"tiny-qwen3moe-q8_0", "tiny-qwen3moe-q4_k_m", "tiny-qwen3moe-asym",
                            "tiny-qwen3moe-asym-pruned", "tiny-qwen3moe-mxfp4"};
    /* Under the sanitizer lavapipe and the CPU engine are slow: that build runs the 11-token prompt
     * of every model (on both shader paths), and batching (two prompts), errors and the plan on one;
     * `make test` runs the release build of this test on everything. Hybrid placement runs on the
     * first model in both. */
#if defined(__SANITIZE_ADDRESS__)
    const int n_prompts = 1;
#else
    const int n_prompts = 3;
#endif
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        check_model(ctx, &cfg, models[i], n_prompts, i == 0 || n_prompts == 3, i == 0);
    check_engine("models/tiny-qwen3moe-q8_0.gguf");
    char first[512];
    uint32_t n_msg = vk_validation_messages(ctx, first, sizeof first);
    CHECK(n_msg == 0, "validation layer reported %u messages; first: %s", n_msg, first);
    vk_ctx_destroy(ctx);
    printf("total %.0f ms\n", now_ms() - t0);
    return test_finish();
}
