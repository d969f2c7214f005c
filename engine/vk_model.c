/* vk_model.c: the qwen3moe forward pass on the GPU (engine/vk_model.h): weight upload, the device
 * KV cache and activations, one recorded command buffer per batch built from vk_ops/vk_matmul, and
 * the hand-over to the CPU for layers whose experts stay in host memory. */
#include "engine/vk_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_ops.h"
#include "kernels/matmul.h"
#include "kernels/moe.h"
#include "kernels/quants.h"
#include "kernels/qtypes.h"

/* Decode steps whose (KV head, token) workgroups are fewer than this spread each over several
 * workgroups (split attention) once the context is long enough to be worth it. */
#define SPLIT_MAX_UNITS 32
#define SPLIT_MIN_LEN 1024
#define SPLIT_CHUNK 128
#define SPLIT_MAX 64
/* Batches with at least this many (token, expert) pairs run the experts grouped (tiled products). */
#define GROUPED_MIN_PAIRS 100000
/* Logits rows one submission produces: a step wanting more (perplexity, whole-prompt logits)
 * runs the output head over the rest in further short submissions, so that the host-visible
 * logits buffer stays small (64 x 151936 floats = 37 MiB) whatever the batch. */
#define LOGITS_ROWS 64u
/* Products sharing one input (q, k, v) may pair with up to three activation types. */
#define ACT_SLOTS 3

struct vk_mat {
    uint32_t type, rows, cols, n_expert;  /* n_expert 1 for a plain matrix */
    struct vk_buffer buf;
};

struct vk_layer {
    struct vk_buffer attn_norm, q_norm, k_norm, ffn_norm;
    struct vk_mat wq, wk, wv, wo, router, gate, up, down;
};

struct vk_model {
    struct vk_ctx *ctx;
    const struct model *m;     /* the host model: the experts of layers [0, n_cpu_moe) */
    uint32_t n_cpu_moe;
    struct vk_ops *ops;
    struct vk_matmul *mm;
    struct model_hparams hp;
    struct vk_mat token_embd, output;
    bool output_tied;          /* output is token_embd's buffer */
    struct vk_buffer output_norm;
    struct vk_layer *layers;
    uint64_t weight_bytes;
};

struct vk_model_ctx {
    struct vk_model *vm;
    struct kvpool kv;
    uint32_t max_batch, max_seq_tokens;
    struct vk_buffer *k_cache, *v_cache;  /* per layer */
    struct vk_buffer x, h, tmp, q, k, v, att, probs, ids, wts, gate_out, up_out, down_out, route, attn_part;
    struct vk_buffer xq[ACT_SLOTS];  /* inputs of products, rounded as ggml rounds activations */
    struct vk_buffer xqs[ACT_SLOTS]; /* and the scales of their Q8 blocks (act_round.comp) */
    struct vk_buffer gate_scales;    /* the scales of the experts' rounded SwiGLU outputs */
    struct vk_buffer in;       /* host-visible: tokens, positions, (seq, pos) pairs, wanted rows, page table */
    struct vk_buffer logits;   /* host-visible: logit_rows rows of n_vocab */
    uint32_t logit_rows;
    VkDeviceSize in_tok, in_pos, in_pairs, in_want, in_pages;
    /* Layers with their experts on the CPU: the host-visible normed input, expert ids and
     * weights the GPU hands over, and the CPU's output; and the CPU MoE's scratch. */
    struct vk_buffer moe_host;
    VkDeviceSize mh_x, mh_ids, mh_wts, mh_out;
    struct q_moe_scratch moe;
    double gpu_ns;             /* device time of the last decode's submissions (0: no timestamps) */
};

/* ------------------------------------------------------------------ upload --- */

struct uploader {
    struct vk_model *vm;
    void (*progress)(void *, double);
    void *pctx;
    uint64_t done, total;
};

