/* deltanet_ggml_avx2.c: the exact-order delta-rule step (kernels/deltanet_ggml.h) with AVX2/FMA:
 * every vector operation works across the columns of S, so each element sees exactly the scalar
 * reference's operations in the same order. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/deltanet_ggml.h"

/* out[c] = sum_i S[i][c] x[i] in vec_dot_f32's order (see deltanet_ggml.c), 8 columns at a time;
 * columns past the last whole 8 element by element. */
static void col_dots(int d, const float *S, const float *x, float *slots, float *out)
{
    const int np = d - d % DN_GGML_SLOTS, cv = d - d % 8;
    memset(slots, 0, sizeof(float) * DN_GGML_SLOTS * (size_t)d);
    for (int i = 0; i < np; i++) {
        float *slot = slots + (size_t)(i % DN_GGML_SLOTS) * d;
        const float *row = S + (size_t)i * d;
        const __m256 xi = _mm256_set1_ps(x[i]);
        int c = 0;
        for (; c < cv; c += 8)
            _mm256_storeu_ps(slot + c, _mm256_fmadd_ps(_mm256_loadu_ps(row + c), xi, _mm256_loadu_ps(slot + c)));
        for (; c < d; c++)
            slot[c] = fmaf(row[c], x[i], slot[c]);
    }
    for (int c = 0; c < d; c++) {
        float lane[16];
        for (int l = 0; l < 16; l++)
            lane[l] = (slots[(size_t)l * d + c] + slots[(size_t)(32 + l) * d + c]) +
                      (slots[(size_t)(16 + l) * d + c] + slots[(size_t)(48 + l) * d + c]);
        float a[8], b[4];
        for (int l = 0; l < 8; l++)
            a[l] = lane[8 + l] + lane[l];
        for (int l = 0; l < 4; l++)
            b[l] = a[4 + l] + a[l];
        float sum = (b[0] + b[2]) + (b[1] + b[3]);
        for (int i = np; i < d; i++)
            sum = fmaf(S[(size_t)i * d + c], x[i], sum);
        out[c] = sum;
    }
}

void dn_ggml_step_avx2(int d, float *S, const float *q, const float *k, const float *v, float g, float beta,
                       float scale, float *o, float *scratch)
{
    float *slots = scratch, *u = scratch + (size_t)DN_GGML_SLOTS * d;
    const float decay = expf(g);
    const size_t dd = (size_t)d * d, vd = dd - dd % 8;
    const __m256 vdec = _mm256_set1_ps(decay);
    for (size_t i = 0; i < vd; i += 8)
        _mm256_storeu_ps(S + i, _mm256_mul_ps(_mm256_loadu_ps(S + i), vdec));
    for (size_t i = vd; i < dd; i++)
        S[i] *= decay;
    col_dots(d, S, k, slots, u);
    for (int c = 0; c < d; c++)
        u[c] = (v[c] - u[c]) * beta;
    const int cv = d - d % 8;
    for (int i = 0; i < d; i++) {
        float *row = S + (size_t)i * d;
        const __m256 ki = _mm256_set1_ps(k[i]);
        int c = 0;
        for (; c < cv; c += 8)
            _mm256_storeu_ps(row + c, _mm256_fmadd_ps(ki, _mm256_loadu_ps(u + c), _mm256_loadu_ps(row + c)));
        for (; c < d; c++)
            row[c] = fmaf(k[i], u[c], row[c]);
    }
    col_dots(d, S, q, slots, o);
    for (int c = 0; c < d; c++)
        o[c] *= scale;
}
