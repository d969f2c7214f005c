/* q_legacy.c: float types and the 32-value block formats (Q4_0 ... Q8_1, IQ4_NL, MXFP4, NVFP4,
 * Q1_0, Q2_0): dequantization, activation quantizers and scalar dot products as ggml-cpu computes them. */
#include <math.h>

#include "kernels/ops.h"
#include "kernels/q_block.h"

/* ------------------------------------------------------------------ floats --- */

static void dq_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
static void qz_f32(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

static void dq_f16(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = qb_half((const uint8_t *)src + 2 * i);
}

static void qz_f16(const float *src, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        qb_put_u16((uint8_t *)dst + 2 * i, q_f32_to_f16(src[i]));
}

static void dq_bf16(const void *src, float *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = q_bf16_to_f32(qb_u16((const uint8_t *)src + 2 * i));
}

static void qz_bf16(const float *src, void *dst, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        qb_put_u16((uint8_t *)dst + 2 * i, q_f32_to_bf16(src[i]));
}

/* F32 as ggml-cpu's AVX-512 vec_dot (a token alone): four 16-lane accumulators over 64-value
 * steps, element i in slot i % 64, folded (0 + 2) + (1 + 3), one horizontal add; the tail of
 * n % 64 values added after it, each a fused multiply-add (ggml's C++ is built contracting). */
static float dot_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float slot[64] = {0}, lane[16];
    const int64_t np = n - n % 64;
    for (int64_t i = 0; i < np; i++)
        slot[i % 64] = fmaf(x[i], y[i], slot[i % 64]);
    for (int l = 0; l < 16; l++)
        lane[l] = (slot[l] + slot[32 + l]) + (slot[16 + l] + slot[48 + l]);
    float sum = op_reduce16(lane);
    for (int64_t i = np; i < n; i++)
        sum = fmaf(x[i], y[i], sum);
    return sum;
}

/* F32 as llamafile's tinyBLAS (ggml's batched path): 16 lanes, lane i summing elements i,
 * i + 16, ... with fused multiply-adds, then one horizontal add. */
static float dot_f32_tiny(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float lane[16] = {0};
    for (int64_t i = 0; i < n; i++)
        lane[i % 16] = fmaf(x[i], y[i], lane[i % 16]);
    return op_reduce16(lane);
}

static float dot_f16(int64_t n, const void *w, const void *a)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(qb_half((const uint8_t *)w + 2 * i) * qb_half((const uint8_t *)a + 2 * i));
    return (float)s;
}

static float dot_bf16(int64_t n, const void *w, const void *a)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)(q_bf16_to_f32(qb_u16((const uint8_t *)w + 2 * i)) *
                      q_bf16_to_f32(qb_u16((const uint8_t *)a + 2 * i)));
    return (float)s;
}

/* --------------------------------------------------------- Q8_0 and Q8_1 --- */
/* Activations are quantized the way ggml-cpu's x86 path does: scale 127/amax, round half to even. */

static float q8_block_scale(const float *x, float *inv)
{
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    *inv = amax != 0.0f ? 127.f / amax : 0.0f;
    return amax / 127.f;
}

static void qz_q8_0(const float *x, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += 34, x += 32) {
        float inv, d = q8_block_scale(x, &inv);
        qb_put_u16(b, q_f32_to_f16(d));
        for (int j = 0; j < 32; j++)
            b[2 + j] = (uint8_t)(int8_t)nearbyintf(x[j] * inv);
    }
}

static void qz_q8_1(const float *x, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += 36, x += 32) {
        float inv, d = q8_block_scale(x, &inv);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int8_t q = (int8_t)nearbyintf(x[j] * inv);
            b[4 + j] = (uint8_t)q;
            sum += q;
        }
        qb_put_u16(b, q_f32_to_f16(d));
        qb_put_u16(b + 2, q_f32_to_f16(d * (float)sum));
    }
}

static void dq_q8_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 34, y += 32) {
        float d = qb_half(b);
        for (int j = 0; j < 32; j++)
            y[j] = (float)(int8_t)b[2 + j] * d;
    }
}

static void dq_q8_1(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 36, y += 32) {
        float d = qb_half(b);
        for (int j = 0; j < 32; j++)
            y[j] = (float)(int8_t)b[4 + j] * d;
    }
}

