/* vk_ops.c: records the forward-pass operations of engine/vk_ops.h: checks arguments, binds buffer
 * ranges, fills the shaders' push constants and builds pipelines on first use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"
#include "engine/vk_ops.h"
#include "kernels/qtypes.h"
#include "kernels/quants.h"

#define MAX_GROUPS_1D 65535   /* the minimum maxComputeWorkGroupCount every device has */
/* rows per moe_matvec workgroup (ROWS in moe_matvec.comp): eight for the types whose rows take
 * eight threads (vk_eight_thread_type) */
static uint32_t moe_rows(uint32_t type)
{
    return vk_eight_thread_type(type) ? 8 : 2;
}
#define MOE_BM 64             /* rows per moe_matmul workgroup (BM in moe_matmul.comp) */
#define MOE_BN 32             /* pairs per moe_matmul tile (BN in moe_matmul.comp) */
#define MOE_MAX_EXPERT 1024   /* MAX_EXPERT in moe_group.comp */
#define ATTN_WG 128           /* WG in attention.comp */
#define ATTN_MAX_OUT (ATTN_WG * 32)  /* WG * MAX_PER_THREAD: output values per workgroup */
#define ATTN_CACHE 8          /* attention pipelines kept (one per head_dim, group, tile) */
#define ROUTER_MAX_EXPERT 1024
#define ROUTER_MAX_K 16
#define ATTN_MAX_SPLIT 64
#define ACT_KINDS 5           /* KIND in act_round.comp */

/* Push-constant blocks: each must match its shader's. */
struct get_rows_push {
    uint32_t n_ids, ncols, row_bytes, w_off, row_begin, row_count, id_off, y_off, y_stride;
};
struct rms_norm_push {
    uint32_t n_rows, n, heads, x_off, x_stride, y_off, y_stride, w_off;
    float eps;
};
struct rope_push {
    uint32_t n_rows, heads, head_dim, n_rot, x_off, x_stride, y_off, y_stride, pos_off;
    float theta_scale;
};
struct kv_store_push {
    uint32_t n_tokens, row_words, k_off, k_stride, v_off, v_stride, kc_off, vc_off, page_tokens,
        max_seq_pages, tok_off, pages_off, n_seqs, n_pages;
};
struct attention_push {
    uint32_t n_tokens, n_head_kv, q_off, q_stride, o_off, o_stride, kc_off, vc_off, row_words, page_tokens,
        max_seq_pages, tok_off, pages_off;
    float scale;
    uint32_t head_words, tile, n_split, split_len, part_off, q_f16, n_seqs, n_pages, p_f16;
};
struct attention_merge_push {
    uint32_t n_tokens, n_head, head_dim, n_split, part_off, o_off, o_stride;
};
struct router_push {
    uint32_t n_tokens, n_expert, k, l_off, l_stride, id_off, w_off, norm;
};
struct moe_matvec_push {
    uint32_t nrows, ncols, row_bytes, w_off, expert_bytes, e_begin, e_count, k, n_pairs, id_off, x_off,
        x_stride, x_slot_stride, y_off, y_stride, xs_off;
};
struct moe_matmul_push {
    uint32_t nrows, ncols, row_bytes, w_off, expert_bytes, e_begin, e_count, k, route_off, max_tiles, x_off, x_stride,
        x_slot_stride, y_off, y_stride, xs_off;
};
struct moe_group_push {
    uint32_t n_pairs, n_expert, id_off, route_off, bn, max_tiles;
};
struct moe_combine_push {
    uint32_t n_tokens, k, n, x_off, x_stride, w_off, y_off, y_stride;
};
struct act_round_push {
    uint32_t rows, n, x_off, x_stride, y_off, y_stride, ys_off;
};
struct ew_push {
    uint32_t rows, n, a_off, a_stride, b_off, b_stride, y_off, y_stride, b_per_row;
    float s;
};

struct attn_pipe {
    uint32_t d, g, bc;
    struct vk_pipeline p;
};

struct vk_ops {
    struct vk_ctx *ctx;
    struct vk_buffer tables;  /* packed IQ grids (vk_iq_tables_build), device-local */
    struct vk_pipeline get_rows[Q_TYPE_COUNT], moe_matvec[Q_TYPE_COUNT], moe_matmul[Q_TYPE_COUNT];
    struct vk_pipeline rms_norm, rope, kv_store, attention_merge, router, moe_group, moe_combine, ew[4];
    struct vk_pipeline act_round[ACT_KINDS];
    struct attn_pipe attn[ATTN_CACHE];
    uint32_t lanes;  /* specialization constant 0 of the reducing shaders (info.reduce_lanes) */
};

struct vk_ops *vk_ops_create(struct vk_ctx *ctx, char *err, size_t errlen)
{
    struct vk_ops *o = calloc(1, sizeof *o);
    if (!o) {
        vk_fail(err, errlen, "Vulkan: out of memory");
        return NULL;
    }
    o->ctx = ctx;
    o->lanes = ctx->info.reduce_lanes;
    uint32_t tables[VK_IQ_TABLE_WORDS]; /* 33 KiB, uploaded once per context */
    vk_iq_tables_build(tables);
    if (!vk_buffer_create(ctx, &o->tables, sizeof tables, VK_MEM_DEVICE, err, errlen) ||
        !vk_buffer_upload(ctx, &o->tables, 0, tables, sizeof tables, err, errlen)) {
        vk_ops_destroy(o);
        return NULL;
    }
    return o;
}

void vk_ops_destroy(struct vk_ops *o)
{
    if (!o)
        return;
    for (int t = 0; t < Q_TYPE_COUNT; t++) {
        vk_pipeline_destroy(o->ctx, &o->get_rows[t]);
        vk_pipeline_destroy(o->ctx, &o->moe_matvec[t]);
        vk_pipeline_destroy(o->ctx, &o->moe_matmul[t]);
    }
    vk_pipeline_destroy(o->ctx, &o->moe_group);
    vk_pipeline_destroy(o->ctx, &o->rms_norm);
    vk_pipeline_destroy(o->ctx, &o->rope);
    vk_pipeline_destroy(o->ctx, &o->kv_store);
    vk_pipeline_destroy(o->ctx, &o->attention_merge);
    vk_pipeline_destroy(o->ctx, &o->router);
    vk_pipeline_destroy(o->ctx, &o->moe_combine);
    for (int i = 0; i < 4; i++)
        vk_pipeline_destroy(o->ctx, &o->ew[i]);
    for (int i = 0; i < ACT_KINDS; i++)
        vk_pipeline_destroy(o->ctx, &o->act_round[i]);
    for (int i = 0; i < ATTN_CACHE; i++)
        vk_pipeline_destroy(o->ctx, &o->attn[i].p);
    vk_buffer_destroy(o->ctx, &o->tables);
    free(o);
}

