/* vk_matmul.c: records quantized Y = W X products: the matrix-vector shader for batches 1..8,
 * the tiled matrix-matrix shader above; pipelines are created per type (and batch) on first use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"
#include "kernels/qtypes.h"

#define MATVEC_WG 64        /* threads per matvec workgroup (spec constant 0; MAX_WG of its fallback) */
#define MATVEC_ROWS 2       /* rows per matvec workgroup (spec constant 1) */
#define MATVEC_WIDE_ROWS 4  /* for the types whose outputs take eight threads (vk_eight_thread_type) */
#define MATVEC_MAX_BATCH 8  /* spec constant 2 ranges over 1..8 */
#define MATMUL_BM 64        /* rows per matmul workgroup (fixed in matmul.comp) */
#define MATMUL_BN 32        /* activation columns per matmul workgroup */
#define MAX_GROUPS_1D 65535 /* the minimum maxComputeWorkGroupCount every device has */
_Static_assert(MATVEC_WG <= 64, "matvec.comp without subgroups keeps at most MAX_WG = 64 threads' partial sums");

/* Must match the push-constant block of shaders/common.glsl. */
struct mm_push {
    uint32_t nrows, ncols, batch, row_bytes;
    uint32_t w_off, x_off, y_off, x_stride, y_stride;
    uint32_t pair_order;
    uint32_t xs_off;  /* VK_NO_SCALES (shaders/intdot.glsl): derived in the shader */
};


struct vk_matmul {
    struct vk_ctx *ctx;
    struct vk_buffer tables;  /* packed IQ grids (vk_iq_tables_build), device-local */
    struct vk_pipeline matvec[Q_TYPE_COUNT][MATVEC_MAX_BATCH];
    struct vk_pipeline matmul[Q_TYPE_COUNT];
};

struct vk_matmul *vk_matmul_create(struct vk_ctx *ctx, char *err, size_t errlen)
{
    struct vk_matmul *mm = calloc(1, sizeof *mm);
    if (!mm) {
        vk_fail(err, errlen, "Vulkan: out of memory");
        return NULL;
    }
    mm->ctx = ctx;
    uint32_t tables[VK_IQ_TABLE_WORDS]; /* 33 KiB, uploaded once per context */
    vk_iq_tables_build(tables);
    if (!vk_buffer_create(ctx, &mm->tables, sizeof tables, VK_MEM_DEVICE, err, errlen) ||
        !vk_buffer_upload(ctx, &mm->tables, 0, tables, sizeof tables, err, errlen)) {
        vk_matmul_destroy(mm);
        return NULL;
    }
    return mm;
}

void vk_matmul_destroy(struct vk_matmul *mm)
{
    if (!mm)
        return;
    for (int t = 0; t < Q_TYPE_COUNT; t++) {
        for (int b = 0; b < MATVEC_MAX_BATCH; b++)
            vk_pipeline_destroy(mm->ctx, &mm->matvec[t][b]);
        vk_pipeline_destroy(mm->ctx, &mm->matmul[t]);
    }
    vk_buffer_destroy(mm->ctx, &mm->tables);
    free(mm);
}

bool vk_matmul_supports(uint32_t type)
{
    return vk_shaders_for(type) != NULL;
}

bool vk_eight_thread_type(uint32_t type)
{
    return type == Q_Q8_0 || type == Q_Q6_K || type == Q_IQ2_S || type == Q_IQ3_S || type == Q_Q4_K || type == Q_MXFP4;
}

/* Rows per matvec workgroup: more for the types whose outputs take eight threads each (the lane
 * and chain paths when the activation scales are given; F32's slots always), so the workgroup
 * stays busy. */
static uint32_t matvec_rows(uint32_t type)
{
    return vk_eight_thread_type(type) || type == Q_F32 ? MATVEC_WIDE_ROWS : MATVEC_ROWS;
}

