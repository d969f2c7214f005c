/* vk_backend.c: the engine's Vulkan backend (engine/vk_backend.h): picks the device (a GPU for
 * auto, anything usable for vulkan), then owns the context, the device model and its run state. */
#include "engine/vk_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/memplan.h"
#include "engine/vk_model.h"
#include "engine/vulkan.h"

struct vk_backend {
    struct vk_ctx *ctx;
    struct vk_model *vm;
    struct vk_model_ctx *run;
};

/* The device for the request, or NULL: then err (required) or note (auto) says why. */
static struct vk_ctx *choose_device(const struct vk_backend_params *p, char *note, size_t notelen, char *err,
                                    size_t errlen)
{
    char why[768];
    struct vk_config cfg = VK_CONFIG_DEFAULT;
    cfg.device_index = p->device_index;
    cfg.device_name = p->device_name;
    struct vk_ctx *ctx = vk_ctx_create(&cfg, why, sizeof why);
    if (!ctx) {
        if (p->required)
            snprintf(err, errlen, "--device vulkan: %s", why);
        else
            snprintf(note, notelen, "no usable Vulkan device (%s): running on the CPU", why);
        return NULL;
    }
    const struct vk_device_info *info = vk_ctx_info(ctx);
    /* A software device (lavapipe) is slower than the CPU engine: auto does not take it unless
     * it was named. */
    const bool named = p->device_index >= 0 || p->device_name;
    if (!p->required && !named && info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        snprintf(note, notelen, "the only Vulkan device, %s, is a CPU implementation: running on the CPU "
                 "(--device vulkan uses it anyway)", info->name);
        vk_ctx_destroy(ctx);
        return NULL;
    }
    return ctx;
}

/* The plan for the device, with *n_cpu_moe the layers whose experts it leaves on the CPU; false
 * with the parts in err/note when it does not fit. */
static bool fits(struct vk_ctx *ctx, const struct vk_backend_params *p, uint32_t *n_cpu_moe, char *note,
                 size_t notelen, char *err, size_t errlen)
{
    const struct vk_device_info *info = vk_ctx_info(ctx);
    uint64_t budget = p->mem_budget ? p->mem_budget : info->device_local_bytes, host = UINT64_MAX;
    char why[256];
    if (!mp_mem_available(&host, why, sizeof why))
        host = UINT64_MAX;  /* no /proc/meminfo: the device is what we can check */
    struct mp_request rq = {.n_ctx = p->pool_tokens, .n_slots = 1, .n_batch = p->max_batch,
                            .n_cpu_moe = p->n_cpu_moe};
    const struct mp_weights w = {.total = p->weight_bytes, .experts = p->experts};
    struct mp_plan pl;
    mp_plan_vulkan(p->hp, &w, &rq, budget, host, &pl);
    *n_cpu_moe = pl.n_cpu_moe;
    if (pl.dev[0].fits && pl.dev[1].fits)
        return true;
    const struct mp_device *d = pl.dev[0].fits ? &pl.dev[1] : &pl.dev[0];
    char *out = p->required ? err : note;
    size_t outlen = p->required ? errlen : notelen;
    snprintf(out, outlen, "%s: %.2f GiB needed on %s (weights %.2f, KV %.2f, compute %.2f), %.2f GiB available%s",
             info->name, (double)d->total / (1u << 30), d->name, (double)d->part[MP_WEIGHTS] / (1u << 30),
             (double)d->part[MP_KV] / (1u << 30), (double)(d->part[MP_COMPUTE]) / (1u << 30),
             (double)d->budget / (1u << 30), p->required ? "" : ": running on the CPU");
    if (pl.n_cpu_moe) {
        size_t at = strlen(out);
        snprintf(out + at, outlen - at, " (with the experts of %u of %u layers on the CPU)", pl.n_cpu_moe,
                 (unsigned)p->hp->n_layer);
    }
    return false;
}

struct vk_backend *vk_backend_open(const struct model *m, const struct vk_backend_params *p, char *note,
                                   size_t notelen, char *err, size_t errlen)
{
    if (notelen)
        note[0] = 0;
    if (errlen)
        err[0] = 0;
    struct vk_backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (!(b->ctx = choose_device(p, note, notelen, err, errlen))) {
        free(b);
        return NULL;
    }
    uint32_t n_cpu_moe;
    if (!fits(b->ctx, p, &n_cpu_moe, note, notelen, err, errlen)) {
        vk_backend_close(b);
        return NULL;
    }
    char why[512];
    b->vm = vk_model_upload(b->ctx, m, n_cpu_moe, p->progress, p->pctx, why, sizeof why);
    if (b->vm)
        b->run = vk_model_ctx_new(b->vm, p->n_seqs, p->pool_tokens, p->max_seq_tokens, p->max_batch, why, sizeof why);
    if (!b->run) {
        snprintf(err, errlen, "Vulkan device %s: %s", vk_ctx_info(b->ctx)->name, why);
        vk_backend_close(b);
        return NULL;
    }
    const struct vk_device_info *info = vk_ctx_info(b->ctx);
    int at = snprintf(note, notelen, "running on Vulkan device %s (%.1f GiB device-local, %.2f GiB used%s%s)",
                      info->name, (double)info->device_local_bytes / (1u << 30),
                      (double)vk_backend_device_bytes(b) / (1u << 30),
                      info->subgroups ? "" : "; shared-memory reductions: the device ",
                      info->subgroups ? "" : info->no_subgroups_why);
    if (n_cpu_moe && at > 0 && (size_t)at < notelen)
        snprintf(note + at, notelen - (size_t)at, "; the routed experts of layers 0-%u run on the CPU",
                 n_cpu_moe - 1);
    return b;
}

void vk_backend_close(struct vk_backend *b)
{
    if (!b)
        return;
    vk_model_ctx_free(b->run);
    vk_model_free(b->vm);
    vk_ctx_destroy(b->ctx);
    free(b);
}

const char *vk_backend_device_name(const struct vk_backend *b)
{
    return vk_ctx_info(b->ctx)->name;
}

uint32_t vk_backend_cpu_moe_layers(const struct vk_backend *b)
{
    return vk_model_cpu_moe_layers(b->vm);
}

struct kvpool *vk_backend_kv(struct vk_backend *b)
{
    return vk_model_ctx_kv(b->run);
}

bool vk_backend_decode(struct vk_backend *b, uint32_t n, const int32_t *token, const uint32_t *pos,
                       const uint32_t *seq, const bool *want_logits, float *logits, char *err, size_t errlen)
{
    return vk_model_decode(b->run, n, token, pos, seq, want_logits, logits, err, errlen);
}

uint64_t vk_backend_device_bytes(const struct vk_backend *b)
{
    return vk_allocated_bytes(b->ctx, VK_MEM_DEVICE) + vk_allocated_bytes(b->ctx, VK_MEM_HOST);
}
