/* vk_shaders.c: the SPIR-V of every matvec/matmul shader variant (matvec also without subgroup
 * operations), compiled at build time into build/shaders, and the table that finds them by type. */
#include "engine/vk_internal.h"
#include "kernels/qtypes.h"

static const uint32_t spv_matvec_f32[] =
#include "build/shaders/matvec_f32.spv.h"
;
static const uint32_t spv_matmul_f32[] =
#include "build/shaders/matmul_f32.spv.h"
;
static const uint32_t spv_matvec_f16[] =
#include "build/shaders/matvec_f16.spv.h"
;
static const uint32_t spv_matmul_f16[] =
#include "build/shaders/matmul_f16.spv.h"
;
static const uint32_t spv_matvec_bf16[] =
#include "build/shaders/matvec_bf16.spv.h"
;
static const uint32_t spv_matmul_bf16[] =
#include "build/shaders/matmul_bf16.spv.h"
;
static const uint32_t spv_matvec_q8_0[] =
#include "build/shaders/matvec_q8_0.spv.h"
;
static const uint32_t spv_matmul_q8_0[] =
#include "build/shaders/matmul_q8_0.spv.h"
;
static const uint32_t spv_matvec_q4_0[] =
#include "build/shaders/matvec_q4_0.spv.h"
;
static const uint32_t spv_matmul_q4_0[] =
#include "build/shaders/matmul_q4_0.spv.h"
;
static const uint32_t spv_matvec_q4_K[] =
#include "build/shaders/matvec_q4_K.spv.h"
;
static const uint32_t spv_matmul_q4_K[] =
#include "build/shaders/matmul_q4_K.spv.h"
;
static const uint32_t spv_matvec_q5_K[] =
#include "build/shaders/matvec_q5_K.spv.h"
;
static const uint32_t spv_matmul_q5_K[] =
#include "build/shaders/matmul_q5_K.spv.h"
;
static const uint32_t spv_matvec_q6_K[] =
#include "build/shaders/matvec_q6_K.spv.h"
;
static const uint32_t spv_matmul_q6_K[] =
#include "build/shaders/matmul_q6_K.spv.h"
;
static const uint32_t spv_matvec_q2_K[] =
#include "build/shaders/matvec_q2_K.spv.h"
;
static const uint32_t spv_matmul_q2_K[] =
#include "build/shaders/matmul_q2_K.spv.h"
;
static const uint32_t spv_matvec_q3_K[] =
#include "build/shaders/matvec_q3_K.spv.h"
;
static const uint32_t spv_matmul_q3_K[] =
#include "build/shaders/matmul_q3_K.spv.h"
;
static const uint32_t spv_matvec_iq2_xxs[] =
#include "build/shaders/matvec_iq2_xxs.spv.h"
;
static const uint32_t spv_matmul_iq2_xxs[] =
#include "build/shaders/matmul_iq2_xxs.spv.h"
;
static const uint32_t spv_matvec_iq2_xs[] =
#include "build/shaders/matvec_iq2_xs.spv.h"
;
static const uint32_t spv_matmul_iq2_xs[] =
#include "build/shaders/matmul_iq2_xs.spv.h"
;
static const uint32_t spv_matvec_iq2_s[] =
#include "build/shaders/matvec_iq2_s.spv.h"
;
static const uint32_t spv_matmul_iq2_s[] =
#include "build/shaders/matmul_iq2_s.spv.h"
;
static const uint32_t spv_matvec_iq3_xxs[] =
#include "build/shaders/matvec_iq3_xxs.spv.h"
;
static const uint32_t spv_matmul_iq3_xxs[] =
#include "build/shaders/matmul_iq3_xxs.spv.h"
;
static const uint32_t spv_matvec_iq3_s[] =
#include "build/shaders/matvec_iq3_s.spv.h"
;
static const uint32_t spv_matmul_iq3_s[] =
#include "build/shaders/matmul_iq3_s.spv.h"
;
static const uint32_t spv_matvec_iq4_nl[] =
#include "build/shaders/matvec_iq4_nl.spv.h"
;
static const uint32_t spv_matmul_iq4_nl[] =
#include "build/shaders/matmul_iq4_nl.spv.h"
;
static const uint32_t spv_matvec_iq4_xs[] =
#include "build/shaders/matvec_iq4_xs.spv.h"
;
static const uint32_t spv_matmul_iq4_xs[] =
#include "build/shaders/matmul_iq4_xs.spv.h"
;
static const uint32_t spv_matvec_mxfp4[] =
#include "build/shaders/matvec_mxfp4.spv.h"
;
static const uint32_t spv_matmul_mxfp4[] =
#include "build/shaders/matmul_mxfp4.spv.h"
;

