/* deltanet_ggml.c: the gated delta rule in ggml-cpu's exact float order (dn_delta_ggml in
 * kernels/deltanet.h): the scalar reference step and the per-token, per-head driver. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/deltanet.h"
#include "kernels/deltanet_ggml.h"
#include "kernels/ops.h"
#include "kernels/quants.h"

/* out[c] = sum_i S[i][c] x[i] in vec_dot_f32's order, for every column c of S at once. */
static void col_dots(int d, const float *S, const float *x, float *slots, float *out)
{
    const int np = d - d % DN_GGML_SLOTS;
    memset(slots, 0, sizeof(float) * DN_GGML_SLOTS * (size_t)d);
    for (int i = 0; i < np; i++) {
        float *slot = slots + (size_t)(i % DN_GGML_SLOTS) * d;
        for (int c = 0; c < d; c++)
            slot[c] = fmaf(S[(size_t)i * d + c], x[i], slot[c]);
    }
    for (int c = 0; c < d; c++) {
        float lane[16];
        for (int l = 0; l < 16; l++)
            lane[l] = (slots[(size_t)l * d + c] + slots[(size_t)(32 + l) * d + c]) +
                      (slots[(size_t)(16 + l) * d + c] + slots[(size_t)(48 + l) * d + c]);
        float sum = op_reduce16(lane);
        for (int i = np; i < d; i++)
            sum = fmaf(S[(size_t)i * d + c], x[i], sum);
        out[c] = sum;
    }
}

void dn_ggml_step_scalar(int d, float *S, const float *q, const float *k, const float *v, float g, float beta,
                         float scale, float *o, float *scratch)
{
    float *slots = scratch, *u = scratch + (size_t)DN_GGML_SLOTS * d;
    const float decay = expf(g);
    for (size_t i = 0; i < (size_t)d * d; i++)
        S[i] *= decay;
    col_dots(d, S, k, slots, u);
    for (int c = 0; c < d; c++)
        u[c] = (v[c] - u[c]) * beta;
    for (int i = 0; i < d; i++)
        for (int c = 0; c < d; c++)
            S[(size_t)i * d + c] = fmaf(k[i], u[c], S[(size_t)i * d + c]);
    col_dots(d, S, q, slots, o);
    for (int c = 0; c < d; c++)
        o[c] *= scale;
}

size_t dn_ggml_scratch_floats(const dn_shape *s)
{
    return (size_t)(DN_GGML_SLOTS + 1) * (size_t)s->head_dim;
}

static dn_ggml_step_fn pick_step(void)
{
    const struct q_cpu *cpu = q_cpu_features();
    const char *cap = getenv("MOESERVE_ISA");
    if (cap && strcmp(cap, "scalar") == 0)
        return dn_ggml_step_scalar;
#if defined(__x86_64__)
    if (cpu->avx2 && cpu->fma)
        return dn_ggml_step_avx2;
#endif
    (void)cpu;  /* elsewhere the scalar recurrence, in the same float order */
    return dn_ggml_step_scalar;
}

void dn_delta_ggml(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state, float *scratch,
                   int head_begin, int head_end)
{
    const int d = s->head_dim, nv = s->n_v_heads, rep = nv / s->n_k_heads;
    const float scale = 1.0f / sqrtf((float)d);
    const dn_ggml_step_fn step = pick_step();
    for (int j = head_begin; j < head_end; j++) {
        float *S = state + (size_t)j * (size_t)d * (size_t)d;
        const size_t kofs = (size_t)(j / rep) * (size_t)d, vofs = (size_t)j * (size_t)d;
        for (int t = 0; t < n_tokens; t++) {
            const size_t gi = (size_t)t * (size_t)nv + (size_t)j;
            step(d, S, io->q + (size_t)t * io->q_stride + kofs, io->k + (size_t)t * io->k_stride + kofs,
                 io->v + (size_t)t * io->v_stride + vofs, io->g[gi], io->beta[gi], scale,
                 io->out + (size_t)t * io->out_stride + vofs, scratch);
        }
    }
}
