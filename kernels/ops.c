/* ops.c: RMS norm, NeoX RoPE and softmax rows (kernels/ops.h), computed in the same order and
 * precision as ggml-cpu so logits stay within the reference tolerances. */
#include "kernels/ops.h"

#include <math.h>
#include <stdbool.h>

void op_rms_norm(const float *x, const float *w, int64_t n, float eps, float *y)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / (double)n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * scale;
    if (w)
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] * w[i];
}

void op_rope_neox(float *head, int64_t n_rot, int32_t pos, float freq_base)
{
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    const int64_t half = n_rot / 2;
    for (int64_t i = 0; i < half; i++) {
        const float c = cosf(theta), s = sinf(theta);
        const float x0 = head[i], x1 = head[i + half];
        /* ggml-cpu's C++ rope is built with GCC's default floating-point contraction, which
         * fuses the first product of each rotated value; fmaf reproduces its rounding. */
        head[i] = fmaf(x0, c, -(x1 * s));
        head[i + half] = fmaf(x0, s, x1 * c);
        theta *= theta_scale;
    }
}

/* ggml's vectorised exp (a degree-5 polynomial after range reduction, fused multiply-adds),
 * evaluated lane by lane: softmax rows then round exactly as the reference's do. */
float op_expf_ggml(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 192)
        return n <= 0 ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

float op_reduce16(const float *v)
{
    float a[8], b[4];
    for (int i = 0; i < 8; i++)
        a[i] = v[8 + i] + v[i];
    for (int i = 0; i < 4; i++)
        b[i] = a[4 + i] + a[i];
    return (b[0] + b[2]) + (b[1] + b[3]);
}

/* ggml_vec_soft_max_f32 on AVX-512: whole 16-lane vectors through the vectorised exp, each
 * vector's horizontal sum added in double; a tail of n % 16 through expf, one by one. padded:
 * the row is the start of a longer one whose other values are -inf (an attention row over
 * ggml's padded KV cache), so the tail is a partial vector with zero lanes instead. */
static void softmax(float *x, int64_t n, bool padded)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    double sum = 0;
    const int64_t whole = padded ? n : n - n % 16;
    for (int64_t i = 0; i < whole; i += 16) {
        float lane[16] = {0};
        for (int64_t l = 0; l < 16 && i + l < n; l++)
            lane[l] = x[i + l] = op_expf_ggml(x[i + l] - max);
        sum += (double)op_reduce16(lane);
    }
    for (int64_t i = whole; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

void op_softmax(float *x, int64_t n)
{
    softmax(x, n, false);
}

void op_softmax_masked(float *x, int64_t n)
{
    softmax(x, n, true);
}

void op_swiglu(float *g, const float *u, int64_t n)
{
    const int64_t vec = n - n % 16;
    for (int64_t i = 0; i < vec; i++)
        g[i] = g[i] / (1.0f + op_expf_ggml(0.0f - g[i])) * u[i];
    for (int64_t i = vec; i < n; i++)
        g[i] = op_silu(g[i]) * u[i];
}