bool vk_ops_supports(uint32_t type)
{
    return vk_op_shaders_for(type) != NULL;
}

/* ------------------------------------------------------------------ helpers --- */

/* Builds *p from the given SPIR-V unless it exists already. */
static bool ensure_pipeline(struct vk_ops *o, struct vk_pipeline *p, const char *name, const uint32_t *code,
                            size_t bytes, uint32_t n_buffers, uint32_t push_bytes, const uint32_t *spec,
                            uint32_t n_spec, char *err, size_t errlen)
{
    if (p->pipe)
        return true;
    struct vk_pipeline_desc d = {
        .name = name, .spirv = code, .spirv_bytes = bytes, .n_buffers = n_buffers, .push_bytes = push_bytes,
        .spec = spec, .n_spec = n_spec,
    };
    return vk_pipeline_create(o->ctx, &d, p, err, errlen);
}

static bool ensure_op(struct vk_ops *o, struct vk_pipeline *p, const char *name, enum vk_op_shader s,
                      uint32_t n_buffers, uint32_t push_bytes, const uint32_t *spec, uint32_t n_spec, char *err,
                      size_t errlen)
{
    const struct vk_spirv *sp = vk_op_spirv(s, o->ctx->info.subgroups);
    return ensure_pipeline(o, p, name, sp->code, sp->bytes, n_buffers, push_bytes, spec, n_spec, err, errlen);
}

/* Binds `bytes` bytes at byte `off` of `b`: the binding starts at the largest multiple of
 * `align` not above off, and the element (4-byte) offset of off inside it goes to *elem. */
static bool bind_bytes(const struct vk_ctx *ctx, const struct vk_buffer *b, VkDeviceSize off, uint64_t bytes,
                       VkDeviceSize align, const char *what, struct vk_binding *out, uint32_t *elem, char *err,
                       size_t errlen)
{
    if (!b || !b->buf)
        return vk_fail(err, errlen, "Vulkan op: %s has no buffer", what);
    if (off % 4)
        return vk_fail(err, errlen, "Vulkan op: %s at byte %llu: not a multiple of 4", what, (unsigned long long)off);
    if (off > b->size || bytes > b->size - off)
        return vk_fail(err, errlen, "Vulkan op: %s (%llu bytes at %llu) outside its buffer of %llu", what,
                       (unsigned long long)bytes, (unsigned long long)off, (unsigned long long)b->size);
    VkDeviceSize base = off - off % align;
    VkDeviceSize range = (off - base + bytes + 3) & ~(VkDeviceSize)3;
    if (range > b->size - base)
        range = b->size - base;
    if (range == 0)  /* Vulkan has no empty binding */
        range = 4 <= b->size - base ? 4 : b->size - base;
    if (range > ctx->info.max_storage_range || range > UINT32_MAX)
        return vk_fail(err, errlen, "Vulkan op: %s spans %llu bytes, more than one storage binding may cover on "
                       "%s (%llu)", what, (unsigned long long)range, ctx->info.name,
                       (unsigned long long)ctx->info.max_storage_range);
    *out = (struct vk_binding){.b = b, .offset = base, .range = range};
    *elem = (uint32_t)((off - base) / 4);
    return true;
}

/* Binds a view of `rows` rows of `n` 32-bit elements; *stride gets the effective row stride. */
static bool bind_view(const struct vk_ctx *ctx, const struct vk_view *v, uint32_t rows, uint32_t n, bool vec4,
                      const char *what, struct vk_binding *out, uint32_t *elem, uint32_t *stride, char *err,
                      size_t errlen)
{
    uint32_t s = v->stride ? v->stride : n;
    if (s < n && rows > 1)
        return vk_fail(err, errlen, "Vulkan op: %s: row stride %u below the row length %u", what, s, n);
    if (vec4 && (v->off % 16 || s % 4))
        return vk_fail(err, errlen, "Vulkan op: %s: offset and stride must be multiples of 16 bytes", what);
    uint64_t bytes = rows ? 4ull * ((uint64_t)(rows - 1) * s + n) : 4;
    VkDeviceSize align = vk_storage_align(ctx);
    if (vec4 && align < 16)
        align = 16;
    if (!bind_bytes(ctx, v->b, v->off, bytes, align, what, out, elem, err, errlen))
        return false;
    if (stride)
        *stride = s;
    return true;
}

/* A grid of `n` workgroups, as x * y with x <= 65535 (shaders number them y * x_count + x). */
static void grid_1d(uint32_t n, uint32_t groups[3])
{
    groups[0] = n < MAX_GROUPS_1D ? n : MAX_GROUPS_1D;
    groups[1] = (n + groups[0] - 1) / groups[0];
    groups[2] = 1;
}

static uint64_t max_binding(const struct vk_ctx *ctx)
{
    uint64_t m = ctx->info.max_storage_range;
    return m < UINT32_MAX ? m : UINT32_MAX;
}

/* ---------------------------------------------------------------- get_rows --- */

