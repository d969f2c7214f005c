/* q_iq.c: the grid-based i-quants (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S):
 * bit-exact dequantization, scalar dot products with Q8_K, and the choice of SIMD versions. */
#include "kernels/q_iq_simd.h"

#include "kernels/iq_grids.h"

#define QK 256

/* Value j of grid entry e: the grids pack one value per byte, value j in byte j. */
static inline int grid_u8(uint64_t e, int j) { return (int)((e >> (8 * j)) & 0xff); }
static inline int grid_s8(uint64_t e, int j) { return (int8_t)((e >> (8 * j)) & 0xff); }

/* Sign of value j under sign byte s, as ggml multiplies it: -1 where bit j is set. */
static inline int sgn(uint8_t s, int j) { return (s >> j) & 1 ? -1 : 1; }
static inline float sgnf(uint8_t s, int j) { return (s >> j) & 1 ? -1.f : 1.f; }

/* ------------------------------------------------------------------ IQ2_XXS --- */

static void dequant_iq2_xxs(const void *src, float *y, int64_t n)
{
    const struct iq2xxs_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = x[i].qs + 8 * ib;
            const uint32_t aux = iq_u32(q + 4);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_2xxs[q[l]];
                const uint8_t s = iq_ksigns[(aux >> (7 * l)) & 127];
                for (int j = 0; j < 8; j++)
                    y[j] = db * (float)grid_u8(g, j) * sgnf(s, j);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq2_xxs_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq2xxs_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d) * iq_f32(y[i].d);
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = x[i].qs + 8 * ib;
            const uint32_t aux = iq_u32(q + 4);
            int32_t sumi = 0;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_2xxs[q[l]];
                const uint8_t s = iq_ksigns[(aux >> (7 * l)) & 127];
                for (int j = 0; j < 8; j++)
                    sumi += grid_u8(g, j) * q8[j] * sgn(s, j);
                q8 += 8;
            }
            bsum += sumi * (int32_t)(2 * (aux >> 28) + 1);
        }
        sumf += d * (float)bsum;
    }
    return 0.125f * sumf; /* the grid holds 8x the magnitudes, the scale 2x+1 */
}

/* ------------------------------------------------------------------- IQ2_XS --- */

static void dequant_iq2_xs(const void *src, float *y, int64_t n)
{
    const struct iq2xs_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            float db[2];
            db[0] = d * (0.5f + (float)(x[i].scales[ib] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (float)(x[i].scales[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                const uint16_t q = iq_u16(x[i].qs + 2 * (4 * ib + l));
                const uint64_t g = iq_grid_2xs[q & 511];
                const uint8_t s = iq_ksigns[q >> 9];
                for (int j = 0; j < 8; j++)
                    y[j] = db[l / 2] * (float)grid_u8(g, j) * sgnf(s, j);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq2_xs_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq2xs_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d) * iq_f32(y[i].d);
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib = 0; ib < 8; ib++) {
            int32_t half_sums[2] = {0, 0};
            for (int l = 0; l < 4; l++) {
                const uint16_t q = iq_u16(x[i].qs + 2 * (4 * ib + l));
                const uint64_t g = iq_grid_2xs[q & 511];
                const uint8_t s = iq_ksigns[q >> 9];
                for (int j = 0; j < 8; j++)
                    half_sums[l / 2] += grid_u8(g, j) * q8[j] * sgn(s, j);
                q8 += 8;
            }
            bsum += half_sums[0] * (2 * (x[i].scales[ib] & 0xf) + 1) +
                    half_sums[1] * (2 * (x[i].scales[ib] >> 4) + 1);
        }
        sumf += d * (float)bsum;
    }
    return 0.125f * sumf;
}

/* -------------------------------------------------------------------- IQ2_S --- */

/* 10-bit grid index of group l (0..3) of sub-block ib: low byte in qs, 2 high bits in qh. */
static inline int iq2s_index(const struct iq2s_block *b, int ib, int l)
{
    return b->qs[4 * ib + l] | ((b->qh[ib] << (8 - 2 * l)) & 0x300);
}

static void dequant_iq2_s(const void *src, float *y, int64_t n)
{
    const struct iq2s_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            float db[2];
            db[0] = d * (0.5f + (float)(x[i].scales[ib] & 0xf)) * 0.25f;
            db[1] = d * (0.5f + (float)(x[i].scales[ib] >> 4)) * 0.25f;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_2s[iq2s_index(&x[i], ib, l)];
                const uint8_t s = x[i].signs[4 * ib + l];
                for (int j = 0; j < 8; j++)
                    y[j] = db[l / 2] * (float)grid_u8(g, j) * sgnf(s, j);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq2_s_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq2s_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d) * iq_f32(y[i].d);
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib = 0; ib < 8; ib++) {
            int32_t half_sums[2] = {0, 0};
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_2s[iq2s_index(&x[i], ib, l)];
                const uint8_t s = x[i].signs[4 * ib + l];
                for (int j = 0; j < 8; j++)
                    half_sums[l / 2] += grid_u8(g, j) * q8[j] * sgn(s, j);
                q8 += 8;
            }
            bsum += half_sums[0] * (2 * (x[i].scales[ib] & 0xf) + 1) +
                    half_sums[1] * (2 * (x[i].scales[ib] >> 4) + 1);
        }
        sumf += d * (float)bsum;
    }
    return 0.125f * sumf;
}

