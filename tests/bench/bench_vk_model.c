/* bench_vk_model.c: whole-model Vulkan throughput: prompt (-p, 512) and generation (-n, 128) tokens/s
 * of a qwen3moe model (default: a synthetic Qwen3-30B-A3B, 48 layers, asymmetric recipe, written to
 * $TMPDIR and removed), generation's weight bytes per token against the device's copy bandwidth
 * measured in the same run, and with -c N the same again with the experts of N layers on the CPU.
 * Usage: bench_vk_model [-m FILE] [-p N] [-n N] [-c N] [-l LAYERS] [-d index] [-s name] [-G: only
 * on a GPU, skipped with a note on a CPU implementation such as lavapipe (`make bench`)] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/synth.h"
#include "engine/vk_model.h"
#include "engine/vulkan.h"

struct opts {
    const char *model;
    uint32_t prompt, gen, n_cpu_moe, layers;
    bool gpu_only;
    struct vk_config cfg;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Device-to-device copy bandwidth (bytes read plus written per second), best of 5, from timestamps. */
static bool copy_bandwidth(struct vk_ctx *ctx, double *bytes_per_s, char *err, size_t errlen)
{
    const struct vk_device_info *info = vk_ctx_info(ctx);
    VkDeviceSize n = info->device_local_bytes / 16;
    n = n > (1u << 30) ? (1u << 30) : n;
    struct vk_buffer a = {0}, b = {0};
    bool ok = vk_buffer_create(ctx, &a, n, VK_MEM_DEVICE, err, errlen) &&
              vk_buffer_create(ctx, &b, n, VK_MEM_DEVICE, err, errlen);
    double best = 0;
    for (int i = 0; ok && i < 6; i++) {
        double ns = 0;
        ok = vk_begin(ctx, err, errlen) && vk_timestamp(ctx, 0, err, errlen) &&
             vk_copy(ctx, &a, 0, &b, 0, n, err, errlen) && vk_timestamp(ctx, 1, err, errlen) &&
             vk_submit_wait(ctx, err, errlen) && vk_timestamp_elapsed_ns(ctx, 0, 1, &ns, err, errlen);
        if (ok && i > 0 && ns > 0 && 2.0 * n / (ns * 1e-9) > best)
            best = 2.0 * n / (ns * 1e-9);
    }
    vk_buffer_destroy(ctx, &a);
    vk_buffer_destroy(ctx, &b);
    *bytes_per_s = best;
    return ok;
}

/* Weight bytes one generated token reads: every dense matrix and norm, the n_expert_used experts
 * of each layer whose experts are on the device, one embedding row and the output head. */
static double bytes_per_token(const struct model *m, uint32_t n_cpu_moe)
{
    const struct model_hparams *hp = &m->hp;
    double sum = (double)m->token_embd.row_bytes + (double)m->output.row_bytes * m->output.rows;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const struct model_layer *L = &m->layers[l];
        const struct q_mat *d[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->router};
        for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
            sum += (double)d[i]->row_bytes * d[i]->rows;
        if (l >= n_cpu_moe)
            sum += (double)hp->n_expert_used * (L->gate.expert_bytes + L->up.expert_bytes + L->down.expert_bytes);
    }
    return sum;
}

/* Prompt of o->prompt tokens in one call, then o->gen single steps; best of 2 after a warm-up. */
static bool time_model(struct vk_model_ctx *c, const struct opts *o, uint32_t n_vocab, double *pp, double *tg,
                       double *tg_gpu_share, char *err, size_t errlen)
{
    int32_t *tok = malloc(o->prompt * sizeof *tok);
    uint32_t *pos = malloc(o->prompt * sizeof *pos), *seq = calloc(o->prompt, sizeof *seq);
    bool *want = calloc(o->prompt, sizeof *want);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    bool ok = tok && pos && seq && want && logits;
    for (uint32_t i = 0; ok && i < o->prompt; i++) {
        tok[i] = (int32_t)((i * 7919u) % n_vocab);
        pos[i] = i;
    }
    if (ok)
        want[o->prompt - 1] = true;
    *pp = *tg = 0;
    for (int run = 0; ok && run < 3; run++) {
        kvpool_truncate(vk_model_ctx_kv(c), 0, 0);
        double t0 = now();
        ok = vk_model_decode(c, o->prompt, tok, pos, seq, want, logits, err, errlen);
        double t1 = now(), gpu_ns = 0;
        for (uint32_t i = 0; ok && i < o->gen; i++) {
            int32_t t = (int32_t)(i % n_vocab);
            uint32_t p = o->prompt + i, s = 0;
            bool w = true;
            ok = vk_model_decode(c, 1, &t, &p, &s, &w, logits, err, errlen);
            gpu_ns += vk_model_ctx_gpu_ns(c);
        }
        double t2 = now();
        if (ok && run > 0) {
            *pp = o->prompt / (t1 - t0) > *pp ? o->prompt / (t1 - t0) : *pp;
            if (o->gen / (t2 - t1) > *tg) {
                *tg = o->gen / (t2 - t1);
                *tg_gpu_share = gpu_ns * 1e-9 / (t2 - t1);
            }
        }
    }
    free(tok);
    free(pos);
    free(seq);
    free(want);
    free(logits);
    return ok;
}