bool vk_op_get_rows(struct vk_ops *o, const struct vk_op_get_rows_args *a, char *err, size_t errlen)
{
    struct vk_ctx *ctx = o->ctx;
    const struct q_traits *tr = q_type_traits(a->type);
    const struct vk_op_shader_set *s = vk_op_shaders_for(a->type);
    if (!tr || !s)
        return vk_fail(err, errlen, "Vulkan get_rows: no shader for type %u (%s)", a->type, tr ? tr->name : "unknown");
    uint64_t row_bytes;
    if (a->n_rows == 0 || a->ncols == 0 || a->ncols % 8 || !q_row_bytes(a->type, a->ncols, &row_bytes))
        return vk_fail(err, errlen, "Vulkan get_rows: bad shape %u x %u for %s: columns must be a multiple of 8 "
                       "and of the block size %u", a->n_rows, a->ncols, tr->name, tr->block_size);
    if (a->n_ids == 0)
        return true;
    const struct vk_buffer *t = a->table;
    if (!t || !t->buf || a->table_off % 4 || a->table_off > t->size || row_bytes * a->n_rows > t->size - a->table_off)
        return vk_fail(err, errlen, "Vulkan get_rows: table (%u rows of %llu bytes at %llu) outside its buffer",
                       a->n_rows, (unsigned long long)row_bytes, (unsigned long long)a->table_off);
    struct vk_binding binds[4];
    struct get_rows_push push = {.n_ids = a->n_ids, .ncols = a->ncols, .row_bytes = (uint32_t)row_bytes};
    if (!bind_view(ctx, &a->ids, 1, a->n_ids, false, "ids", &binds[1], &push.id_off, NULL, err, errlen) ||
        !bind_view(ctx, &a->y, a->n_ids, a->ncols, false, "y", &binds[2], &push.y_off, &push.y_stride, err, errlen))
        return false;
    binds[3] = (struct vk_binding){.b = &o->tables, .offset = 0, .range = o->tables.size};
    char name[48];
    snprintf(name, sizeof name, "get_rows_%s", tr->name);
    struct vk_pipeline *p = &o->get_rows[a->type];
    if (!ensure_pipeline(o, p, name, s->get_rows, s->get_rows_bytes, 4, sizeof push, NULL, 0, err, errlen))
        return false;
    VkDeviceSize align = vk_storage_align(ctx);
    uint64_t chunk = (max_binding(ctx) - align - 4) / row_bytes;
    if (chunk == 0)
        return vk_fail(err, errlen, "Vulkan get_rows: one row exceeds the binding limit");
    uint32_t groups[3];
    grid_1d(a->n_ids, groups);
    for (uint32_t r0 = 0; r0 < a->n_rows;) {
        uint32_t n = a->n_rows - r0 < chunk ? a->n_rows - r0 : (uint32_t)chunk;
        if (!bind_bytes(ctx, t, a->table_off + r0 * row_bytes, n * row_bytes, align, "table", &binds[0], &push.w_off,
                        err, errlen))
            return false;
        push.w_off *= 4;  /* the shader takes bytes */
        push.row_begin = r0;
        push.row_count = n;
        if (!vk_dispatch(ctx, p, binds, &push, groups, err, errlen))
            return false;
        r0 += n;
    }
    return true;
}

/* ---------------------------------------------------------------- rms_norm --- */

bool vk_op_rms_norm(struct vk_ops *o, const struct vk_op_rms_norm_args *a, char *err, size_t errlen)
{
    if (a->n == 0 || a->heads == 0 || (uint64_t)a->n_tokens * a->heads > UINT32_MAX || !(a->eps >= 0))
        return vk_fail(err, errlen, "Vulkan rms_norm: bad shape (%u tokens, %u heads of %u) or eps", a->n_tokens,
                       a->heads, a->n);
    if (a->n_tokens == 0)
        return true;
    struct vk_binding binds[3];
    struct rms_norm_push push = {.n_rows = a->n_tokens * a->heads, .n = a->n, .heads = a->heads, .eps = a->eps};
    uint32_t row = a->heads * a->n;
    if (!bind_view(o->ctx, &a->x, a->n_tokens, row, false, "x", &binds[0], &push.x_off, &push.x_stride, err, errlen) ||
        !bind_view(o->ctx, &a->w, 1, a->n, false, "w", &binds[1], &push.w_off, NULL, err, errlen) ||
        !bind_view(o->ctx, &a->y, a->n_tokens, row, false, "y", &binds[2], &push.y_off, &push.y_stride, err, errlen) ||
        !ensure_op(o, &o->rms_norm, "rms_norm", VK_OP_RMS_NORM, 3, sizeof push, &o->lanes, 1, err, errlen))
        return false;
    uint32_t groups[3];
    grid_1d(push.n_rows, groups);
    return vk_dispatch(o->ctx, &o->rms_norm, binds, &push, groups, err, errlen);
}

/* -------------------------------------------------------------------- rope --- */

bool vk_op_rope(struct vk_ops *o, const struct vk_op_rope_args *a, char *err, size_t errlen)
{
    if (a->head_dim == 0 || a->head_dim % 2 || a->n_rot % 2 || a->n_rot > a->head_dim || a->heads == 0 ||
        (uint64_t)a->n_tokens * a->heads > UINT32_MAX || !(a->freq_base > 0))
        return vk_fail(err, errlen, "Vulkan rope: bad shape (%u heads of %u, n_rot %u) or base %g", a->heads,
                       a->head_dim, a->n_rot, a->freq_base);
    if (a->n_tokens == 0)
        return true;
    struct vk_binding binds[3];
    struct rope_push push = {
        .n_rows = a->n_tokens * a->heads, .heads = a->heads, .head_dim = a->head_dim, .n_rot = a->n_rot,
        /* ggml: powf(base, -2/n_dims) in F32; the shader multiplies it in once per pair */
        .theta_scale = a->n_rot ? powf(a->freq_base, -2.0f / (float)a->n_rot) : 1.0f,
    };
    uint32_t row = a->heads * a->head_dim;
    if (!bind_view(o->ctx, &a->x, a->n_tokens, row, false, "x", &binds[0], &push.x_off, &push.x_stride, err, errlen) ||
        !bind_view(o->ctx, &a->pos, 1, a->n_tokens, false, "pos", &binds[1], &push.pos_off, NULL, err, errlen) ||
        !bind_view(o->ctx, &a->y, a->n_tokens, row, false, "y", &binds[2], &push.y_off, &push.y_stride, err, errlen) ||
        !ensure_op(o, &o->rope, "rope", VK_OP_ROPE, 3, sizeof push, NULL, 0, err, errlen))
        return false;
    uint32_t groups[3];
    grid_1d(push.n_rows, groups);
    return vk_dispatch(o->ctx, &o->rope, binds, &push, groups, err, errlen);
}

/* ---------------------------------------------------------- paged KV cache --- */

