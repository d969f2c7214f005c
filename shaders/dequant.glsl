// dequant.glsl: selects the dequantizer of the weight type named by the QTYPE_* define.
// Every dequantizer provides QK (values per block), BLOCK_BYTES and
// void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi): values 8g..8g+7 of the block at byte bo.

#if defined(QTYPE_f32) || defined(QTYPE_f16) || defined(QTYPE_bf16)
#include "dequant_float.glsl"
#elif defined(QTYPE_q8_0) || defined(QTYPE_q4_0) || defined(QTYPE_q4_1) || defined(QTYPE_q5_0) || \
    defined(QTYPE_q5_1) || defined(QTYPE_iq4_nl) || defined(QTYPE_mxfp4) || defined(QTYPE_nvfp4)
#include "dequant_legacy.glsl"
#elif defined(QTYPE_q2_K) || defined(QTYPE_q3_K) || defined(QTYPE_q4_K) || defined(QTYPE_q5_K) || defined(QTYPE_q6_K)
#include "dequant_k.glsl"
#elif defined(QTYPE_iq2_xxs) || defined(QTYPE_iq2_xs) || defined(QTYPE_iq2_s) || defined(QTYPE_iq3_xxs) || \
    defined(QTYPE_iq3_s) || defined(QTYPE_iq4_xs) || defined(QTYPE_iq1_s) || defined(QTYPE_iq1_m)
#include "dequant_iq.glsl"
#elif defined(QTYPE_tq1_0) || defined(QTYPE_tq2_0)
#include "dequant_tq.glsl"
#else
#error "no QTYPE_* define"
#endif

#define GROUPS_PER_BLOCK (QK / 8)