static const uint32_t spv_matvec_q4_1[] =
#include "build/shaders/matvec_q4_1.spv.h"
;
static const uint32_t spv_matmul_q4_1[] =
#include "build/shaders/matmul_q4_1.spv.h"
;
static const uint32_t spv_matvec_q5_0[] =
#include "build/shaders/matvec_q5_0.spv.h"
;
static const uint32_t spv_matmul_q5_0[] =
#include "build/shaders/matmul_q5_0.spv.h"
;
static const uint32_t spv_matvec_q5_1[] =
#include "build/shaders/matvec_q5_1.spv.h"
;
static const uint32_t spv_matmul_q5_1[] =
#include "build/shaders/matmul_q5_1.spv.h"
;
static const uint32_t spv_matvec_iq1_s[] =
#include "build/shaders/matvec_iq1_s.spv.h"
;
static const uint32_t spv_matmul_iq1_s[] =
#include "build/shaders/matmul_iq1_s.spv.h"
;
static const uint32_t spv_matvec_iq1_m[] =
#include "build/shaders/matvec_iq1_m.spv.h"
;
static const uint32_t spv_matmul_iq1_m[] =
#include "build/shaders/matmul_iq1_m.spv.h"
;
static const uint32_t spv_matvec_tq1_0[] =
#include "build/shaders/matvec_tq1_0.spv.h"
;
static const uint32_t spv_matmul_tq1_0[] =
#include "build/shaders/matmul_tq1_0.spv.h"
;
static const uint32_t spv_matvec_tq2_0[] =
#include "build/shaders/matvec_tq2_0.spv.h"
;
static const uint32_t spv_matmul_tq2_0[] =
#include "build/shaders/matmul_tq2_0.spv.h"
;
static const uint32_t spv_matvec_nvfp4[] =
#include "build/shaders/matvec_nvfp4.spv.h"
;
static const uint32_t spv_matmul_nvfp4[] =
#include "build/shaders/matmul_nvfp4.spv.h"
;

/* The shared-memory variants (-DVK_NO_SUBGROUPS) for devices without subgroup arithmetic. */
static const uint32_t spv_nosg_matvec_f32[] =
#include "build/shaders/nosg_matvec_f32.spv.h"
;
static const uint32_t spv_nosg_matvec_f16[] =
#include "build/shaders/nosg_matvec_f16.spv.h"
;
static const uint32_t spv_nosg_matvec_bf16[] =
#include "build/shaders/nosg_matvec_bf16.spv.h"
;
static const uint32_t spv_nosg_matvec_q8_0[] =
#include "build/shaders/nosg_matvec_q8_0.spv.h"
;
static const uint32_t spv_nosg_matvec_q4_0[] =
#include "build/shaders/nosg_matvec_q4_0.spv.h"
;
static const uint32_t spv_nosg_matvec_q4_K[] =
#include "build/shaders/nosg_matvec_q4_K.spv.h"
;
static const uint32_t spv_nosg_matvec_q5_K[] =
#include "build/shaders/nosg_matvec_q5_K.spv.h"
;
static const uint32_t spv_nosg_matvec_q6_K[] =
#include "build/shaders/nosg_matvec_q6_K.spv.h"
;
static const uint32_t spv_nosg_matvec_q2_K[] =
#include "build/shaders/nosg_matvec_q2_K.spv.h"
;
static const uint32_t spv_nosg_matvec_q3_K[] =
#include "build/shaders/nosg_matvec_q3_K.spv.h"
;
static const uint32_t spv_nosg_matvec_iq2_xxs[] =
#include "build/shaders/nosg_matvec_iq2_xxs.spv.h"
;
static const uint32_t spv_nosg_matvec_iq2_xs[] =
#include "build/shaders/nosg_matvec_iq2_xs.spv.h"
;
static const uint32_t spv_nosg_matvec_iq2_s[] =
#include "build/shaders/nosg_matvec_iq2_s.spv.h"
;
static const uint32_t spv_nosg_matvec_iq3_xxs[] =
#include "build/shaders/nosg_matvec_iq3_xxs.spv.h"
;
static const uint32_t spv_nosg_matvec_iq3_s[] =
#include "build/shaders/nosg_matvec_iq3_s.spv.h"
;
static const uint32_t spv_nosg_matvec_iq4_nl[] =
#include "build/shaders/nosg_matvec_iq4_nl.spv.h"
;
static const uint32_t spv_nosg_matvec_iq4_xs[] =
#include "build/shaders/nosg_matvec_iq4_xs.spv.h"
;
static const uint32_t spv_nosg_matvec_mxfp4[] =
#include "build/shaders/nosg_matvec_mxfp4.spv.h"
;
static const uint32_t spv_nosg_matvec_q4_1[] =
#include "build/shaders/nosg_matvec_q4_1.spv.h"
;
static const uint32_t spv_nosg_matvec_q5_0[] =
#include "build/shaders/nosg_matvec_q5_0.spv.h"
;
static const uint32_t spv_nosg_matvec_q5_1[] =
#include "build/shaders/nosg_matvec_q5_1.spv.h"
;
static const uint32_t spv_nosg_matvec_iq1_s[] =
#include "build/shaders/nosg_matvec_iq1_s.spv.h"
;
static const uint32_t spv_nosg_matvec_iq1_m[] =
#include "build/shaders/nosg_matvec_iq1_m.spv.h"
;
static const uint32_t spv_nosg_matvec_tq1_0[] =
#include "build/shaders/nosg_matvec_tq1_0.spv.h"
;
static const uint32_t spv_nosg_matvec_tq2_0[] =
#include "build/shaders/nosg_matvec_tq2_0.spv.h"
;
static const uint32_t spv_nosg_matvec_nvfp4[] =
#include "build/shaders/nosg_matvec_nvfp4.spv.h"
;

#define SET(T, t)                                                                                  \
    {T, spv_matvec_##t, sizeof spv_matvec_##t, spv_matmul_##t, sizeof spv_matmul_##t, spv_nosg_matvec_##t, \
     sizeof spv_nosg_matvec_##t},
static const struct vk_shader_set sets[] = {
    VK_SHADER_TYPES(SET)
};

const struct vk_shader_set *vk_shaders_for(uint32_t type)
{
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (sets[i].type == type)
            return &sets[i];
    return NULL;
}