/* Binds the layer's K cache, V cache and page table at binds[0..2] (word offsets to *_off). */
static bool bind_kv(struct vk_ops *o, const struct vk_kv_layer *kv, struct vk_binding binds[3], uint32_t *kc_off,
                    uint32_t *vc_off, uint32_t *pages_off, char *err, size_t errlen)
{
    if (!kv || kv->head_dim == 0 || kv->head_dim % 2 || kv->n_head_kv == 0 || kv->page_tokens == 0 ||
        kv->n_pages == 0 || kv->n_seqs == 0 || kv->max_seq_pages == 0 ||
        (uint64_t)kv->max_seq_pages * kv->page_tokens > UINT32_MAX)
        return vk_fail(err, errlen, "Vulkan KV cache: bad layout");
    uint64_t row_bytes = 2ull * kv->n_head_kv * kv->head_dim;
    uint64_t bytes = row_bytes * kv->page_tokens * kv->n_pages;
    VkDeviceSize align = vk_storage_align(o->ctx);
    struct vk_view pt = {.b = kv->pages, .off = kv->pages_off};
    return bind_bytes(o->ctx, kv->k, kv->k_off, bytes, align, "K cache", &binds[0], kc_off, err, errlen) &&
           bind_bytes(o->ctx, kv->v, kv->v_off, bytes, align, "V cache", &binds[1], vc_off, err, errlen) &&
           bind_view(o->ctx, &pt, kv->n_seqs, kv->max_seq_pages, false, "page table", &binds[2], pages_off, NULL, err,
                     errlen);
}

bool vk_op_kv_store(struct vk_ops *o, const struct vk_op_kv_store_args *a, char *err, size_t errlen)
{
    const struct vk_kv_layer *kv = a->kv;
    struct vk_binding kvb[3], binds[6];
    struct kv_store_push push = {.n_tokens = a->n_tokens};
    if (!bind_kv(o, kv, kvb, &push.kc_off, &push.vc_off, &push.pages_off, err, errlen))
        return false;
    if (a->n_tokens == 0)
        return true;
    uint32_t row = kv->n_head_kv * kv->head_dim;
    push.row_words = row / 2;
    push.page_tokens = kv->page_tokens;
    push.max_seq_pages = kv->max_seq_pages;
    push.n_seqs = kv->n_seqs;
    push.n_pages = kv->n_pages;
    binds[2] = kvb[0];
    binds[3] = kvb[1];
    binds[5] = kvb[2];
    if (!bind_view(o->ctx, &a->k, a->n_tokens, row, false, "k", &binds[0], &push.k_off, &push.k_stride, err, errlen) ||
        !bind_view(o->ctx, &a->v, a->n_tokens, row, false, "v", &binds[1], &push.v_off, &push.v_stride, err, errlen) ||
        !bind_view(o->ctx, &a->tokens, 1, 2 * a->n_tokens, false, "tokens", &binds[4], &push.tok_off, NULL, err,
                   errlen) ||
        !ensure_op(o, &o->kv_store, "kv_store", VK_OP_KV_STORE, 6, sizeof push, NULL, 0, err, errlen))
        return false;
    uint32_t groups[3];
    grid_1d(a->n_tokens, groups);
    return vk_dispatch(o->ctx, &o->kv_store, binds, &push, groups, err, errlen);
}

/* The attention pipeline for head_dim d, group g, tile bc (a small cache, oldest replaced). */
static struct vk_pipeline *attention_pipeline(struct vk_ops *o, uint32_t d, uint32_t g, uint32_t bc, char *err,
                                              size_t errlen)
{
    int slot = -1;
    for (int i = 0; i < ATTN_CACHE; i++) {
        struct attn_pipe *ap = &o->attn[i];
        if (ap->p.pipe && ap->d == d && ap->g == g && ap->bc == bc)
            return &ap->p;
        if (!ap->p.pipe && slot < 0)
            slot = i;
    }
    if (slot < 0) {  /* all taken: more shapes than a model has; rebuild in slot 0 */
        vk_pipeline_destroy(o->ctx, &o->attn[0].p);
        slot = 0;
    }
    struct attn_pipe *ap = &o->attn[slot];
    uint32_t spec[3] = {d, g, bc};
    char name[64];
    snprintf(name, sizeof name, "attention d%u g%u bc%u", d, g, bc);
    if (!ensure_op(o, &ap->p, name, VK_OP_ATTENTION, 7, sizeof(struct attention_push), spec, 3, err, errlen))
        return NULL;
    ap->d = d;
    ap->g = g;
    ap->bc = bc;
    return &ap->p;
}

