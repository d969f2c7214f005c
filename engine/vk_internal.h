/* vk_internal.h: the Vulkan context's private state, shared by vk_device.c, vk_buffer.c,
 * vk_pipeline.c, vk_matmul.c and vk_ops.c (nothing outside the vk_ files includes it). */
#ifndef MOESERVE_VK_INTERNAL_H
#define MOESERVE_VK_INTERNAL_H

#include <stdarg.h>

#include "engine/vulkan.h"

/* Descriptor sets one command buffer may use before vk_submit_wait recycles them. */
#define VK_MAX_SETS 4096
#define VK_MAX_BINDINGS 8

struct vk_ctx {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice phys;
    VkDevice dev;
    uint32_t queue_family;
    VkQueue queue;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorPool desc_pool;
    VkQueryPool query_pool;       /* VK_NULL_HANDLE when the queue has no timestamps */
    bool recording;
    uint64_t ts_written;          /* bit i: slot i written in the current/last submission */

    VkPhysicalDeviceMemoryProperties mem_props;
    VkDeviceSize storage_align;   /* minStorageBufferOffsetAlignment */
    struct vk_device_info info;

    struct vk_buffer staging;     /* host-visible, created on first use */
    uint64_t allocated[2];        /* live allocation bytes per enum vk_mem */

    /* validation messages (warnings and errors) */
    uint32_t n_messages;
    char first_message[512];
};

/* snprintf into err (when err is non-NULL) and return false: `return vk_fail(err, n, ...)`. */
bool vk_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Name of a VkResult for messages. */
const char *vk_result_str(VkResult r);

/* Index of a memory type allowed by `bits` with all of `want` (-1 if none). */
int vk_find_memory_type(const struct vk_ctx *ctx, uint32_t bits, VkMemoryPropertyFlags want);

/* The compiled shaders of one weight type (vk_shaders.c). */
struct vk_shader_set {
    uint32_t type;                 /* enum q_type */
    const uint32_t *matvec;
    size_t matvec_bytes;
    const uint32_t *matmul;
    size_t matmul_bytes;
    const uint32_t *matvec_nosg;   /* matvec reducing in shared memory only (VK_NO_SUBGROUPS) */
    size_t matvec_nosg_bytes;
};

/* NULL if the type has no shaders. */
const struct vk_shader_set *vk_shaders_for(uint32_t type);

/* The compiled shaders of the forward-pass operations (vk_ops_shaders.c). */
struct vk_spirv {
    const uint32_t *code;
    size_t bytes;
};

struct vk_op_shader_set {
    uint32_t type;                 /* enum q_type */
    const uint32_t *get_rows;
    size_t get_rows_bytes;
    const uint32_t *moe_matvec;
    size_t moe_matvec_bytes;
    const uint32_t *moe_matmul;
    size_t moe_matmul_bytes;
    const uint32_t *moe_matvec_nosg;  /* without subgroup operations */
    size_t moe_matvec_nosg_bytes;
};

/* NULL if the type has no shaders. */
const struct vk_op_shader_set *vk_op_shaders_for(uint32_t type);

enum vk_op_shader {
    VK_OP_RMS_NORM, VK_OP_ROPE, VK_OP_KV_STORE, VK_OP_ATTENTION, VK_OP_ATTENTION_MERGE, VK_OP_ROUTER,
    VK_OP_MOE_GROUP, VK_OP_MOE_COMBINE, VK_OP_ELEMENTWISE, VK_OP_ACT_ROUND, VK_OP_SHADER_COUNT
};

/* subgroups false: the shared-memory variant where the operation has one (rms_norm, router). */
const struct vk_spirv *vk_op_spirv(enum vk_op_shader s, bool subgroups);

/* The IQ grids, bound at binding 3 of the matvec/matmul shaders (vk_iq_tables.c). Large constant
 * arrays inside the shaders made lavapipe about 30x slower than this storage buffer. */
/* Every weight type with compiled shaders, as (type, shader file suffix), in table order. */
#define VK_SHADER_TYPES(X) \
    X(Q_F32, f32) \
    X(Q_F16, f16) \
    X(Q_BF16, bf16) \
    X(Q_Q8_0, q8_0) \
    X(Q_Q4_0, q4_0) \
    X(Q_Q4_K, q4_K) \
    X(Q_Q5_K, q5_K) \
    X(Q_Q6_K, q6_K) \
    X(Q_Q2_K, q2_K) \
    X(Q_Q3_K, q3_K) \
    X(Q_IQ2_XXS, iq2_xxs) \
    X(Q_IQ2_XS, iq2_xs) \
    X(Q_IQ2_S, iq2_s) \
    X(Q_IQ3_XXS, iq3_xxs) \
    X(Q_IQ3_S, iq3_s) \
    X(Q_IQ4_NL, iq4_nl) \
    X(Q_IQ4_XS, iq4_xs) \
    X(Q_MXFP4, mxfp4) \
    X(Q_Q4_1, q4_1) \
    X(Q_Q5_0, q5_0) \
    X(Q_Q5_1, q5_1) \
    X(Q_IQ1_S, iq1_s) \
    X(Q_IQ1_M, iq1_m) \
    X(Q_TQ1_0, tq1_0) \
    X(Q_TQ2_0, tq2_0) \
    X(Q_NVFP4, nvfp4)

#define VK_IQ_TABLE_WORDS 8448
/* Fills the packed IQ grid tables the i-quant shaders bind (engine/vk_iq_tables.c). */
void vk_iq_tables_build(uint32_t out[VK_IQ_TABLE_WORDS]);

/* The xs_off / ys_off push constant of a product or act_round without activation scales: the
 * product derives them from the values (shaders/intdot.glsl NO_SCALES). */
#define VK_NO_SCALES 0xFFFFFFFFu

/* The binding of activation scales (act_round's) from byte `off` of b covering `floats` floats:
 * the offset aligned down for the binding, *elem the float index of `off` in it. With b NULL,
 * `dummy`, unread, and *elem VK_NO_SCALES. False with a message when they are outside b. */
bool vk_bind_scales(const struct vk_ctx *ctx, const struct vk_buffer *b, VkDeviceSize off, uint64_t floats,
                    const struct vk_buffer *dummy, struct vk_binding *out, uint32_t *elem, char *err, size_t errlen);

/* Weight types whose matrix-vector products, given act_round's scales, run eight threads per
 * output (shaders/intdot.glsl: the lane path, HAVE_LANE_DOT, and the chain path, HAVE_CHAIN_DOT):
 * the shaders size their workgroups' rows for it, and so must the dispatches. */
bool vk_eight_thread_type(uint32_t type);

#endif