static bool upload(struct uploader *u, struct vk_buffer *b, const void *data, size_t bytes, const char *what,
                   char *err, size_t errlen)
{
    char why[256];
    if (!vk_buffer_create(u->vm->ctx, b, bytes, VK_MEM_DEVICE, why, sizeof why) ||
        !vk_buffer_upload(u->vm->ctx, b, 0, data, bytes, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", what, why);
        return false;
    }
    u->vm->weight_bytes += b->alloc_bytes;
    u->done += bytes;
    if (u->progress)
        u->progress(u->pctx, u->total ? (double)u->done / (double)u->total : 1.0);
    return true;
}

static bool upload_norm(struct uploader *u, struct vk_buffer *b, const float *w, uint32_t n, const char *what,
                        char *err, size_t errlen)
{
    return upload(u, b, w, 4ull * n, what, err, errlen);
}

/* A matrix (or n_expert matrices one after another) of a type the shaders take. */
static bool upload_mat(struct uploader *u, struct vk_mat *d, uint32_t type, const uint8_t *data, int64_t rows,
                       int64_t cols, uint32_t n_expert, bool expert_shaders, const char *what, char *err,
                       size_t errlen)
{
    const struct q_traits *tr = q_type_traits(type);
    bool ok = expert_shaders ? vk_ops_supports(type) : vk_matmul_supports(type);
    if (!ok) {
        snprintf(err, errlen, "%s: type %s has no Vulkan shader", what, tr ? tr->name : "?");
        return false;
    }
    uint64_t row_bytes;
    if (cols % 8 || !q_row_bytes(type, (uint64_t)cols, &row_bytes) || rows > UINT32_MAX) {
        snprintf(err, errlen, "%s: %lld x %lld %s: the Vulkan shaders need a multiple of 8 columns", what,
                 (long long)rows, (long long)cols, tr->name);
        return false;
    }
    *d = (struct vk_mat){.type = type, .rows = (uint32_t)rows, .cols = (uint32_t)cols, .n_expert = n_expert};
    return upload(u, &d->buf, data, row_bytes * (uint64_t)rows * n_expert, what, err, errlen);
}

static bool upload_qmat(struct uploader *u, struct vk_mat *d, const struct q_mat *m, const char *what, char *err,
                        size_t errlen)
{
    return upload_mat(u, d, m->type, m->data, m->rows, m->cols, 1, false, what, err, errlen);
}

static bool upload_experts(struct uploader *u, struct vk_mat *d, const struct model_experts *x, uint32_t n_expert,
                           const char *what, char *err, size_t errlen)
{
    return upload_mat(u, d, x->type, x->data, x->rows, x->cols, n_expert, true, what, err, errlen);
}

/* The bytes of layer L the upload sends (its experts only when they go to the device). */
static uint64_t layer_bytes(const struct model_layer *L, const struct model_hparams *hp, bool experts)
{
    const struct q_mat *m[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->router};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        sum += m[i]->row_bytes * (uint64_t)m[i]->rows;
    if (experts)
        sum += (L->gate.expert_bytes + L->up.expert_bytes + L->down.expert_bytes) * hp->n_expert;
    return sum + 4ull * (2 * hp->n_embd + 2 * hp->head_k);  /* the norms */
}

static bool upload_layer(struct uploader *u, const struct model_layer *L, uint32_t l, struct vk_layer *d, char *err,
                         size_t errlen)
{
    const struct model_hparams *hp = &u->vm->hp;
    char what[64];
    const bool experts = l >= u->vm->n_cpu_moe;
#define NAME(s) (snprintf(what, sizeof what, "blk.%u." s, l), what)
    return upload_norm(u, &d->attn_norm, L->attn_norm, hp->n_embd, NAME("attn_norm"), err, errlen) &&
           upload_norm(u, &d->q_norm, L->q_norm, hp->head_k, NAME("attn_q_norm"), err, errlen) &&
           upload_norm(u, &d->k_norm, L->k_norm, hp->head_k, NAME("attn_k_norm"), err, errlen) &&
           upload_norm(u, &d->ffn_norm, L->ffn_norm, hp->n_embd, NAME("ffn_norm"), err, errlen) &&
           upload_qmat(u, &d->wq, &L->wq, NAME("attn_q"), err, errlen) &&
           upload_qmat(u, &d->wk, &L->wk, NAME("attn_k"), err, errlen) &&
           upload_qmat(u, &d->wv, &L->wv, NAME("attn_v"), err, errlen) &&
           upload_qmat(u, &d->wo, &L->wo, NAME("attn_output"), err, errlen) &&
           upload_qmat(u, &d->router, &L->router, NAME("ffn_gate_inp"), err, errlen) &&
           (!experts || (upload_experts(u, &d->gate, &L->gate, hp->n_expert, NAME("ffn_gate_exps"), err, errlen) &&
                         upload_experts(u, &d->up, &L->up, hp->n_expert, NAME("ffn_up_exps"), err, errlen) &&
                         upload_experts(u, &d->down, &L->down, hp->n_expert, NAME("ffn_down_exps"), err, errlen)));
#undef NAME
}

struct vk_model *vk_model_upload(struct vk_ctx *ctx, const struct model *m, uint32_t n_cpu_moe,
                                 void (*progress)(void *, double), void *pctx, char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    if (hp->head_k != hp->head_v) {
        snprintf(err, errlen, "Vulkan: key and value heads of different sizes (%u, %u) are not supported",
                 hp->head_k, hp->head_v);
        return NULL;
    }
    struct vk_model *vm = calloc(1, sizeof *vm);
    if (!vm || !(vm->layers = calloc(hp->n_layer, sizeof *vm->layers))) {
        free(vm);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vm->ctx = ctx;
    vm->m = m;
    vm->n_cpu_moe = n_cpu_moe < hp->n_layer ? n_cpu_moe : hp->n_layer;
    vm->hp = *hp;
    vm->output_tied = m->output.data == m->token_embd.data;
    struct uploader u = {.vm = vm, .progress = progress, .pctx = pctx};
    u.total = m->token_embd.row_bytes * (uint64_t)m->token_embd.rows +
              (vm->output_tied ? 0 : m->output.row_bytes * (uint64_t)m->output.rows) + 4ull * hp->n_embd;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        u.total += layer_bytes(&m->layers[l], hp, l >= vm->n_cpu_moe);
    bool ok = (vm->ops = vk_ops_create(ctx, err, errlen)) != NULL && (vm->mm = vk_matmul_create(ctx, err, errlen)) &&
              upload_mat(&u, &vm->token_embd, m->token_embd.type, m->token_embd.data, m->token_embd.rows,
                         m->token_embd.cols, 1, true, "token_embd", err, errlen) &&
              upload_norm(&u, &vm->output_norm, m->output_norm, hp->n_embd, "output_norm", err, errlen);
    if (ok && !vm->output_tied)
        ok = upload_qmat(&u, &vm->output, &m->output, "output", err, errlen);
    else if (ok)
        vm->output = (struct vk_mat){.type = vm->token_embd.type, .rows = vm->token_embd.rows,
                                     .cols = vm->token_embd.cols, .n_expert = 1};
    if (ok && vm->output_tied && !vk_matmul_supports(vm->output.type)) {
        snprintf(err, errlen, "token_embd (tied output): no Vulkan matmul shader for its type");
        ok = false;
    }
    for (uint32_t l = 0; ok && l < hp->n_layer; l++)
        ok = upload_layer(&u, &m->layers[l], l, &vm->layers[l], err, errlen);
    if (!ok) {
        vk_model_free(vm);
        return NULL;
    }
    return vm;
}

static void mat_free(struct vk_ctx *ctx, struct vk_mat *m)
{
    vk_buffer_destroy(ctx, &m->buf);
}

void vk_model_free(struct vk_model *vm)
{
    if (!vm)
        return;
    struct vk_ctx *ctx = vm->ctx;
    for (uint32_t l = 0; l < vm->hp.n_layer; l++) {
        struct vk_layer *L = &vm->layers[l];
        struct vk_buffer *norms[] = {&L->attn_norm, &L->q_norm, &L->k_norm, &L->ffn_norm};
        struct vk_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->router, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < 4; i++)
            vk_buffer_destroy(ctx, norms[i]);
        for (size_t i = 0; i < 8; i++)
            mat_free(ctx, mats[i]);
    }
    free(vm->layers);
    mat_free(ctx, &vm->token_embd);
    if (!vm->output_tied)
        mat_free(ctx, &vm->output);
    vk_buffer_destroy(ctx, &vm->output_norm);
    vk_matmul_destroy(vm->mm);
    vk_ops_destroy(vm->ops);
    free(vm);
}

uint64_t vk_model_weight_bytes(const struct vk_model *vm)
{
    return vm->weight_bytes;
}

uint32_t vk_model_cpu_moe_layers(const struct vk_model *vm)
{
    return vm->n_cpu_moe;
}

/* ----------------------------------------------------------------- context --- */

static bool dev_buf(struct vk_model_ctx *c, struct vk_buffer *b, uint64_t bytes, enum vk_mem kind, const char *what,
                    char *err, size_t errlen)
{
    char why[256];
    if (vk_buffer_create(c->vm->ctx, b, bytes ? bytes : 4, kind, why, sizeof why))
        return true;
    snprintf(err, errlen, "Vulkan %s (%.1f MiB): %s", what, (double)bytes / 1048576.0, why);
    return false;
}

static uint32_t attn_split_units(const struct model_hparams *hp)
{
    return SPLIT_MAX_UNITS / hp->n_head_kv ? SPLIT_MAX_UNITS / hp->n_head_kv : 1;
}

/* The context's buffers in one table, so that vk_model_ctx_bytes (the planner) and the
 * allocation cannot disagree. */
enum ctx_buf {
    CB_X, CB_H, CB_TMP, CB_Q, CB_K, CB_V, CB_ATT, CB_PROBS, CB_IDS, CB_WTS, CB_GATE, CB_UP, CB_DOWN, CB_ROUTE,
    CB_PART, CB_XQ0, CB_XQ1, CB_XQ2, CB_XQS0, CB_XQS1, CB_XQS2, CB_GATE_SCALES, CB_COUNT
};

static const char *const ctx_buf_names[CB_COUNT] = {
    "residual", "normed input", "layer output", "q", "k", "v", "attention", "router logits", "expert ids",
    "expert weights", "expert gate", "expert up", "expert down", "route", "attention partials", "rounded input",
    "rounded input", "rounded input", "input scales", "input scales", "input scales", "expert scales",
};

static void ctx_buf_bytes(const struct model_hparams *hp, uint32_t max_batch, uint64_t out[CB_COUNT])
{
    const uint64_t B = max_batch, E = hp->n_embd, K = hp->n_expert_used, P = B * K;
    const uint64_t hd = hp->head_k, nq = (uint64_t)hp->n_head * hd, nkv = (uint64_t)hp->n_head_kv * hd;
    const uint64_t part = (uint64_t)attn_split_units(hp) * hp->n_head * SPLIT_MAX * (hd + 2);
    const uint64_t floats[CB_COUNT] = {
        [CB_X] = B * E, [CB_H] = B * E, [CB_TMP] = B * E, [CB_Q] = B * nq, [CB_K] = B * nkv, [CB_V] = B * nkv,
        [CB_ATT] = B * nq, [CB_PROBS] = B * hp->n_expert, [CB_IDS] = P, [CB_WTS] = P, [CB_GATE] = P * hp->n_ff_exp,
        [CB_UP] = P * hp->n_ff_exp, [CB_DOWN] = P * E, [CB_ROUTE] = vk_op_moe_route_words((uint32_t)P, hp->n_expert),
        [CB_PART] = part, [CB_XQ0] = B * (E > nq ? E : nq), [CB_XQ1] = B * E, [CB_XQ2] = B * E,
        /* one scale per 32 values at most (Q8_0 blocks) */
        [CB_XQS0] = B * (E > nq ? E : nq) / 32 + 1, [CB_XQS1] = B * E / 32 + 1, [CB_XQS2] = B * E / 32 + 1,
        [CB_GATE_SCALES] = P * hp->n_ff_exp / 32 + 1,
    };
    for (int i = 0; i < CB_COUNT; i++)
        out[i] = 4 * floats[i];
}

/* Host input layout: each section starts on a 16-byte boundary. */
static VkDeviceSize section(VkDeviceSize *at, uint64_t words)
{
    VkDeviceSize off = *at;
    *at += (4 * words + 15) & ~(VkDeviceSize)15;
    return off;
}

/* Sections of the host-visible buffer of CPU-expert layers (normed input, ids, weights, output;
 * offsets into o when given); returns its size. */
static uint64_t moe_host_layout(const struct model_hparams *hp, uint32_t max_batch, struct vk_model_ctx *o)
{
    const uint64_t xw = (uint64_t)max_batch * hp->n_embd, pw = (uint64_t)max_batch * hp->n_expert_used;
    VkDeviceSize at = 0, x = section(&at, xw), ids = section(&at, pw), wts = section(&at, pw), out = section(&at, xw);
    if (o) {
        o->mh_x = x;
        o->mh_ids = ids;
        o->mh_wts = wts;
        o->mh_out = out;
    }
    return at;
}

static uint64_t cache_bytes(const struct model_hparams *hp, uint32_t pool_tokens)
{
    const uint64_t pages = (pool_tokens + VK_MODEL_PAGE_TOKENS - 1) / VK_MODEL_PAGE_TOKENS;
    return pages * VK_MODEL_PAGE_TOKENS * 2ull * hp->n_head_kv * hp->head_k;
}

void vk_model_ctx_bytes(const struct model_hparams *hp, uint32_t n_seqs, uint32_t pool_tokens,
                        uint32_t max_seq_tokens, uint32_t max_batch, struct vk_model_bytes *out)
{
    uint64_t b[CB_COUNT];
    ctx_buf_bytes(hp, max_batch, b);
    out->kv = 2 * hp->n_layer * cache_bytes(hp, pool_tokens);
    out->compute = 0;
    for (int i = 0; i < CB_COUNT; i++)
        out->compute += b[i];
    const uint64_t seq_pages = (max_seq_tokens + VK_MODEL_PAGE_TOKENS - 1) / VK_MODEL_PAGE_TOKENS;
    const uint64_t rows = max_batch < LOGITS_ROWS ? max_batch : LOGITS_ROWS;
    out->host = 4ull * (5ull * max_batch + n_seqs * seq_pages + 16) + 4ull * rows * hp->n_vocab;
    out->host_moe = moe_host_layout(hp, max_batch, NULL);
}

static bool ctx_buffers(struct vk_model_ctx *c, uint32_t n_seqs, char *err, size_t errlen)
{
    const struct model_hparams *hp = &c->vm->hp;
    const uint64_t B = c->max_batch, cache = cache_bytes(hp, c->kv.n_pages * c->kv.page_tokens);
    bool ok = true;
    for (uint32_t l = 0; ok && l < hp->n_layer; l++)
        ok = dev_buf(c, &c->k_cache[l], cache, VK_MEM_DEVICE, "K cache", err, errlen) &&
             dev_buf(c, &c->v_cache[l], cache, VK_MEM_DEVICE, "V cache", err, errlen);
    struct vk_buffer *bufs[CB_COUNT] = {
        &c->x, &c->h, &c->tmp, &c->q, &c->k, &c->v, &c->att, &c->probs, &c->ids, &c->wts, &c->gate_out, &c->up_out,
        &c->down_out, &c->route, &c->attn_part, &c->xq[0], &c->xq[1], &c->xq[2], &c->xqs[0], &c->xqs[1], &c->xqs[2],
        &c->gate_scales,
    };
    uint64_t bytes[CB_COUNT];
    ctx_buf_bytes(hp, c->max_batch, bytes);
    for (int i = 0; ok && i < CB_COUNT; i++)
        ok = dev_buf(c, bufs[i], bytes[i], VK_MEM_DEVICE, ctx_buf_names[i], err, errlen);
    VkDeviceSize at = 0;
    c->in_tok = section(&at, B);
    c->in_pos = section(&at, B);
    c->in_pairs = section(&at, 2 * B);
    c->in_want = section(&at, B);
    c->in_pages = section(&at, (uint64_t)n_seqs * c->kv.max_seq_pages);
    ok = ok && dev_buf(c, &c->in, at, VK_MEM_HOST, "inputs", err, errlen) &&
         dev_buf(c, &c->logits, 4ull * c->logit_rows * hp->n_vocab, VK_MEM_HOST, "logits", err, errlen);
    if (ok && c->vm->n_cpu_moe)
        ok = dev_buf(c, &c->moe_host, moe_host_layout(hp, c->max_batch, c), VK_MEM_HOST, "CPU expert exchange",
                     err, errlen);
    return ok;
}

struct vk_model_ctx *vk_model_ctx_new(struct vk_model *vm, uint32_t n_seqs, uint32_t pool_tokens,
                                      uint32_t max_seq_tokens, uint32_t max_batch, char *err, size_t errlen)
{
    const struct model_hparams *hp = &vm->hp;
    if (max_batch == 0 || (uint64_t)max_batch * hp->n_expert_used > 65535) {
        snprintf(err, errlen, "Vulkan: batch of %u tokens (1 to %u)", max_batch, 65535 / hp->n_expert_used);
        return NULL;
    }
    struct vk_model_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->vm = vm;
    c->max_batch = max_batch;
    c->max_seq_tokens = max_seq_tokens;
    c->logit_rows = max_batch < LOGITS_ROWS ? max_batch : LOGITS_ROWS;
    const uint32_t page = VK_MODEL_PAGE_TOKENS, pages = (pool_tokens + page - 1) / page;
    const uint32_t row = 2 * hp->n_head_kv * hp->head_k;
    if (!kvpool_init_pages(&c->kv, hp->n_layer, row, row, page, pages, n_seqs, max_seq_tokens, err, errlen)) {
        free(c);
        return NULL;
    }
    c->k_cache = calloc(hp->n_layer, sizeof *c->k_cache);
    c->v_cache = calloc(hp->n_layer, sizeof *c->v_cache);
    if (!c->k_cache || !c->v_cache) {
        snprintf(err, errlen, "out of memory");
        vk_model_ctx_free(c);
        return NULL;
    }
    if (!ctx_buffers(c, n_seqs, err, errlen)) {
        vk_model_ctx_free(c);
        return NULL;
    }
    return c;
}

void vk_model_ctx_free(struct vk_model_ctx *c)
{
    if (!c)
        return;
    struct vk_ctx *ctx = c->vm->ctx;
    for (uint32_t l = 0; l < c->vm->hp.n_layer; l++) {
        if (c->k_cache)
            vk_buffer_destroy(ctx, &c->k_cache[l]);
        if (c->v_cache)
            vk_buffer_destroy(ctx, &c->v_cache[l]);
    }
    free(c->k_cache);
    free(c->v_cache);
    struct vk_buffer *bufs[] = {&c->x, &c->h, &c->tmp, &c->q, &c->k, &c->v, &c->att, &c->probs, &c->ids, &c->wts,
                                &c->gate_out, &c->up_out, &c->down_out, &c->route, &c->attn_part, &c->in, &c->logits,
                                &c->xq[0], &c->xq[1], &c->xq[2], &c->xqs[0], &c->xqs[1], &c->xqs[2],
                                &c->gate_scales, &c->moe_host};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        vk_buffer_destroy(ctx, bufs[i]);
    kvpool_free(&c->kv);
    q_moe_scratch_free(&c->moe);
    free(c);
}

struct kvpool *vk_model_ctx_kv(struct vk_model_ctx *c)
{
    return &c->kv;
}

/* -------------------------------------------------------------- submission --- */

/* A command buffer whose device time is measured (timestamps 0 and 1) when the queue has them. */
static bool begin_timed(struct vk_model_ctx *c, char *err, size_t errlen)
{
    struct vk_ctx *ctx = c->vm->ctx;
    return vk_begin(ctx, err, errlen) &&
           (vk_ctx_info(ctx)->timestamp_period_ns <= 0 || vk_timestamp(ctx, 0, err, errlen));
}

/* Submits, waits, and adds the submission's device time to c->gpu_ns. */
static bool submit_timed(struct vk_model_ctx *c, char *err, size_t errlen)
{
    struct vk_ctx *ctx = c->vm->ctx;
    const bool timed = vk_ctx_info(ctx)->timestamp_period_ns > 0;
    double ns = 0;
    if ((timed && !vk_timestamp(ctx, 1, err, errlen)) || !vk_submit_wait(ctx, err, errlen) ||
        (timed && !vk_timestamp_elapsed_ns(ctx, 0, 1, &ns, err, errlen)))
        return false;
    c->gpu_ns += ns;
    return true;
}

double vk_model_ctx_gpu_ns(const struct vk_model_ctx *c)
{
    return c->gpu_ns;
}

/* --------------------------------------------------------------- recording --- */

/* What one step's recording needs besides the context. */
struct step {
    struct vk_model_ctx *c;
    uint32_t n, max_len;
    const uint8_t *kind, *kind_out;  /* enum q_row_kind of each entry / wanted row (q_row_kinds) */
    char *err;
    size_t errlen;
};

static struct vk_view view(const struct vk_buffer *b)
{
    return (struct vk_view){.b = b};
}

/* Whether llama.cpp sums W's products for a token of this kind in its batched order (Q4_K:
 * gemm for groups of four; F32: tinyBLAS for any batch of 2+) rather than its single-row one:
 * the CPU engine's rule (kernels/quants.h, batched_rows), which the shaders follow (pair_order). */
static bool batched_order(const struct vk_mat *w, uint8_t kind)
{
    const struct q_kernels *k = q_kernels_get(w->type);
    if (!k || !k->batched_rows || w->rows % k->batched_rows || (k->batched_cols && w->cols % k->batched_cols))
        return false;
    return k->batched.by_kind[kind] != k->batched.by_kind[Q_ROW_ALONE];
}

/* A product's input: x rounded for the weights' type, and the scales act_round wrote for its Q8
 * blocks (NULL: none, the shader derives what it needs). */
struct act_in {
    const struct vk_buffer *x, *scales;
};

/* y = W x for n rows of x, whose q_row_kinds are kind[0..n): one dispatch per run of entries
 * that take the same float order (one in all for most types and batches). */
static bool matmul(struct step *s, const struct vk_mat *w, struct act_in in, const struct vk_buffer *y, uint32_t n,
                   const uint8_t *kind)
{
    const uint64_t block = q_type_traits(w->type)->block_size;
    for (uint32_t t0 = 0; t0 < n;) {
        bool batched = batched_order(w, kind[t0]);
        uint32_t t1 = t0 + 1;
        while (t1 < n && batched_order(w, kind[t1]) == batched)
            t1++;
        struct vk_matmul_args a = {.type = w->type, .nrows = w->rows, .ncols = w->cols, .batch = t1 - t0,
                                   .w = &w->buf, .x = in.x, .x_off = 4ull * t0 * w->cols, .y = y,
                                   .y_off = 4ull * t0 * w->rows, .pair_order = batched, .xs = in.scales,
                                   .xs_off = 4ull * t0 * (w->cols / block)};
        if (!vk_matmul_record(s->c->vm->mm, &a, s->err, s->errlen))
            return false;
        t0 = t1;
    }
    return true;
}

/* Inputs of products prepared from one source: which activation types are rounded into which
 * of the context's xq buffers. */
struct act_inputs {
    const struct vk_buffer *src;
    uint32_t rows, n, types[ACT_SLOTS], used;
};

/* Whether act_round writes block scales for this activation type (the Q8 ones). */
static bool has_scales(uint32_t act)
{
    return act == Q_Q8_0 || act == Q_Q8_1 || act == Q_Q8_K;
}

/* The input a product with weights of type wtype reads: src itself for F32 weights, else src
 * rounded to wtype's activation type with its block scales (recorded on first use of that type;
 * barrier before use). False with s->err set. */
static bool act_input(struct step *s, struct act_inputs *ai, uint32_t wtype, struct act_in *out)
{
    uint32_t act = vk_op_act_type(wtype);
    *out = (struct act_in){.x = ai->src};
    if (act == Q_F32)
        return true;
    for (uint32_t i = 0; i < ai->used; i++)
        if (ai->types[i] == act) {
            *out = (struct act_in){.x = &s->c->xq[i], .scales = has_scales(act) ? &s->c->xqs[i] : NULL};
            return true;
        }
    if (ai->used == ACT_SLOTS) {
        snprintf(s->err, s->errlen, "Vulkan: more than %d activation types for one input", ACT_SLOTS);
        return false;
    }
    const uint32_t i = ai->used;
    struct vk_op_act_round_args a = {.wtype = wtype, .rows = ai->rows, .n = ai->n, .x = view(ai->src),
                                     .y = view(&s->c->xq[i]),
                                     .scales = has_scales(act) ? view(&s->c->xqs[i]) : (struct vk_view){0}};
    if (!vk_op_act_round(s->c->vm->ops, &a, s->err, s->errlen))
        return false;
    ai->types[ai->used++] = act;
    *out = (struct act_in){.x = &s->c->xq[i], .scales = has_scales(act) ? &s->c->xqs[i] : NULL};
    return true;
}

/* Rounds src for each of the weights' types, then a barrier: the inputs of their products. */
static bool act_inputs_for(struct step *s, const struct vk_buffer *src, uint32_t rows, uint32_t n,
                           const struct vk_mat *const *w, size_t nw, struct act_in *out)
{
    struct act_inputs ai = {.src = src, .rows = rows, .n = n};
    for (size_t i = 0; i < nw; i++)
        if (!act_input(s, &ai, w[i]->type, &out[i]))
            return false;
    if (ai.used)
        vk_barrier(s->c->vm->ctx);
    return true;
}

static bool rms_norm(struct step *s, const struct vk_buffer *x, const struct vk_buffer *w, uint32_t rows,
                     uint32_t heads, uint32_t n, const struct vk_buffer *y)
{
    struct vk_op_rms_norm_args a = {.n_tokens = rows, .heads = heads, .n = n, .eps = s->c->vm->hp.rms_eps,
                                    .x = view(x), .w = view(w), .y = view(y)};
    return vk_op_rms_norm(s->c->vm->ops, &a, s->err, s->errlen);
}

static bool add_into(struct step *s, const struct vk_buffer *x, const struct vk_buffer *y)
{
    struct vk_op_ew_args a = {.op = VK_EW_ADD, .rows = s->n, .n = s->c->vm->hp.n_embd, .a = view(x), .b = view(y),
                              .y = view(x)};
    return vk_op_elementwise(s->c->vm->ops, &a, s->err, s->errlen);
}

static struct vk_kv_layer kv_layer(struct vk_model_ctx *c, uint32_t l)
{
    const struct model_hparams *hp = &c->vm->hp;
    return (struct vk_kv_layer){
        .k = &c->k_cache[l], .v = &c->v_cache[l], .n_pages = c->kv.n_pages, .page_tokens = c->kv.page_tokens,
        .n_head_kv = hp->n_head_kv, .head_dim = hp->head_k, .pages = &c->in, .pages_off = c->in_pages,
        .n_seqs = c->kv.n_seqs, .max_seq_pages = c->kv.max_seq_pages,
    };
}

/* Q/K/V, per-head norms, RoPE, the cache store and attention: c->att. */
static bool record_attention(struct step *s, uint32_t l)
{
    struct vk_model_ctx *c = s->c;
    struct vk_ctx *ctx = c->vm->ctx;
    struct vk_ops *ops = c->vm->ops;
    const struct model_hparams *hp = &c->vm->hp;
    const struct vk_layer *L = &c->vm->layers[l];
    const uint32_t n = s->n, hd = hp->head_k;
    if (!rms_norm(s, &c->x, &L->attn_norm, n, 1, hp->n_embd, &c->h))
        return false;
    vk_barrier(ctx);
    const struct vk_mat *qkv[3] = {&L->wq, &L->wk, &L->wv};
    struct act_in in[3];
    if (!act_inputs_for(s, &c->h, n, hp->n_embd, qkv, 3, in) || !matmul(s, &L->wq, in[0], &c->q, n, s->kind) ||
        !matmul(s, &L->wk, in[1], &c->k, n, s->kind) || !matmul(s, &L->wv, in[2], &c->v, n, s->kind))
        return false;
    vk_barrier(ctx);
    if (!rms_norm(s, &c->q, &L->q_norm, n, hp->n_head, hd, &c->q) ||
        !rms_norm(s, &c->k, &L->k_norm, n, hp->n_head_kv, hd, &c->k))
        return false;
    vk_barrier(ctx);
    struct vk_view pos = {.b = &c->in, .off = c->in_pos}, pairs = {.b = &c->in, .off = c->in_pairs};
    struct vk_op_rope_args rq = {.n_tokens = n, .heads = hp->n_head, .head_dim = hd, .n_rot = hp->n_rot,
                                 .freq_base = hp->rope_base, .x = view(&c->q), .pos = pos, .y = view(&c->q)};
    struct vk_op_rope_args rk = rq;
    rk.heads = hp->n_head_kv;
    rk.x = rk.y = view(&c->k);
    if (!vk_op_rope(ops, &rq, s->err, s->errlen) || !vk_op_rope(ops, &rk, s->err, s->errlen))
        return false;
    vk_barrier(ctx);
    const struct vk_kv_layer kv = kv_layer(c, l);
    struct vk_op_kv_store_args st = {.kv = &kv, .n_tokens = n, .k = view(&c->k), .v = view(&c->v), .tokens = pairs};
    if (!vk_op_kv_store(ops, &st, s->err, s->errlen))
        return false;
    vk_barrier(ctx);
    /* a short step over a long context: spread each (KV head, token) over several workgroups */
    uint32_t split = 1;
    if (n <= attn_split_units(hp) && s->max_len >= SPLIT_MIN_LEN) {
        split = (s->max_len + SPLIT_CHUNK - 1) / SPLIT_CHUNK;
        split = split < SPLIT_MAX ? split : SPLIT_MAX;
    }
    struct vk_op_attention_args at = {.kv = &kv, .n_tokens = n, .n_head = hp->n_head, .q_f16 = true, .p_f16 = true,
                                      .q = view(&c->q), .tokens = pairs, .out = view(&c->att), .n_split = split,
                                      .max_len = s->max_len, .scratch = view(&c->attn_part)};
    if (!vk_op_attention(ops, &at, s->err, s->errlen))
        return false;
    vk_barrier(ctx);
    return true;
}

/* The router's logits from its input, then top-k: expert ids and weights in c->ids and c->wts. */
static bool record_router(struct step *s, const struct vk_mat *router, struct act_in in)
{
    struct vk_model_ctx *c = s->c;
    const struct model_hparams *hp = &c->vm->hp;
    if (!matmul(s, router, in, &c->probs, s->n, s->kind))
        return false;
    vk_barrier(c->vm->ctx);
    struct vk_op_router_args r = {.n_tokens = s->n, .n_expert = hp->n_expert, .k = hp->n_expert_used, .norm = true,
                                  .logits = view(&c->probs), .ids = view(&c->ids), .weights = view(&c->wts)};
    if (!vk_op_router(c->vm->ops, &r, s->err, s->errlen))
        return false;
    vk_barrier(c->vm->ctx);
    return true;
}

/* Router, top-k and the routed experts: c->tmp. */
static bool record_moe(struct step *s, uint32_t l)
{
    struct vk_model_ctx *c = s->c;
    struct vk_ops *ops = c->vm->ops;
    const struct model_hparams *hp = &c->vm->hp;
    const struct vk_layer *L = &c->vm->layers[l];
    const struct vk_mat *w[2] = {&L->router, &L->gate};
    struct act_in in[2];
    if (!act_inputs_for(s, &c->h, s->n, hp->n_embd, w, 2, in) || !record_router(s, &L->router, in[0]))
        return false;
    bool grouped = (uint64_t)s->n * hp->n_expert_used >= GROUPED_MIN_PAIRS;
    struct vk_op_moe_ffn_args f = {
        .n_tokens = s->n, .k = hp->n_expert_used, .n_expert = hp->n_expert, .n_embd = hp->n_embd,
        .n_ff = hp->n_ff_exp, .gate_type = L->gate.type, .up_type = L->up.type, .down_type = L->down.type,
        .gate = &L->gate.buf, .up = &L->up.buf, .down = &L->down.buf, .ids = view(&c->ids), .weights = view(&c->wts),
        .x = view(in[1].x), .y = view(&c->tmp), .gate_out = view(&c->gate_out), .up_out = view(&c->up_out),
        .down_out = view(&c->down_out), .route = grouped ? view(&c->route) : (struct vk_view){0},
        .act_round = true, .x_scales = in[1].scales ? view(in[1].scales) : (struct vk_view){0},
        .gate_scales = has_scales(vk_op_act_type(L->down.type)) ? view(&c->gate_scales) : (struct vk_view){0},
    };
    return vk_op_moe_ffn(ops, &f, s->err, s->errlen);  /* ends with a barrier */
}

/* Router and top-k on the GPU, then the layer's experts on the CPU (hybrid placement): the normed
 * input and the choice are copied to the host and the step so far is submitted; the CPU runs the
 * experts from the model's mapped tensors (kernels/moe.c, the CPU engine's own path), and a new
 * command buffer copies the result into c->tmp. */
static bool record_cpu_moe(struct step *s, uint32_t l)
{
    struct vk_model_ctx *c = s->c;
    struct vk_ctx *ctx = c->vm->ctx;
    const struct model_hparams *hp = &c->vm->hp;
    const struct vk_mat *router = &c->vm->layers[l].router;
    struct act_in in;
    if (!act_inputs_for(s, &c->h, s->n, hp->n_embd, &router, 1, &in) || !record_router(s, router, in))
        return false;
    const VkDeviceSize xb = 4ull * s->n * hp->n_embd, pb = 4ull * s->n * hp->n_expert_used;
    if (!vk_copy(ctx, &c->h, 0, &c->moe_host, c->mh_x, xb, s->err, s->errlen) ||
        !vk_copy(ctx, &c->ids, 0, &c->moe_host, c->mh_ids, pb, s->err, s->errlen) ||
        !vk_copy(ctx, &c->wts, 0, &c->moe_host, c->mh_wts, pb, s->err, s->errlen) ||
        !submit_timed(c, s->err, s->errlen))
        return false;
    const struct model_layer *L = &c->vm->m->layers[l];
    const struct q_moe_weights w = {
        .gate = L->gate.data, .up = L->up.data, .down = L->down.data,
        .gate_type = L->gate.type, .up_type = L->up.type, .down_type = L->down.type,
        .n_embd = hp->n_embd, .n_ff = hp->n_ff_exp, .n_expert = hp->n_expert};
    uint8_t *host = c->moe_host.map;
    if (!q_moe_forward(&w, s->n, (const float *)(host + c->mh_x), (int)hp->n_expert_used,
                       (const int32_t *)(host + c->mh_ids), (const float *)(host + c->mh_wts),
                       (float *)(host + c->mh_out), &c->moe, s->err, s->errlen) ||
        !begin_timed(c, s->err, s->errlen))
        return false;
    if (!vk_copy(ctx, &c->moe_host, c->mh_out, &c->tmp, 0, xb, s->err, s->errlen))
        return false;
    vk_barrier(ctx);
    return true;
}

static bool record_layer(struct step *s, uint32_t l)
{
    struct vk_model_ctx *c = s->c;
    struct vk_ctx *ctx = c->vm->ctx;
    const struct vk_layer *L = &c->vm->layers[l];
    const struct vk_mat *wo = &L->wo;
    struct act_in in;
    if (!record_attention(s, l) || !act_inputs_for(s, &c->att, s->n, c->vm->hp.n_head * c->vm->hp.head_k, &wo, 1, &in) ||
        !matmul(s, wo, in, &c->tmp, s->n, s->kind))
        return false;
    vk_barrier(ctx);
    if (!add_into(s, &c->x, &c->tmp))
        return false;
    vk_barrier(ctx);
    if (!rms_norm(s, &c->x, &L->ffn_norm, s->n, 1, c->vm->hp.n_embd, &c->h))
        return false;
    vk_barrier(ctx);
    bool moe_ok = l < c->vm->n_cpu_moe ? record_cpu_moe(s, l) : record_moe(s, l);
    if (!moe_ok || !add_into(s, &c->x, &c->tmp))
        return false;
    vk_barrier(ctx);
    return true;
}

/* The final norm and output head over wanted rows [first, first + m) into the logits buffer. */
static bool record_head(struct step *s, uint32_t first, uint32_t m)
{
    struct vk_model_ctx *c = s->c;
    struct vk_model *vm = c->vm;
    const struct model_hparams *hp = &vm->hp;
    /* the wanted rows of the residual stream, gathered as an F32 "table" lookup */
    struct vk_op_get_rows_args pick = {.type = Q_F32, .n_rows = s->n, .ncols = hp->n_embd, .table = &c->x,
                                       .n_ids = m, .ids = {.b = &c->in, .off = c->in_want + 4ull * first},
                                       .y = view(&c->h)};
    if (!vk_op_get_rows(vm->ops, &pick, s->err, s->errlen))
        return false;
    vk_barrier(vm->ctx);
    if (!rms_norm(s, &c->h, &vm->output_norm, m, 1, hp->n_embd, &c->h))
        return false;
    vk_barrier(vm->ctx);
    const struct vk_mat *out = vm->output_tied ? &vm->token_embd : &vm->output;
    struct act_in in;
    return act_inputs_for(s, &c->h, m, hp->n_embd, &out, 1, &in) &&
           matmul(s, out, in, &c->logits, m, s->kind_out + first);
}

/* Embedding, the layers, then the head over the first m wanted rows. */
static bool record_step(struct step *s, uint32_t m)
{
    struct vk_model_ctx *c = s->c;
    struct vk_model *vm = c->vm;
    const struct model_hparams *hp = &vm->hp;
    struct vk_op_get_rows_args emb = {.type = vm->token_embd.type, .n_rows = vm->token_embd.rows,
                                      .ncols = hp->n_embd, .table = &vm->token_embd.buf, .n_ids = s->n,
                                      .ids = {.b = &c->in, .off = c->in_tok}, .y = view(&c->x)};
    if (!vk_op_get_rows(vm->ops, &emb, s->err, s->errlen))
        return false;
    vk_barrier(vm->ctx);
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if (!record_layer(s, l))
            return false;
    return m == 0 || record_head(s, 0, m);
}

/* Logits rows [first, first + m) from a finished step, as one more submission. */
static bool head_again(struct step *s, uint32_t first, uint32_t m)
{
    struct vk_ctx *ctx = s->c->vm->ctx;
    if (!begin_timed(s->c, s->err, s->errlen)) {
        vk_cancel(ctx);
        return false;
    }
    if (!record_head(s, first, m)) {
        vk_cancel(ctx);
        return false;
    }
    return submit_timed(s->c, s->err, s->errlen);
}

/* ------------------------------------------------------------------ decode --- */

/* Writes the step's inputs into the host-visible buffer the shaders read; returns rows wanted. */
static uint32_t write_inputs(struct vk_model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                             const uint32_t *seq, const bool *want, uint32_t *max_len)
{
    uint8_t *base = c->in.map;
    uint32_t *tok = (uint32_t *)(base + c->in_tok), *ps = (uint32_t *)(base + c->in_pos);
    uint32_t *pairs = (uint32_t *)(base + c->in_pairs), *rows = (uint32_t *)(base + c->in_want);
    uint32_t m = 0;
    *max_len = 0;
    for (uint32_t t = 0; t < n; t++) {
        tok[t] = (uint32_t)token[t];
        ps[t] = pos[t];
        pairs[2 * t] = seq[t];
        pairs[2 * t + 1] = pos[t];
        if (want[t])
            rows[m++] = t;
        if (pos[t] + 1 > *max_len)
            *max_len = pos[t] + 1;
    }
    uint32_t *pages = (uint32_t *)(base + c->in_pages);
    const uint32_t stride = c->kv.max_seq_pages;
    for (uint32_t s = 0; s < c->kv.n_seqs; s++) {
        const struct kv_seq *q = &c->kv.seqs[s];
        memcpy(pages + (size_t)s * stride, q->pages, (size_t)q->n_pages * sizeof *pages);
        memset(pages + (size_t)s * stride + q->n_pages, 0, (size_t)(stride - q->n_pages) * sizeof *pages);
    }
    return m;
}

/* q_row_kinds of a step's entries and of its wanted rows, in one allocation. */
struct row_kinds {
    void *mem;
    uint8_t *kind, *kind_out;
};

static bool row_kinds_for(struct row_kinds *rk, uint32_t n, const uint32_t *seq, const bool *want, uint32_t n_seqs)
{
    rk->mem = malloc((size_t)n * (2 + sizeof(uint32_t)) + (size_t)n_seqs * sizeof(uint32_t));
    if (!rk->mem)
        return false;
    uint32_t *counts = rk->mem, *out_seq = counts + n_seqs;
    rk->kind = (uint8_t *)(out_seq + n);
    rk->kind_out = rk->kind + n;
    uint32_t m = 0;
    for (uint32_t t = 0; t < n; t++)
        if (want[t])
            out_seq[m++] = seq[t];
    q_row_kinds(n, seq, n_seqs, counts, rk->kind);
    q_row_kinds(m, out_seq, n_seqs, counts, rk->kind_out);
    return true;
}

/* The recorded step, then the logits rows that did not fit its buffer (head_again). */
static bool decode_steps(struct step *s, uint32_t m, float *logits)
{
    struct vk_model_ctx *c = s->c;
    struct vk_ctx *ctx = c->vm->ctx;
    char *err = s->err;
    size_t errlen = s->errlen;
    c->gpu_ns = 0;
    if (!begin_timed(c, err, errlen)) {
        vk_cancel(ctx);
        return false;
    }
    const uint32_t V = c->vm->hp.n_vocab, first_rows = m < c->logit_rows ? m : c->logit_rows;
    if (!record_step(s, first_rows)) {
        vk_cancel(ctx);
        return false;
    }
    if (!submit_timed(c, err, errlen))
        return false;
    memcpy(logits, c->logits.map, (size_t)first_rows * V * sizeof *logits);
    for (uint32_t done = first_rows; done < m;) {
        uint32_t rows = m - done < c->logit_rows ? m - done : c->logit_rows;
        if (!head_again(s, done, rows))
            return false;
        memcpy(logits + (size_t)done * V, c->logits.map, (size_t)rows * V * sizeof *logits);
        done += rows;
    }
    return true;
}

bool vk_model_decode(struct vk_model_ctx *c, uint32_t n, const int32_t *token, const uint32_t *pos,
                     const uint32_t *seq, const bool *want_logits, float *logits, char *err, size_t errlen)
{
    const struct kvpool_batch_limits lim = {.max_batch = c->max_batch, .n_vocab = c->vm->hp.n_vocab,
                                            .max_seq_tokens = c->max_seq_tokens};
    if (!kvpool_check_batch(&c->kv, &lim, n, token, pos, seq, err, errlen))
        return false;
    struct step s = {.c = c, .n = n, .err = err, .errlen = errlen};
    uint32_t m = write_inputs(c, n, token, pos, seq, want_logits, &s.max_len);
    struct row_kinds rk;
    if (!row_kinds_for(&rk, n, seq, want_logits, c->kv.n_seqs)) {
        snprintf(err, errlen, "out of memory for a batch of %u", n);
        return false;
    }
    s.kind = rk.kind;
    s.kind_out = rk.kind_out;
    bool ok = decode_steps(&s, m, logits);
    free(rk.mem);
    if (!ok)
        return false;
    for (uint32_t t = 0; t < n; t++)
        if (c->kv.seqs[seq[t]].n_tokens < pos[t] + 1)
            c->kv.seqs[seq[t]].n_tokens = pos[t] + 1;
    return true;
}

