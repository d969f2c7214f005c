/* deltanet.c: Gated DeltaNet kernels (conv + SiLU, L2 norm, gates, delta rule recurrent and
 * chunked, gated RMSNorm), numerics following llama.cpp's qwen3next graph on the CPU backend. */
#include "kernels/deltanet.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/deltanet_internal.h"
#include "kernels/ops.h"
#include "kernels/quants.h"

/* the SSE2 (x86-64 baseline) build of the hot loops */
#define DN_VW 4
#define DN_FN(name) name##_sse2
#include "kernels/deltanet_simd.h"

/* Sanity bound on head_dim (Qwen3-Next uses 128). */
#define DN_MAX_HEAD_DIM 512

/* ---------------------------------------------------------------- vector helpers ---
 * Written as blocks of 8 with constant trip counts so that -O2 vectorises them on any ISA
 * (GCC's default cost model only vectorises loops whose trip count it knows). */

static void vec_axpy(int n, float a, const float *restrict x, float *restrict y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++)
            y[i + u] += a * x[i + u];
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void vec_scale(int n, float a, float *y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++)
            y[i + u] *= a;
    for (; i < n; i++)
        y[i] *= a;
}

static float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* ggml's softplus: linear above 20 to avoid overflow */
static float softplus(float x)
{
    return x > 20.0f ? x : logf(1.0f + expf(x));
}

/* ---------------------------------------------------------------------- dispatch --- */

static struct {
    dn_mm_fn mm;
    dn_step_fn step;
    const char *isa;
} impl;
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

/* AVX2+FMA when the CPU has it, unless MOESERVE_ISA=scalar caps kernels at the baseline. */
static void pick_impl(void)
{
    const struct q_cpu *cpu = q_cpu_features();
    const char *cap = getenv("MOESERVE_ISA");
    const bool capped = cap && strcmp(cap, "scalar") == 0;
    impl.mm = dn_mm_sse2;  /* 128-bit vector extensions: SSE2 on x86-64, NEON on aarch64 */
    impl.step = dn_step_sse2;
#if defined(__x86_64__)
    impl.isa = "sse2";
    if (cpu->avx2 && cpu->fma && !capped) {
        impl.mm = dn_mm_avx2;
        impl.step = dn_step_avx2;
        impl.isa = "avx2";
    }
#else
    impl.isa = "vec128";
    (void)cpu;
    (void)capped;
#endif
}

const char *dn_isa(void)
{
    pthread_once(&impl_once, pick_impl);
    return impl.isa;
}

/* ------------------------------------------------------------------------ shapes --- */

int dn_shape_check(const dn_shape *s, char *err, size_t errlen)
{
    if (s->n_k_heads <= 0 || s->n_v_heads <= 0 || s->n_v_heads % s->n_k_heads != 0) {
        snprintf(err, errlen, "deltanet: %d v-heads is not a positive multiple of %d k-heads",
                 s->n_v_heads, s->n_k_heads);
        return -1;
    }
    if (s->head_dim <= 0 || s->head_dim > DN_MAX_HEAD_DIM) {
        snprintf(err, errlen, "deltanet: head size %d outside 1..%d", s->head_dim, DN_MAX_HEAD_DIM);
        return -1;
    }
    if (s->conv_kernel < 1 || s->conv_kernel > 64) {
        snprintf(err, errlen, "deltanet: conv kernel %d outside 1..64", s->conv_kernel);
        return -1;
    }
    return 0;
}

int dn_conv_channels(const dn_shape *s)
{
    return (2 * s->n_k_heads + s->n_v_heads) * s->head_dim;
}

size_t dn_conv_state_floats(const dn_shape *s)
{
    return (size_t)(s->conv_kernel - 1) * (size_t)dn_conv_channels(s);
}

size_t dn_ssm_state_floats(const dn_shape *s)
{
    return (size_t)s->n_v_heads * (size_t)s->head_dim * (size_t)s->head_dim;
}

/* -------------------------------------------------------------------------- conv --- */

/* Input row `src` (t - (K-1) + p for tap p) of the window: negative ones come from the state. */
static const float *conv_row(const float *conv_state, int kernel, int channels, const float *x,
                             size_t x_stride, int src)
{
    if (src < 0)
        return conv_state + (size_t)(kernel - 1 + src) * (size_t)channels;
    return x + (size_t)src * x_stride;
}