/* In ggml-cpu's order (its AVX2 kernel and tinyBLAS alike): 8 lanes, each the integer sum of 4
 * adjacent products, accumulated over blocks with FMA by the block's scale, then summed pairwise.
 * Any other order moves the result by an ulp now and then, and such an ulp flips a later Q8_0
 * rounding: with this order the tiny mxfp4 model matches llama.cpp bit for bit on 42 tokens. */
static float dot_q8_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float acc[8] = {0};
    for (int64_t i = 0; i < n / 32; i++, x += 34, y += 34) {
        const float d = qb_half(x) * qb_half(y);
        for (int l = 0; l < 8; l++) {
            int s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++)
                s += (int8_t)x[2 + j] * (int8_t)y[2 + j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    for (int half = 4; half >= 1; half /= 2)
        for (int l = 0; l < half; l++)
            acc[l] += acc[l + half];
    return acc[0];
}

/* ------------------------------------------------------ 4- and 5-bit legacy --- */

static void dq_q4_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 18, y += 32) {
        float d = qb_half(b);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

static void dq_q4_1(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 20, y += 32) {
        float d = qb_half(b), m = qb_half(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[4 + j] & 0x0F) * d + m;
            y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
    }
}

static void dq_q5_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 22, y += 32) {
        float d = qb_half(b);
        uint32_t qh = qb_u32(b + 2);
        for (int j = 0; j < 16; j++) {
            int x0 = (int)((b[6 + j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
            int x1 = (int)((b[6 + j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
            y[j] = (float)x0 * d;
            y[j + 16] = (float)x1 * d;
        }
    }
}

static void dq_q5_1(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 24, y += 32) {
        float d = qb_half(b), m = qb_half(b + 2);
        uint32_t qh = qb_u32(b + 4);
        for (int j = 0; j < 16; j++) {
            int x0 = (int)((b[8 + j] & 0x0F) | (((qh >> j) << 4) & 0x10));
            int x1 = (int)((b[8 + j] >> 4) | ((qh >> (j + 12)) & 0x10));
            y[j] = (float)x0 * d + m;
            y[j + 16] = (float)x1 * d + m;
        }
    }
}

static float dot_q4_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 18, y += 34) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += ((x[2 + j] & 0x0F) - 8) * (int8_t)y[2 + j] + ((x[2 + j] >> 4) - 8) * (int8_t)y[18 + j];
        sum += (float)s * qb_half(x) * qb_half(y);
    }
    return sum;
}

static float dot_q4_1(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 20, y += 36) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += (x[4 + j] & 0x0F) * (int8_t)y[4 + j] + (x[4 + j] >> 4) * (int8_t)y[20 + j];
        sum += (qb_half(x) * qb_half(y)) * (float)s + qb_half(x + 2) * qb_half(y + 2);
    }
    return sum;
}

static float dot_q5_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 22, y += 34) {
        uint32_t qh = qb_u32(x + 2);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            int x0 = (int)((x[6 + j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - 16;
            int x1 = (int)((x[6 + j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
            s += x0 * (int8_t)y[2 + j] + x1 * (int8_t)y[18 + j];
        }
        sum += (qb_half(x) * qb_half(y)) * (float)s;
    }
    return sum;
}

static float dot_q5_1(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 24, y += 36) {
        uint32_t qh = qb_u32(x + 4);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            int x0 = (int)((x[8 + j] & 0x0F) | (((qh >> j) << 4) & 0x10));
            int x1 = (int)((x[8 + j] >> 4) | ((qh >> (j + 12)) & 0x10));
            s += x0 * (int8_t)y[4 + j] + x1 * (int8_t)y[20 + j];
        }
        sum += (qb_half(x) * qb_half(y)) * (float)s + qb_half(x + 2) * qb_half(y + 2);
    }
    return sum;
}

/* ----------------------------------------------------- non-linear 4-bit grids --- */

static void dq_iq4_nl(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 18, y += 32) {
        float d = qb_half(b);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)qb_iq4nl_values[b[2 + j] & 0x0F];
            y[j + 16] = d * (float)qb_iq4nl_values[b[2 + j] >> 4];
        }
    }
}

