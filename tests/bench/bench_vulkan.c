/* bench_vulkan.c: matrix-vector (and matrix-matrix) throughput of the Vulkan shaders per weight
 * type: GPU time from timestamps, weight bytes read per second. Usage: bench_vulkan [-t type]
 * [-b batch] [-m MiB] [-n iterations] [-d device-index] [-s device-name-substring] [-G: only on a GPU,
 * skipped with a note when the device is a CPU implementation such as lavapipe (`make bench`)]
 * [-S: the shared-memory shader variants, as on a device without subgroup arithmetic] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/vk_ops.h"
#include "engine/vulkan.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

static const char *const types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_K", "q5_K", "q6_K", "q2_K",
                                    "q3_K", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq4_nl",
                                    "iq4_xs", "mxfp4"};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Weight bytes: the test vector's blocks repeated (real scales, no NaNs); random bytes if the
 * reference data is missing (float types get small random values either way). */
static void fill_weights(const struct gguf_file *f, const char *tn, uint32_t type, uint8_t *w, size_t n)
{
    char name[64];
    snprintf(name, sizeof name, "%s.q", tn);
    const struct gguf_tensor *q = f ? gguf_find_tensor(f, name) : NULL;
    if (!q && f && type == Q_F32)
        q = gguf_find_tensor(f, "source");
    if (q && q->type == type && q->nbytes) {
        for (size_t i = 0; i < n; i += q->nbytes)
            memcpy(w + i, q->data, n - i < q->nbytes ? n - i : q->nbytes);
        return;
    }
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        w[i] = (uint8_t)(s >> 32) & 0x3f; /* keeps F16/BF16/E8M0 exponents small and finite */
    }
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    uint32_t batch = 1, iters = 5;
    bool gpu_only = false;
    double mib = 64;
    struct vk_config cfg = VK_CONFIG_DEFAULT;
    int c;
    while ((c = getopt(argc, argv, "t:b:m:n:d:s:GS")) != -1) {
        switch (c) {
        case 't': only = optarg; break;
        case 'b': batch = (uint32_t)atoi(optarg); break;
        case 'm': mib = atof(optarg); break;
        case 'n': iters = (uint32_t)atoi(optarg); break;
        case 'd': cfg.device_index = atoi(optarg); break;
        case 's': cfg.device_name = optarg; break;
        case 'G': gpu_only = true; break;
        case 'S': cfg.force_no_subgroups = true; break;
        default:
            fprintf(stderr, "usage: %s [-t type] [-b batch] [-m MiB] [-n iterations] [-d index] [-s name] [-G] [-S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (batch < 1 || iters < 1 || iters > 30 || mib <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    char err[1024], path[512];
    struct vk_ctx *ctx = vk_ctx_create(&cfg, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const struct vk_device_info *info = vk_ctx_info(ctx);
    if (gpu_only && info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        printf("bench_vulkan: %s is a CPU implementation, not a GPU: skipped\n", info->name);
        vk_ctx_destroy(ctx);
        return 0;
    }
    if (info->timestamp_period_ns <= 0) {
        fprintf(stderr, "%s has no timestamps\n", info->name);
        vk_ctx_destroy(ctx);
        return 1;
    }
    struct vk_matmul *mm = vk_matmul_create(ctx, err, sizeof err);
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    if (!f)
        fprintf(stderr, "note: %s; using random weights\n", err);
    printf("device %s, batch %u, ~%.0f MiB of weights, median of %u runs, reductions %s\n", info->name, batch, mib,
           iters, info->subgroups ? "with subgroup operations" : "in shared memory only");
    printf("activations rounded as the model rounds them (act_round); 'derived': the product derives the block\n"
           "scales from the values, 'given': it reads act_round's (what the model does)\n");
    printf("%-8s %6s %6s %10s %9s %9s %9s %9s\n", "type", "rows", "cols", "MiB", "ms", "GB/s", "derived", "GB/s");
    struct vk_ops *ops = mm ? vk_ops_create(ctx, err, sizeof err) : NULL;

    const uint32_t ncols = 4096;
    int rc = mm ? 0 : 1;
    for (size_t ti = 0; mm && ops && ti < sizeof types / sizeof types[0]; ti++) {
        if (only && strcmp(only, types[ti]) != 0)
            continue;
        uint32_t type = (uint32_t)q_type_from_name(types[ti]);
        uint64_t row_bytes;
        if (!q_row_bytes(type, ncols, &row_bytes))
            continue;
        uint64_t limit = info->max_storage_range < (uint64_t)(mib * 1048576) ? info->max_storage_range
                                                                                : (uint64_t)(mib * 1048576);
        uint32_t nrows = (uint32_t)(limit / row_bytes);
        size_t wbytes = (size_t)nrows * row_bytes;
        uint8_t *w = malloc(wbytes);
        float *x = malloc(4ull * ncols * batch);
        struct vk_buffer wb = {0}, xb = {0}, yb = {0}, sb = {0};
        double ms[2][30];
        bool ok = w && x;
        if (ok) {
            fill_weights(f, types[ti], type, w, wbytes);
            for (size_t i = 0; i < (size_t)ncols * batch; i++)
                x[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
        }
        ok = ok && vk_buffer_create(ctx, &wb, wbytes, VK_MEM_DEVICE, err, sizeof err) &&
             vk_buffer_create(ctx, &xb, 4ull * ncols * batch, VK_MEM_DEVICE, err, sizeof err) &&
             vk_buffer_create(ctx, &yb, 4ull * nrows * batch, VK_MEM_DEVICE, err, sizeof err) &&
             vk_buffer_upload(ctx, &wb, 0, w, wbytes, err, sizeof err) &&
             vk_buffer_upload(ctx, &xb, 0, x, 4ull * ncols * batch, err, sizeof err) &&
             vk_buffer_create(ctx, &sb, 4ull * ncols * batch / 32, VK_MEM_DEVICE, err, sizeof err);
        /* x rounded in place for the type, with its block scales, as the forward pass feeds products */
        const uint32_t act = vk_op_act_type(type);
        const bool q8 = act == Q_Q8_0 || act == Q_Q8_1 || act == Q_Q8_K;  /* the types with block scales */
        struct vk_op_act_round_args ar = {.wtype = type, .rows = batch, .n = ncols, .x = {.b = &xb}, .y = {.b = &xb},
                                          .scales = {.b = q8 ? &sb : NULL}};
        ok = ok && vk_begin(ctx, err, sizeof err) && vk_op_act_round(ops, &ar, err, sizeof err) &&
             vk_submit_wait(ctx, err, sizeof err);
        /* given scales, then derived; one untimed run each creates the pipeline and warms caches */
        for (int mode = 0; mode < 2; mode++) {
            struct vk_matmul_args a = {.type = type, .nrows = nrows, .ncols = ncols, .batch = batch,
                                       .w = &wb, .x = &xb, .y = &yb, .xs = mode == 0 && q8 ? &sb : NULL};
            for (uint32_t it = 0; ok && it <= iters; it++) {
                ok = vk_begin(ctx, err, sizeof err) && vk_timestamp(ctx, 0, err, sizeof err) &&
                     vk_matmul_record(mm, &a, err, sizeof err) && vk_timestamp(ctx, 1, err, sizeof err) &&
                     vk_submit_wait(ctx, err, sizeof err);
                double ns = 0;
                ok = ok && vk_timestamp_elapsed_ns(ctx, 0, 1, &ns, err, sizeof err);
                if (ok && it > 0)
                    ms[mode][it - 1] = ns / 1e6;
            }
        }
        if (ok) {
            qsort(ms[0], iters, sizeof ms[0][0], cmp_double);
            qsort(ms[1], iters, sizeof ms[1][0], cmp_double);
            double med = ms[0][iters / 2], der = ms[1][iters / 2];
            printf("%-8s %6u %6u %10.1f %9.3f %9.2f %9.3f %9.2f\n", types[ti], nrows, ncols, wbytes / 1048576.0, med,
                   wbytes / (med * 1e6), der, wbytes / (der * 1e6));
        } else {
            printf("%-8s failed: %s\n", types[ti], err);
            rc = 1;
        }
        fflush(stdout);
        vk_buffer_destroy(ctx, &wb);
        vk_buffer_destroy(ctx, &xb);
        vk_buffer_destroy(ctx, &yb);
        vk_buffer_destroy(ctx, &sb);
        free(w);
        free(x);
    }
    if (!mm)
        fprintf(stderr, "%s\n", err);
    if (f)
        gguf_close(f);
    vk_ops_destroy(ops);
    vk_matmul_destroy(mm);
    vk_ctx_destroy(ctx);
    return rc;
}
