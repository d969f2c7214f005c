/* matmul_blas.c: the large-batch alternative to the integer products (kernels/matmul.h): weight
 * rows dequantized to F32 a tile at a time, then OpenBLAS sgemm against unquantized activations. */
#include "kernels/matmul.h"

#include <cblas.h>
#include <omp.h>

#include "kernels/quants.h"

/* 32 rows of 4096 F32 values are 512 KiB: a tile stays in L2 while sgemm sweeps the tokens. */
#define BLAS_TILE_ROWS 32

size_t q_matmul_sgemm_scratch(int64_t cols)
{
    return (size_t)omp_get_max_threads() * BLAS_TILE_ROWS * (size_t)cols * sizeof(float);
}

/* Threads take whole tiles; each calls sgemm inside the parallel region, where the OpenMP build
 * of OpenBLAS runs it on the calling thread alone, so the cores are never oversubscribed. */
void q_matmul_sgemm(const struct q_mat *w, const float *x, int64_t n, float *y, float *scratch)
{
    const q_dequant_fn dq = q_kernels_get(w->type)->dequant;
    const int64_t tiles = (w->rows + BLAS_TILE_ROWS - 1) / BLAS_TILE_ROWS;
#pragma omp parallel
    {
        float *tile = scratch + (size_t)omp_get_thread_num() * BLAS_TILE_ROWS * (size_t)w->cols;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            const int64_t r0 = t * BLAS_TILE_ROWS;
            const int64_t nr = w->rows - r0 < BLAS_TILE_ROWS ? w->rows - r0 : BLAS_TILE_ROWS;
            for (int64_t r = 0; r < nr; r++)
                dq(w->data + (size_t)(r0 + r) * w->row_bytes, tile + (size_t)r * (size_t)w->cols, w->cols);
            /* y[token][r0 + r] = sum_c x[token][c] * tile[r][c] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nr, (int)w->cols, 1.0f, x,
                        (int)w->cols, tile, (int)w->cols, 0.0f, y + r0, (int)w->rows);
        }
    }
}
