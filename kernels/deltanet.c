/* deltanet.c: Gated DeltaNet kernels (conv + SiLU, L2 norm, gates, delta rule recurrent and
 * chunked, gated RMSNorm), numerics following llama.cpp's qwen3next graph on the CPU backend. */
#include "kernels/deltanet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bound on head_dim so per-head temporaries can live on the stack. */
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

/* 8 partial sums, so it vectorises; the order differs from a serial sum by rounding only */
static float vec_dot(int n, const float *restrict x, const float *restrict y)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += x[i + u] * y[i + u];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        sum += x[i] * y[i];
    return sum;
}

static float silu(float x)
{
    return x / (1.0f + expf(-x));
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
                o[c] += row[c] * weight[(size_t)c * (size_t)kernel + (size_t)p];
        }
        for (int c = 0; c < channels; c++)
            o[c] = silu(o[c]);
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
            x[i] = (x[i] * scale) * weight[i] * silu(zh[i]);
    }
}

/* ------------------------------------------------------------ delta rule: recurrent --- */

/* One token on one v-head: S = exp(g) S; u = beta (v - S^T k); S += k u^T; o = S^T q * scale. */
static void delta_step(int d, float *restrict S, const float *q, const float *k, const float *v,
                       float g, float beta, float scale, float *restrict o)
{
    float u[DN_MAX_HEAD_DIM];
    const float decay = expf(g);
    memset(u, 0, (size_t)d * sizeof(float));
    for (int i = 0; i < d; i++) {
        float *row = S + (size_t)i * (size_t)d;
        vec_scale(d, decay, row);
        vec_axpy(d, k[i], row, u); /* u = S^T k */
    }
    for (int c = 0; c < d; c++)
        u[c] = (v[c] - u[c]) * beta;
    memset(o, 0, (size_t)d * sizeof(float));
    for (int i = 0; i < d; i++) {
        float *row = S + (size_t)i * (size_t)d;
        vec_axpy(d, k[i], u, row);
        vec_axpy(d, q[i], row, o); /* o = S^T q */
    }
    vec_scale(d, scale, o);
}