static const struct vk_pipeline *get_pipeline(struct vk_matmul *mm, uint32_t type, uint32_t batch,
                                              char *err, size_t errlen)
{
    const struct vk_shader_set *s = vk_shaders_for(type);
    const char *tn = q_type_traits(type) ? q_type_traits(type)->name : "?";
    char name[64];
    bool vec = batch <= MATVEC_MAX_BATCH;
    struct vk_pipeline *p = vec ? &mm->matvec[type][batch - 1] : &mm->matmul[type];
    if (p->pipe)
        return p;
    uint32_t spec[4] = {MATVEC_WG, matvec_rows(type), batch, mm->ctx->info.reduce_lanes};
    bool sg = mm->ctx->info.subgroups;
    if (vec)
        snprintf(name, sizeof name, "matvec_%s/batch %u", tn, batch);
    else
        snprintf(name, sizeof name, "matmul_%s", tn);
    struct vk_pipeline_desc d = {
        .name = name,
        .spirv = vec ? (sg ? s->matvec : s->matvec_nosg) : s->matmul,
        .spirv_bytes = vec ? (sg ? s->matvec_bytes : s->matvec_nosg_bytes) : s->matmul_bytes,
        .n_buffers = 5,
        .push_bytes = sizeof(struct mm_push),
        .spec = spec,
        .n_spec = vec ? 4 : 0,
    };
    return vk_pipeline_create(mm->ctx, &d, p, err, errlen) ? p : NULL;
}

/* Binds `bytes` bytes at byte `off` of `b`: the binding starts at the largest multiple of
 * `align` not above off; the rest of the offset goes to the shader in `*rem` bytes. */
static bool bind_range(const struct vk_ctx *ctx, const struct vk_buffer *b, VkDeviceSize off, uint64_t bytes,
                       VkDeviceSize align, const char *what, struct vk_binding *out, uint32_t *rem,
                       char *err, size_t errlen)
{
    if (!b || !b->buf || off > b->size || bytes > b->size - off)
        return vk_fail(err, errlen, "Vulkan matmul: %s (%llu bytes at %llu) outside its buffer", what,
                       (unsigned long long)bytes, (unsigned long long)off);
    VkDeviceSize base = off - off % align;
    VkDeviceSize range = (off - base + bytes + 3) & ~(VkDeviceSize)3;
    if (range > b->size - base)
        range = b->size - base;
    if (range > ctx->info.max_storage_range || range > UINT32_MAX)
        return vk_fail(err, errlen, "Vulkan matmul: %s spans %llu bytes, more than one storage binding "
                       "may cover on %s (%llu); split it", what, (unsigned long long)range, ctx->info.name,
                       (unsigned long long)ctx->info.max_storage_range);
    *out = (struct vk_binding){.b = b, .offset = base, .range = range};
    *rem = (uint32_t)(off - base);
    return true;
}

