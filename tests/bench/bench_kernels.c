/* bench_kernels.c: `make bench-kernels`: memory bandwidth (STREAM copy/triad, read), matrix-vector
 * throughput per type on 64 MiB weight matrices at 1 and 2 threads as a fraction of that
 * bandwidth, batched GFLOP/s at 32 and 512 tokens against one-token dots, and the MoE FFN at
 * Qwen3-30B-A3B's shapes. Prints a markdown table; figures are ratios measured in the same run. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/synth.h"
#include "kernels/matmul.h"
#include "kernels/membw.h"
#include "kernels/moe.h"
#include "kernels/quants.h"

static const uint32_t types[] = {Q_Q8_0, Q_Q4_0, Q_Q4_K, Q_Q5_K, Q_Q6_K, Q_Q2_K, Q_Q3_K, Q_IQ2_XXS,
                                 Q_IQ2_S, Q_IQ3_S, Q_IQ4_XS, Q_MXFP4, Q_F16, Q_BF16};

/* Four 64 MiB copies of the matrix, multiplied in turn: each was last read 192 MiB of weights
 * ago, several times the last-level cache, so every matvec streams from DRAM. */
#define MATVEC_MIB 64
#define MATVEC_COPIES 4

/* Best of `reps` seconds for one matmul of n tokens, cycling through `copies` matrices. */
static double time_matmul(const struct q_mat *m, int copies, const void *act, int64_t n, float *y, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = membw_now_seconds();
        q_matmul_act(&m[r % copies], act, n, y);
        double t = membw_now_seconds() - t0;
        best = t < best ? t : best;
    }
    return best;
}

/* The batched product as it ran before the several-token kernels: one dot per (row, token),
 * tokens in the same cache-sized tiles, rows split over the threads. */
static double time_one_token(const struct q_mat *m, const void *act, int64_t n, float *y)
{
    const q_dot_fn dot = q_kernels_get(m->type)->dot;
    const size_t arb = q_act_bytes(m->type, m->cols, 1);
    const int64_t tile = (int64_t)((128 * 1024) / arb) + 1;
    double t0 = membw_now_seconds();
    for (int64_t t0k = 0; t0k < n; t0k += tile) {
        const int64_t t1 = t0k + tile < n ? t0k + tile : n;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < m->rows; r++)
            for (int64_t t = t0k; t < t1; t++)
                y[t * m->rows + r] = dot(m->cols, m->data + (size_t)r * m->row_bytes, (const uint8_t *)act + (size_t)t * arb);
    }
    return membw_now_seconds() - t0;
}

/* Best of `reps` seconds for the dequantize + sgemm path. */
static double time_sgemm(const struct q_mat *m, const float *x, int64_t n, float *y, float *scratch, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = membw_now_seconds();
        q_matmul_sgemm(m, x, n, y, scratch);
        double t = membw_now_seconds() - t0;
        best = t < best ? t : best;
    }
    return best;
}

static void *random_weights(uint32_t type, int64_t rows, int64_t cols, size_t *bytes)
{
    uint64_t rb;
    q_row_bytes(type, (uint64_t)cols, &rb);
    *bytes = (size_t)rb * (size_t)rows;
    void *w = malloc(*bytes);
    uint64_t rng = 7;
    if (w)
        synth_random_blocks(type, w, *bytes / q_type_traits(type)->block_bytes, &rng);
    return w;
}

/* One type's figures, printed once the run's best bandwidth is known. */
struct type_result {
    uint32_t type;
    bool ok;
    double gbs1, gbs2;                /* matvec, weight bytes per second / 1e9 */
    double gf32, gf512, one32, one512; /* batched GFLOP/s; gain over one-token dots */
    double sg32, sg512;               /* dequantize + sgemm GFLOP/s */
};

/* The best bandwidth seen in the run, 1 and 2 threads: taken again before every type, because on
 * a shared machine other work only ever lowers a measurement, so the highest one is the closest
 * to what the memory can do. */
static void note_bandwidth(struct membw *best1, struct membw *best2)
{
    struct membw b;
    for (int th = 1; th <= 2; th++) {
        struct membw *best = th == 1 ? best1 : best2;
        if (!membw_measure(th, 128, 3, &b))
            continue;
        best->copy_gbs = b.copy_gbs > best->copy_gbs ? b.copy_gbs : best->copy_gbs;
        best->triad_gbs = b.triad_gbs > best->triad_gbs ? b.triad_gbs : best->triad_gbs;
        best->read_gbs = b.read_gbs > best->read_gbs ? b.read_gbs : best->read_gbs;
    }
}