void dn_delta_recurrent(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state,
                        int head_begin, int head_end)
{
    const int d = s->head_dim, nv = s->n_v_heads;
    const int rep = nv / s->n_k_heads;
    const float scale = 1.0f / sqrtf((float)d);
    for (int j = head_begin; j < head_end; j++) {
        float *S = state + (size_t)j * (size_t)d * (size_t)d;
        const size_t kofs = (size_t)(j / rep) * (size_t)d, vofs = (size_t)j * (size_t)d;
        for (int t = 0; t < n_tokens; t++) {
            const size_t gi = (size_t)t * (size_t)nv + (size_t)j;
            delta_step(d, S, io->q + (size_t)t * io->q_stride + kofs,
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
 * a unit lower-triangular system (I + A) U = B solved by forward substitution for two right-hand
 * sides: U1 (from beta v) and W (from beta e^G k), so U = U1 - W S0. Then
 *   o_r = e^{G_r} S0^T q_r + sum_{s<=r} e^{G_r-G_s} (q_r.k_s) u_s,
 *   S   = e^{G_n-1} S0 + sum_s e^{G_n-1 - G_s} k_s u_s^T.
 * Decays enter only as exp of differences G_r - G_s <= 0, so nothing overflows. */

typedef struct {
    float *G;     /* [C] cumulative log-decay */
    float *edec;  /* [C] e^{G_last - G_s} */
    float *kk;    /* [C*C] k_r . k_s for s < r (shared by the v-heads of a k-head) */
    float *qk;    /* [C*C] q_r . k_s for s <= r (ditto) */
    float *A;     /* [C*C] beta_r e^{G_r-G_s} k_r.k_s */
    float *W;     /* [C*d] */
    float *U;     /* [C*d] */
} chunk_work;

size_t dn_chunk_scratch_floats(const dn_shape *s, int chunk)
{
    const size_t c = (size_t)chunk, d = (size_t)s->head_dim;
    return 2 * c + 3 * c * c + 2 * c * d;
}

static chunk_work chunk_work_split(float *scratch, int chunk, int d)
{
    const size_t c = (size_t)chunk, cd = c * (size_t)d;
    chunk_work w;
    w.G = scratch;
    w.edec = w.G + c;
    w.kk = w.edec + c;
    w.qk = w.kk + c * c;
    w.A = w.qk + c * c;
    w.W = w.A + c * c;
    w.U = w.W + cd;
    return w;
}

/* Dot products of one k-head's keys and queries within the chunk. */
static void chunk_dots(int n, int C, int d, const float *q, size_t q_stride, const float *k,
                       size_t k_stride, float *kk, float *qk)
{
    for (int r = 0; r < n; r++) {
        const float *kr = k + (size_t)r * k_stride, *qr = q + (size_t)r * q_stride;
        for (int s2 = 0; s2 <= r; s2++) {
            const float *ks = k + (size_t)s2 * k_stride;
            if (s2 < r)
                kk[(size_t)r * C + s2] = vec_dot(d, kr, ks);
            qk[(size_t)r * C + s2] = vec_dot(d, qr, ks);
        }
    }
}

/* One chunk of n tokens on v-head j (its k-head's dots already in w->kk, w->qk). */
static void chunk_head(int n, int C, int d, float scale, const float *q, size_t q_stride,
                       const float *k, size_t k_stride, const float *v, size_t v_stride,
                       const float *g, const float *beta, size_t gb_stride, float *out,
                       size_t out_stride, float *restrict S, const chunk_work *w)
{
    float G = 0.0f;
    for (int r = 0; r < n; r++) {
        G += g[(size_t)r * gb_stride];
        w->G[r] = G;
    }
    const float G_last = w->G[n - 1];

    /* A (strictly lower) and forward substitution for W and U1 */
    for (int r = 0; r < n; r++) {
        const float br = beta[(size_t)r * gb_stride], Gr = w->G[r];
        float *Wr = w->W + (size_t)r * d, *Ur = w->U + (size_t)r * d;
        const float *kr = k + (size_t)r * k_stride, *vr = v + (size_t)r * v_stride;
        const float eG = expf(Gr);
        for (int i = 0; i < d; i++) {
            Wr[i] = br * eG * kr[i];
            Ur[i] = br * vr[i];
        }
        for (int s2 = 0; s2 < r; s2++) {
            const float a = br * expf(Gr - w->G[s2]) * w->kk[(size_t)r * C + s2];
            vec_axpy(d, -a, w->W + (size_t)s2 * d, Wr);
            vec_axpy(d, -a, w->U + (size_t)s2 * d, Ur);
        }
    }

    /* U = U1 - W S0, and the inter-chunk part of the output e^{G_r} S0^T q_r */
    for (int r = 0; r < n; r++) {
        float *Ur = w->U + (size_t)r * d, *Or = out + (size_t)r * out_stride;
        const float *Wr = w->W + (size_t)r * d, *qr = q + (size_t)r * q_stride;
        memset(Or, 0, (size_t)d * sizeof(float));
        for (int i = 0; i < d; i++) {
            const float *Si = S + (size_t)i * d;
            vec_axpy(d, -Wr[i], Si, Ur);
            vec_axpy(d, qr[i], Si, Or);
        }
        vec_scale(d, expf(w->G[r]), Or);
    }

    /* intra-chunk part of the output */
    for (int r = 0; r < n; r++) {
        float *Or = out + (size_t)r * out_stride;
        const float Gr = w->G[r];
        for (int s2 = 0; s2 <= r; s2++) {
            const float a = expf(Gr - w->G[s2]) * w->qk[(size_t)r * C + s2];
            vec_axpy(d, a, w->U + (size_t)s2 * d, Or);
        }
        vec_scale(d, scale, Or);
    }

    /* state: S = e^{G_last} S0 + sum_s e^{G_last - G_s} k_s u_s^T */
    for (int s2 = 0; s2 < n; s2++)
        w->edec[s2] = expf(G_last - w->G[s2]);
    const float eGl = expf(G_last);
    for (int i = 0; i < d; i++) {
        float *Si = S + (size_t)i * d;
        vec_scale(d, eGl, Si);
        for (int s2 = 0; s2 < n; s2++)
            vec_axpy(d, w->edec[s2] * k[(size_t)s2 * k_stride + i], w->U + (size_t)s2 * d, Si);
    }
}

void dn_delta_chunked(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state,
                      int chunk, float *scratch, int head_begin, int head_end)
{
    const int d = s->head_dim, nv = s->n_v_heads;
    const int rep = nv / s->n_k_heads;
    const float scale = 1.0f / sqrtf((float)d);
    const chunk_work w = chunk_work_split(scratch, chunk, d);
    for (int t0 = 0; t0 < n_tokens; t0 += chunk) {
        const int n = n_tokens - t0 < chunk ? n_tokens - t0 : chunk;
        int dots_of = -1; /* k-head whose dots are in w.kk / w.qk */
        for (int j = head_begin; j < head_end; j++) {
            const int kh = j / rep;
            const float *q = io->q + (size_t)t0 * io->q_stride + (size_t)kh * d;
            const float *k = io->k + (size_t)t0 * io->k_stride + (size_t)kh * d;
            if (kh != dots_of) {
                chunk_dots(n, chunk, d, q, io->q_stride, k, io->k_stride, w.kk, w.qk);
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