static float dot_iq4_nl(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 18, y += 34) {
        int s1 = 0, s2 = 0;
        for (int j = 0; j < 16; j++) {
            s1 += (int8_t)y[2 + j] * qb_iq4nl_values[x[2 + j] & 0x0F];
            s2 += (int8_t)y[18 + j] * qb_iq4nl_values[x[2 + j] >> 4];
        }
        sum += qb_half(y) * qb_half(x) * (float)(s1 + s2);
    }
    return sum;
}

static void dq_mxfp4(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 17, y += 32) {
        float d = qb_e8m0_half(b[0]);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)qb_fp4_values[b[1 + j] & 0x0F] * d;
            y[j + 16] = (float)qb_fp4_values[b[1 + j] >> 4] * d;
        }
    }
}

static float dot_mxfp4(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 17, y += 34) {
        int s1 = 0, s2 = 0;
        for (int j = 0; j < 16; j++) {
            s1 += (int8_t)y[2 + j] * qb_fp4_values[x[1 + j] & 0x0F];
            s2 += (int8_t)y[18 + j] * qb_fp4_values[x[1 + j] >> 4];
        }
        sum += qb_half(y) * qb_e8m0_half(x[0]) * (float)(s1 + s2);
    }
    return sum;
}

/* Q4_0, IQ4_NL and MXFP4 in the float order of ggml-cpu's repacked x86 kernels (llama.cpp
 * repacks their matrices of 8k rows, single tokens and groups alike): per block, the exact
 * integer sum, one fused multiply-add with (weight scale x activation scale). */
static int isum_q4_0(const uint8_t *x, const uint8_t *y)
{
    int s = 0;
    for (int j = 0; j < 16; j++)
        s += ((x[2 + j] & 0x0F) - 8) * (int8_t)y[2 + j] + ((x[2 + j] >> 4) - 8) * (int8_t)y[18 + j];
    return s;
}

static int isum_table(const uint8_t *qs, const int8_t *values, const uint8_t *y)
{
    int s = 0;
    for (int j = 0; j < 16; j++)
        s += (int8_t)y[2 + j] * values[qs[j] & 0x0F] + (int8_t)y[18 + j] * values[qs[j] >> 4];
    return s;
}

static float dot_q4_0_packed(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float acc = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 18, y += 34)
        acc = fmaf((float)isum_q4_0(x, y), qb_half(x) * qb_half(y), acc);
    return acc;
}

static float dot_iq4_nl_packed(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float acc = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 18, y += 34)
        acc = fmaf((float)isum_table(x + 2, qb_iq4nl_values, y), qb_half(x) * qb_half(y), acc);
    return acc;
}

static float dot_mxfp4_packed(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float acc = 0;
    for (int64_t i = 0; i < n / 32; i++, x += 17, y += 34)
        acc = fmaf((float)isum_table(x + 1, qb_fp4_values, y), qb_e8m0_half(x[0]) * qb_half(y), acc);
    return acc;
}

static void set_packed(struct q_kernels *t, enum q_type type, q_dot_fn dot)
{
    t[type].batched = t[type].batched_ref = (struct q_batched_dots){{dot, dot, dot}, {NULL, NULL, NULL}};
    t[type].batched_rows = 8;
    t[type].batched_cols = 1;
}

static void dq_nvfp4(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 64; i++, b += 36) {
        for (int s = 0; s < 4; s++, y += 16) {
            float d = qb_ue4m3_half(b[s]);
            for (int j = 0; j < 8; j++) {
                y[j] = (float)qb_fp4_values[b[4 + 8 * s + j] & 0x0F] * d;
                y[j + 8] = (float)qb_fp4_values[b[4 + 8 * s + j] >> 4] * d;
            }
        }
    }
}

static float dot_nvfp4(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 64; i++, x += 36, y += 68) {
        for (int s = 0; s < 4; s++) {
            const uint8_t *yb = y + 34 * (s / 2);
            int off = (s % 2) * 16, lo = 0, hi = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t q = x[4 + 8 * s + j];
                lo += (int8_t)yb[2 + off + j] * qb_fp4_values[q & 0x0F];
                hi += (int8_t)yb[2 + off + j + 8] * qb_fp4_values[q >> 4];
            }
            sum += qb_half(yb) * qb_ue4m3_half(x[s]) * (float)(lo + hi);
        }
    }
    return sum;
}

