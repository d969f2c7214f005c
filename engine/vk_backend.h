/* vk_backend.h: the engine's Vulkan backend: the device choice behind --device vulkan|auto and
 * what runs there (context, device weights, per-run state), behind one small handle. */
#ifndef MOESERVE_VK_BACKEND_H
#define MOESERVE_VK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/arch.h"
#include "engine/kvpool.h"
#include "engine/memplan.h"
#include "engine/model.h"

struct vk_backend;

struct vk_backend_params {
    bool required;            /* --device vulkan: any usable device, a CPU one (lavapipe) included;
                               * false (auto): only a GPU, else the caller runs on the CPU */
    int device_index;         /* >= 0: this physical device; < 0: the best (a discrete GPU first) */
    const char *device_name;  /* non-NULL: the first usable device whose name contains it */
    uint32_t n_seqs, pool_tokens, max_seq_tokens, max_batch;
    const struct arch_hparams *hp;    /* for the memory plan */
    uint64_t weight_bytes;
    const struct mp_expert_layer *experts;  /* per layer (the plan may leave them on the CPU), or NULL */
    int32_t n_cpu_moe;        /* layers whose experts stay on the CPU, or MP_CPU_MOE_AUTO: the plan's choice */
    uint64_t mem_budget;      /* device bytes; 0: the device-local heap */
    void (*progress)(void *pctx, double fraction);  /* weight upload (may be NULL) */
    void *pctx;
};

/* Opens the device, checks the memory plan (engine/memplan.h) against its heap and uploads the
 * model, leaving the routed experts of the layers the plan (or p->n_cpu_moe) names on the CPU,
 * so m must outlive the backend; a model that does not fit even so is an error with --device
 * vulkan, a fallback for auto. NULL when it cannot: with p->required the reason is in
 * err; otherwise (auto) the one line saying why the CPU is used goes to `note` and err stays empty,
 * except for failures after a GPU was chosen (out of device memory...), which are errors either
 * way. On success `note` says which device runs the model. */
struct vk_backend *vk_backend_open(const struct model *m, const struct vk_backend_params *p, char *note,
                                   size_t notelen, char *err, size_t errlen);
void vk_backend_close(struct vk_backend *b);

const char *vk_backend_device_name(const struct vk_backend *b);
/* Layers whose routed experts run on the CPU. */
uint32_t vk_backend_cpu_moe_layers(const struct vk_backend *b);
struct kvpool *vk_backend_kv(struct vk_backend *b);
/* As model_decode, on the device. */
bool vk_backend_decode(struct vk_backend *b, uint32_t n, const int32_t *token, const uint32_t *pos,
                       const uint32_t *seq, const bool *want_logits, float *logits, char *err, size_t errlen);
/* Device memory the backend holds (all its buffers, as allocated). */
uint64_t vk_backend_device_bytes(const struct vk_backend *b);

#endif
