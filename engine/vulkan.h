/* vulkan.h: moeserve's Vulkan device layer (device choice, buffers, compute pipelines,
 * record/submit/wait with timestamps) and the quantized matrix-vector / matrix-matrix products. */
#ifndef MOESERVE_VULKAN_H
#define MOESERVE_VULKAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

/* ------------------------------------------------------------------ device --- */

struct vk_config {
    int device_index;        /* >= 0: use exactly this physical device; < 0: choose */
    const char *device_name; /* non-NULL: first usable device whose name contains this */
    bool validation;         /* enable VK_LAYER_KHRONOS_validation and count its messages */
    uint64_t max_binding;    /* non-zero: cap on one storage binding's bytes, below the device's
                              * (tests use it to exercise the splitting of large matrices) */
    bool force_no_subgroups; /* use the shared-memory shader variants even where the device has
                              * subgroup arithmetic (tests run them on lavapipe) */
    uint32_t reduce_lanes;   /* non-zero: threads per chunk of those variants' reductions (2..64)
                              * instead of the device's subgroup size */
};

/* Defaults: choose automatically (discrete GPU first), no validation. */
#define VK_CONFIG_DEFAULT ((struct vk_config){.device_index = -1})

struct vk_device_info {
    char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    VkPhysicalDeviceType type;
    uint32_t api_version;
    uint32_t subgroup_size;
    bool subgroups;               /* the shaders reduce with subgroup arithmetic; false: with their
                                   * shared-memory variants (docs/architecture.md, "GPU path") */
    const char *no_subgroups_why; /* when !subgroups: why, e.g. "lacks subgroup arithmetic" */
    uint32_t reduce_lanes;        /* threads per chunk of the shared-memory reductions (2..64) */
    uint64_t max_storage_range;   /* bytes one storage-buffer binding may cover (after the cap) */
    uint64_t max_alloc;           /* largest single allocation */
    uint64_t device_local_bytes;  /* size of the largest device-local heap */
    uint32_t max_shared;          /* shared memory per workgroup */
    double timestamp_period_ns;   /* 0: the queue has no timestamps */
};

/* One context = one device with one queue and one command buffer; not thread-safe (callers
 * serialise its use). */
struct vk_ctx;

/* Creates the instance and device the config asks for, with one compute queue, a command
 * buffer, a descriptor pool and a timestamp query pool. NULL with the reason in err: no
 * driver, no device, or why each device found is unusable. */
struct vk_ctx *vk_ctx_create(const struct vk_config *cfg, char *err, size_t errlen);
void vk_ctx_destroy(struct vk_ctx *ctx);

const struct vk_device_info *vk_ctx_info(const struct vk_ctx *ctx);

/* NULL if the shaders can reduce with subgroup operations of these properties, else why not:
 * no subgroups in compute shaders, no arithmetic, a size below 2 (the shared-memory variants
 * run then; vk_device_info.subgroups). */
const char *vk_subgroup_gap(const VkPhysicalDeviceSubgroupProperties *sg);

/* Messages (warnings and errors) the validation layer has reported so far; the first one's
 * text goes to `first` when non-NULL. Always 0 without cfg.validation. */
uint32_t vk_validation_messages(const struct vk_ctx *ctx, char *first, size_t firstlen);

/* Whether the validation layer is installed (for tests that want it when it is there). */
bool vk_validation_available(void);

/* ----------------------------------------------------------------- buffers --- */

enum vk_mem {
    VK_MEM_DEVICE,  /* device-local; filled and read through staging copies */
    VK_MEM_HOST,    /* host-visible, coherent, persistently mapped (readback, small uploads) */
};

struct vk_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map;      /* non-NULL for VK_MEM_HOST (and for device memory that is host-visible) */
    VkDeviceSize alloc_bytes;  /* what the driver allocated for it (>= size) */
    enum vk_mem kind;
};

/* Size of the context's host-visible staging buffer (created on the first staged copy). */
#define VK_STAGING_BYTES (16u << 20)

/* A zero-initialised struct vk_buffer is "no buffer" (destroy is a no-op on it). */
bool vk_buffer_create(struct vk_ctx *ctx, struct vk_buffer *b, VkDeviceSize size, enum vk_mem kind,
                      char *err, size_t errlen);
void vk_buffer_destroy(struct vk_ctx *ctx, struct vk_buffer *b);

/* Bytes of device memory the context's live buffers of one kind hold (allocation sizes, the
 * staging buffer included), for checking the memory planner against what was really taken. */
uint64_t vk_allocated_bytes(const struct vk_ctx *ctx, enum vk_mem kind);

/* Copies host bytes into / out of a buffer, through the context's staging buffer when the
 * buffer is not mapped. Waits for completion; must not be called while recording. */
bool vk_buffer_upload(struct vk_ctx *ctx, struct vk_buffer *dst, VkDeviceSize off, const void *src,
                      size_t n, char *err, size_t errlen);
bool vk_buffer_download(struct vk_ctx *ctx, const struct vk_buffer *src, VkDeviceSize off, void *dst,
                        size_t n, char *err, size_t errlen);

/* --------------------------------------------------------------- pipelines --- */

