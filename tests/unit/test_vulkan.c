/* test_vulkan.c: the Vulkan device layer and the quantized matvec/matmul shaders (with and without
 * subgroup operations) against ggml's dequantized reference (testdata/quants.gguf), validation on. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "engine/vk_internal.h"
#include "engine/vulkan.h"
#include "kernels/qtypes.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"
#include "tests/test_q8.h"

/* The GPU multiplies dequantized weights with F32 activations (ggml's CPU path quantizes the
 * activations first), so the result is compared with a double-precision dot of the exact F32
 * dequantization T.ref with x: |gpu - ref| <= REL_TOL |ref| + ABS_TOL sum |w x|. The second term
 * covers F32 rounding in rows whose dot product nearly cancels. */
#define REL_TOL 1e-4
#define ABS_TOL 1e-6

struct env {
    struct vk_ctx *ctx;
    struct vk_matmul *mm;
    const struct gguf_file *f;
    /* The same device with the shared-memory shader variants (vk_config.force_no_subgroups):
     * every product is also run there and checked the same way; where twin_bits is set it must
     * also give the subgroup path's bits (lavapipe: see same_bits_expected). */
    struct env *twin;
    bool twin_bits;
    size_t twin_differ;  /* products where the twin's bits differ (counted for the report) */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct test_rng rng = {0x9E3779B97F4A7C15ull};

static float rand_unit(void)
{
    const uint64_t v = test_rng_next(&rng);
    return (float)((double)(v >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* One product on the GPU: W (wbytes at byte w_off of its buffer) times x (batch rows of ncols,
 * xs floats apart, at float offset x_pad) into y (batch rows of nrows, ys floats apart, at float
 * offset y_pad); xs/ys 0: contiguous. y_device: read y back through the staging buffer instead
 * of from mapped memory. */
struct job {
    uint32_t type, nrows, ncols, batch;
    const void *w;
    size_t wbytes, w_off;
    const float *x;
    uint32_t x_pad, y_pad, xs, ys;
    bool y_device;
    bool pair_order;
    const float *scales;  /* optional: x's block scales (act_round's), batch x ncols / block floats */
    double gpu_ns;  /* out: timestamped dispatch time */
};

static bool run_job(struct env *e, struct job *j, float *y, char *err, size_t errlen)
{
    struct vk_buffer wb = {0}, xb = {0}, yb = {0}, sb = {0};
    uint32_t xs = j->xs ? j->xs : j->ncols, ys = j->ys ? j->ys : j->nrows;
    size_t xbytes = 4ull * ((j->batch - 1ull) * xs + j->ncols), ybytes = 4ull * ((j->batch - 1ull) * ys + j->nrows);
    bool ok = vk_buffer_create(e->ctx, &wb, j->w_off + j->wbytes, VK_MEM_DEVICE, err, errlen) &&
              vk_buffer_create(e->ctx, &xb, 4ull * j->x_pad + xbytes, VK_MEM_DEVICE, err, errlen) &&
              vk_buffer_create(e->ctx, &yb, 4ull * j->y_pad + ybytes, j->y_device ? VK_MEM_DEVICE : VK_MEM_HOST,
                               err, errlen) &&
              vk_buffer_upload(e->ctx, &wb, j->w_off, j->w, j->wbytes, err, errlen) &&
              vk_buffer_upload(e->ctx, &xb, 4ull * j->x_pad, j->x, xbytes, err, errlen);
    struct vk_matmul_args a = {
        .type = j->type, .nrows = j->nrows, .ncols = j->ncols, .batch = j->batch,
        .w = &wb, .w_off = j->w_off, .x = &xb, .x_off = 4ull * j->x_pad, .y = &yb, .y_off = 4ull * j->y_pad,
        .x_stride = j->xs, .y_stride = j->ys, .pair_order = j->pair_order,
    };
    if (ok && j->scales) {
        size_t sbytes = 4ull * j->batch * (xs / q_type_traits(j->type)->block_size);
        ok = vk_buffer_create(e->ctx, &sb, sbytes, VK_MEM_DEVICE, err, errlen) &&
             vk_buffer_upload(e->ctx, &sb, 0, j->scales, sbytes, err, errlen);
        a.xs = &sb;
    }
    bool timed = vk_ctx_info(e->ctx)->timestamp_period_ns > 0;
    ok = ok && vk_begin(e->ctx, err, errlen) && (!timed || vk_timestamp(e->ctx, 0, err, errlen)) &&
         vk_matmul_record(e->mm, &a, err, errlen) && (!timed || vk_timestamp(e->ctx, 1, err, errlen)) &&
         vk_submit_wait(e->ctx, err, errlen) &&
         (!timed || vk_timestamp_elapsed_ns(e->ctx, 0, 1, &j->gpu_ns, err, errlen)) &&
         vk_buffer_download(e->ctx, &yb, 4ull * j->y_pad, y, ybytes, err, errlen);
    vk_cancel(e->ctx); /* after a failed record call */
    vk_buffer_destroy(e->ctx, &wb);
    vk_buffer_destroy(e->ctx, &xb);
    vk_buffer_destroy(e->ctx, &yb);
    vk_buffer_destroy(e->ctx, &sb);
    return ok;
}

/* Compares y (batch rows of nrows, ys apart) with ref (nrows x ncols, F32) times x (batch rows
 * of ncols, xs apart); returns the worst error in units of the tolerance (<= 1 passes). */
static double compare_strided(const char *what, const float *ref, const float *x, uint32_t xs, const float *y,
                              uint32_t ys, uint32_t nrows, uint32_t ncols, uint32_t batch)
{
    double worst = 0;
    int reported = 0;
    for (uint32_t b = 0; b < batch; b++)
        for (uint32_t r = 0; r < nrows; r++) {
            double dot = 0, mag = 0;
            for (uint32_t k = 0; k < ncols; k++) {
                double t = (double)ref[(size_t)r * ncols + k] * x[(size_t)b * xs + k];
                dot += t;
                mag += fabs(t);
            }
            double got = y[(size_t)b * ys + r];
            double q = fabs(got - dot) / (REL_TOL * fabs(dot) + ABS_TOL * mag + 1e-30);
            if (!(q <= 1.0) && reported++ < 3)
                fprintf(stderr, "  %s: y[%u][%u] = %.9g, want %.9g\n", what, b, r, got, dot);
            if (!(q <= worst))
                worst = q;
        }
    return worst;
}

static double compare(const char *what, const float *ref, const float *x, const float *y, uint32_t nrows,
                      uint32_t ncols, uint32_t batch)
{
    return compare_strided(what, ref, x, ncols, y, nrows, nrows, ncols, batch);
}

static void *tensor_copy(const struct gguf_tensor *t)
{
    void *p = malloc(t->nbytes);
    if (p)
        memcpy(p, t->data, t->nbytes);
    return p;
}

/* Job j, which gave y on e, on e's twin (the shared-memory variants): within the tolerance of
 * ref (when non-NULL), and bit for bit y where e->twin_bits. */
static void check_twin(struct env *e, struct job *j, const float *y, const float *ref, const char *what)
{
    char err[512];
    uint32_t ys = j->ys ? j->ys : j->nrows, xs = j->xs ? j->xs : j->ncols;
    size_t n = (size_t)(j->batch - 1) * ys + j->nrows;
    float *y2 = malloc(4 * n);
    REQUIRE_VOID(y2);
    memset(y2, 0xff, 4 * n);
    bool ok = run_job(e->twin, j, y2, err, sizeof err);
    CHECK(ok, "%s without subgroups: %s", what, err);
    if (ok && ref) {
        double q_err = compare_strided(what, ref, j->x, xs, y2, ys, j->nrows, j->ncols, j->batch);
        CHECK(q_err <= 1.0, "%s without subgroups: error %.3g x tolerance", what, q_err);
    }
    size_t differ = 0;
    for (uint32_t b = 0; ok && b < j->batch; b++)
        for (uint32_t r = 0; r < j->nrows; r++)
            differ += memcmp(&y[(size_t)b * ys + r], &y2[(size_t)b * ys + r], 4) != 0;
    CHECK(!ok || !e->twin_bits || differ == 0, "%s: %zu products without subgroups differ from the subgroup path's",
          what, differ);
    e->twin_differ += differ;
    free(y2);
}

/* y = W x for W = T.q (4 x 1024) at batches 1, 3, 8 and 32 (matvec and matmul shaders). */
static void check_type(struct env *e, const char *tn, const struct gguf_tensor *q, const struct gguf_tensor *ref)
{
    static const uint32_t batches[] = {1, 3, 8, 32};
    uint32_t nrows = (uint32_t)q->ne[1], ncols = (uint32_t)q->ne[0];
    float *refv = tensor_copy(ref);
    float *x = malloc(4ull * ncols * 32), *y = malloc(4ull * nrows * 32);
    REQUIRE_VOID(refv && x && y);
    for (size_t i = 0; i < (size_t)ncols * 32; i++)
        x[i] = rand_unit();
    double t0 = now_ms(), worst = 0;
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        char err[512];
        /* Batch 3 drops the last row: a workgroup with a row past the end. */
        uint32_t nr = batches[bi] == 3 ? nrows - 1 : nrows;
        struct job j = {
            .type = q->type, .nrows = nr, .ncols = ncols, .batch = batches[bi],
            .w = q->data, .wbytes = q->nbytes / nrows * nr, .w_off = 0, .x = x, .y_device = batches[bi] == 3,
        };
        memset(y, 0xff, 4ull * nrows * 32); /* NaN: a row the shader misses cannot pass */
        bool ok = run_job(e, &j, y, err, sizeof err);
        CHECK(ok, "%s batch %u: %s", tn, batches[bi], err);
        if (!ok)
            continue;
        char what[64];
        snprintf(what, sizeof what, "%s batch %u", tn, batches[bi]);
        double q_err = compare(what, refv, x, y, nr, ncols, batches[bi]);
        CHECK(q_err <= 1.0, "%s: error %.3g x tolerance", what, q_err);
        if (q_err > worst)
            worst = q_err;
        if (e->twin)
            check_twin(e, &j, y, refv, what);
    }
    printf("  %-8s 4 x %u, batches 1/3/8/32: worst error %.3f of tolerance, %.1f ms\n", tn, ncols, worst,
           now_ms() - t0);
    free(refv);
    free(x);
    free(y);
}

/* Activations as act_round hands them to a product: x quantized to `act` (Q8_0 or Q8_K) by the
 * CPU's quantizer, into qx, each value d * q back as F32 into xr, and each block's |d| into
 * scales. n values. */
static void round_trip(uint32_t act, const float *x, uint8_t *qx, float *xr, float *scales, uint32_t n)
{
    if (act == Q_F32) {
        memcpy(qx, x, 4ull * n);
        memcpy(xr, x, 4ull * n);
        return;
    }
    const struct q_kernels *ak = q_kernels_get(act);
    const struct q_traits *at = q_type_traits(act);
    ak->quant(x, qx, n);
    ak->dequant(qx, xr, n);
    for (uint32_t b = 0; b < n / at->block_size; b++)  /* intdot.glsl takes |d| (x / |d| carries the sign) */
        scales[b] = q8_block_scale(act, qx + (size_t)b * at->block_bytes);
}

/* The types of the tiny models multiply rounded activations with exact integer sums in the CPU
 * kernel's float order (shaders/intdot.glsl; F32, the router, in its lane orders): on rows of
 * 256 values (as in those models) every result equals the CPU's dot product bit for bit, in the
 * order llama.cpp takes a token alone and the batched one (pair_order), at batches 1, 3 (matvec)
 * and 32 (matmul). With act_round's scales given, as the forward pass gives them, rows of several
 * blocks too (1024 values) for the types that sum whole rows in the CPU's order (long_exact_type):
 * F32 at every batch, Q8_0 and MXFP4 too (one thread per row in tiled products), and Q8_0, Q6_K,
 * IQ2_S, IQ3_S, Q4_K and MXFP4 in matrix-vector products (eight threads per output: the lane and
 * chain paths, shaders/intdot.glsl). The tiled products of Q6_K, IQ2_S, IQ3_S and Q4_K still add
 * the blocks' floats in the workgroup's order: within tolerance, not the CPU's bits. */
static bool exact_type(uint32_t t)
{
    return t == Q_F32 || t == Q_Q8_0 || t == Q_MXFP4 || t == Q_Q4_K || t == Q_Q6_K || t == Q_IQ2_S || t == Q_IQ3_S;
}

static bool long_exact_type(uint32_t t)
{
    return t == Q_F32 || t == Q_Q8_0 || t == Q_MXFP4 || t == Q_Q6_K || t == Q_IQ2_S || t == Q_IQ3_S || t == Q_Q4_K;
}

/* The long-row exact types whose tiled products (batches above 8) still add per-block floats. */
static bool tiled_per_block(uint32_t t)
{
    return t == Q_Q6_K || t == Q_IQ2_S || t == Q_IQ3_S || t == Q_Q4_K;
}

static void check_exact(struct env *e, const char *tn, const struct gguf_tensor *q, uint32_t ncols)
{
    enum { BATCH = 32 };
    const bool long_rows = ncols > 256;  /* only with given scales */
    const struct q_kernels *k = q_kernels_get(q->type);
    const struct q_traits *tr = q_type_traits(q->type);
    /* 256 values: the test vector's rows as they are; longer rows: 16 of them (whole groups of the
     * repacked orders' 8) made of its blocks in turn */
    const size_t per_row = ncols / tr->block_size, src_blocks = q->nbytes / tr->block_bytes;
    uint32_t nrows = long_rows ? 16 : (uint32_t)(src_blocks / per_row);
    size_t row_bytes = per_row * tr->block_bytes;
    uint8_t *wts = malloc(row_bytes * nrows);
    REQUIRE_VOID(wts);
    for (size_t b = 0; b < per_row * nrows; b++)
        memcpy(wts + b * tr->block_bytes, (const uint8_t *)q->data + (b % src_blocks) * tr->block_bytes,
               tr->block_bytes);
    float *x = malloc(4ull * ncols * BATCH), *xr = malloc(4ull * ncols * BATCH), *y = malloc(4ull * nrows * BATCH);
    float *sc = malloc(4ull * ncols * BATCH / 32);
    uint8_t *qx = malloc(4ull * ncols * BATCH);
    REQUIRE_VOID(x && xr && y && qx && sc);
    for (size_t i = 0; i < (size_t)ncols * BATCH; i++)
        x[i] = rand_unit() * (i % 97 == 0 ? 8.0f : 1.0f);
    size_t qrow = k->act_type == Q_Q8_K ? 292 * (ncols / 256) : k->act_type == Q_F32 ? 4 * ncols : 34 * (ncols / 32);
    for (uint32_t b = 0; b < BATCH; b++)
        round_trip(k->act_type, x + (size_t)b * ncols, qx + b * qrow, xr + (size_t)b * ncols,
                   sc + (size_t)b * (ncols / tr->block_size), ncols);
    bool packed = k->batched_rows && nrows % k->batched_rows == 0;
    static const uint32_t batches[] = {1, 3, BATCH};
    /* both shader variants, with the scales derived in the shader and read from act_round's
     * buffer (the CPU's d per block): each must give the CPU's bits */
    struct env *runs[2] = {e, e->twin};
    const int n_scales = k->act_type == Q_F32 ? 1 : 2;
    const size_t first = long_rows && n_scales == 2 ? 3 : 0;
    for (size_t run = 0; run < 2 && runs[run]; run++) {
        for (size_t bi = first; bi < 3 * (size_t)n_scales; bi++) {
            for (int pairs = 0; pairs < 2; pairs++) {
                uint32_t nb = batches[bi % 3];
                if (long_rows && nb > 8 && tiled_per_block(q->type))
                    continue;
                char err[512];
                struct job j = {.type = q->type, .nrows = nrows, .ncols = ncols, .batch = nb, .w = wts,
                                .wbytes = row_bytes * nrows, .x = xr, .pair_order = pairs, .scales = bi >= 3 ? sc : NULL};
                memset(y, 0xff, 4ull * nrows * BATCH);
                bool ok = run_job(runs[run], &j, y, err, sizeof err);
                CHECK(ok, "%s exact %u x %u batch %u%s: %s", tn, nrows, ncols, nb, run ? " without subgroups" : "", err);
                if (!ok)
                    continue;
                int differ = 0;
                enum q_row_kind kind = pairs ? Q_ROW_GROUP : Q_ROW_ALONE;
                for (uint32_t b = 0; b < nb; b++)
                    for (uint32_t r = 0; r < nrows; r++) {
                        const uint8_t *w = wts + r * row_bytes;
                        float want = packed ? k->batched.by_kind[kind](ncols, w, qx + b * qrow)
                                            : k->dot(ncols, w, qx + b * qrow);
                        differ += memcmp(&want, &y[(size_t)b * nrows + r], 4) != 0;
                    }
                CHECK(differ == 0, "%s %u cols, batch %u%s%s%s: %d of %u products differ from the CPU's", tn, ncols, nb,
                      pairs ? " (pair order)" : "", run ? " without subgroups" : "", bi >= 3 ? " (given scales)" : "",
                      differ, nb * nrows);
            }
        }
    }
    printf("  %-8s %u x %u, rounded activations%s: bit-identical to the CPU's %s (%s)%s\n", tn, nrows, ncols,
           long_rows ? " and their scales" : "", packed ? "batched orders" : "vec_dot", k->dot_isa,
           e->twin ? ", with and without subgroups" : "");
    free(wts);
    free(x);
    free(xr);
    free(y);
    free(qx);
    free(sc);
}

/* A 512 x 2048 matrix whose blocks are the test vector's blocks in a scrambled order (so the
 * reference is the same scramble of T.ref): many workgroups, tile edges, unaligned offsets. */
static void check_large(struct env *e, struct env *split, const char *tn)
{
    enum { NROWS = 512, NCOLS = 2048, XS = NCOLS + 4, YS = NROWS + 3 };
    char name[64];
    snprintf(name, sizeof name, "%s.q", tn);
    const struct gguf_tensor *q = gguf_find_tensor(e->f, name);
    snprintf(name, sizeof name, "%s.ref", tn);
    const struct gguf_tensor *ref = gguf_find_tensor(e->f, name);
    CHECK(q && ref, "%s: tensors present", tn);
    if (!q || !ref)
        return;
    const struct q_traits *tr = q_type_traits(q->type);
    REQUIRE_VOID(tr);
    uint32_t qk = tr->block_size, bb = tr->block_bytes;
    size_t nsrc = (size_t)gguf_tensor_nelements(q) / qk, per_row = NCOLS / qk;
    size_t wbytes = (size_t)NROWS * per_row * bb;
    uint8_t *w = malloc(wbytes);
    float *refv = malloc(4ull * NROWS * NCOLS), *x = malloc(4ull * XS * 40), *y = malloc(4ull * YS * 40);
    REQUIRE_VOID(w && refv && x && y);
    for (size_t r = 0; r < NROWS; r++)
        for (size_t b = 0; b < per_row; b++) {
            size_t s = (r * 7 + b * 3) % nsrc, dst = r * per_row + b;
            memcpy(w + dst * bb, (const uint8_t *)q->data + s * bb, bb);
            memcpy(refv + dst * qk, (const uint8_t *)ref->data + 4 * s * qk, 4ull * qk);
        }
    for (size_t i = 0; i < (size_t)XS * 40; i++)
        x[i] = rand_unit();
    /* batch, strided x/y, and the context: the second one caps bindings at 80 KiB so that the
     * matrix (590 KB of Q4_K, 336 KB of IQ2_S) runs as 5 to 8 row ranges. In the first context,
     * batches 8 and 40 reuse pipelines already built. */
    static const struct { uint32_t batch; bool strided, split; } cases[] = {
        {1, false, false}, {8, true, false}, {40, true, false}, {1, false, true}, {9, true, true},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        char err[512], what[80];
        uint32_t xs = cases[ci].strided ? XS : NCOLS, ys = cases[ci].strided ? YS : NROWS;
        struct job j = {
            .type = q->type, .nrows = NROWS, .ncols = NCOLS, .batch = cases[ci].batch,
            .w = w, .wbytes = wbytes, .w_off = 260, .x = x, .x_pad = 12, .y_pad = 3,
            .xs = cases[ci].strided ? XS : 0, .ys = cases[ci].strided ? YS : 0,
        };
        memset(y, 0xff, 4ull * YS * 40);
        double t0 = now_ms();
        bool ok = run_job(cases[ci].split ? split : e, &j, y, err, sizeof err);
        double ms = now_ms() - t0;
        snprintf(what, sizeof what, "%s 512x2048 batch %u%s%s", tn, cases[ci].batch,
                 cases[ci].strided ? " strided" : "", cases[ci].split ? " split" : "");
        CHECK(ok, "%s: %s", what, err);
        if (!ok)
            continue;
        double q_err = compare_strided(what, refv, x, xs, y, ys, NROWS, NCOLS, cases[ci].batch);
        CHECK(q_err <= 1.0, "%s: error %.3g x tolerance", what, q_err);
        if (vk_ctx_info(e->ctx)->timestamp_period_ns > 0)
            CHECK(j.gpu_ns > 0, "%s: timestamps measured %.0f ns", what, j.gpu_ns);
        printf("  %-36s worst error %.3f of tolerance, GPU %.2f ms, whole job %.1f ms\n", what, q_err,
               j.gpu_ns / 1e6, ms);
    }
    free(w);
    free(refv);
    free(x);
    free(y);
}

/* Whether subgroupAdd on this device adds the lanes in index order from 0, the association the
 * shared-memory variants reproduce with the subgroup size as their chunk (shaders/reduce.glsl):
 * lavapipe's does (Mesa's gallivm emits reductions as a loop over the lanes). Elsewhere the two
 * paths are only held to the same tolerances. */
static bool same_bits_expected(const struct vk_device_info *info)
{
    return strncmp(info->name, "llvmpipe", 8) == 0;
}

/* Which subgroup properties the shaders can use; the others select the shared-memory variants. */
static void check_subgroup_gap(void)
{
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
        .subgroupSize = 32,
        .supportedStages = VK_SHADER_STAGE_COMPUTE_BIT,
        .supportedOperations = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_ARITHMETIC_BIT,
    };
    CHECK(vk_subgroup_gap(&sg) == NULL, "basic + arithmetic in compute, size 32: subgroups used");
    sg.supportedOperations = VK_SUBGROUP_FEATURE_BASIC_BIT | VK_SUBGROUP_FEATURE_BALLOT_BIT;
    const char *why = vk_subgroup_gap(&sg);
    CHECK(why && strstr(why, "arithmetic"), "no arithmetic: %s", why ? why : "used");
    sg.supportedOperations |= VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
    sg.supportedStages = VK_SHADER_STAGE_FRAGMENT_BIT;
    why = vk_subgroup_gap(&sg);
    CHECK(why && strstr(why, "compute"), "fragment stage only: %s", why ? why : "used");
    sg.supportedStages = VK_SHADER_STAGE_COMPUTE_BIT;
    sg.subgroupSize = 1;
    why = vk_subgroup_gap(&sg);
    CHECK(why && strstr(why, "size"), "subgroup size 1: %s", why ? why : "used");
}

/* A context with the shared-memory variants (and `lanes` threads per chunk when non-zero). */
static bool open_nosg(struct env *n, const struct vk_config *base, uint32_t lanes, char *err, size_t errlen)
{
    struct vk_config cfg = *base;
    cfg.force_no_subgroups = true;
    cfg.reduce_lanes = lanes;
    n->ctx = vk_ctx_create(&cfg, err, errlen);
    n->mm = n->ctx ? vk_matmul_create(n->ctx, err, errlen) : NULL;
    return n->mm != NULL;
}

static void close_env(struct env *n, const char *what)
{
    if (n->ctx) {
        char first[512];
        uint32_t n_msg = vk_validation_messages(n->ctx, first, sizeof first);
        CHECK(n_msg == 0, "validation layer reported %u messages (%s); first: %s", n_msg, what, first);
    }
    vk_matmul_destroy(n->mm);
    vk_ctx_destroy(n->ctx);
}

/* Argument checks fail with a message, not a crash. */
static void check_errors(struct env *e)
{
    char err[512] = "";
    struct vk_buffer b = {0};
    REQUIRE_VOID(vk_buffer_create(e->ctx, &b, 4096, VK_MEM_HOST, err, sizeof err));
    struct vk_matmul_args a = {.type = Q_Q4_K, .nrows = 4, .ncols = 100, .batch = 1, .w = &b, .x = &b, .y = &b};
    CHECK(vk_begin(e->ctx, err, sizeof err), "begin: %s", err);
    CHECK(!vk_matmul_record(e->mm, &a, err, sizeof err) && strstr(err, "shape"), "bad shape refused: %s", err);
    a.ncols = 256;
    a.nrows = 64; /* 64 rows of Q4_K = 9216 bytes > 4096 */
    CHECK(!vk_matmul_record(e->mm, &a, err, sizeof err) && strstr(err, "outside"), "overrun refused: %s", err);
    a.type = Q_Q8_K;
    CHECK(!vk_matmul_record(e->mm, &a, err, sizeof err), "unsupported type refused");
    CHECK(vk_submit_wait(e->ctx, err, sizeof err), "empty submit: %s", err);
    CHECK(!vk_buffer_upload(e->ctx, &b, 4000, err, 200, err, sizeof err), "upload overrun refused");
    double ns;
    CHECK(!vk_timestamp_elapsed_ns(e->ctx, 0, 1, &ns, err, sizeof err), "unwritten timestamps refused");
    vk_buffer_destroy(e->ctx, &b);

    struct vk_config cfg = VK_CONFIG_DEFAULT;
    cfg.device_name = "no such device name";
    struct vk_ctx *none = vk_ctx_create(&cfg, err, sizeof err);
    CHECK(!none && strstr(err, "is not the device named"), "unknown device name refused: %s", err);
    vk_ctx_destroy(none);
    cfg.device_name = NULL;
    cfg.device_index = 99;
    none = vk_ctx_create(&cfg, err, sizeof err);
    CHECK(!none && strstr(err, "index 99"), "device index out of range refused: %s", err);
    vk_ctx_destroy(none);
    cfg.device_index = 0;
    struct vk_ctx *first = vk_ctx_create(&cfg, err, sizeof err);
    CHECK(first != NULL, "device 0 by index: %s", err);
    vk_ctx_destroy(first);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *no_vk = getenv("MOESERVE_NO_VULKAN");
    if (no_vk && strcmp(no_vk, "1") == 0) {
        printf("MOESERVE_NO_VULKAN=1: Vulkan tests not run\n");
        return test_finish();
    }
    /* LeakSanitizer has been seen (the project's toolchain notes) to report 128 bytes of the lavapipe ICD
     * as leaked from "<unknown module>" once the loader has dlclose'd it; keeping the ICD and the
     * validation layer loaded (RTLD_NODELETE) lets LSan attribute their memory. In this test's
     * own ASan runs nothing was reported with or without it; it stays as a guard, so the test
     * needs no detect_leaks=0. Absent libraries: no-op. */
    dlopen("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
    dlopen("libVkLayer_khronos_validation.so", RTLD_NOW | RTLD_NODELETE);

    char path[512], err[1024];
    struct vk_config cfg = VK_CONFIG_DEFAULT;
    cfg.validation = vk_validation_available();
    struct env e = {0};
    double t0 = now_ms();
    e.ctx = vk_ctx_create(&cfg, err, sizeof err);
    REQUIRE(e.ctx, "no Vulkan device (set MOESERVE_NO_VULKAN=1 to skip on purpose): %s", err);
    const struct vk_device_info *info = vk_ctx_info(e.ctx);
    printf("device: %s (type %d, API %u.%u), subgroup %u, storage range %llu MiB, validation %s, %.0f ms\n",
           info->name, (int)info->type, VK_API_VERSION_MAJOR(info->api_version),
           VK_API_VERSION_MINOR(info->api_version), info->subgroup_size,
           (unsigned long long)(info->max_storage_range >> 20), cfg.validation ? "on" : "not installed",
           now_ms() - t0);
    e.mm = vk_matmul_create(e.ctx, err, sizeof err);
    REQUIRE(e.mm, "%s", err);
    /* The shared-memory variants on the same device: every product of check_type and
     * check_exact also runs there (e.twin), and the matrices of check_large. */
    struct env nosg = {0}, lanes64 = {0};
    REQUIRE(open_nosg(&nosg, &cfg, 0, err, sizeof err), "context without subgroups: %s", err);
    const struct vk_device_info *ninfo = vk_ctx_info(nosg.ctx);
    uint32_t sg = info->subgroup_size, want_lanes = sg < 2 ? 2 : sg > 64 ? 64 : sg;
    CHECK(!ninfo->subgroups && ninfo->no_subgroups_why && strstr(ninfo->no_subgroups_why, "force_no_subgroups") &&
              ninfo->reduce_lanes == want_lanes,
          "forced fallback recorded (%s), chunks of %u threads", ninfo->no_subgroups_why, ninfo->reduce_lanes);
    e.twin = &nosg;
    e.twin_bits = info->subgroups && same_bits_expected(info);
    printf("without subgroups: chunks of %u threads, %s\n", ninfo->reduce_lanes,
           e.twin_bits ? "must give the subgroup path's bits" : "held to the same tolerances");

    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    REQUIRE(f, "%s", err);
    e.f = f;
    const struct gguf_array *types = gguf_get_arr(f, "vectors.types", GGUF_STRING);
    REQUIRE(types && types->count >= 24, "vectors.types lists the types");

    /* F32 has no test vector of its own: `source` is its own dequantization. */
    const struct gguf_tensor *src = gguf_find_tensor(f, "source");
    CHECK(src && src->type == Q_F32, "source tensor present");
    if (src && src->type == Q_F32) {
        check_type(&e, "f32", src, src);
        check_exact(&e, "f32", src, 256);
        check_exact(&e, "f32", src, 1024);
    }
    int tested = 1;
    for (uint64_t i = 0; i < types->count; i++) {
        char tn[64], name[96];
        snprintf(tn, sizeof tn, "%.*s", (int)types->strs[i].len, types->strs[i].ptr);
        int t = q_type_from_name(tn);
        if (t < 0 || !vk_matmul_supports((uint32_t)t))
            continue;
        snprintf(name, sizeof name, "%s.q", tn);
        const struct gguf_tensor *q = gguf_find_tensor(f, name);
        snprintf(name, sizeof name, "%s.ref", tn);
        const struct gguf_tensor *ref = gguf_find_tensor(f, name);
        CHECK(q && ref && q->type == (uint32_t)t && ref->type == Q_F32, "%s: q/ref tensors", tn);
        if (q && ref && q->type == (uint32_t)t && ref->type == Q_F32) {
            check_type(&e, tn, q, ref);
            tested++;
            if (exact_type((uint32_t)t))
                check_exact(&e, tn, q, 256);
            if (long_exact_type((uint32_t)t))
                check_exact(&e, tn, q, 1024);
        }
    }
    CHECK(tested == 26, "all 26 shader types tested (%d)", tested);
    printf("without subgroups: %zu products differ from the subgroup path's bits\n", e.twin_differ);

    /* One chunk of 64 threads (a device with 64-wide subgroups) is another association: the same
     * tolerances, and not all the same bits as chunks of the device's subgroup size (which shows
     * the lane count reaches the shaders). F16 and Q4_0 rows spread over all 64 threads. */
    REQUIRE(open_nosg(&lanes64, &cfg, 64, err, sizeof err), "context with 64-thread chunks: %s", err);
    CHECK(vk_ctx_info(lanes64.ctx)->reduce_lanes == 64, "reduce_lanes 64 taken");
    nosg.twin = &lanes64;
    static const char *spread[] = {"f16", "q4_0"};
    for (size_t i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s.q", spread[i]);
        const struct gguf_tensor *q = gguf_find_tensor(f, name);
        snprintf(name, sizeof name, "%s.ref", spread[i]);
        const struct gguf_tensor *ref = gguf_find_tensor(f, name);
        CHECK(q && ref, "%s tensors", spread[i]);
        if (q && ref)
            check_type(&nosg, spread[i], q, ref);
    }
    if (ninfo->reduce_lanes != 64)
        CHECK(nosg.twin_differ > 0, "64-thread chunks give other bits than %u-thread ones in %zu products",
              ninfo->reduce_lanes, nosg.twin_differ);
    printf("without subgroups, chunks of 64 against %u: %zu products differ in their last bits\n",
           ninfo->reduce_lanes, nosg.twin_differ);
    close_env(&lanes64, "64-thread chunks");

    struct vk_config split_cfg = VK_CONFIG_DEFAULT;
    split_cfg.validation = cfg.validation;
    split_cfg.max_binding = 80 * 1024;
    struct env split = {.f = f};
    split.ctx = vk_ctx_create(&split_cfg, err, sizeof err);
    CHECK(split.ctx, "second context: %s", err);
    split.mm = split.ctx ? vk_matmul_create(split.ctx, err, sizeof err) : NULL;
    CHECK(split.mm, "second context's matmul: %s", err);
    if (split.mm) {
        check_large(&e, &split, "q4_K");
        check_large(&e, &split, "iq2_s");
        uint32_t n_split = vk_validation_messages(split.ctx, err, sizeof err);
        CHECK(n_split == 0, "validation layer reported %u messages (split context); first: %s", n_split, err);
    }
    vk_matmul_destroy(split.mm);
    vk_ctx_destroy(split.ctx);
    /* the large matrices without subgroups, also split over bindings */
    struct env nosg_split = {.f = f};
    split_cfg.force_no_subgroups = true;
    nosg_split.ctx = vk_ctx_create(&split_cfg, err, sizeof err);
    nosg_split.mm = nosg_split.ctx ? vk_matmul_create(nosg_split.ctx, err, sizeof err) : NULL;
    CHECK(nosg_split.mm, "split context without subgroups: %s", err);
    nosg.f = f;
    if (nosg_split.mm) {
        check_large(&nosg, &nosg_split, "q4_K");
        check_large(&nosg, &nosg_split, "iq2_s");
    }
    close_env(&nosg_split, "split context without subgroups");
    close_env(&nosg, "context without subgroups");
    check_errors(&e);
    check_subgroup_gap();

    char first[512];
    uint32_t n_msg = vk_validation_messages(e.ctx, first, sizeof first);
    CHECK(n_msg == 0, "validation layer reported %u messages; first: %s", n_msg, first);

    gguf_close(f);
    vk_matmul_destroy(e.mm);
    vk_ctx_destroy(e.ctx);
    printf("total %.0f ms\n", now_ms() - t0);
    return test_finish();
}
