/* q_kquants.c: the 256-value super-block formats paired with Q8_K activations (Q2_K ... Q6_K,
 * IQ4_XS, TQ1_0, TQ2_0) and the Q8_K quantizer: dequantization and scalar dot products. */
#include <math.h>
#include <stdbool.h>

#include "kernels/q_block.h"

/* ---------------------------------------------------------------- Q8_K --- */

static void qz_q8_k(const float *x, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, b += 292, x += 256) {
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(b, 0, 292);
        if (amax == 0)
            continue;
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            int v = (int)nearbyintf(iscale * x[j]);
            b[QB_Q8K_QS + j] = (uint8_t)(int8_t)(v < 127 ? v : 127);
        }
        for (int g = 0; g < 16; g++) {
            int16_t sum = 0;
            for (int j = 0; j < 16; j++)
                sum = (int16_t)(sum + (int8_t)b[QB_Q8K_QS + 16 * g + j]);
            memcpy(b + QB_Q8K_BSUMS + 2 * g, &sum, 2);
        }
        float d = 1 / iscale;
        memcpy(b, &d, 4);
    }
}

static void dq_q8_k(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 292, y += 256) {
        float d = qb_f32(b);
        for (int j = 0; j < 256; j++)
            y[j] = d * (float)(int8_t)b[QB_Q8K_QS + j];
    }
}

/* --------------------------------------------------------------- scales --- */