struct vk_pipeline_desc {
    const char *name;             /* for messages */
    const uint32_t *spirv;
    size_t spirv_bytes;
    uint32_t n_buffers;           /* storage buffers at bindings 0..n-1 of set 0 */
    uint32_t push_bytes;          /* push-constant block size (multiple of 4, <= 128) */
    const uint32_t *spec;         /* specialization constants 0..n_spec-1, each 32-bit */
    uint32_t n_spec;
};

struct vk_pipeline {
    VkShaderModule module;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipe;
    uint32_t n_buffers;
    uint32_t push_bytes;
};

bool vk_pipeline_create(struct vk_ctx *ctx, const struct vk_pipeline_desc *d, struct vk_pipeline *p,
                        char *err, size_t errlen);
void vk_pipeline_destroy(struct vk_ctx *ctx, struct vk_pipeline *p);

/* -------------------------------------------------------------- recording --- */

/* One storage-buffer binding: `range` bytes of `b` from `offset` (offset aligned to the
 * device's minStorageBufferOffsetAlignment, see vk_storage_align). */
struct vk_binding {
    const struct vk_buffer *b;
    VkDeviceSize offset;
    VkDeviceSize range;
};

VkDeviceSize vk_storage_align(const struct vk_ctx *ctx);

/* Starts a command buffer (and recycles the descriptor sets of the previous one). One
 * submission may hold up to 4096 dispatches (descriptor sets). */
bool vk_begin(struct vk_ctx *ctx, char *err, size_t errlen);
/* Records a dispatch of groups[0..2] workgroups with the given bindings and push constants. */
bool vk_dispatch(struct vk_ctx *ctx, const struct vk_pipeline *p, const struct vk_binding *binds,
                 const void *push, const uint32_t groups[3], char *err, size_t errlen);
/* Makes the writes of earlier dispatches visible to later ones (and to transfers). */
void vk_barrier(struct vk_ctx *ctx);
/* Records a copy of n bytes between buffers (device or host-visible); order it against the
 * dispatches around it with vk_barrier. False outside vk_begin or past either buffer's end. */
bool vk_copy(struct vk_ctx *ctx, const struct vk_buffer *src, VkDeviceSize src_off, const struct vk_buffer *dst,
             VkDeviceSize dst_off, VkDeviceSize n, char *err, size_t errlen);
/* Writes a timestamp into slot (0..VK_TIMESTAMP_SLOTS-1) when the preceding work is done. */
#define VK_TIMESTAMP_SLOTS 64
bool vk_timestamp(struct vk_ctx *ctx, uint32_t slot, char *err, size_t errlen);
/* Abandons the command buffer being recorded, if any (after a failed record call). */
void vk_cancel(struct vk_ctx *ctx);
/* Ends, submits and waits for the command buffer. */
bool vk_submit_wait(struct vk_ctx *ctx, char *err, size_t errlen);
/* Nanoseconds between two timestamps written by the last submission. */
bool vk_timestamp_elapsed_ns(struct vk_ctx *ctx, uint32_t from, uint32_t to, double *ns, char *err,
                             size_t errlen);

/* -------------------------------------------------------- quantized matmul --- */

/* Y[b][r] = sum_k W[r][k] X[b][k] for b < batch, r < nrows: W is nrows rows of ncols values of
 * a GGUF type, stored as in the file; X is F32, batch rows of ncols, and Y F32, batch rows of
 * nrows, each row x_stride / y_stride floats after the previous one. A W larger than one
 * storage binding may cover is processed in row ranges, one dispatch each. The GPU dequantizes W and multiplies with F32 activations (it does not
 * quantize X the way ggml's CPU dot products do). Batches 1..8 use the matrix-vector shader,
 * larger ones the tiled matrix-matrix shader. */
struct vk_matmul;

struct vk_matmul *vk_matmul_create(struct vk_ctx *ctx, char *err, size_t errlen);
void vk_matmul_destroy(struct vk_matmul *mm);

/* Whether the weight type (enum q_type) has shaders. */
bool vk_matmul_supports(uint32_t type);

struct vk_matmul_args {
    uint32_t type;                 /* enum q_type of W */
    uint32_t nrows, ncols, batch;  /* ncols: a multiple of 8 and of the type's block size */
    const struct vk_buffer *w;     /* offsets: multiples of 4 bytes (GGUF data is 32-aligned) */
    VkDeviceSize w_off;
    const struct vk_buffer *x;     /* a multiple of 16 bytes */
    VkDeviceSize x_off;
    const struct vk_buffer *y;     /* a multiple of 4 bytes */
    VkDeviceSize y_off;
    uint32_t x_stride, y_stride;   /* floats between batch rows; 0: ncols / nrows (contiguous).
                                    * x_stride must be a multiple of 4 */
    bool pair_order;               /* llama.cpp's batched float order: Q4_K's gemm (tokens taken in
                                    * groups of four), F32's tinyBLAS (batches of 2+); false: the
                                    * single-row order (shaders/intdot.glsl) */
    const struct vk_buffer *xs;    /* optional: the scales vk_op_act_round wrote for x (the Q8_0 or
                                    * Q8_K blocks of W's activation type), so the shader need not
                                    * derive them; xs_off: byte offset of the scale of x's first block */
    VkDeviceSize xs_off;
};

/* Records the product into the context's open command buffer (between vk_begin and
 * vk_submit_wait). Pipelines are created on first use of a type and batch size. */
bool vk_matmul_record(struct vk_matmul *mm, const struct vk_matmul_args *a, char *err, size_t errlen);

#endif