/* Workgroup grid for `nrows` rows and `batch` columns. */
static bool grid_for(uint32_t type, uint32_t nrows, uint32_t batch, uint32_t groups[3], char *err, size_t errlen)
{
    groups[2] = 1;
    if (batch <= MATVEC_MAX_BATCH) {
        uint32_t blocks = (nrows + matvec_rows(type) - 1) / matvec_rows(type);
        groups[0] = blocks < MAX_GROUPS_1D ? blocks : MAX_GROUPS_1D;
        groups[1] = (blocks + groups[0] - 1) / groups[0];
        return true;
    }
    groups[0] = (nrows + MATMUL_BM - 1) / MATMUL_BM;
    groups[1] = (batch + MATMUL_BN - 1) / MATMUL_BN;
    if (groups[0] > MAX_GROUPS_1D || groups[1] > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan matmul: %u rows, batch %u needs too many workgroups", nrows, batch);
    return true;
}

bool vk_matmul_record(struct vk_matmul *mm, const struct vk_matmul_args *a, char *err, size_t errlen)
{
    struct vk_ctx *ctx = mm->ctx;
    const struct q_traits *tr = q_type_traits(a->type);
    if (!tr || !vk_shaders_for(a->type))
        return vk_fail(err, errlen, "Vulkan matmul: no shader for type %u (%s)", a->type, tr ? tr->name : "unknown");
    if (a->nrows == 0 || a->batch == 0 || a->ncols == 0 || a->ncols % 8 || a->ncols % tr->block_size)
        return vk_fail(err, errlen, "Vulkan matmul: bad shape %u x %u (batch %u) for %s: columns must be a "
                       "multiple of 8 and of the block size %u", a->nrows, a->ncols, a->batch, tr->name,
                       tr->block_size);
    uint32_t x_stride = a->x_stride ? a->x_stride : a->ncols, y_stride = a->y_stride ? a->y_stride : a->nrows;
    if (a->w_off % 4 || a->x_off % 16 || a->y_off % 4 || x_stride % 4 || x_stride < a->ncols ||
        y_stride < a->nrows)
        return vk_fail(err, errlen, "Vulkan matmul: offsets must be multiples of 4 bytes (w, y) and 16 (x), "
                       "x_stride a multiple of 4 and >= ncols, y_stride >= nrows");
    uint64_t row_bytes;
    if (!q_row_bytes(a->type, a->ncols, &row_bytes))
        return vk_fail(err, errlen, "Vulkan matmul: bad row length %u for %s", a->ncols, tr->name);
    if (!a->w || !a->w->buf || a->w_off > a->w->size || row_bytes * a->nrows > a->w->size - a->w_off)
        return vk_fail(err, errlen, "Vulkan matmul: weights (%u rows of %llu bytes at %llu) outside their buffer",
                       a->nrows, (unsigned long long)row_bytes, (unsigned long long)a->w_off);

    VkDeviceSize align = vk_storage_align(ctx);
    VkDeviceSize vec_align = align > 16 ? align : 16; /* x is read as vec4 */
    struct vk_binding binds[5];
    uint32_t w_rem, x_rem, y_rem;
    uint64_t x_bytes = 4ull * ((uint64_t)(a->batch - 1) * x_stride + a->ncols);
    uint64_t y_bytes = 4ull * ((uint64_t)(a->batch - 1) * y_stride + a->nrows);
    if (!bind_range(ctx, a->x, a->x_off, x_bytes, vec_align, "x", &binds[1], &x_rem, err, errlen) ||
        !bind_range(ctx, a->y, a->y_off, y_bytes, align, "y", &binds[2], &y_rem, err, errlen))
        return false;
    binds[3] = (struct vk_binding){.b = &mm->tables, .offset = 0, .range = mm->tables.size};
    /* binding 4: x's block scales from act_round, one per block of W's type in x's order */
    const uint32_t block = tr->block_size;
    uint32_t xs_off;
    if (a->xs && x_stride % block)
        return vk_fail(err, errlen, "Vulkan matmul: activation scales need x rows of whole %u-value blocks", block);
    if (!vk_bind_scales(ctx, a->xs, a->xs_off, (uint64_t)a->batch * (x_stride / block), &mm->tables, &binds[4],
                        &xs_off, err, errlen))
        return false;

    /* A weight matrix larger than one binding may cover runs as several dispatches over row
     * ranges (on lavapipe a binding covers at most 128 MiB; a 151936-row embedding is more). */
    uint64_t max_range = ctx->info.max_storage_range < UINT32_MAX ? ctx->info.max_storage_range : UINT32_MAX;
    uint64_t chunk_rows = max_range > align + 4 ? (max_range - align - 4) / row_bytes : 0;
    if (chunk_rows == 0)
        return vk_fail(err, errlen, "Vulkan matmul: one row of %llu bytes exceeds the binding limit",
                       (unsigned long long)row_bytes);
    const struct vk_pipeline *p = get_pipeline(mm, a->type, a->batch, err, errlen);
    if (!p)
        return false;
    for (uint32_t r0 = 0; r0 < a->nrows;) {
        uint32_t n = a->nrows - r0 < chunk_rows ? a->nrows - r0 : (uint32_t)chunk_rows;
        uint32_t groups[3];
        if (!bind_range(ctx, a->w, a->w_off + r0 * row_bytes, n * row_bytes, align, "weights", &binds[0], &w_rem,
                        err, errlen) ||
            !grid_for(a->type, n, a->batch, groups, err, errlen))
            return false;
        struct mm_push push = {
            .nrows = n, .ncols = a->ncols, .batch = a->batch, .row_bytes = (uint32_t)row_bytes,
            .w_off = w_rem, .x_off = x_rem / 4, .y_off = y_rem / 4 + r0, .x_stride = x_stride,
            .y_stride = y_stride, .pair_order = a->pair_order, .xs_off = xs_off,
        };
        if (!vk_dispatch(ctx, p, binds, &push, groups, err, errlen))
            return false;
        r0 += n;
    }
    return true;
}
