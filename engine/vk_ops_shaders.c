/* vk_ops_shaders.c: the SPIR-V of the forward-pass operations (engine/vk_ops.c): get_rows,
 * moe_matvec and moe_matmul per weight type, the others once (the subgroup users twice). */
#include "engine/vk_internal.h"
#include "kernels/qtypes.h"

static const uint32_t spv_get_rows_f32[] =
#include "build/shaders/get_rows_f32.spv.h"
;
static const uint32_t spv_get_rows_f16[] =
#include "build/shaders/get_rows_f16.spv.h"
;
static const uint32_t spv_get_rows_bf16[] =
#include "build/shaders/get_rows_bf16.spv.h"
;
static const uint32_t spv_get_rows_q8_0[] =
#include "build/shaders/get_rows_q8_0.spv.h"
;
static const uint32_t spv_get_rows_q4_0[] =
#include "build/shaders/get_rows_q4_0.spv.h"
;
static const uint32_t spv_get_rows_q4_K[] =
#include "build/shaders/get_rows_q4_K.spv.h"
;
static const uint32_t spv_get_rows_q5_K[] =
#include "build/shaders/get_rows_q5_K.spv.h"
;
static const uint32_t spv_get_rows_q6_K[] =
#include "build/shaders/get_rows_q6_K.spv.h"
;
static const uint32_t spv_get_rows_q2_K[] =
#include "build/shaders/get_rows_q2_K.spv.h"
;
static const uint32_t spv_get_rows_q3_K[] =
#include "build/shaders/get_rows_q3_K.spv.h"
;
static const uint32_t spv_get_rows_iq2_xxs[] =
#include "build/shaders/get_rows_iq2_xxs.spv.h"
;
static const uint32_t spv_get_rows_iq2_xs[] =
#include "build/shaders/get_rows_iq2_xs.spv.h"
;
static const uint32_t spv_get_rows_iq2_s[] =
#include "build/shaders/get_rows_iq2_s.spv.h"
;
static const uint32_t spv_get_rows_iq3_xxs[] =
#include "build/shaders/get_rows_iq3_xxs.spv.h"
;
static const uint32_t spv_get_rows_iq3_s[] =
#include "build/shaders/get_rows_iq3_s.spv.h"
;
static const uint32_t spv_get_rows_iq4_nl[] =
#include "build/shaders/get_rows_iq4_nl.spv.h"
;
static const uint32_t spv_get_rows_iq4_xs[] =
#include "build/shaders/get_rows_iq4_xs.spv.h"
;
static const uint32_t spv_get_rows_mxfp4[] =
#include "build/shaders/get_rows_mxfp4.spv.h"
;
static const uint32_t spv_moe_matvec_f32[] =
#include "build/shaders/moe_matvec_f32.spv.h"
;
static const uint32_t spv_moe_matvec_f16[] =
#include "build/shaders/moe_matvec_f16.spv.h"
;
static const uint32_t spv_moe_matvec_bf16[] =
#include "build/shaders/moe_matvec_bf16.spv.h"
;
static const uint32_t spv_moe_matvec_q8_0[] =
#include "build/shaders/moe_matvec_q8_0.spv.h"
;
static const uint32_t spv_moe_matvec_q4_0[] =
#include "build/shaders/moe_matvec_q4_0.spv.h"
;
static const uint32_t spv_moe_matvec_q4_K[] =
#include "build/shaders/moe_matvec_q4_K.spv.h"
;
static const uint32_t spv_moe_matvec_q5_K[] =
#include "build/shaders/moe_matvec_q5_K.spv.h"
;
static const uint32_t spv_moe_matvec_q6_K[] =
#include "build/shaders/moe_matvec_q6_K.spv.h"
;
static const uint32_t spv_moe_matvec_q2_K[] =
#include "build/shaders/moe_matvec_q2_K.spv.h"
;
static const uint32_t spv_moe_matvec_q3_K[] =
#include "build/shaders/moe_matvec_q3_K.spv.h"
;
static const uint32_t spv_moe_matvec_iq2_xxs[] =
#include "build/shaders/moe_matvec_iq2_xxs.spv.h"
;
static const uint32_t spv_moe_matvec_iq2_xs[] =
#include "build/shaders/moe_matvec_iq2_xs.spv.h"
;
static const uint32_t spv_moe_matvec_iq2_s[] =
#include "build/shaders/moe_matvec_iq2_s.spv.h"
;
static const uint32_t spv_moe_matvec_iq3_xxs[] =
#include "build/shaders/moe_matvec_iq3_xxs.spv.h"
;
static const uint32_t spv_moe_matvec_iq3_s[] =
#include "build/shaders/moe_matvec_iq3_s.spv.h"
;
static const uint32_t spv_moe_matvec_iq4_nl[] =
#include "build/shaders/moe_matvec_iq4_nl.spv.h"
;
static const uint32_t spv_moe_matvec_iq4_xs[] =
#include "build/shaders/moe_matvec_iq4_xs.spv.h"
;
static const uint32_t spv_moe_matvec_mxfp4[] =
#include "build/shaders/moe_matvec_mxfp4.spv.h"
;
static const uint32_t spv_moe_matmul_f32[] =
#include "build/shaders/moe_matmul_f32.spv.h"
;
static const uint32_t spv_moe_matmul_f16[] =
#include "build/shaders/moe_matmul_f16.spv.h"
;
static const uint32_t spv_moe_matmul_bf16[] =
#include "build/shaders/moe_matmul_bf16.spv.h"
;
static const uint32_t spv_moe_matmul_q8_0[] =
#include "build/shaders/moe_matmul_q8_0.spv.h"
;
static const uint32_t spv_moe_matmul_q4_0[] =
#include "build/shaders/moe_matmul_q4_0.spv.h"
;
static const uint32_t spv_moe_matmul_q4_K[] =
#include "build/shaders/moe_matmul_q4_K.spv.h"
;
static const uint32_t spv_moe_matmul_q5_K[] =
#include "build/shaders/moe_matmul_q5_K.spv.h"
;
static const uint32_t spv_moe_matmul_q6_K[] =
#include "build/shaders/moe_matmul_q6_K.spv.h"
;
static const uint32_t spv_moe_matmul_q2_K[] =
#include "build/shaders/moe_matmul_q2_K.spv.h"
;
static const uint32_t spv_moe_matmul_q3_K[] =
#include "build/shaders/moe_matmul_q3_K.spv.h"
;
static const uint32_t spv_moe_matmul_iq2_xxs[] =
#include "build/shaders/moe_matmul_iq2_xxs.spv.h"
;
static const uint32_t spv_moe_matmul_iq2_xs[] =
#include "build/shaders/moe_matmul_iq2_xs.spv.h"
;
static const uint32_t spv_moe_matmul_iq2_s[] =
#include "build/shaders/moe_matmul_iq2_s.spv.h"
;
static const uint32_t spv_moe_matmul_iq3_xxs[] =
#include "build/shaders/moe_matmul_iq3_xxs.spv.h"
;
static const uint32_t spv_moe_matmul_iq3_s[] =
#include "build/shaders/moe_matmul_iq3_s.spv.h"
;
static const uint32_t spv_moe_matmul_iq4_nl[] =
#include "build/shaders/moe_matmul_iq4_nl.spv.h"
;
static const uint32_t spv_moe_matmul_iq4_xs[] =
#include "build/shaders/moe_matmul_iq4_xs.spv.h"
;
static const uint32_t spv_moe_matmul_mxfp4[] =
#include "build/shaders/moe_matmul_mxfp4.spv.h"
;
static const uint32_t spv_moe_matmul_q4_1[] =
#include "build/shaders/moe_matmul_q4_1.spv.h"
;
static const uint32_t spv_moe_matmul_q5_0[] =
#include "build/shaders/moe_matmul_q5_0.spv.h"
;
static const uint32_t spv_moe_matmul_q5_1[] =
#include "build/shaders/moe_matmul_q5_1.spv.h"
;
static const uint32_t spv_moe_matmul_iq1_s[] =
#include "build/shaders/moe_matmul_iq1_s.spv.h"
;
static const uint32_t spv_moe_matmul_iq1_m[] =
#include "build/shaders/moe_matmul_iq1_m.spv.h"
;
static const uint32_t spv_moe_matmul_tq1_0[] =
#include "build/shaders/moe_matmul_tq1_0.spv.h"
;
static const uint32_t spv_moe_matmul_tq2_0[] =
#include "build/shaders/moe_matmul_tq2_0.spv.h"
;
static const uint32_t spv_moe_matmul_nvfp4[] =
#include "build/shaders/moe_matmul_nvfp4.spv.h"
;
static const uint32_t spv_op_rms_norm[] =
#include "build/shaders/op_rms_norm.spv.h"
;
static const uint32_t spv_op_rope[] =
#include "build/shaders/op_rope.spv.h"
;
static const uint32_t spv_op_kv_store[] =
#include "build/shaders/op_kv_store.spv.h"
;
static const uint32_t spv_op_attention[] =
#include "build/shaders/op_attention.spv.h"
;
static const uint32_t spv_op_attention_merge[] =
#include "build/shaders/op_attention_merge.spv.h"
;
static const uint32_t spv_op_router[] =
#include "build/shaders/op_router.spv.h"
;
static const uint32_t spv_op_moe_group[] =
#include "build/shaders/op_moe_group.spv.h"
;
static const uint32_t spv_op_moe_combine[] =
#include "build/shaders/op_moe_combine.spv.h"
;
static const uint32_t spv_op_elementwise[] =
#include "build/shaders/op_elementwise.spv.h"
;
static const uint32_t spv_op_act_round[] =
#include "build/shaders/op_act_round.spv.h"
;