/* The 6-bit scale and min of sub-block j packed in Q4_K / Q5_K's 12 scale bytes. */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K's sixteen 6-bit scales (biased by 32) unpacked from 12 bytes. */
static void q3k_scales(const uint8_t *packed, int8_t out[16])
{
    uint32_t a[4];
    memcpy(a, packed, 12);
    const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f, tmp = a[2];
    a[2] = ((a[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
    a[3] = ((a[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
    a[0] = (a[0] & k2) | (((tmp >> 0) & k1) << 4);
    a[1] = (a[1] & k2) | (((tmp >> 2) & k1) << 4);
    memcpy(out, a, 16);
}

/* ------------------------------------------------------------ dequantize --- */

static void dq_q2_k(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 84) {
        const float d = qb_half(b + 80), min = qb_half(b + 82);
        const uint8_t *q = b + 16;
        int is = 0;
        for (int half = 0; half < 2; half++, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int part = 0; part < 2; part++) {
                    uint8_t sc = b[is++];
                    float dl = d * (float)(sc & 0xF), ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[16 * part + l] >> shift) & 3) - ml;
                }
    }
}

static void dq_q3_k(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 110) {
        const float d = qb_half(b + 108);
        const uint8_t *hm = b, *q = b + 32;
        int8_t sc[16];
        q3k_scales(b + 96, sc);
        int is = 0;
        uint8_t m = 1;
        for (int half = 0; half < 2; half++, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int part = 0; part < 2; part++) {
                    float dl = d * (float)(sc[is++] - 32);
                    for (int l = 0; l < 16; l++) {
                        int k = 16 * part + l;
                        *y++ = dl * (float)(((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                    }
                }
    }
}

static void dq_q4_k(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 144) {
        const float d = qb_half(b), min = qb_half(b + 2);
        const uint8_t *q = b + 16;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            scale_min_k4(j, b + 4, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(j + 1, b + 4, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void dq_q5_k(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 176) {
        const float d = qb_half(b), min = qb_half(b + 2);
        const uint8_t *qh = b + 16, *ql = b + 48;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            scale_min_k4(j, b + 4, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(j + 1, b + 4, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

static void dq_q6_k(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 210) {
        const float d = qb_half(b + 208);
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
    }
}

static void dq_iq4_xs(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 136) {
        const float d = qb_half(b);
        const uint16_t sh = qb_u16(b + 2);
        const uint8_t *qs = b + 8;
        for (int ib = 0; ib < 8; ib++, y += 32, qs += 16) {
            int ls = ((b[4 + ib / 2] >> 4 * (ib % 2)) & 0xF) | (((sh >> 2 * ib) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)qb_iq4nl_values[qs[j] & 0xF];
                y[j + 16] = dl * (float)qb_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

/* Ternary digit n of byte q (base-3 fixed point), in {-1, 0, 1}. */
static int trit(uint8_t q, int n)
{
    static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};
    uint8_t v = (uint8_t)(q * pow3[n]);
    return (int)(((uint16_t)v * 3) >> 8) - 1;
}

/* TQ1_0 value order: 32 bytes x 5 trits, 16 bytes x 5 trits, then 4 qh bytes x 4 trits. */
static int tq1_value(const uint8_t *b, int idx)
{
    if (idx < 160)
        return trit(b[idx % 32], idx / 32);
    if (idx < 240)
        return trit(b[32 + (idx - 160) % 16], (idx - 160) / 16);
    return trit(b[48 + (idx - 240) % 4], (idx - 240) / 4);
}

static void dq_tq1_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 54, y += 256) {
        const float d = qb_half(b + 52);
        for (int k = 0; k < 256; k++)
            y[k] = (float)tq1_value(b, k) * d;
    }
}

static int tq2_value(const uint8_t *b, int idx)
{
    int j = idx / 128 * 32, l = (idx % 128) / 32, m = idx % 32;
    return ((b[j + m] >> (2 * l)) & 3) - 1;
}

static void dq_tq2_0(const void *src, float *y, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 256; i++, b += 66, y += 256) {
        const float d = qb_half(b + 64);
        for (int k = 0; k < 256; k++)
            y[k] = (float)tq2_value(b, k) * d;
    }
}

/* ---------------------------------------------------------- dot products --- */
/* Integer sums per sub-block, scaled once per super-block, as ggml-cpu's generic code does. */

static float dot_q2_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 84, y += 292) {
        const int8_t *q8 = (const int8_t *)(y + QB_Q8K_QS);
        int summs = 0, isum = 0, is = 0;
        for (int j = 0; j < 16; j++)
            summs += qb_q8k_bsum(y, j) * (x[j] >> 4);
        const uint8_t *q2 = x + 16;
        for (int half = 0; half < 2; half++, q2 += 32)
            for (int shift = 0; shift < 8; shift += 2, q8 += 32) {
                int lo = 0, hi = 0;
                for (int l = 0; l < 16; l++) {
                    lo += q8[l] * ((q2[l] >> shift) & 3);
                    hi += q8[l + 16] * ((q2[l + 16] >> shift) & 3);
                }
                isum += (x[is] & 0xF) * lo + (x[is + 1] & 0xF) * hi;
                is += 2;
            }
        const float dq8 = qb_f32(y);
        sum += dq8 * qb_half(x + 80) * (float)isum - dq8 * qb_half(x + 82) * (float)summs;
    }
    return sum;
}

static float dot_q3_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 110, y += 292) {
        const int8_t *q8 = (const int8_t *)(y + QB_Q8K_QS);
        int8_t sc[16];
        q3k_scales(x + 96, sc);
        int isum = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                int idx = 16 * g + l, half = idx / 128, within = idx % 128, shift = (within / 32) * 2;
                int k = (idx % 32), bit = half * 4 + within / 32;
                int v = ((x[32 + half * 32 + k] >> shift) & 3) - ((x[k] >> bit) & 1 ? 0 : 4);
                s += q8[idx] * v;
            }
            isum += (sc[g] - 32) * s;
        }
        sum += qb_half(x + 108) * qb_f32(y) * (float)isum;
    }
    return sum;
}

/* Q4_K and Q5_K share the scale/min layout; Q5_K adds a fifth bit per value from qh. */
static float dot_q45_k(int64_t n, const uint8_t *x, const uint8_t *y, size_t block, bool five)
{
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += block, y += 292) {
        const int8_t *q8 = (const int8_t *)(y + QB_Q8K_QS);
        const uint8_t *qh = x + 16, *ql = x + (five ? 48 : 16);
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            scale_min_k4(j, x + 4, &sc, &m);
            msum += m * (qb_q8k_bsum(y, 2 * j) + qb_q8k_bsum(y, 2 * j + 1));
            const uint8_t *q = ql + 32 * (j / 2);
            int s = 0;
            for (int l = 0; l < 32; l++) {
                int v = j % 2 ? q[l] >> 4 : q[l] & 0xF;
                if (five)
                    v += (qh[l] >> j) & 1 ? 16 : 0;
                s += q8[32 * j + l] * v;
            }
            isum += sc * s;
        }
        const float dq8 = qb_f32(y);
        sum += qb_half(x) * dq8 * (float)isum - qb_half(x + 2) * dq8 * (float)msum;
    }
    return sum;
}

static float dot_q4_k(int64_t n, const void *w, const void *a) { return dot_q45_k(n, w, a, 144, false); }

/* Q4_K in the float order of ggml-cpu's repacked x86 kernels, which llama.cpp uses for every
 * Q4_K matrix whose row count is a multiple of 8: exact integer sums of scale x (quant . q8) and
 * of min x (block sums), turned to float and accumulated with one fused multiply-add each, per
 * super-block (single rows: gemv) or per pair of 32-value sub-blocks (groups of 4 rows: gemm);
 * the mins' sum is subtracted at the end. These orders are exact, so SIMD matches bit for bit. */
static float dot_q4_k_repacked(int64_t n, const uint8_t *x, const uint8_t *y, bool per_pair)
{
    float acc = 0, acc_min = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 144, y += 292) {
        const int8_t *q8 = (const int8_t *)(y + QB_Q8K_QS);
        const float dq8 = qb_f32(y), d = qb_half(x) * dq8, dmin = qb_half(x + 2) * dq8;
        int isum = 0, imin = 0;
        for (int pair = 0; pair < 4; pair++) {
            int ps = 0, pm = 0;
            for (int j = 2 * pair; j < 2 * pair + 2; j++) {
                uint8_t sc, m;
                scale_min_k4(j, x + 4, &sc, &m);
                pm += m * (qb_q8k_bsum(y, 2 * j) + qb_q8k_bsum(y, 2 * j + 1));
                const uint8_t *q = x + 16 + 32 * pair;
                int sub = 0;
                for (int l = 0; l < 32; l++)
                    sub += q8[32 * j + l] * (j % 2 ? q[l] >> 4 : q[l] & 0xF);
                ps += sc * sub;
            }
            if (per_pair) {
                acc = fmaf((float)ps, d, acc);
                acc_min = fmaf((float)pm, dmin, acc_min);
            } else {
                isum += ps;
                imin += pm;
            }
        }
        if (!per_pair) {
            acc = fmaf((float)isum, d, acc);
            acc_min = fmaf((float)imin, dmin, acc_min);
        }
    }
    return acc - acc_min;
}

