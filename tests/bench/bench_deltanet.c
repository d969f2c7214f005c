/* bench_deltanet.c: tokens/s of the gated delta rule, recurrent vs chunked, one thread, at the
 * tiny qwen3next shapes and at Qwen3-Coder-Next's (16 k-heads, 32 v-heads of 128). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/deltanet.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 16777216.0 * 2.0 - 1.0);
}

/* Best of `reps` runs of T tokens from a zero state; chunk 0 = recurrent. Returns tokens/s. */
static double bench(const dn_shape *sh, int T, int chunk, int reps)
{
    const int d = sh->head_dim, nk = sh->n_k_heads, nv = sh->n_v_heads;
    const size_t qs = (size_t)2 * nk * d, n_s = dn_ssm_state_floats(sh);
    float *qk = malloc((size_t)T * qs * sizeof(float)), *v = malloc((size_t)T * nv * d * sizeof(float));
    float *g = malloc((size_t)T * nv * sizeof(float)), *beta = malloc((size_t)T * nv * sizeof(float));
    float *out = malloc((size_t)T * nv * d * sizeof(float)), *S = malloc(n_s * sizeof(float));
    float *scratch = malloc((chunk ? dn_chunk_scratch_floats(sh, chunk) : 1) * sizeof(float));
    double best = 1e30;
    if (!qk || !v || !g || !beta || !out || !S || !scratch)
        goto done;
    unsigned seed = 7;
    for (size_t i = 0; i < (size_t)T * qs; i++)
        qk[i] = frand(&seed);
    for (size_t i = 0; i < (size_t)T * 2 * nk; i++)
        dn_l2_norm(qk + i * d, d, 1e-6f);
    for (size_t i = 0; i < (size_t)T * nv * d; i++)
        v[i] = frand(&seed);
    for (size_t i = 0; i < (size_t)T * nv; i++) {
        g[i] = -0.1f * fabsf(frand(&seed));
        beta[i] = 0.5f + 0.4f * frand(&seed);
    }
    dn_delta_io io = {.q = qk, .k = qk + (size_t)nk * d, .v = v, .q_stride = qs, .k_stride = qs,
                      .v_stride = (size_t)nv * d, .g = g, .beta = beta, .out = out,
                      .out_stride = (size_t)nv * d};
    for (int r = 0; r < reps; r++) {
        memset(S, 0, n_s * sizeof(float));
        double t0 = now();
        if (chunk)
            dn_delta_chunked(sh, &io, T, S, chunk, scratch, 0, nv);
        else
            dn_delta_recurrent(sh, &io, T, S, 0, nv);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
done:
    free(qk); free(v); free(g); free(beta); free(out); free(S); free(scratch);
    return T / best;
}

int main(void)
{
    const struct { const char *name; dn_shape sh; int reps; } shapes[] = {
        {"tiny (2 k / 4 v heads of 64)", {2, 4, 64, 4}, 20},
        {"Qwen3-Coder-Next (16 k / 32 v heads of 128)", {16, 32, 128, 4}, 3},
    };
    const int T = 512;
    printf("delta rule kernels: %s\n", dn_isa());
    const int chunks[] = {0, 16, 32, 64, 128};
    for (size_t s = 0; s < 2; s++) {
        printf("%s, T = %d, one thread, per DeltaNet layer:\n", shapes[s].name, T);
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            double tps = bench(&shapes[s].sh, T, chunks[c], shapes[s].reps);
            if (chunks[c])
                printf("  chunked C=%-3d %10.0f tokens/s\n", chunks[c], tps);
            else
                printf("  recurrent     %10.0f tokens/s\n", tps);
        }
    }
    return 0;
}