static const uint32_t spv_get_rows_q4_1[] =
#include "build/shaders/get_rows_q4_1.spv.h"
;
static const uint32_t spv_moe_matvec_q4_1[] =
#include "build/shaders/moe_matvec_q4_1.spv.h"
;
static const uint32_t spv_get_rows_q5_0[] =
#include "build/shaders/get_rows_q5_0.spv.h"
;
static const uint32_t spv_moe_matvec_q5_0[] =
#include "build/shaders/moe_matvec_q5_0.spv.h"
;
static const uint32_t spv_get_rows_q5_1[] =
#include "build/shaders/get_rows_q5_1.spv.h"
;
static const uint32_t spv_moe_matvec_q5_1[] =
#include "build/shaders/moe_matvec_q5_1.spv.h"
;
static const uint32_t spv_get_rows_iq1_s[] =
#include "build/shaders/get_rows_iq1_s.spv.h"
;
static const uint32_t spv_moe_matvec_iq1_s[] =
#include "build/shaders/moe_matvec_iq1_s.spv.h"
;
static const uint32_t spv_get_rows_iq1_m[] =
#include "build/shaders/get_rows_iq1_m.spv.h"
;
static const uint32_t spv_moe_matvec_iq1_m[] =
#include "build/shaders/moe_matvec_iq1_m.spv.h"
;
static const uint32_t spv_get_rows_tq1_0[] =
#include "build/shaders/get_rows_tq1_0.spv.h"
;
static const uint32_t spv_moe_matvec_tq1_0[] =
#include "build/shaders/moe_matvec_tq1_0.spv.h"
;
static const uint32_t spv_get_rows_tq2_0[] =
#include "build/shaders/get_rows_tq2_0.spv.h"
;
static const uint32_t spv_moe_matvec_tq2_0[] =
#include "build/shaders/moe_matvec_tq2_0.spv.h"
;
static const uint32_t spv_get_rows_nvfp4[] =
#include "build/shaders/get_rows_nvfp4.spv.h"
;
static const uint32_t spv_moe_matvec_nvfp4[] =
#include "build/shaders/moe_matvec_nvfp4.spv.h"
;