bool vk_op_attention(struct vk_ops *o, const struct vk_op_attention_args *a, char *err, size_t errlen)
{
    const struct vk_kv_layer *kv = a->kv;
    struct vk_binding kvb[3], binds[7];
    struct attention_push push = {.n_tokens = a->n_tokens};
    if (!bind_kv(o, kv, kvb, &push.kc_off, &push.vc_off, &push.pages_off, err, errlen))
        return false;
    if (a->n_head == 0 || a->n_head % kv->n_head_kv)
        return vk_fail(err, errlen, "Vulkan attention: %u query heads for %u KV heads", a->n_head, kv->n_head_kv);
    uint32_t d = kv->head_dim, g = a->n_head / kv->n_head_kv;
    if ((uint64_t)g * d > ATTN_MAX_OUT)
        return vk_fail(err, errlen, "Vulkan attention: %u query heads of %u per KV head exceed %u values", g, d,
                       ATTN_MAX_OUT);
    /* Tile of positions: as many as fit in shared memory next to q, the scores and the
     * reductions (K and V tiles are F16: 2 d bytes per position each). */
    uint64_t shared = o->ctx->info.max_shared, fixed = 4ull * g * d + 4ull * 3 * g + 4ull * 128 + 256;
    uint32_t bc = 64;
    while (bc > 8 && fixed + (uint64_t)bc * (4ull * d + 4ull * g) > shared)
        bc /= 2;
    if (fixed + (uint64_t)bc * (4ull * d + 4ull * g) > shared)
        return vk_fail(err, errlen, "Vulkan attention: head_dim %u, group %u do not fit %llu bytes of shared memory",
                       d, g, (unsigned long long)shared);
    if (a->n_tokens == 0)
        return true;
    if (a->n_tokens > MAX_GROUPS_1D || a->n_head > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan attention: %u tokens in one dispatch (at most %u)", a->n_tokens,
                       MAX_GROUPS_1D);
    uint32_t n_split = a->n_split ? a->n_split : 1;
    if (n_split > ATTN_MAX_SPLIT || (n_split > 1 && a->max_len == 0))
        return vk_fail(err, errlen, "Vulkan attention: %u splits (at most %u, with max_len set)", n_split,
                       ATTN_MAX_SPLIT);
    uint32_t row = a->n_head * d;
    push.n_head_kv = kv->n_head_kv;
    push.row_words = kv->n_head_kv * d / 2;
    push.page_tokens = kv->page_tokens;
    push.max_seq_pages = kv->max_seq_pages;
    push.scale = a->scale != 0 ? a->scale : 1.0f / sqrtf((float)d);
    push.head_words = d / 2;
    push.tile = bc;
    push.n_split = n_split;
    push.q_f16 = a->q_f16;
    push.p_f16 = a->p_f16 && n_split == 1;
    push.n_seqs = kv->n_seqs;
    push.n_pages = kv->n_pages;
    binds[1] = kvb[0];
    binds[2] = kvb[1];
    binds[4] = kvb[2];
    if (!bind_view(o->ctx, &a->q, a->n_tokens, row, false, "q", &binds[0], &push.q_off, &push.q_stride, err, errlen) ||
        !bind_view(o->ctx, &a->tokens, 1, 2 * a->n_tokens, false, "tokens", &binds[3], &push.tok_off, NULL, err,
                   errlen) ||
        !bind_view(o->ctx, &a->out, a->n_tokens, row, false, "out", &binds[5], &push.o_off, &push.o_stride, err,
                   errlen))
        return false;
    struct attention_merge_push mp = {.n_tokens = a->n_tokens, .n_head = a->n_head, .head_dim = d, .n_split = n_split,
                                      .o_off = push.o_off, .o_stride = push.o_stride};
    if (n_split > 1) {
        uint64_t part_floats = (uint64_t)a->n_tokens * a->n_head * n_split * (d + 2);
        if (part_floats > UINT32_MAX)
            return vk_fail(err, errlen, "Vulkan attention: scratch too large");
        struct vk_view sv = a->scratch;
        sv.stride = 0;
        if (!bind_view(o->ctx, &sv, 1, (uint32_t)part_floats, false, "scratch", &binds[6], &push.part_off, NULL, err,
                       errlen))
            return false;
        mp.part_off = push.part_off;
        uint32_t per = (a->max_len + n_split - 1) / n_split;
        push.split_len = (per + bc - 1) / bc * bc;
    } else {
        binds[6] = binds[5];  /* unused; any binding will do */
    }
    const struct vk_pipeline *p = attention_pipeline(o, d, g, bc, err, errlen);
    if (!p)
        return false;
    uint32_t groups[3] = {kv->n_head_kv, a->n_tokens, n_split};
    if (!vk_dispatch(o->ctx, p, binds, &push, groups, err, errlen))
        return false;
    if (n_split == 1)
        return true;
    vk_barrier(o->ctx);
    struct vk_binding mb[2] = {binds[6], binds[5]};
    if (!ensure_op(o, &o->attention_merge, "attention_merge", VK_OP_ATTENTION_MERGE, 2, sizeof mp, NULL, 0, err,
                   errlen))
        return false;
    uint32_t mgroups[3] = {a->n_head, a->n_tokens, 1};
    return vk_dispatch(o->ctx, &o->attention_merge, mb, &mp, mgroups, err, errlen);
}

/* ------------------------------------------------------------------ router --- */

bool vk_op_router(struct vk_ops *o, const struct vk_op_router_args *a, char *err, size_t errlen)
{
    if (a->n_expert == 0 || a->n_expert > ROUTER_MAX_EXPERT || a->k == 0 || a->k > ROUTER_MAX_K ||
        a->k > a->n_expert)
        return vk_fail(err, errlen, "Vulkan router: top-%u of %u experts (at most %u of %u)", a->k, a->n_expert,
                       ROUTER_MAX_K, ROUTER_MAX_EXPERT);
    if (a->n_tokens == 0)
        return true;
    struct vk_binding binds[3];
    struct router_push push = {.n_tokens = a->n_tokens, .n_expert = a->n_expert, .k = a->k, .norm = a->norm};
    struct vk_view ids = a->ids, w = a->weights;
    ids.stride = w.stride = 0;
    if (!bind_view(o->ctx, &a->logits, a->n_tokens, a->n_expert, false, "logits", &binds[0], &push.l_off,
                   &push.l_stride, err, errlen) ||
        !bind_view(o->ctx, &ids, a->n_tokens, a->k, false, "ids", &binds[1], &push.id_off, NULL, err, errlen) ||
        !bind_view(o->ctx, &w, a->n_tokens, a->k, false, "weights", &binds[2], &push.w_off, NULL, err, errlen) ||
        !ensure_op(o, &o->router, "router", VK_OP_ROUTER, 3, sizeof push, &o->lanes, 1, err, errlen))
        return false;
    uint32_t groups[3];
    grid_1d(a->n_tokens, groups);
    return vk_dispatch(o->ctx, &o->router, binds, &push, groups, err, errlen);
}

/* --------------------------------------------------------------------- MoE --- */

/* Tiles of grouped pairs: at most one partial tile per expert used, plus the full ones. */
static uint32_t moe_max_tiles(uint32_t n_pairs, uint32_t n_expert)
{
    return (n_pairs + MOE_BN - 1) / MOE_BN + (n_expert < n_pairs ? n_expert : n_pairs);
}

uint32_t vk_op_moe_route_words(uint32_t n_pairs, uint32_t n_expert)
{
    return 1 + 3 * moe_max_tiles(n_pairs, n_expert) + n_pairs;
}

bool vk_op_moe_group(struct vk_ops *o, const struct vk_op_moe_group_args *a, char *err, size_t errlen)
{
    uint64_t pairs = (uint64_t)a->n_tokens * a->k;
    if (a->n_expert == 0 || a->n_expert > MOE_MAX_EXPERT || a->k == 0 || pairs > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan moe_group: %llu pairs over %u experts (at most %u over %u)",
                       (unsigned long long)pairs, a->n_expert, MAX_GROUPS_1D, MOE_MAX_EXPERT);
    if (pairs == 0)
        return true;
    struct vk_binding binds[2];
    struct moe_group_push push = {.n_pairs = (uint32_t)pairs, .n_expert = a->n_expert, .bn = MOE_BN,
                                  .max_tiles = moe_max_tiles((uint32_t)pairs, a->n_expert)};
    struct vk_view ids = a->ids, route = a->route;
    ids.stride = route.stride = 0;
    if (!bind_view(o->ctx, &ids, 1, (uint32_t)pairs, false, "ids", &binds[0], &push.id_off, NULL, err, errlen) ||
        !bind_view(o->ctx, &route, 1, vk_op_moe_route_words((uint32_t)pairs, a->n_expert), false, "route", &binds[1],
                   &push.route_off, NULL, err, errlen) ||
        !ensure_op(o, &o->moe_group, "moe_group", VK_OP_MOE_GROUP, 2, sizeof push, NULL, 0, err, errlen))
        return false;
    uint32_t groups[3] = {1, 1, 1};
    return vk_dispatch(o->ctx, &o->moe_group, binds, &push, groups, err, errlen);
}