static void bench_type(uint32_t type, struct type_result *res)
{
    *res = (struct type_result){.type = type};
    const int64_t cols = 4096;
    uint64_t rb;
    q_row_bytes(type, cols, &rb);
    const int64_t rows = (int64_t)(((size_t)MATVEC_MIB << 20) / rb);
    size_t bytes;
    uint8_t *w = random_weights(type, rows, cols, &bytes), *copies = malloc(MATVEC_COPIES * bytes);
    float *x = malloc(512 * cols * sizeof *x), *y = malloc((size_t)rows * 512 * sizeof *y);
    void *act = malloc(q_act_bytes(type, cols, 512));
    if (!w || !copies || !x || !y || !act) {
        free(w), free(copies), free(x), free(y), free(act);
        return;
    }
    for (int64_t i = 0; i < 512 * cols; i++)
        x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    q_quantize_act(type, x, cols, 512, act);
    struct q_mat m[MATVEC_COPIES];
    for (int c = 0; c < MATVEC_COPIES; c++) {
        memcpy(copies + (size_t)c * bytes, w, bytes);
        q_mat_init(&m[c], type, copies + (size_t)c * bytes, rows, cols);
    }
    omp_set_num_threads(1);
    const double t1 = time_matmul(m, MATVEC_COPIES, act, 1, y, 2 * MATVEC_COPIES);
    omp_set_num_threads(2);
    const double t2 = time_matmul(m, MATVEC_COPIES, act, 1, y, 2 * MATVEC_COPIES);
    /* batched: a quarter of one matrix keeps the 512-token run short */
    struct q_mat sub = m[0];
    sub.rows = rows / 4;
    const double t32 = time_matmul(&sub, 1, act, 32, y, 2), t512 = time_matmul(&sub, 1, act, 512, y, 1);
    const double o32 = time_one_token(&sub, act, 32, y), o512 = time_one_token(&sub, act, 512, y);
    float *scratch = malloc(q_matmul_sgemm_scratch(cols));
    const double s32 = scratch ? time_sgemm(&sub, x, 32, y, scratch, 2) : 1e30;
    const double s512 = scratch ? time_sgemm(&sub, x, 512, y, scratch, 1) : 1e30;
    free(scratch);
    const double flops = 2.0 * (double)sub.rows * (double)cols;
    *res = (struct type_result){.type = type, .ok = true, .gbs1 = (double)bytes / t1 / 1e9, .gbs2 = (double)bytes / t2 / 1e9,
                                .gf32 = flops * 32 / t32 / 1e9, .gf512 = flops * 512 / t512 / 1e9, .one32 = o32 / t32,
                                .one512 = o512 / t512, .sg32 = flops * 32 / s32 / 1e9, .sg512 = flops * 512 / s512 / 1e9};
    free(w);
    free(copies);
    free(x);
    free(y);
    free(act);
}