/* The shared-memory variants (-DVK_NO_SUBGROUPS) for devices without subgroup arithmetic. */
static const uint32_t spv_nosg_moe_matvec_f32[] =
#include "build/shaders/nosg_moe_matvec_f32.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_f16[] =
#include "build/shaders/nosg_moe_matvec_f16.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_bf16[] =
#include "build/shaders/nosg_moe_matvec_bf16.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q8_0[] =
#include "build/shaders/nosg_moe_matvec_q8_0.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q4_0[] =
#include "build/shaders/nosg_moe_matvec_q4_0.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q4_K[] =
#include "build/shaders/nosg_moe_matvec_q4_K.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q5_K[] =
#include "build/shaders/nosg_moe_matvec_q5_K.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q6_K[] =
#include "build/shaders/nosg_moe_matvec_q6_K.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q2_K[] =
#include "build/shaders/nosg_moe_matvec_q2_K.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q3_K[] =
#include "build/shaders/nosg_moe_matvec_q3_K.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq2_xxs[] =
#include "build/shaders/nosg_moe_matvec_iq2_xxs.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq2_xs[] =
#include "build/shaders/nosg_moe_matvec_iq2_xs.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq2_s[] =
#include "build/shaders/nosg_moe_matvec_iq2_s.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq3_xxs[] =
#include "build/shaders/nosg_moe_matvec_iq3_xxs.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq3_s[] =
#include "build/shaders/nosg_moe_matvec_iq3_s.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq4_nl[] =
#include "build/shaders/nosg_moe_matvec_iq4_nl.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq4_xs[] =
#include "build/shaders/nosg_moe_matvec_iq4_xs.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_mxfp4[] =
#include "build/shaders/nosg_moe_matvec_mxfp4.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q4_1[] =
#include "build/shaders/nosg_moe_matvec_q4_1.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q5_0[] =
#include "build/shaders/nosg_moe_matvec_q5_0.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_q5_1[] =
#include "build/shaders/nosg_moe_matvec_q5_1.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq1_s[] =
#include "build/shaders/nosg_moe_matvec_iq1_s.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_iq1_m[] =
#include "build/shaders/nosg_moe_matvec_iq1_m.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_tq1_0[] =
#include "build/shaders/nosg_moe_matvec_tq1_0.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_tq2_0[] =
#include "build/shaders/nosg_moe_matvec_tq2_0.spv.h"
;
static const uint32_t spv_nosg_moe_matvec_nvfp4[] =
#include "build/shaders/nosg_moe_matvec_nvfp4.spv.h"
;
static const uint32_t spv_nosg_op_rms_norm[] =
#include "build/shaders/nosg_op_rms_norm.spv.h"
;
static const uint32_t spv_nosg_op_router[] =
#include "build/shaders/nosg_op_router.spv.h"
;