/* The grouped path of vk_op_moe_matvec: binds[1..3] and the shape fields of *mv are set. */
static bool moe_matmul_grouped(struct vk_ops *o, const struct vk_op_moe_matvec_args *a,
                               const struct vk_op_shader_set *s, const struct q_traits *tr, uint64_t row_bytes,
                               const struct moe_matvec_push *mv, struct vk_binding binds[6], char *err,
                               size_t errlen)
{
    struct vk_ctx *ctx = o->ctx;
    if (a->n_expert > MOE_MAX_EXPERT)
        return vk_fail(err, errlen, "Vulkan moe_matvec: grouping takes at most %u experts", MOE_MAX_EXPERT);
    uint32_t max_tiles = moe_max_tiles(mv->n_pairs, a->n_expert);
    struct moe_matmul_push push = {
        .nrows = mv->nrows, .ncols = mv->ncols, .row_bytes = mv->row_bytes, .expert_bytes = mv->expert_bytes,
        .k = mv->k, .max_tiles = max_tiles, .x_off = mv->x_off, .x_stride = mv->x_stride,
        .x_slot_stride = mv->x_slot_stride, .y_off = mv->y_off, .y_stride = mv->y_stride, .xs_off = mv->xs_off,
    };
    struct vk_view route = a->route;
    route.stride = 0;
    if (!bind_view(ctx, &route, 1, vk_op_moe_route_words(mv->n_pairs, a->n_expert), false, "route", &binds[4],
                   &push.route_off, NULL, err, errlen))
        return false;
    char name[48];
    snprintf(name, sizeof name, "moe_matmul_%s", tr->name);
    struct vk_pipeline *p = &o->moe_matmul[a->type];
    if (!ensure_pipeline(o, p, name, s->moe_matmul, s->moe_matmul_bytes, 6, sizeof push, NULL, 0, err, errlen))
        return false;
    uint64_t expert_bytes = mv->expert_bytes;
    VkDeviceSize align = vk_storage_align(ctx);
    uint64_t chunk = (max_binding(ctx) - align - 4) / expert_bytes;
    if (chunk == 0)
        return vk_fail(err, errlen, "Vulkan moe_matvec: one expert's %llu bytes exceed the binding limit",
                       (unsigned long long)expert_bytes);
    uint32_t groups[3] = {(a->nrows + MOE_BM - 1) / MOE_BM, max_tiles, 1};
    for (uint32_t e0 = 0; e0 < a->n_expert;) {
        uint32_t n = a->n_expert - e0 < chunk ? a->n_expert - e0 : (uint32_t)chunk;
        if (!bind_bytes(ctx, a->w, a->w_off + e0 * expert_bytes, n * expert_bytes, align, "weights", &binds[0],
                        &push.w_off, err, errlen))
            return false;
        push.w_off *= 4;
        push.e_begin = e0;
        push.e_count = n;
        if (!vk_dispatch(ctx, p, binds, &push, groups, err, errlen))
            return false;
        e0 += n;
    }
    return true;
}