/* ------------------------------------------------------------------ IQ3_XXS --- */

static void dequant_iq3_xxs(const void *src, float *y, int64_t n)
{
    const struct iq3xxs_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = x[i].qs + 8 * ib;
            const uint32_t aux = iq_u32(x[i].sas + 4 * ib);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; l++) {
                const uint8_t s = iq_ksigns[(aux >> (7 * l)) & 127];
                const uint64_t g = iq_grid_3xxs[q[2 * l]] | (uint64_t)iq_grid_3xxs[q[2 * l + 1]] << 32;
                for (int j = 0; j < 8; j++)
                    y[j] = db * (float)grid_u8(g, j) * sgnf(s, j);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq3_xxs_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq3xxs_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d) * iq_f32(y[i].d);
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *q = x[i].qs + 8 * ib;
            const uint32_t aux = iq_u32(x[i].sas + 4 * ib);
            int32_t sumi = 0;
            for (int l = 0; l < 4; l++) {
                const uint8_t s = iq_ksigns[(aux >> (7 * l)) & 127];
                const uint64_t g = iq_grid_3xxs[q[2 * l]] | (uint64_t)iq_grid_3xxs[q[2 * l + 1]] << 32;
                for (int j = 0; j < 8; j++)
                    sumi += grid_u8(g, j) * q8[j] * sgn(s, j);
                q8 += 8;
            }
            bsum += sumi * (int32_t)(2 * (aux >> 28) + 1);
        }
        sumf += d * (float)bsum;
    }
    return 0.25f * sumf;
}

/* -------------------------------------------------------------------- IQ3_S --- */

/* The 8 magnitudes of group l (0..3) of sub-block ib: two 9-bit indices into the 4-wide grid. */
static inline uint64_t iq3s_group(const struct iq3s_block *b, int ib, int l)
{
    const uint8_t *qs = b->qs + 8 * ib;
    const int h = b->qh[ib];
    const uint32_t lo = iq_grid_3s[qs[2 * l] | ((h << (8 - 2 * l)) & 256)];
    const uint32_t hi = iq_grid_3s[qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256)];
    return lo | (uint64_t)hi << 32;
}

static void dequant_iq3_s(const void *src, float *y, int64_t n)
{
    const struct iq3s_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            const int sc = ib & 1 ? x[i].scales[ib / 2] >> 4 : x[i].scales[ib / 2] & 0xf;
            const float db = d * (float)(1 + 2 * sc);
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq3s_group(&x[i], ib, l);
                const uint8_t s = x[i].signs[4 * ib + l];
                for (int j = 0; j < 8; j++)
                    y[j] = db * (float)grid_u8(g, j) * sgnf(s, j);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq3_s_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq3s_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d) * iq_f32(y[i].d);
        const int8_t *q8 = y[i].qs;
        int32_t bsum = 0;
        for (int ib = 0; ib < 8; ib++) {
            const int sc = ib & 1 ? x[i].scales[ib / 2] >> 4 : x[i].scales[ib / 2] & 0xf;
            int32_t sumi = 0;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq3s_group(&x[i], ib, l);
                const uint8_t s = x[i].signs[4 * ib + l];
                for (int j = 0; j < 8; j++)
                    sumi += grid_u8(g, j) * q8[j] * sgn(s, j);
                q8 += 8;
            }
            bsum += sumi * (2 * sc + 1);
        }
        sumf += d * (float)bsum;
    }
    return sumf;
}

/* -------------------------------------------------------------------- IQ1_S --- */

#define IQ1_DELTA 0.125f /* every IQ1 value is shifted by +-1/8 of its scale */