/* One MoE layer of Qwen3-30B-A3B (2048 -> 768 -> 2048, 128 experts, 8 used), asymmetric types. */
static void bench_moe(int64_t n_tokens, int threads)
{
    omp_set_num_threads(threads);
    const int64_t e = 2048, ff = 768, ne = 128, k = 8;
    size_t gb, ub, db;
    void *g = random_weights(Q_IQ2_S, ff * ne, e, &gb), *u = random_weights(Q_IQ2_S, ff * ne, e, &ub);
    void *d = random_weights(Q_IQ3_S, e * ne, ff, &db);
    float *x = malloc((size_t)n_tokens * e * sizeof *x), *out = malloc((size_t)n_tokens * e * sizeof *out);
    int32_t *ids = malloc((size_t)n_tokens * k * sizeof *ids);
    float *wts = malloc((size_t)n_tokens * k * sizeof *wts);
    for (int64_t i = 0; i < n_tokens * e; i++)
        x[i] = (float)((i * 31) % 97) / 48.0f - 1.0f;
    for (int64_t t = 0; t < n_tokens; t++)
        for (int64_t j = 0; j < k; j++) {
            ids[t * k + j] = (int32_t)((t * 13 + j * 17) % ne);
            wts[t * k + j] = 1.0f / (float)k;
        }
    struct q_moe_weights w = {.gate = g, .up = u, .down = d, .gate_type = Q_IQ2_S, .up_type = Q_IQ2_S,
                              .down_type = Q_IQ3_S, .n_embd = e, .n_ff = ff, .n_expert = ne};
    struct q_moe_scratch s = {0};
    char err[256];
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = membw_now_seconds();
        if (!q_moe_forward(&w, n_tokens, x, (int)k, ids, wts, out, &s, err, sizeof err)) {
            printf("MoE: %s\n", err);
            break;
        }
        double t = membw_now_seconds() - t0;
        best = t < best ? t : best;
    }
    /* bytes of the distinct experts touched */
    bool used[128] = {0};
    int n_used = 0;
    for (int64_t i = 0; i < n_tokens * k; i++)
        if (!used[ids[i]]) {
            used[ids[i]] = true;
            n_used++;
        }
    double bytes = (double)(gb + ub + db) / (double)ne * n_used;
    printf("| MoE FFN, %3lld token%s, %d thr | %.2f ms | %.0f tokens/s | %.2f GB/s of expert weights |\n",
           (long long)n_tokens, n_tokens == 1 ? " " : "s", threads, best * 1e3, (double)n_tokens / best, bytes / best / 1e9);
    q_moe_scratch_free(&s);
    free(g);
    free(u);
    free(d);
    free(x);
    free(out);
    free(ids);
    free(wts);
}

/* `bench_kernels moe` runs only the MoE figures (quick A/B runs, e.g. MOESERVE_DOT_TOKENS=off). */
int main(int argc, char **argv)
{
    const bool moe_only = argc > 1 && strcmp(argv[1], "moe") == 0;
    struct membw m1, m2;
    if (!membw_measure(1, 256, 3, &m1) || !membw_measure(2, 256, 3, &m2)) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    double load0[3] = {0}, load1[3] = {0};
    getloadavg(load0, 3);
    enum { N_TYPES = sizeof types / sizeof types[0] };
    struct type_result res[N_TYPES];
    for (size_t i = 0; i < N_TYPES && !moe_only; i++) {
        note_bandwidth(&m1, &m2);
        bench_type(types[i], &res[i]);
    }
    getloadavg(load1, 3);
    printf("CPU: %s; load average %.1f at the start, %.1f at the end (%d cores)\n\n", cpu, load0[0], load1[0],
           omp_get_num_procs());
    printf("memory bandwidth, best seen in the run: copy %.1f / triad %.1f / read %.1f GB/s (1 thread), copy %.1f / "
           "triad %.1f / read %.1f GB/s (2 threads)\n\n",
           m1.copy_gbs, m1.triad_gbs, m1.read_gbs, m2.copy_gbs, m2.triad_gbs, m2.read_gbs);
    printf("| type | dot | matvec GB/s, 1 thr | of read bw | of copy bw | 2 thr | of read bw | of copy bw "
           "| GFLOP/s batch 32 | vs one-token dots | batch 512 | vs one-token dots | sgemm batch 32 | sgemm 512 |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < N_TYPES && !moe_only; i++) {
        const struct type_result *r = &res[i];
        if (!r->ok) {
            printf("| %s | out of memory |\n", q_type_traits(r->type)->name);
            continue;
        }
        printf("| %-7s | %s | %6.2f | %4.0f%% | %4.0f%% | %6.2f | %4.0f%% | %4.0f%% | %7.1f | %4.2fx | %7.1f | %4.2fx "
               "| %7.1f | %7.1f |\n",
               q_type_traits(r->type)->name, q_kernels_get(r->type)->dot_isa, r->gbs1, 100 * r->gbs1 / m1.read_gbs,
               100 * r->gbs1 / m1.copy_gbs, r->gbs2, 100 * r->gbs2 / m2.read_gbs, 100 * r->gbs2 / m2.copy_gbs, r->gf32,
               r->one32, r->gf512, r->one512, r->sg32, r->sg512);
    }
    printf("\n");
    for (int threads = 1; threads <= 2; threads++) {
        bench_moe(1, threads);
        bench_moe(64, threads);
    }
    return 0;
}