bool vk_op_moe_matvec(struct vk_ops *o, const struct vk_op_moe_matvec_args *a, char *err, size_t errlen)
{
    struct vk_ctx *ctx = o->ctx;
    const struct q_traits *tr = q_type_traits(a->type);
    const struct vk_op_shader_set *s = vk_op_shaders_for(a->type);
    if (!tr || !s)
        return vk_fail(err, errlen, "Vulkan moe_matvec: no shader for type %u (%s)", a->type,
                       tr ? tr->name : "unknown");
    uint64_t row_bytes;
    if (a->nrows == 0 || a->ncols == 0 || a->ncols % 8 || a->n_expert == 0 || a->k == 0 ||
        !q_row_bytes(a->type, a->ncols, &row_bytes))
        return vk_fail(err, errlen, "Vulkan moe_matvec: bad shape %u x %u x %u experts (k %u) for %s: columns must be "
                       "a multiple of 8 and of the block size %u", a->nrows, a->ncols, a->n_expert, a->k, tr->name,
                       tr->block_size);
    uint64_t expert_bytes = row_bytes * a->nrows, pairs = (uint64_t)a->n_tokens * a->k;
    if (pairs == 0)
        return true;
    if (pairs > MAX_GROUPS_1D || (a->nrows + moe_rows(a->type) - 1) / moe_rows(a->type) > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan moe_matvec: %llu token-expert pairs or %u rows in one dispatch",
                       (unsigned long long)pairs, a->nrows);
    const struct vk_buffer *w = a->w;
    if (!w || !w->buf || a->w_off % 4 || a->w_off > w->size || expert_bytes * a->n_expert > w->size - a->w_off)
        return vk_fail(err, errlen, "Vulkan moe_matvec: weights (%u experts of %llu bytes at %llu) outside their buffer",
                       a->n_expert, (unsigned long long)expert_bytes, (unsigned long long)a->w_off);
    if (a->x_slot_stride % 4)
        return vk_fail(err, errlen, "Vulkan moe_matvec: x slot stride must be a multiple of 4 floats");
    struct vk_binding binds[6];
    struct moe_matvec_push push = {
        .nrows = a->nrows, .ncols = a->ncols, .row_bytes = (uint32_t)row_bytes, .expert_bytes = (uint32_t)expert_bytes,
        .k = a->k, .n_pairs = (uint32_t)pairs, .x_slot_stride = a->x_slot_stride,
    };
    /* x: token rows, each with k slots x_slot_stride apart */
    uint32_t x_row = a->x_slot_stride * (a->k - 1) + a->ncols;
    struct vk_view ids = a->ids;
    ids.stride = 0;
    if (!bind_view(ctx, &a->x, a->n_tokens, x_row, true, "x", &binds[1], &push.x_off, &push.x_stride, err, errlen) ||
        !bind_view(ctx, &a->y, (uint32_t)pairs, a->nrows, false, "y", &binds[2], &push.y_off, &push.y_stride, err,
                   errlen) ||
        !bind_view(ctx, &ids, 1, (uint32_t)pairs, false, "ids", &binds[4], &push.id_off, NULL, err, errlen))
        return false;
    binds[3] = (struct vk_binding){.b = &o->tables, .offset = 0, .range = o->tables.size};
    if (a->xs.b && push.x_stride % tr->block_size)
        return vk_fail(err, errlen, "Vulkan moe_matvec: activation scales need x rows of whole %u-value blocks",
                       tr->block_size);
    if (!vk_bind_scales(ctx, a->xs.b, a->xs.off, (uint64_t)a->n_tokens * (push.x_stride / tr->block_size), &o->tables,
                        &binds[5], &push.xs_off, err, errlen))
        return false;
    if (a->route.b)
        return moe_matmul_grouped(o, a, s, tr, row_bytes, &push, binds, err, errlen);
    char name[48];
    snprintf(name, sizeof name, "moe_matvec_%s", tr->name);
    struct vk_pipeline *p = &o->moe_matvec[a->type];
    bool sg = ctx->info.subgroups;
    if (!ensure_pipeline(o, p, name, sg ? s->moe_matvec : s->moe_matvec_nosg,
                         sg ? s->moe_matvec_bytes : s->moe_matvec_nosg_bytes, 6, sizeof push, &o->lanes, 1, err,
                         errlen))
        return false;
    VkDeviceSize align = vk_storage_align(ctx);
    uint64_t chunk = (max_binding(ctx) - align - 4) / expert_bytes;
    if (chunk == 0)
        return vk_fail(err, errlen, "Vulkan moe_matvec: one expert's %llu bytes exceed the binding limit",
                       (unsigned long long)expert_bytes);
    uint32_t groups[3] = {(a->nrows + moe_rows(a->type) - 1) / moe_rows(a->type), (uint32_t)pairs, 1};
    for (uint32_t e0 = 0; e0 < a->n_expert;) {
        uint32_t n = a->n_expert - e0 < chunk ? a->n_expert - e0 : (uint32_t)chunk;
        if (!bind_bytes(ctx, w, a->w_off + e0 * expert_bytes, n * expert_bytes, align, "weights", &binds[0],
                        &push.w_off, err, errlen))
            return false;
        push.w_off *= 4;  /* the shader takes bytes */
        push.e_begin = e0;
        push.e_count = n;
        if (!vk_dispatch(ctx, p, binds, &push, groups, err, errlen))
            return false;
        e0 += n;
    }
    return true;
}

