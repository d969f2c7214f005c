/* deltanet_internal.h: the per-ISA hot loops of the delta rule, shared by deltanet.c (which
 * dispatches) and deltanet_avx2.c. Not part of the public API. */
#ifndef MOESERVE_DELTANET_INTERNAL_H
#define MOESERVE_DELTANET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* C[m x N] (+)= A[m x K] B[K x N], row-major with leading dimensions. */
typedef void (*dn_mm_fn)(int m, int N, int K, const float *A, size_t lda, const float *B,
                         size_t ldb, float *C, size_t ldc, bool accumulate);
/* One recurrent delta-rule step of one v-head (see deltanet_simd.h). */
typedef void (*dn_step_fn)(int d, float *restrict S, const float *q, const float *k,
                           const float *v, float g, float beta, float scale, float *restrict o);

void dn_mm_sse2(int m, int N, int K, const float *A, size_t lda, const float *B, size_t ldb,
                float *C, size_t ldc, bool accumulate);
void dn_step_sse2(int d, float *restrict S, const float *q, const float *k, const float *v,
                  float g, float beta, float scale, float *restrict o);
void dn_mm_avx2(int m, int N, int K, const float *A, size_t lda, const float *B, size_t ldb,
                float *C, size_t ldc, bool accumulate);
void dn_step_avx2(int d, float *restrict S, const float *q, const float *k, const float *v,
                  float g, float beta, float scale, float *restrict o);

#endif
