/* deltanet_simd.h: the hot loops of the delta rule (one recurrent step, register-blocked matrix
 * product), written once with GCC vector types of DN_VW floats and compiled per ISA. */
/* Included by deltanet.c (DN_VW 4: SSE2, the x86-64 baseline) and deltanet_avx2.c (DN_VW 8);
 * the includer defines DN_VW and DN_FN(name), which gives each copy its own names. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef float dn_vec __attribute__((vector_size(DN_VW * sizeof(float))));

static inline dn_vec DN_FN(vld)(const float *p)
{
    dn_vec v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline void DN_FN(vst)(float *p, dn_vec v)
{
    memcpy(p, &v, sizeof(v));
}

static inline dn_vec DN_FN(vsplat)(float a)
{
    return a - (dn_vec){0}; /* scalar op vector broadcasts */
}

/* C[4 x 2W] (+)= A[4 x K] B[K x 2W]: eight vector accumulators stay in registers. */
static void DN_FN(mm_block)(int K, const float *A, size_t lda, const float *B, size_t ldb,
                            float *C, size_t ldc, bool accumulate)
{
    dn_vec c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    for (int p = 0; p < K; p++) {
        const float *b = B + (size_t)p * ldb;
        const dn_vec b0 = DN_FN(vld)(b), b1 = DN_FN(vld)(b + DN_VW);
        const dn_vec a0 = DN_FN(vsplat)(A[p]), a1 = DN_FN(vsplat)(A[lda + p]);
        const dn_vec a2 = DN_FN(vsplat)(A[2 * lda + p]), a3 = DN_FN(vsplat)(A[3 * lda + p]);
        c00 += a0 * b0, c01 += a0 * b1;
        c10 += a1 * b0, c11 += a1 * b1;
        c20 += a2 * b0, c21 += a2 * b1;
        c30 += a3 * b0, c31 += a3 * b1;
    }
    const dn_vec acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int r = 0; r < 4; r++) {
        float *c = C + (size_t)r * ldc;
        for (int h = 0; h < 2; h++) {
            dn_vec x = acc[r][h];
            if (accumulate)
                x += DN_FN(vld)(c + h * DN_VW);
            DN_FN(vst)(c + h * DN_VW, x);
        }
    }
}

/* C[m x N] (+)= A[m x K] B[K x N], row-major with leading dimensions. */
void DN_FN(dn_mm)(int m, int N, int K, const float *A, size_t lda, const float *B, size_t ldb,
                  float *C, size_t ldc, bool accumulate)
{
    const int BW = 2 * DN_VW;
    const int m4 = m & ~3, nb = N - N % BW;
    for (int r = 0; r < m4; r += 4)
        for (int c = 0; c < nb; c += BW)
            DN_FN(mm_block)(K, A + (size_t)r * lda, lda, B + c, ldb, C + (size_t)r * ldc + c, ldc,
                            accumulate);
    /* leftover rows (all columns) and leftover columns (of the blocked rows) */
    for (int r = 0; r < m; r++) {
        float *c = C + (size_t)r * ldc;
        const int c0 = r < m4 ? nb : 0;
        if (c0 == N)
            continue;
        if (!accumulate)
            memset(c + c0, 0, (size_t)(N - c0) * sizeof(float));
        for (int p = 0; p < K; p++) {
            const float a = A[(size_t)r * lda + p];
            const float *b = B + (size_t)p * ldb;
            for (int j = c0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

/* One token on one v-head, S row i = S[i][:] (k index i):
 *   sk = S^T k; u = beta (v - e^g sk); S = e^g S + k u^T; o = S^T q * scale.
 * Applying e^g to S^T k instead of to S first is the same product up to rounding, and lets the
 * step read S once and read-modify-write it once, a column block at a time in registers. */
void DN_FN(dn_step)(int d, float *restrict S, const float *q, const float *k, const float *v,
                    float g, float beta, float scale, float *restrict o)
{
    const int BW = 4 * DN_VW, nb = d - d % BW;
    const float decay = expf(g);
    for (int c = 0; c < nb; c += BW) {
        dn_vec s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        for (int i = 0; i < d; i++) {
            const float *row = S + (size_t)i * d + c;
            const dn_vec ki = DN_FN(vsplat)(k[i]);
            s0 += ki * DN_FN(vld)(row);
            s1 += ki * DN_FN(vld)(row + DN_VW);
            s2 += ki * DN_FN(vld)(row + 2 * DN_VW);
            s3 += ki * DN_FN(vld)(row + 3 * DN_VW);
        }
        const dn_vec vb = DN_FN(vsplat)(beta), vd = DN_FN(vsplat)(decay);
        const dn_vec u0 = vb * (DN_FN(vld)(v + c) - vd * s0);
        const dn_vec u1 = vb * (DN_FN(vld)(v + c + DN_VW) - vd * s1);
        const dn_vec u2 = vb * (DN_FN(vld)(v + c + 2 * DN_VW) - vd * s2);
        const dn_vec u3 = vb * (DN_FN(vld)(v + c + 3 * DN_VW) - vd * s3);
        dn_vec o0 = {0}, o1 = {0}, o2 = {0}, o3 = {0};
        for (int i = 0; i < d; i++) {
            float *row = S + (size_t)i * d + c;
            const dn_vec ki = DN_FN(vsplat)(k[i]), qi = DN_FN(vsplat)(q[i]);
            const dn_vec r0 = vd * DN_FN(vld)(row) + ki * u0;
            const dn_vec r1 = vd * DN_FN(vld)(row + DN_VW) + ki * u1;
            const dn_vec r2 = vd * DN_FN(vld)(row + 2 * DN_VW) + ki * u2;
            const dn_vec r3 = vd * DN_FN(vld)(row + 3 * DN_VW) + ki * u3;
            DN_FN(vst)(row, r0);
            DN_FN(vst)(row + DN_VW, r1);
            DN_FN(vst)(row + 2 * DN_VW, r2);
            DN_FN(vst)(row + 3 * DN_VW, r3);
            o0 += qi * r0, o1 += qi * r1, o2 += qi * r2, o3 += qi * r3;
        }
        const dn_vec vs = DN_FN(vsplat)(scale);
        DN_FN(vst)(o + c, vs * o0);
        DN_FN(vst)(o + c + DN_VW, vs * o1);
        DN_FN(vst)(o + c + 2 * DN_VW, vs * o2);
        DN_FN(vst)(o + c + 3 * DN_VW, vs * o3);
    }
    /* leftover columns, one at a time */
    for (int c = nb; c < d; c++) {
        float sk = 0.0f;
        for (int i = 0; i < d; i++)
            sk += k[i] * S[(size_t)i * d + c];
        const float u = beta * (v[c] - decay * sk);
        float acc = 0.0f;
        for (int i = 0; i < d; i++) {
            float *x = &S[(size_t)i * d + c];
            *x = decay * *x + k[i] * u;
            acc += q[i] * *x;
        }
        o[c] = acc * scale;
    }
}