void dn_conv_silu(int channels, int kernel, const float *weight, float *conv_state,
                  const float *x, size_t x_stride, float *out, size_t out_stride, int n_tokens)
{
    const int hist = kernel - 1;
    for (int t = 0; t < n_tokens; t++) {
        float *o = out + (size_t)t * out_stride;
        for (int c = 0; c < channels; c++)
            o[c] = 0.0f;
        for (int p = 0; p < kernel; p++) {
            const float *row = conv_row(conv_state, kernel, channels, x, x_stride, t - hist + p);
            for (int c = 0; c < channels; c++)
                o[c] = fmaf(row[c], weight[(size_t)c * (size_t)kernel + (size_t)p], o[c]);
        }
        for (int c = 0; c < channels; c++)
            o[c] = op_silu_at(o[c], c, channels);
    }
    if (hist == 0 || n_tokens <= 0)
        return;
    /* new state = the last K-1 rows of [old state; x] */
    const size_t row_bytes = (size_t)channels * sizeof(float);
    int keep = hist - n_tokens; /* old rows that stay */
    if (keep > 0)
        memmove(conv_state, conv_state + (size_t)(hist - keep) * (size_t)channels,
                (size_t)keep * row_bytes);
    else
        keep = 0;
    for (int r = keep; r < hist; r++) {
        int src = n_tokens - hist + r;
        memcpy(conv_state + (size_t)r * (size_t)channels, x + (size_t)src * x_stride, row_bytes);
    }
}

/* ------------------------------------------------------------------ norms, gates --- */

void dn_l2_norm(float *x, int n, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / fmaxf(sqrtf((float)sum), eps);
    vec_scale(n, scale, x);
}

void dn_l2_norm_qk(const dn_shape *s, float *x, size_t stride, int n_tokens, float eps)
{
    for (int t = 0; t < n_tokens; t++)
        for (int h = 0; h < 2 * s->n_k_heads; h++)
            dn_l2_norm(x + (size_t)t * stride + (size_t)h * (size_t)s->head_dim, s->head_dim, eps);
}

void dn_beta_gate(const dn_shape *s, const float *ba, const float *dt_bias, const float *ssm_a,
                  float *beta, float *g)
{
    const int rep = s->n_v_heads / s->n_k_heads;
    for (int kh = 0; kh < s->n_k_heads; kh++) {
        const float *grp = ba + (size_t)kh * 2 * (size_t)rep;
        for (int r = 0; r < rep; r++) {
            const int j = kh * rep + r;
            beta[j] = sigmoid(grp[r]);
            g[j] = softplus(grp[rep + r] + dt_bias[j]) * ssm_a[j];
        }
    }
}

void dn_gated_rmsnorm(float *o, const float *z, const float *weight, int n_heads, int head_dim,
                      float eps)
{
    for (int h = 0; h < n_heads; h++) {
        float *x = o + (size_t)h * (size_t)head_dim;
        const float *zh = z + (size_t)h * (size_t)head_dim;
        double sum = 0.0;
        for (int i = 0; i < head_dim; i++)
            sum += (double)(x[i] * x[i]);
        const float mean = (float)(sum / head_dim);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (int i = 0; i < head_dim; i++)
            x[i] = (x[i] * scale) * weight[i] * op_silu_at(zh[i], i, head_dim);
    }
}

/* ------------------------------------------------------------ delta rule: recurrent --- */

void dn_delta_recurrent(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state,
                        int head_begin, int head_end)
{
    const int d = s->head_dim, nv = s->n_v_heads;
    const int rep = nv / s->n_k_heads;
    const float scale = 1.0f / sqrtf((float)d);
    pthread_once(&impl_once, pick_impl);
    for (int j = head_begin; j < head_end; j++) {
        float *S = state + (size_t)j * (size_t)d * (size_t)d;
        const size_t kofs = (size_t)(j / rep) * (size_t)d, vofs = (size_t)j * (size_t)d;
        for (int t = 0; t < n_tokens; t++) {
            const size_t gi = (size_t)t * (size_t)nv + (size_t)j;
            impl.step(d, S, io->q + (size_t)t * io->q_stride + kofs,
                       io->k + (size_t)t * io->k_stride + kofs,
                       io->v + (size_t)t * io->v_stride + vofs, io->g[gi], io->beta[gi], scale,
                       io->out + (size_t)t * io->out_stride + vofs);
        }
    }
}

