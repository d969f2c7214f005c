/* q_basic.c: registers every non-grid ggml type: floats and 32-value blocks (q_legacy.c),
 * super-block K-quants and friends (q_kquants.c), then the SIMD dot products this CPU can run. */
#include "kernels/q_basic_neon.h"
#include "kernels/q_basic_simd.h"
#include "kernels/q_block.h"

/* The x86 tables name the AVX2 / AVX-512 kernels, which are built only for x86-64 (the Makefile
 * picks *_avx2.c / *_avx512.c there and *_neon.c on aarch64). */
#if defined(__x86_64__)

const struct q_basic_simd_dot q_basic_simd_dots[] = {
    {Q_Q8_0, q_basic_dot_q8_0_avx2, q_basic_dot_q8_0_avx512, q_basic_dot_q8_0_tokens_avx2,
     q_basic_dot_q8_0_tokens_avx512},
    {Q_Q4_0, q_basic_dot_q4_0_avx2, q_basic_dot_q4_0_avx512, q_basic_dot_q4_0_tokens_avx2,
     q_basic_dot_q4_0_tokens_avx512},
    {Q_IQ4_NL, q_basic_dot_iq4_nl_avx2, q_basic_dot_iq4_nl_avx512, q_basic_dot_iq4_nl_tokens_avx2,
     q_basic_dot_iq4_nl_tokens_avx512},
    {Q_MXFP4, q_basic_dot_mxfp4_avx2, q_basic_dot_mxfp4_avx512, q_basic_dot_mxfp4_tokens_avx2,
     q_basic_dot_mxfp4_tokens_avx512},
    {Q_Q5_0, q_basic_dot_q5_0_avx2, q_basic_dot_q5_0_avx512, q_basic_dot_q5_0_tokens_avx2,
     q_basic_dot_q5_0_tokens_avx512},
    {Q_Q4_1, q_basic_dot_q4_1_avx2, q_basic_dot_q4_1_avx512, NULL, NULL},
    {Q_Q5_1, q_basic_dot_q5_1_avx2, q_basic_dot_q5_1_avx512, NULL, NULL},
    {Q_TQ2_0, q_basic_dot_tq2_0_avx2, q_basic_dot_tq2_0_avx512, NULL, NULL},
    {Q_Q4_K, q_basic_dot_q4_k_avx2, q_basic_dot_q4_k_avx512, q_basic_dot_q4_k_tokens_avx2,
     q_basic_dot_q4_k_tokens_avx512},
    {Q_Q5_K, q_basic_dot_q5_k_avx2, q_basic_dot_q5_k_avx512, q_basic_dot_q5_k_tokens_avx2,
     q_basic_dot_q5_k_tokens_avx512},
    {Q_Q6_K, q_basic_dot_q6_k_avx2, q_basic_dot_q6_k_avx512, q_basic_dot_q6_k_tokens_avx2,
     q_basic_dot_q6_k_tokens_avx512},
    {Q_IQ4_XS, q_basic_dot_iq4_xs_avx2, q_basic_dot_iq4_xs_avx512, q_basic_dot_iq4_xs_tokens_avx2,
     q_basic_dot_iq4_xs_tokens_avx512},
    {Q_Q2_K, q_basic_dot_q2_k_avx2, q_basic_dot_q2_k_avx512, NULL, NULL},
    {Q_Q3_K, q_basic_dot_q3_k_avx2, q_basic_dot_q3_k_avx512, NULL, NULL},
    {Q_F32, q_basic_dot_f32_avx2, q_basic_dot_f32_avx512, NULL, NULL},
    {Q_F16, q_basic_dot_f16_avx2, q_basic_dot_f16_avx512, NULL, NULL},
    {Q_BF16, q_basic_dot_bf16_avx2, q_basic_dot_bf16_avx512, NULL, NULL},
};
const size_t q_basic_simd_dot_count = sizeof q_basic_simd_dots / sizeof q_basic_simd_dots[0];

/* by row kind: alone, tail, group (enum q_row_kind) */
const struct q_basic_simd_batched q_basic_simd_batched_dots[] = {
#define KINDS(row, group, isa) {{row##_##isa, row##_##isa, group##_##isa}, {row##_tokens_##isa, row##_tokens_##isa, group##_tokens_##isa}}
    {Q_Q4_K, KINDS(q_basic_dot_q4_k_row, q_basic_dot_q4_k_group, avx2),
     KINDS(q_basic_dot_q4_k_row, q_basic_dot_q4_k_group, avx512)},
#define PACKED(t, name) {t, KINDS(name, name, avx2), KINDS(name, name, avx512)}
    PACKED(Q_Q4_0, q_basic_dot_q4_0_packed),
    PACKED(Q_IQ4_NL, q_basic_dot_iq4_nl_packed),
    PACKED(Q_MXFP4, q_basic_dot_mxfp4_packed),
#undef PACKED
#undef KINDS
    {Q_F32, {{q_basic_dot_f32_avx2, q_basic_dot_f32_tiny_avx2, q_basic_dot_f32_tiny_avx2}, {NULL, NULL, NULL}},
     {{q_basic_dot_f32_avx512, q_basic_dot_f32_tiny_avx512, q_basic_dot_f32_tiny_avx512}, {NULL, NULL, NULL}}},
};
const size_t q_basic_simd_batched_count = sizeof q_basic_simd_batched_dots / sizeof q_basic_simd_batched_dots[0];

static void register_x86(struct q_kernels *table, const struct q_cpu *cpu)
{
    /* The SIMD files also use F16C (every AVX2 CPU has it); the AVX-512 one needs only VL+VNNI on
     * 256-bit vectors, but is compiled with BW as well, so require it too. */
    const bool avx2 = cpu->avx2 && cpu->fma && cpu->f16c;
    const bool avx512 = avx2 && cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni;
    for (size_t i = 0; i < q_basic_simd_dot_count; i++) {
        struct q_kernels *k = &table[q_basic_simd_dots[i].type];
        if (avx512) {
            k->dot = q_basic_simd_dots[i].avx512;
            k->dot_tokens = q_basic_simd_dots[i].avx512_tokens;
            k->dot_isa = "avx512";
        } else if (avx2) {
            k->dot = q_basic_simd_dots[i].avx2;
            k->dot_tokens = q_basic_simd_dots[i].avx2_tokens;
            k->dot_isa = "avx2";
        }
    }
    for (size_t i = 0; i < q_basic_simd_batched_count && avx2; i++) {
        const struct q_basic_simd_batched *b = &q_basic_simd_batched_dots[i];
        table[b->type].batched = avx512 ? b->avx512 : b->avx2;
    }
}
#endif

void q_register_basic(struct q_kernels *table, const struct q_cpu *cpu)
{
    q_register_legacy(table, cpu);
    q_register_kquants(table, cpu);
#if defined(__x86_64__)
    register_x86(table, cpu);
#elif defined(__aarch64__)
    q_basic_register_neon(table, cpu);
#endif
}