/* ------------------------------------------------------------ 1- and 2-bit --- */

static void dq_q1_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 128; i++, b += 18, y += 128) {
        float d = qb_half(b);
        for (int j = 0; j < 128; j++)
            y[j] = (b[2 + j / 8] >> (j % 8)) & 1 ? d : -d;
    }
}

static float dot_q1_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 128; i++, x += 18, y += 4 * 34) {
        float si = 0;
        for (int k = 0; k < 4; k++) {
            const uint8_t *yb = y + 34 * k;
            int s = 0;
            for (int j = 0; j < 32; j++)
                s += (x[2 + 4 * k + j / 8] >> (j % 8)) & 1 ? (int8_t)yb[2 + j] : -(int8_t)yb[2 + j];
            si += qb_half(yb) * (float)s;
        }
        sum += qb_half(x) * si;
    }
    return sum;
}

static void dq_q2_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 64; i++, b += 18, y += 64) {
        float d = qb_half(b);
        for (int j = 0; j < 64; j++)
            y[j] = (float)((int)((b[2 + j / 4] >> ((j % 4) * 2)) & 3) - 1) * d;
    }
}

static float dot_q2_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 64; i++, x += 18, y += 2 * 34) {
        float si = 0;
        for (int k = 0; k < 2; k++) {
            const uint8_t *yb = y + 34 * k;
            int s = 0;
            for (int j = 0; j < 32; j++)
                s += ((int)((x[2 + 8 * k + j / 4] >> ((j % 4) * 2)) & 3) - 1) * (int8_t)yb[2 + j];
            si += qb_half(yb) * (float)s;
        }
        sum += qb_half(x) * si;
    }
    return sum;
}

/* --------------------------------------------------------------- the table --- */

void q_register_legacy(struct q_kernels *t, const struct q_cpu *cpu)
{
    (void)cpu;
    qb_set(t, Q_F32, dq_f32, qz_f32, Q_F32, dot_f32);
    /* tinyBLAS takes F32 matrices of 4k rows and 16k columns in batches of two tokens or more */
    t[Q_F32].batched = t[Q_F32].batched_ref = (struct q_batched_dots){{dot_f32, dot_f32_tiny, dot_f32_tiny}, {NULL, NULL, NULL}};
    t[Q_F32].batched_rows = 4;
    t[Q_F32].batched_cols = 16;
    qb_set(t, Q_F16, dq_f16, qz_f16, Q_F16, dot_f16);
    qb_set(t, Q_BF16, dq_bf16, qz_bf16, Q_BF16, dot_bf16);
    qb_set(t, Q_Q8_0, dq_q8_0, qz_q8_0, Q_Q8_0, dot_q8_0);
    qb_set(t, Q_Q8_1, dq_q8_1, qz_q8_1, Q_Q8_1, NULL);
    qb_set(t, Q_Q4_0, dq_q4_0, NULL, Q_Q8_0, dot_q4_0);
    qb_set(t, Q_Q4_1, dq_q4_1, NULL, Q_Q8_1, dot_q4_1);
    qb_set(t, Q_Q5_0, dq_q5_0, NULL, Q_Q8_0, dot_q5_0);
    qb_set(t, Q_Q5_1, dq_q5_1, NULL, Q_Q8_1, dot_q5_1);
    qb_set(t, Q_IQ4_NL, dq_iq4_nl, NULL, Q_Q8_0, dot_iq4_nl);
    qb_set(t, Q_MXFP4, dq_mxfp4, NULL, Q_Q8_0, dot_mxfp4);
    set_packed(t, Q_Q4_0, dot_q4_0_packed);
    set_packed(t, Q_IQ4_NL, dot_iq4_nl_packed);
    set_packed(t, Q_MXFP4, dot_mxfp4_packed);
    qb_set(t, Q_NVFP4, dq_nvfp4, NULL, Q_Q8_0, dot_nvfp4);
    qb_set(t, Q_Q1_0, dq_q1_0, NULL, Q_Q8_0, dot_q1_0);
    qb_set(t, Q_Q2_0, dq_q2_0, NULL, Q_Q8_0, dot_q2_0);
}