/* -------------------------------------------------------------- delta rule: chunked ---
 * Within a chunk of n tokens starting from state S0, with G[r] the cumulative log-decay up to and
 * including token r, the new values u_r = beta_r (v_r - (decayed state before r)^T k_r) satisfy
 *   u_r + sum_{s<r} beta_r e^{G_r-G_s} (k_r.k_s) u_s = beta_r v_r - beta_r e^{G_r} S0^T k_r,
 * a unit lower-triangular system (I + A) U = B. With T = (I + A)^-1 (the UT transform):
 *   U = T (beta v) - T (beta e^G k) S0,
 *   o_r = e^{G_r} S0^T q_r + sum_{s<=r} e^{G_r-G_s} (q_r.k_s) u_s     (times 1/sqrt(d)),
 *   S   = e^{G_last} S0 + sum_s e^{G_last - G_s} k_s u_s^T.
 * Everything but T is a matrix product. Decays enter only as exp(G_r - G_s) with s <= r or as
 * e^{G_r} <= 1, so nothing overflows. */

typedef struct {
    float *G, *eG, *edec; /* [C] cumulative log-decay, e^{G_r}, e^{G_last - G_s} */
    float *KT;            /* [d x C] the k-head's keys transposed */
    float *kk, *qk;       /* [C x C] k_r.k_s, q_r.k_s (shared by the v-heads of a k-head) */
    float *T;             /* [C x C] (I + A)^-1, then reused for the intra-chunk output weights */
    float *B;             /* [C x 2d] right-hand sides: -beta e^G k | beta v */
    float *X;             /* [C x 2d] T B = -W | U1, U accumulates in the right half */
    float *Qs;            /* [C x d] e^{G_r} q_r / sqrt(d) */
    float *KdT;           /* [d x C] e^{G_last - G_s} k_s, transposed */
} chunk_work;

size_t dn_chunk_scratch_floats(const dn_shape *s, int chunk)
{
    const size_t c = (size_t)chunk, d = (size_t)s->head_dim;
    return 3 * c + 2 * d * c + 3 * c * c + 5 * c * d;
}

static chunk_work chunk_work_split(float *p, int chunk, int d)
{
    const size_t c = (size_t)chunk, cd = c * (size_t)d;
    chunk_work w;
    w.G = p;
    w.eG = w.G + c;
    w.edec = w.eG + c;
    w.KT = w.edec + c;
    w.kk = w.KT + cd;
    w.qk = w.kk + c * c;
    w.T = w.qk + c * c;
    w.B = w.T + c * c;
    w.X = w.B + 2 * cd;
    w.Qs = w.X + 2 * cd;
    w.KdT = w.Qs + cd;
    return w;
}

/* Keys transposed and the key-key / query-key dots of one k-head within the chunk. */
static void chunk_dots(int n, int C, int d, const float *q, size_t q_stride, const float *k,
                       size_t k_stride, const chunk_work *w)
{
    for (int s2 = 0; s2 < n; s2++)
        for (int i = 0; i < d; i++)
            w->KT[(size_t)i * C + s2] = k[(size_t)s2 * k_stride + i];
    impl.mm(n, n, d, k, k_stride, w->KT, (size_t)C, w->kk, (size_t)C, false);
    impl.mm(n, n, d, q, q_stride, w->KT, (size_t)C, w->qk, (size_t)C, false);
}

/* T = (I + A)^-1 with A[r][s] = beta_r e^{G_r-G_s} (k_r.k_s), s < r: row r of T is
 * e_r - sum_{m<r} A[r][m] T_m (T_m is zero right of column m). */
static void chunk_ut_transform(int n, int C, const float *beta, size_t gb_stride,
                               const chunk_work *w)
{
    for (int r = 0; r < n; r++) {
        float *Tr = w->T + (size_t)r * C;
        memset(Tr, 0, (size_t)n * sizeof(float));
        Tr[r] = 1.0f;
        const float br = beta[(size_t)r * gb_stride], Gr = w->G[r];
        for (int m = 0; m < r; m++) {
            const float a = br * expf(Gr - w->G[m]) * w->kk[(size_t)r * C + m];
            vec_axpy(m + 1, -a, w->T + (size_t)m * C, Tr);
        }
    }
}