static void dequant_iq1_s(const void *src, float *y, int64_t n)
{
    const struct iq1s_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq_half(x[i].d);
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = iq_u16(x[i].qh + 2 * ib);
            const float dl = d * (float)(2 * ((qh >> 12) & 7) + 1);
            const float delta = qh & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_1s[x[i].qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                for (int j = 0; j < 8; j++)
                    y[j] = dl * ((float)grid_s8(g, j) + delta);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq1_s_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq1s_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const int8_t *q8 = y[i].qs;
        int32_t sumi = 0, sumi_delta = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = iq_u16(x[i].qh + 2 * ib);
            const int ls = 2 * ((qh >> 12) & 7) + 1;
            const int delta = qh & 0x8000 ? -1 : 1;
            int32_t lsum = 0;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_1s[x[i].qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)];
                for (int j = 0; j < 8; j++)
                    lsum += q8[j] * grid_s8(g, j);
                q8 += 8;
            }
            sumi += ls * lsum;
            /* the shift contributes delta * (sum of the activations), which Q8_K precomputes */
            sumi_delta += ls * delta * (iq_bsum(&y[i], 2 * ib) + iq_bsum(&y[i], 2 * ib + 1));
        }
        sumf += iq_half(x[i].d) * iq_f32(y[i].d) * ((float)sumi + IQ1_DELTA * (float)sumi_delta);
    }
    return sumf;
}

/* -------------------------------------------------------------------- IQ1_M --- */

/* 11-bit grid index of group l (0..3) of sub-block ib; qh holds 3 index bits + 1 delta-sign bit
 * per group, two groups per byte. */
static inline int iq1m_index(const struct iq1m_block *b, int ib, int l)
{
    const int h = b->qh[2 * ib + l / 2];
    return b->qs[4 * ib + l] | ((h << (l & 1 ? 4 : 8)) & 0x700);
}
static inline int iq1m_delta_negative(const struct iq1m_block *b, int ib, int l)
{
    return (b->qh[2 * ib + l / 2] & (l & 1 ? 0x80 : 0x08)) != 0;
}
/* 3-bit scale of half h (0, 1) of sub-block ib, as the odd multiplier 2s+1. */
static inline int iq1m_scale(const struct iq1m_block *b, int ib, int h)
{
    const uint16_t sc = iq_u16(b->scales + 2 * (ib / 2));
    return 2 * ((sc >> (6 * (ib % 2) + 3 * h)) & 7) + 1;
}

static void dequant_iq1_m(const void *src, float *y, int64_t n)
{
    const struct iq1m_block *x = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = iq1m_super_scale(&x[i]);
        for (int ib = 0; ib < 8; ib++) {
            for (int l = 0; l < 4; l++) {
                const float dl = d * (float)iq1m_scale(&x[i], ib, l / 2);
                const float delta = iq1m_delta_negative(&x[i], ib, l) ? -IQ1_DELTA : IQ1_DELTA;
                const uint64_t g = iq_grid_1s[iq1m_index(&x[i], ib, l)];
                for (int j = 0; j < 8; j++)
                    y[j] = dl * ((float)grid_s8(g, j) + delta);
                y += 8;
            }
        }
    }
}

float q_iq_dot_iq1_m_scalar(int64_t n, const void *w, const void *a)
{
    const struct iq1m_block *x = w;
    const struct iq_q8k_block *y = a;
    float sumf = 0.f;
    for (int64_t i = 0; i < n / QK; i++) {
        const int8_t *q8 = y[i].qs;
        int32_t sumi = 0, sumi_delta = 0;
        for (int ib = 0; ib < 8; ib++) {
            int32_t grid_sums[2] = {0, 0}, delta_sums[2] = {0, 0};
            for (int l = 0; l < 4; l++) {
                const uint64_t g = iq_grid_1s[iq1m_index(&x[i], ib, l)];
                int32_t gs = 0, as = 0;
                for (int j = 0; j < 8; j++) {
                    gs += q8[j] * grid_s8(g, j);
                    as += q8[j];
                }
                q8 += 8;
                grid_sums[l / 2] += gs;
                delta_sums[l / 2] += iq1m_delta_negative(&x[i], ib, l) ? -as : as;
            }
            const int ls1 = iq1m_scale(&x[i], ib, 0), ls2 = iq1m_scale(&x[i], ib, 1);
            sumi += grid_sums[0] * ls1 + grid_sums[1] * ls2;
            sumi_delta += delta_sums[0] * ls1 + delta_sums[1] * ls2;
        }
        sumf += iq1m_super_scale(&x[i]) * iq_f32(y[i].d) * ((float)sumi + IQ1_DELTA * (float)sumi_delta);
    }
    return sumf;
}

