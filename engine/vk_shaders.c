/* vk_shaders.c: the SPIR-V of every matvec/matmul shader variant, compiled from shaders/matvec.comp
 * and shaders/matmul.comp at build time into build/shaders, and the table that finds them by type. */
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

#define SET(T, t) {T, spv_matvec_##t, sizeof spv_matvec_##t, spv_matmul_##t, sizeof spv_matmul_##t}
static const struct vk_shader_set sets[] = {
    SET(Q_F32, f32),
    SET(Q_F16, f16),
    SET(Q_BF16, bf16),
    SET(Q_Q8_0, q8_0),
    SET(Q_Q4_0, q4_0),
    SET(Q_Q4_K, q4_K),
    SET(Q_Q5_K, q5_K),
    SET(Q_Q6_K, q6_K),
    SET(Q_Q2_K, q2_K),
    SET(Q_Q3_K, q3_K),
    SET(Q_IQ2_XXS, iq2_xxs),
    SET(Q_IQ2_XS, iq2_xs),
    SET(Q_IQ2_S, iq2_s),
    SET(Q_IQ3_XXS, iq3_xxs),
    SET(Q_IQ3_S, iq3_s),
    SET(Q_IQ4_NL, iq4_nl),
    SET(Q_IQ4_XS, iq4_xs),
    SET(Q_MXFP4, mxfp4),
    SET(Q_Q4_1, q4_1),
    SET(Q_Q5_0, q5_0),
    SET(Q_Q5_1, q5_1),
    SET(Q_IQ1_S, iq1_s),
    SET(Q_IQ1_M, iq1_m),
    SET(Q_TQ1_0, tq1_0),
    SET(Q_TQ2_0, tq2_0),
    SET(Q_NVFP4, nvfp4),
};

const struct vk_shader_set *vk_shaders_for(uint32_t type)
{
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (sets[i].type == type)
            return &sets[i];
    return NULL;
}
