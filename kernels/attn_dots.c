/* attn_dots.c: scalar references of the attention inner loops (kernels/attn_dots.h) and the
 * choice of the SIMD version, made once from the CPU's features. */
#include "kernels/attn_dots.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "kernels/quants.h"

float attn_fold_slots(const float *slot, int64_t stride, int n_slots)
{
    float lane[16];
    for (int l = 0; l < 16; l++)
        lane[l] = n_slots == ATTN_SLOTS_TINY ? slot[l * stride]
                                             : (slot[l * stride] + slot[(32 + l) * stride]) +
                                                   (slot[(16 + l) * stride] + slot[(48 + l) * stride]);
    return op_reduce16(lane);
}

static float dot_scalar(const float *q, const uint16_t *k, int64_t n, int n_slots)
{
    float slot[ATTN_SLOTS_VEC] = {0};
    for (int64_t d = 0; d < n; d++)
        slot[d % n_slots] = fmaf(q[d], q_f16_to_f32(k[d]), slot[d % n_slots]);
    return attn_fold_slots(slot, 1, n_slots);
}

static void axpy_scalar(float *acc, float w, const uint16_t *v, int64_t n)
{
    for (int64_t d = 0; d < n; d++)
        acc[d] = fmaf(w, q_f16_to_f32(v[d]), acc[d]);
}

static const struct attn_dots scalar = {dot_scalar, axpy_scalar, "scalar"};
#if defined(__x86_64__)
static const struct attn_dots avx2 = {attn_dot_avx2, attn_axpy_avx2, "avx2"};
#endif

const struct attn_dots *attn_dots_scalar(void)
{
    return &scalar;
}

const struct attn_dots *attn_dots_get(void)
{
    const struct q_cpu *cpu = q_cpu_features();
    const char *cap = getenv("MOESERVE_ISA");
    if (cap && strcmp(cap, "scalar") == 0)
        return &scalar;
#if defined(__x86_64__)
    if (cpu->avx2 && cpu->fma && cpu->f16c)
        return &avx2;
#endif
    (void)cpu;  /* elsewhere the scalar loops, which keep the same float order */
    return &scalar;
}