static float dot_q4_k_row(int64_t n, const void *w, const void *a) { return dot_q4_k_repacked(n, w, a, false); }
static float dot_q4_k_group(int64_t n, const void *w, const void *a) { return dot_q4_k_repacked(n, w, a, true); }
static float dot_q5_k(int64_t n, const void *w, const void *a) { return dot_q45_k(n, w, a, 176, true); }

static float dot_q6_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 210, y += 292) {
        const int8_t *q8 = (const int8_t *)(y + QB_Q8K_QS), *sc = (const int8_t *)(x + 192);
        int isum = 0;
        for (int half = 0; half < 2; half++) {
            const uint8_t *ql = x + 64 * half, *qh = x + 128 + 32 * half;
            for (int l = 0; l < 32; l++) {
                int is = 8 * half + l / 16;
                int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                const int8_t *p = q8 + 128 * half + l;
                isum += sc[is] * q1 * p[0] + sc[is + 2] * q2 * p[32] + sc[is + 4] * q3 * p[64] + sc[is + 6] * q4 * p[96];
            }
        }
        sum += qb_half(x + 208) * qb_f32(y) * (float)isum;
    }
    return sum;
}

static float dot_iq4_xs(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 136, y += 292) {
        const float d4d8 = qb_half(x) * qb_f32(y);
        const uint16_t sh = qb_u16(x + 2);
        const int8_t *q8 = (const int8_t *)(y + QB_Q8K_QS);
        const uint8_t *qs = x + 8;
        for (int ib = 0; ib < 8; ib++, qs += 16, q8 += 32) {
            int ls = ((x[4 + ib / 2] >> 4 * (ib % 2)) & 0xF) | (((sh >> 2 * ib) & 3) << 4);
            int s1 = 0, s2 = 0;
            for (int j = 0; j < 16; j++) {
                s1 += q8[j] * qb_iq4nl_values[qs[j] & 0xF];
                s2 += q8[j + 16] * qb_iq4nl_values[qs[j] >> 4];
            }
            sum += d4d8 * (float)(ls - 32) * (float)(s1 + s2);
        }
    }
    return sum;
}

static float dot_tq1_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 54, y += 292) {
        int s = 0;
        for (int k = 0; k < 256; k++)
            s += tq1_value(x, k) * (int8_t)y[QB_Q8K_QS + k];
        sum += (float)s * (qb_half(x + 52) * qb_f32(y));
    }
    return sum;
}

static float dot_tq2_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, x += 66, y += 292) {
        int s = 0;
        for (int k = 0; k < 256; k++)
            s += tq2_value(x, k) * (int8_t)y[QB_Q8K_QS + k];
        sum += (float)s * (qb_f32(y) * qb_half(x + 64));
    }
    return sum;
}

void q_register_kquants(struct q_kernels *t, const struct q_cpu *cpu)
{
    (void)cpu;
    qb_set(t, Q_Q8_K, dq_q8_k, qz_q8_k, Q_Q8_K, NULL);
    qb_set(t, Q_Q2_K, dq_q2_k, NULL, Q_Q8_K, dot_q2_k);
    qb_set(t, Q_Q3_K, dq_q3_k, NULL, Q_Q8_K, dot_q3_k);
    qb_set(t, Q_Q4_K, dq_q4_k, NULL, Q_Q8_K, dot_q4_k);
    /* llama.cpp repacks Q4_K matrices of 8k rows (x86 with AVX2) */
    t[Q_Q4_K].batched = t[Q_Q4_K].batched_ref = (struct q_batched_dots){{dot_q4_k_row, dot_q4_k_row, dot_q4_k_group}, {NULL, NULL, NULL}};
    t[Q_Q4_K].batched_rows = 8;
    t[Q_Q4_K].batched_cols = 1;
    qb_set(t, Q_Q5_K, dq_q5_k, NULL, Q_Q8_K, dot_q5_k);
    qb_set(t, Q_Q6_K, dq_q6_k, NULL, Q_Q8_K, dot_q6_k);
    qb_set(t, Q_IQ4_XS, dq_iq4_xs, NULL, Q_Q8_K, dot_iq4_xs);
    qb_set(t, Q_TQ1_0, dq_tq1_0, NULL, Q_Q8_K, dot_tq1_0);
    qb_set(t, Q_TQ2_0, dq_tq2_0, NULL, Q_Q8_K, dot_tq2_0);
}