/* One chunk of n tokens on one v-head (its k-head's dots already in w). */
static void chunk_head(int n, int C, int d, float scale, const float *q, size_t q_stride,
                       const float *k, size_t k_stride, const float *v, size_t v_stride,
                       const float *g, const float *beta, size_t gb_stride, float *out,
                       size_t out_stride, float *restrict S, const chunk_work *w)
{
    const size_t d2 = 2 * (size_t)d;
    float G = 0.0f;
    for (int r = 0; r < n; r++) {
        G += g[(size_t)r * gb_stride];
        w->G[r] = G;
        w->eG[r] = expf(G);
    }
    const float G_last = w->G[n - 1];
    for (int s2 = 0; s2 < n; s2++)
        w->edec[s2] = expf(G_last - w->G[s2]);

    chunk_ut_transform(n, C, beta, gb_stride, w);

    /* [-W | U1] = T [-beta e^G k | beta v] */
    for (int r = 0; r < n; r++) {
        const float br = beta[(size_t)r * gb_stride], bw = -br * w->eG[r];
        const float *kr = k + (size_t)r * k_stride, *vr = v + (size_t)r * v_stride;
        float *Br = w->B + (size_t)r * d2;
        for (int i = 0; i < d; i++) {
            Br[i] = bw * kr[i];
            Br[d + i] = br * vr[i];
        }
    }
    impl.mm(n, 2 * d, n, w->T, (size_t)C, w->B, d2, w->X, d2, false);
    float *U = w->X + d;

    /* U = U1 - W S0 */
    impl.mm(n, d, d, w->X, d2, S, (size_t)d, U, d2, true);

    /* o = (e^G q) S0 / sqrt(d) + P U with P[r][s] = e^{G_r-G_s} (q_r.k_s) / sqrt(d), s <= r */
    for (int r = 0; r < n; r++) {
        const float *qr = q + (size_t)r * q_stride;
        const float f = w->eG[r] * scale;
        for (int i = 0; i < d; i++)
            w->Qs[(size_t)r * d + i] = f * qr[i];
        float *Pr = w->T + (size_t)r * C;
        for (int s2 = 0; s2 <= r; s2++)
            Pr[s2] = expf(w->G[r] - w->G[s2]) * w->qk[(size_t)r * C + s2] * scale;
        for (int s2 = r + 1; s2 < n; s2++)
            Pr[s2] = 0.0f;
    }
    impl.mm(n, d, d, w->Qs, (size_t)d, S, (size_t)d, out, out_stride, false);
    impl.mm(n, d, n, w->T, (size_t)C, U, d2, out, out_stride, true);

    /* S = e^{G_last} S0 + (e^{G_last - G_s} k_s)^T U */
    for (int i = 0; i < d; i++)
        for (int s2 = 0; s2 < n; s2++)
            w->KdT[(size_t)i * C + s2] = w->KT[(size_t)i * C + s2] * w->edec[s2];
    vec_scale(d * d, expf(G_last), S);
    impl.mm(d, d, n, w->KdT, (size_t)C, U, d2, S, (size_t)d, true);
}

void dn_delta_chunked(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state,
                      int chunk, float *scratch, int head_begin, int head_end)
{
    const int d = s->head_dim, nv = s->n_v_heads;
    const int rep = nv / s->n_k_heads;
    const float scale = 1.0f / sqrtf((float)d);
    if (chunk < 1) { /* no chunks: the token-by-token form needs no scratch */
        dn_delta_recurrent(s, io, n_tokens, state, head_begin, head_end);
        return;
    }
    const chunk_work w = chunk_work_split(scratch, chunk, d);
    pthread_once(&impl_once, pick_impl);
    for (int t0 = 0; t0 < n_tokens; t0 += chunk) {
        const int n = n_tokens - t0 < chunk ? n_tokens - t0 : chunk;
        int dots_of = -1; /* k-head whose keys and dots are in w */
        for (int j = head_begin; j < head_end; j++) {
            const int kh = j / rep;
            const float *q = io->q + (size_t)t0 * io->q_stride + (size_t)kh * d;
            const float *k = io->k + (size_t)t0 * io->k_stride + (size_t)kh * d;
            if (kh != dots_of) {
                chunk_dots(n, chunk, d, q, io->q_stride, k, io->k_stride, &w);
                dots_of = kh;
            }
            const size_t gi = (size_t)t0 * (size_t)nv + (size_t)j;
            chunk_head(n, chunk, d, scale, q, io->q_stride, k, io->k_stride,
                       io->v + (size_t)t0 * io->v_stride + (size_t)j * d, io->v_stride,
                       io->g + gi, io->beta + gi, (size_t)nv,
                       io->out + (size_t)t0 * io->out_stride + (size_t)j * d, io->out_stride,
                       state + (size_t)j * d * d, &w);
        }
    }
}