#define SET(T, t)                                                                                  \
    {T, spv_get_rows_##t, sizeof spv_get_rows_##t, spv_moe_matvec_##t, sizeof spv_moe_matvec_##t,   \
     spv_moe_matmul_##t, sizeof spv_moe_matmul_##t, spv_nosg_moe_matvec_##t, sizeof spv_nosg_moe_matvec_##t},
static const struct vk_op_shader_set sets[] = {
    VK_SHADER_TYPES(SET)
};

const struct vk_op_shader_set *vk_op_shaders_for(uint32_t type)
{
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (sets[i].type == type)
            return &sets[i];
    return NULL;
}

#define SPV(s) {spv_op_##s, sizeof spv_op_##s}
static const struct vk_spirv op_spirv[VK_OP_SHADER_COUNT] = {
    [VK_OP_RMS_NORM] = SPV(rms_norm),
    [VK_OP_ROPE] = SPV(rope),
    [VK_OP_KV_STORE] = SPV(kv_store),
    [VK_OP_ATTENTION] = SPV(attention),
    [VK_OP_ATTENTION_MERGE] = SPV(attention_merge),
    [VK_OP_ROUTER] = SPV(router),
    [VK_OP_MOE_GROUP] = SPV(moe_group),
    [VK_OP_MOE_COMBINE] = SPV(moe_combine),
    [VK_OP_ELEMENTWISE] = SPV(elementwise),
    [VK_OP_ACT_ROUND] = SPV(act_round),
};

/* Only the operations that reduce with subgroup operations have a second variant. */
#define NOSG(s) {spv_nosg_op_##s, sizeof spv_nosg_op_##s}
static const struct vk_spirv op_spirv_nosg[VK_OP_SHADER_COUNT] = {
    [VK_OP_RMS_NORM] = NOSG(rms_norm),
    [VK_OP_ROUTER] = NOSG(router),
};

const struct vk_spirv *vk_op_spirv(enum vk_op_shader s, bool subgroups)
{
    return subgroups || !op_spirv_nosg[s].code ? &op_spirv[s] : &op_spirv_nosg[s];
}
