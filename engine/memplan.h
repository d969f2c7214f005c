/* memplan.h: memory-fit planner: what a model needs per device (weights, KV cache, recurrent
 * state, compute buffers, runtime overhead) for a context and slot count, against a budget. */
#ifndef MOESERVE_MEMPLAN_H
#define MOESERVE_MEMPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/arch.h"
#include "engine/gguf.h"

enum mp_part { MP_WEIGHTS, MP_KV, MP_RECURRENT, MP_COMPUTE, MP_OVERHEAD, MP_PART_COUNT };

/* Fixed cost of the process beyond the model: code, C and OpenMP runtimes, HTTP and engine
 * threads' stacks, allocator slack; and the tokenizer's tables per vocabulary entry. Both were
 * measured (docs/memory.md): 7.5 MB and 57 bytes, rounded up. */
#define MP_RUNTIME_BASE (UINT64_C(8) << 20)
#define MP_TOKENIZER_BYTES_PER_TOKEN 64
#define MP_DEFAULT_BATCH 512
/* Recurrent-state snapshots the engine keeps per slot for prefix reuse (qwen3next). */
#define MP_DEFAULT_SNAPSHOTS 2
#define MP_MAX_DEVICES 4

struct mp_request {
    uint64_t n_ctx;              /* context per slot */
    uint64_t n_slots;            /* parallel sequences */
    uint64_t n_batch;            /* largest batch of tokens in one forward pass */
    uint32_t kv_type;            /* Q_F16 or Q_Q8_0 */
    uint64_t n_state_seqs;       /* sequences with a recurrent state (qwen3next) and a logits row; 0: n_slots */
    uint32_t n_snapshots;        /* recurrent-state snapshots per such sequence */
    uint64_t metadata_bytes;     /* the GGUF header (read whole, so resident): gguf data_offset */
    int32_t n_cpu_moe;           /* Vulkan: layers 0..n-1 keep their routed experts on the CPU;
                                    MP_CPU_MOE_AUTO: as few as make the device fit */
};

#define MP_CPU_MOE_AUTO (-1)

struct mp_device {
    const char *name;            /* "cpu" */
    uint64_t part[MP_PART_COUNT];
    uint64_t total, budget;
    bool fits;
};

struct mp_plan {
    struct mp_device dev[MP_MAX_DEVICES];
    size_t n_dev;
    uint64_t max_ctx;            /* largest context per slot that fits with rq->n_slots */
    uint64_t max_slots;          /* most slots that fit with rq->n_ctx */
    uint32_t n_cpu_moe;          /* Vulkan: layers whose routed experts the plan leaves on the CPU */
};

/* One layer's routed experts (gate, up and down), which a Vulkan run may leave on the CPU. */
struct mp_expert_layer {
    uint64_t bytes;
    uint32_t gate_type, up_type, down_type;
};

/* The weights as the Vulkan plan splits them between the device and the host. */
struct mp_weights {
    uint64_t total;                          /* every tensor (mp_weight_bytes) */
    const struct mp_expert_layer *experts;   /* n_layer entries; NULL: the experts cannot move */
};

const char *mp_part_name(enum mp_part p);

/* K and V of every attention layer: layers x ctx x slots x kv heads x head size x bytes. */
uint64_t mp_kv_bytes(const struct arch_hparams *hp, uint64_t n_ctx, uint64_t n_slots, uint32_t kv_type);
/* qwen3next DeltaNet state of n_states sequences or snapshots (conv window and the per-head
 * state matrices, F32): what engine/ssm_state.h allocates, less its position tags. */
uint64_t mp_recurrent_bytes(const struct arch_hparams *hp, uint64_t n_states);
/* Scratch of one forward pass over n_batch tokens, and a logits row per slot. */
uint64_t mp_compute_bytes(const struct arch_hparams *hp, uint64_t n_batch, uint64_t n_slots);
/* Runtime, the mapped GGUF header and the tokenizer's tables. */
uint64_t mp_overhead_bytes(const struct arch_hparams *hp, uint64_t metadata_bytes);
/* Bytes of all tensor data (mmap'd weights count as resident). */
uint64_t mp_weight_bytes(const struct gguf_file *f);

/* Plans everything on one CPU device with the given budget. */
void mp_plan_cpu(const struct arch_hparams *hp, uint64_t weights, const struct mp_request *rq,
                 uint64_t budget, struct mp_plan *out);

/* The file's blk.L.ffn_{gate,up,down}_exps tensors for L < n_layer; false naming the one missing. */
bool mp_expert_layers(const struct gguf_file *f, uint32_t n_layer, struct mp_expert_layer *out, char *err,
                      size_t errlen);

/* Plans a run on a Vulkan device (engine/vk_model.c's buffers): dev[0] "vulkan" holds the weights,
 * the KV cache of n_ctx x n_slots tokens and the compute buffers of batches of n_batch tokens,
 * against device_budget; dev[1] "cpu" the host side (host-visible inputs and logits, the staging
 * buffer, the runtime overhead) against host_budget. The mapped file is not counted on the host,
 * its pages being reclaimable once uploaded, except the routed experts of the first n_cpu_moe
 * layers, which stay there (hybrid placement), with the CPU MoE's scratch and the buffers that
 * carry those layers' inputs and outputs. With rq->n_cpu_moe MP_CPU_MOE_AUTO that is the fewest
 * layers for which both sides fit (all of them when none does). max_ctx: the largest context
 * per slot that fits both with that placement. */
void mp_plan_vulkan(const struct arch_hparams *hp, const struct mp_weights *w, const struct mp_request *rq,
                    uint64_t device_budget, uint64_t host_budget, struct mp_plan *out);

/* "16G", "16GiB", "512M", "1.5G", "123456" (bytes); K/M/G/T and KiB.. are powers of 1024,
 * KB/MB/GB/TB powers of 1000. False on anything else. */
bool mp_parse_size(const char *s, uint64_t *out);

/* MemAvailable from /proc/meminfo. */
bool mp_mem_available(uint64_t *out, char *err, size_t errlen);

#endif