/* The synthetic model in $TMPDIR; unlinked once open (the mapping keeps it). */
static bool write_synthetic(const struct opts *o, char *path, size_t pathlen, char *err, size_t errlen)
{
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, pathlen, "%s/moeserve-bench-vk-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create", path);
        return false;
    }
    close(fd);
    struct synth_spec s = synth_default_spec();
    if (o->layers)
        s.n_layer = o->layers;
    printf("writing a synthetic Qwen3-30B-A3B (%u layers, asymmetric recipe) to %s\n", s.n_layer, path);
    if (!synth_write(&s, path, NULL, NULL, err, errlen)) {
        unlink(path);
        return false;
    }
    return true;
}

static bool parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.prompt = 512, .gen = 128, .cfg = VK_CONFIG_DEFAULT};
    int c;
    while ((c = getopt(argc, argv, "m:p:n:c:l:d:s:G")) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p': o->prompt = (uint32_t)atoi(optarg); break;
        case 'n': o->gen = (uint32_t)atoi(optarg); break;
        case 'c': o->n_cpu_moe = (uint32_t)atoi(optarg); break;
        case 'l': o->layers = (uint32_t)atoi(optarg); break;
        case 'd': o->cfg.device_index = atoi(optarg); break;
        case 's': o->cfg.device_name = optarg; break;
        case 'G': o->gpu_only = true; break;
        default: return false;
        }
    }
    return o->prompt >= 1 && o->prompt <= 8192 && o->gen >= 1 && o->gen <= 4096;
}

/* One placement: uploads the model with n_cpu_moe layers' experts left on the CPU, times it and
 * prints a table row. */
static bool run_placement(struct vk_ctx *ctx, const struct opts *o, const struct model *m, uint32_t n_cpu_moe,
                          double bandwidth)
{
    char err[1024];
    double t0 = now();
    struct vk_model *vm = vk_model_upload(ctx, m, n_cpu_moe, NULL, NULL, err, sizeof err);
    double up = now() - t0;
    const uint32_t total = o->prompt + o->gen;
    struct vk_model_ctx *c = vm ? vk_model_ctx_new(vm, 1, total, total, o->prompt, err, sizeof err) : NULL;
    double pp, tg, share = 0;
    bool ok = c && time_model(c, o, m->hp.n_vocab, &pp, &tg, &share, err, sizeof err);
    if (!ok) {
        fprintf(stderr, "bench_vk_model: %s\n", err);
    } else {
        const double bpt = bytes_per_token(m, vk_model_cpu_moe_layers(vm));
        printf("| %u of %u | %.1f | %.1f | %.0f%% | %.1f MB | %.1f%% | %.1f s |\n", vk_model_cpu_moe_layers(vm),
               m->hp.n_layer, pp, tg, 100.0 * share, bpt / 1e6, bandwidth > 0 ? 100.0 * bpt * tg / bandwidth : 0.0, up);
    }
    vk_model_ctx_free(c);
    vk_model_free(vm);
    return ok;
}

/* Every placement asked for (all experts on the device, then -c layers' on the CPU). */
static int run(struct vk_ctx *ctx, const struct opts *o, const char *path, double bandwidth)
{
    char err[1024];
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    struct model m;
    if (!f || !model_load(&m, f, err, sizeof err)) {
        fprintf(stderr, "bench_vk_model: %s\n", err);
        gguf_close(f);
        return 1;
    }
    printf("| layers with experts on the CPU | pp%u tokens/s | tg%u tokens/s | tg: device busy | device weight "
           "bytes per generated token | bytes x tg / copy bandwidth | upload |\n|---|---|---|---|---|---|---|\n",
           o->prompt, o->gen);
    bool ok = run_placement(ctx, o, &m, 0, bandwidth);
    if (ok && o->n_cpu_moe)
        ok = run_placement(ctx, o, &m, o->n_cpu_moe, bandwidth);
    model_free(&m);
    gguf_close(f);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: %s [-m FILE] [-p N] [-n N] [-c N] [-l LAYERS] [-d index] [-s name] [-G]\n", argv[0]);
        return 2;
    }
    char err[1024], path[512];
    struct vk_ctx *ctx = vk_ctx_create(&o.cfg, err, sizeof err);
    if (!ctx) {
        printf("bench_vk_model: no usable Vulkan device (%s): skipped\n", err);
        return 0;
    }
    const struct vk_device_info *info = vk_ctx_info(ctx);
    if (o.gpu_only && info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        printf("bench_vk_model: %s is a CPU implementation, not a GPU: skipped\n", info->name);
        vk_ctx_destroy(ctx);
        return 0;
    }
    double bw = 0;
    if (!copy_bandwidth(ctx, &bw, err, sizeof err))
        fprintf(stderr, "note: no copy bandwidth: %s\n", err);
    printf("device %s (%.1f GiB device-local), copy bandwidth %.0f GB/s (read + write)\n", info->name,
           info->device_local_bytes / 1073741824.0, bw / 1e9);
    const bool synthetic = !o.model;
    if (synthetic && !write_synthetic(&o, path, sizeof path, err, sizeof err)) {
        fprintf(stderr, "bench_vk_model: %s\n", err);
        vk_ctx_destroy(ctx);
        return 1;
    }
    int rc = run(ctx, &o, synthetic ? path : o.model, bw);
    if (synthetic)
        unlink(path);
    vk_ctx_destroy(ctx);
    return rc;
}
