/* vk_model.h: the qwen3moe forward pass on a Vulkan device, with engine/model.h's batch API:
 * weights uploaded once through staging, the paged KV cache on the device, one command buffer a step. */
#ifndef MOESERVE_VK_MODEL_H
#define MOESERVE_VK_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/kvpool.h"
#include "engine/model.h"
#include "engine/vulkan.h"

/* The weights of a loaded model (engine/model.h) in device-local buffers. The context must
 * outlive it. The routed experts of layers [0, n_cpu_moe) are not uploaded: those layers' experts
 * run on the CPU from m's tensors (hybrid placement, as llama.cpp's --n-cpu-moe), so m must then
 * outlive the device model too; otherwise m is only read during the upload. progress (may be
 * NULL) gets the fraction of weight bytes uploaded so far. NULL with a message naming the tensor
 * at fault (a type without shaders, a shape the shaders do not take, out of device memory). */
struct vk_model;

struct vk_model *vk_model_upload(struct vk_ctx *ctx, const struct model *m, uint32_t n_cpu_moe,
                                 void (*progress)(void *pctx, double fraction), void *pctx, char *err,
                                 size_t errlen);
void vk_model_free(struct vk_model *vm);
/* Bytes of the weight buffers (allocation sizes). */
uint64_t vk_model_weight_bytes(const struct vk_model *vm);
/* Layers whose routed experts run on the CPU (n_cpu_moe, at most the layer count). */
uint32_t vk_model_cpu_moe_layers(const struct vk_model *vm);

/* The per-run state: KV pool (page bookkeeping on the host, K/V rows on the device), device
 * activations and the host-visible input and logits buffers, for batches of up to max_batch
 * tokens. The page size is the CPU engine's (VK_MODEL_PAGE_TOKENS). */
#define VK_MODEL_PAGE_TOKENS 32
struct vk_model_ctx;

struct vk_model_ctx *vk_model_ctx_new(struct vk_model *vm, uint32_t n_seqs, uint32_t pool_tokens,
                                      uint32_t max_seq_tokens, uint32_t max_batch, char *err, size_t errlen);
void vk_model_ctx_free(struct vk_model_ctx *c);
struct kvpool *vk_model_ctx_kv(struct vk_model_ctx *c);

/* As model_decode: n entries (token, position, sequence, wants logits) from any sequences; logits
 * rows for the entries that want them, in entry order. The whole pass is one submission, plus one
 * per layer whose experts run on the CPU (the step waits there for the CPU's part); logits beyond
 * the first 64 rows come from one more short submission (the head alone) per 64. */
bool vk_model_decode(struct vk_model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                     const uint32_t *seq, const bool *want_logits, float *logits, char *err, size_t errlen);

/* Device time of the last vk_model_decode's submissions in ns, from timestamps (0 on a queue
 * without them): the wall time less this is the host's part (recording, the CPU's experts, waits). */
double vk_model_ctx_gpu_ns(const struct vk_model_ctx *c);

/* What a context of this shape allocates, before the driver's rounding: on the device the KV cache
 * and the activations and scratch of the largest batch; host-visible the inputs and logits, and
 * (host_moe) when some layers' experts run on the CPU the buffers carrying their inputs and
 * outputs. The weights are vk_model_weight_bytes (the tensors' bytes). For the memory planner. */
struct vk_model_bytes {
    uint64_t kv, compute, host, host_moe;
};
void vk_model_ctx_bytes(const struct model_hparams *hp, uint32_t n_seqs, uint32_t pool_tokens,
                        uint32_t max_seq_tokens, uint32_t max_batch, struct vk_model_bytes *out);

#endif