/* ----------------------------------------------------------------- registry --- */

static void set_type(struct q_kernels *k, q_dequant_fn dequant, q_dot_fn ref)
{
    k->dequant = dequant;
    k->quant = NULL; /* weight-only formats: ggml's quantizers are not ported */
    k->act_type = Q_Q8_K;
    k->dot_ref = ref;
    k->dot = ref;
    k->dot_isa = "scalar";
}

#if defined(__x86_64__) || defined(__aarch64__)
static void use_simd(struct q_kernels *k, q_dot_fn fn, const char *isa)
{
    if (fn) {
        k->dot = fn;
        k->dot_tokens = NULL;
        k->dot_isa = isa;
    }
}
#endif

void q_register_iq(struct q_kernels *table, const struct q_cpu *cpu)
{
    set_type(&table[Q_IQ2_XXS], dequant_iq2_xxs, q_iq_dot_iq2_xxs_scalar);
    set_type(&table[Q_IQ2_XS], dequant_iq2_xs, q_iq_dot_iq2_xs_scalar);
    set_type(&table[Q_IQ2_S], dequant_iq2_s, q_iq_dot_iq2_s_scalar);
    set_type(&table[Q_IQ3_XXS], dequant_iq3_xxs, q_iq_dot_iq3_xxs_scalar);
    set_type(&table[Q_IQ3_S], dequant_iq3_s, q_iq_dot_iq3_s_scalar);
    set_type(&table[Q_IQ1_S], dequant_iq1_s, q_iq_dot_iq1_s_scalar);
    set_type(&table[Q_IQ1_M], dequant_iq1_m, q_iq_dot_iq1_m_scalar);
#if defined(__x86_64__) /* the AVX files are built for x86-64 only */
    if (cpu->avx2 && cpu->fma) {
        use_simd(&table[Q_IQ2_XXS], q_iq_dot_iq2_xxs_avx2, "avx2");
        use_simd(&table[Q_IQ2_XS], q_iq_dot_iq2_xs_avx2, "avx2");
        use_simd(&table[Q_IQ2_S], q_iq_dot_iq2_s_avx2, "avx2");
        use_simd(&table[Q_IQ3_XXS], q_iq_dot_iq3_xxs_avx2, "avx2");
        use_simd(&table[Q_IQ3_S], q_iq_dot_iq3_s_avx2, "avx2");
        use_simd(&table[Q_IQ1_S], q_iq_dot_iq1_s_avx2, "avx2");
        use_simd(&table[Q_IQ1_M], q_iq_dot_iq1_m_avx2, "avx2");
    }
    /* q_iq_avx512.c is also built with -mavx512dq (the compiler may use it); every CPU with
     * BW + VL + VNNI has DQ too (Cascade Lake, Ice Lake, Sapphire Rapids, Zen 4). */
    if (cpu->avx512f && cpu->avx512bw && cpu->avx512vl && cpu->avx512vnni) {
        use_simd(&table[Q_IQ2_XXS], q_iq_dot_iq2_xxs_avx512, "avx512");
        use_simd(&table[Q_IQ2_XS], q_iq_dot_iq2_xs_avx512, "avx512");
        use_simd(&table[Q_IQ2_S], q_iq_dot_iq2_s_avx512, "avx512");
        use_simd(&table[Q_IQ3_XXS], q_iq_dot_iq3_xxs_avx512, "avx512");
        use_simd(&table[Q_IQ3_S], q_iq_dot_iq3_s_avx512, "avx512");
        use_simd(&table[Q_IQ1_S], q_iq_dot_iq1_s_avx512, "avx512");
        use_simd(&table[Q_IQ1_M], q_iq_dot_iq1_m_avx512, "avx512");
        table[Q_IQ2_S].dot_tokens = q_iq_dot_iq2_s_avx512_tokens;
        table[Q_IQ3_S].dot_tokens = q_iq_dot_iq3_s_avx512_tokens;
    }
#elif defined(__aarch64__) /* q_iq_neon.c: the two grid types the models use most */
    if (cpu->neon) {
        use_simd(&table[Q_IQ2_S], q_iq_dot_iq2_s_neon, "neon");
        use_simd(&table[Q_IQ3_S], q_iq_dot_iq3_s_neon, "neon");
    }
#endif
}
