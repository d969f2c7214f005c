/* vexp.c: lane-by-lane model of ggml-cpu's vector expf (kernels/vexp.h): a Cody-Waite range
 * reduction and a degree-5 polynomial, with the AVX2 and AVX-512 variants' different scaling. */
#include "kernels/vexp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static float bits_to_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* x = n ln2 + b, |b| <= ln2/2; p(b) ~ exp(b) - 1 (or exp(b) for AVX-512, with the 1 folded in) */
static float vexp_avx512(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (fabsf(n) > 192.0f)
        return n <= 0.0f ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                              fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    return ldexpf(j, (int)n);
}

static float vexp_avx2(float x)
{
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = f_to_bits(z) << 23;
    const float k = bits_to_f(e + f_to_bits(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                              fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, 0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f))
        return fmaf(j, k, k);
    /* large |n|: scale in two steps so 2^n neither overflows nor flushes early */
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = bits_to_f(g + 0x7f000000u);
    const float s2 = bits_to_f(e - g);
    if (fabsf(n) > 192.0f)
        return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

enum q_vexp_flavour q_vexp_default(void)
{
    const char *v = getenv("MOESERVE_VEXP");
    if (v && strcmp(v, "libm") == 0)
        return Q_VEXP_LIBM;
    if (v && strcmp(v, "avx2") == 0)
        return Q_VEXP_AVX2;
    if (v && strcmp(v, "avx512") == 0)
        return Q_VEXP_AVX512;
    return Q_VEXP_AVX512;
}

float q_vexpf(float x, enum q_vexp_flavour f)
{
    switch (f) {
    case Q_VEXP_AVX2:
        return vexp_avx2(x);
    case Q_VEXP_AVX512:
        return vexp_avx512(x);
    default:
        return expf(x);
    }
}

static int flavour_lanes(enum q_vexp_flavour f)
{
    return f == Q_VEXP_AVX512 ? 16 : f == Q_VEXP_AVX2 ? 8 : 0;
}

/* Pairwise halving sum of 2^k lanes, as the horizontal adds of both ISAs do. */
static float tree_sum(float *v, int lanes)
{
    for (int w = lanes / 2; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            v[i] = v[i] + v[i + w];
    return v[0];
}

double q_vexp_softmax_sum(const float *x, float *y, int n, float max, enum q_vexp_flavour f,
                          int pad_masked)
{
    const int lanes = flavour_lanes(f);
    double sum = 0.0;
    int i = 0;
    if (lanes) {
        int full = pad_masked ? n : n - n % lanes;
        for (; i < full; i += lanes) {
            float v[16];
            for (int l = 0; l < lanes; l++) {
                v[l] = i + l < n ? q_vexpf(x[i + l] - max, f) : 0.0f;
                if (i + l < n)
                    y[i + l] = v[l];
            }
            sum += (double)tree_sum(v, lanes);
        }
    }
    for (; i < n; i++) {
        float e = expf(x[i] - max);
        y[i] = e;
        sum += (double)e;
    }
    return sum;
}