bool vk_op_moe_combine(struct vk_ops *o, const struct vk_op_moe_combine_args *a, char *err, size_t errlen)
{
    if (a->n == 0 || a->k == 0 || (uint64_t)a->n_tokens * a->k > UINT32_MAX)
        return vk_fail(err, errlen, "Vulkan moe_combine: bad shape");
    if (a->n_tokens == 0)
        return true;
    if (a->n_tokens > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan moe_combine: %u tokens in one dispatch", a->n_tokens);
    struct vk_binding binds[3];
    struct moe_combine_push push = {.n_tokens = a->n_tokens, .k = a->k, .n = a->n};
    struct vk_view w = a->weights;
    w.stride = 0;
    if (!bind_view(o->ctx, &a->x, a->n_tokens * a->k, a->n, false, "x", &binds[0], &push.x_off, &push.x_stride, err,
                   errlen) ||
        !bind_view(o->ctx, &w, a->n_tokens, a->k, false, "weights", &binds[1], &push.w_off, NULL, err, errlen) ||
        !bind_view(o->ctx, &a->y, a->n_tokens, a->n, false, "y", &binds[2], &push.y_off, &push.y_stride, err, errlen) ||
        !ensure_op(o, &o->moe_combine, "moe_combine", VK_OP_MOE_COMBINE, 3, sizeof push, NULL, 0, err, errlen))
        return false;
    uint32_t groups[3] = {(a->n + 63) / 64, a->n_tokens, 1};
    return vk_dispatch(o->ctx, &o->moe_combine, binds, &push, groups, err, errlen);
}

bool vk_op_moe_ffn(struct vk_ops *o, const struct vk_op_moe_ffn_args *a, char *err, size_t errlen)
{
    uint32_t pairs = a->n_tokens * a->k;
    if (a->n_ff % 4 || (a->gate_out.stride && a->gate_out.stride != a->n_ff) ||
        (a->up_out.stride && a->up_out.stride != a->n_ff))
        return vk_fail(err, errlen, "Vulkan moe_ffn: n_ff must be a multiple of 4 and gate/up scratch contiguous");
    if (a->act_round && vk_op_act_type(a->gate_type) != vk_op_act_type(a->up_type))
        return vk_fail(err, errlen, "Vulkan moe_ffn: gate and up weights pair with different activation types");
    if (a->route.b) {
        struct vk_op_moe_group_args ga = {.n_tokens = a->n_tokens, .k = a->k, .n_expert = a->n_expert, .ids = a->ids,
                                          .route = a->route};
        if (!vk_op_moe_group(o, &ga, err, errlen))
            return false;
        vk_barrier(o->ctx);
    }
    struct vk_op_moe_matvec_args mv = {
        .type = a->gate_type, .nrows = a->n_ff, .ncols = a->n_embd, .n_expert = a->n_expert, .w = a->gate,
        .w_off = a->gate_off, .n_tokens = a->n_tokens, .k = a->k, .ids = a->ids, .x = a->x, .y = a->gate_out,
        .route = a->route, .xs = a->act_round ? a->x_scales : (struct vk_view){0},
    };
    if (!vk_op_moe_matvec(o, &mv, err, errlen))
        return false;
    mv.type = a->up_type;
    mv.w = a->up;
    mv.w_off = a->up_off;
    mv.y = a->up_out;
    if (!vk_op_moe_matvec(o, &mv, err, errlen))
        return false;
    vk_barrier(o->ctx);
    struct vk_op_ew_args ew = {.op = VK_EW_SWIGLU, .rows = pairs, .n = a->n_ff, .a = a->gate_out, .b = a->up_out,
                               .y = a->gate_out};
    if (!vk_op_elementwise(o, &ew, err, errlen))
        return false;
    vk_barrier(o->ctx);
    if (a->act_round) {
        struct vk_op_act_round_args ar = {.wtype = a->down_type, .rows = pairs, .n = a->n_ff, .x = a->gate_out,
                                          .y = a->gate_out, .scales = a->gate_scales};
        if (!vk_op_act_round(o, &ar, err, errlen))
            return false;
        vk_barrier(o->ctx);
    }
    /* down: pair (t, j) reads row t k + j of the activations: token stride k n_ff, slot stride n_ff */
    struct vk_view act = {.b = a->gate_out.b, .off = a->gate_out.off, .stride = a->k * a->n_ff};
    mv = (struct vk_op_moe_matvec_args){
        .type = a->down_type, .nrows = a->n_embd, .ncols = a->n_ff, .n_expert = a->n_expert, .w = a->down,
        .w_off = a->down_off, .n_tokens = a->n_tokens, .k = a->k, .ids = a->ids, .x = act, .x_slot_stride = a->n_ff,
        .y = a->down_out, .route = a->route, .xs = a->act_round ? a->gate_scales : (struct vk_view){0},
    };
    if (!vk_op_moe_matvec(o, &mv, err, errlen))
        return false;
    vk_barrier(o->ctx);
    struct vk_op_moe_combine_args cb = {.n_tokens = a->n_tokens, .k = a->k, .n = a->n_embd, .x = a->down_out,
                                        .weights = a->weights, .y = a->y};
    if (!vk_op_moe_combine(o, &cb, err, errlen))
        return false;
    vk_barrier(o->ctx);
    return true;
}

/* ------------------------------------------------------------- elementwise --- */

bool vk_op_elementwise(struct vk_ops *o, const struct vk_op_ew_args *a, char *err, size_t errlen)
{
    static const char *names[4] = {"add", "swiglu", "sigmoid_mul", "scale"};
    if ((unsigned)a->op > VK_EW_SCALE || a->n == 0)
        return vk_fail(err, errlen, "Vulkan elementwise: bad op %d or empty rows", (int)a->op);
    if (a->rows == 0)
        return true;
    if (a->rows > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan elementwise: %u rows in one dispatch (at most %u)", a->rows,
                       MAX_GROUPS_1D);
    struct vk_binding binds[3];
    struct ew_push push = {.rows = a->rows, .n = a->n, .b_per_row = a->b_per_row, .s = a->s};
    const struct vk_view *b = a->op == VK_EW_SCALE ? &a->a : &a->b;
    uint32_t bn = a->op != VK_EW_SCALE && a->b_per_row ? 1 : a->n;
    if (!bind_view(o->ctx, &a->a, a->rows, a->n, false, "a", &binds[0], &push.a_off, &push.a_stride, err, errlen) ||
        !bind_view(o->ctx, b, a->rows, bn, false, "b", &binds[1], &push.b_off, &push.b_stride, err, errlen) ||
        !bind_view(o->ctx, &a->y, a->rows, a->n, false, "y", &binds[2], &push.y_off, &push.y_stride, err, errlen))
        return false;
    uint32_t spec = (uint32_t)a->op;
    char name[32];
    snprintf(name, sizeof name, "elementwise %s", names[a->op]);
    if (!ensure_op(o, &o->ew[a->op], name, VK_OP_ELEMENTWISE, 3, sizeof push, &spec, 1, err, errlen))
        return false;
    uint32_t groups[3] = {(a->n + 63) / 64, a->rows, 1};
    return vk_dispatch(o->ctx, &o->ew[a->op], binds, &push, groups, err, errlen);
}

/* ------------------------------------------------------------ act rounding --- */

uint32_t vk_op_act_type(uint32_t wtype)
{
    const struct q_kernels *k = q_kernels_get(wtype);
    return k ? k->act_type : Q_F32;
}

bool vk_op_act_round(struct vk_ops *o, const struct vk_op_act_round_args *a, char *err, size_t errlen)
{
    uint32_t act = vk_op_act_type(a->wtype), kind, block;
    switch (act) {
    case Q_Q8_0: case Q_Q8_1: kind = 0; block = 32; break;
    case Q_Q8_K: kind = 1; block = 256; break;
    case Q_F16: kind = 2; block = 1; break;
    case Q_BF16: kind = 3; block = 1; break;
    case Q_F32: kind = 4; block = 1; break;
    default:
        return vk_fail(err, errlen, "Vulkan act_round: no rounding for weight type %u", a->wtype);
    }
    if (a->n == 0 || a->n % block)
        return vk_fail(err, errlen, "Vulkan act_round: rows of %u values are not whole blocks of %u", a->n, block);
    if (a->rows == 0)
        return true;
    if (a->rows > MAX_GROUPS_1D)
        return vk_fail(err, errlen, "Vulkan act_round: %u rows in one dispatch (at most %u)", a->rows, MAX_GROUPS_1D);
    struct vk_binding binds[3];
    struct act_round_push push = {.rows = a->rows, .n = a->n};
    if (!bind_view(o->ctx, &a->x, a->rows, a->n, false, "x", &binds[0], &push.x_off, &push.x_stride, err, errlen) ||
        !bind_view(o->ctx, &a->y, a->rows, a->n, false, "y", &binds[1], &push.y_off, &push.y_stride, err, errlen) ||
        !ensure_op(o, &o->act_round[kind], "act_round", VK_OP_ACT_ROUND, 3, sizeof push, &kind, 1, err, errlen))
        return false;
    const struct vk_buffer *scales = kind <= 1 ? a->scales.b : NULL;  /* only Q8 blocks have scales */
    if (scales && push.y_stride % block)
        return vk_fail(err, errlen, "Vulkan act_round: scales need y rows of whole %u-value blocks", block);
    if (!vk_bind_scales(o->ctx, scales, a->scales.off, (uint64_t)a->rows * (push.y_stride / block), binds[1].b,
                        &binds[2], &push.ys_off, err, errlen))
        return false;
    uint32_t groups[3] = {(a->n + 255) / 256, a->rows, 1};
    return vk_dispatch(o->ctx, &o->act_round[kind], binds, &push, groups, err, errlen);
}
