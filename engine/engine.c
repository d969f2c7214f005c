/* engine.c: the server's handle on a model (engine/engine.h): validation, the memory plan,
 * weights, tokenizer and KV pool opened in that order, so nothing is served from a file that
 * is not what it claims to be or that would not fit. */
#include "engine/engine.h"

#include <libgen.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/memplan.h"
#include "engine/model.h"
#include "engine/prefault.h"
#include "engine/qwen3next.h"
#include "engine/tokenizer.h"
#include "engine/validate.h"
#include "engine/vk_backend.h"
#include "kernels/qtypes.h"

struct engine {
    struct gguf_file *f;
    bool next;                 /* qwen3next; otherwise qwen3moe */
    struct model model;
    struct q3n_model q3n;
    bool model_loaded;
    struct model_ctx *ctx;      /* the CPU forward pass of qwen3moe, */
    struct q3n_ctx *q3n_ctx;    /* of qwen3next, */
    struct vk_backend *gpu;     /* or qwen3moe's on Vulkan */
    char device_note[512];
    struct tokenizer *tok;
    struct engine_info info;
    char *name, *tmpl;
};

static void progress(const struct engine_params *p, const char *stage, double fraction)
{
    if (p->progress)
        p->progress(p->progress_ctx, stage, fraction);
}

/* Every validation problem, one per line after a heading that names the file. */
static bool validate(struct engine *e, const struct engine_params *p, struct arch_hparams *hp, char *err,
                     size_t errlen)
{
    struct val_report rep = {0};
    size_t n = val_check(e->f, val_cpu_caps(), hp, &rep);
    if (n == 0) {
        val_report_free(&rep);
        return true;
    }
    size_t len = (size_t)snprintf(err, errlen, "%s: %zu problem%s:", p->path, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < rep.n && len < errlen; i++)
        len += (size_t)snprintf(err + len, errlen - len, "\n  %s", rep.msgs[i]);
    val_report_free(&rep);
    return false;
}

/* Q_F16 (also when unset), Q_Q8_0, or Q_TYPE_COUNT for a name that is neither. */
static uint32_t kv_type_of(const struct engine_params *p)
{
    if (!p->kv_type || strcmp(p->kv_type, "f16") == 0)
        return Q_F16;
    return strcmp(p->kv_type, "q8_0") == 0 ? Q_Q8_0 : Q_TYPE_COUNT;
}

/* Checks the KV pool and the weights against the budget; with fit, shrinks the pool instead. */
static bool plan(struct engine *e, const struct engine_params *p, const struct arch_hparams *hp, uint32_t *ctx_size,
                 char *err, size_t errlen)
{
    if (kv_type_of(p) == Q_TYPE_COUNT) {
        snprintf(err, errlen, "kv_type '%s' is not a KV cache type (f16 or q8_0)", p->kv_type);
        return false;
    }
    uint64_t budget = p->mem_budget;
    if (!budget && !mp_mem_available(&budget, err, errlen))
        return false;
    /* the KV cache is one pool of ctx_size tokens; the recurrent state is per slot */
    struct mp_request rq = {.n_ctx = *ctx_size, .n_slots = 1, .n_batch = p->batch_tokens,
                            .n_state_seqs = p->slots, .n_snapshots = MP_DEFAULT_SNAPSHOTS,
                            .kv_type = kv_type_of(p), .metadata_bytes = e->f->data_offset};
    struct mp_plan pl;
    mp_plan_cpu(hp, mp_weight_bytes(e->f), &rq, budget, &pl);
    if (pl.dev[0].fits)
        return true;
    if (p->fit && pl.max_ctx >= 256) {
        *ctx_size = (uint32_t)(pl.max_ctx < *ctx_size ? pl.max_ctx : *ctx_size);
        return true;
    }
    size_t len = (size_t)snprintf(err, errlen, "%s does not fit in %.2f GiB with a KV pool of %u tokens:", p->path,
                                  (double)budget / (1u << 30), *ctx_size);
    for (int i = 0; i < MP_PART_COUNT && len < errlen; i++)
        len += (size_t)snprintf(err + len, errlen - len, "\n  %-17s %8.2f GiB", mp_part_name((enum mp_part)i),
                                (double)pl.dev[0].part[i] / (1u << 30));
    if (len < errlen)
        snprintf(err + len, errlen - len, "\n  total             %8.2f GiB\n  the largest pool that fits: %llu tokens (--ctx-size), or use --fit",
                 (double)pl.dev[0].total / (1u << 30), (unsigned long long)pl.max_ctx);
    return false;
}

/* Faulting in the weights is most of the loading time: it reports 30% .. 95%. */
static void weights_progress(void *ctx, double done)
{
    progress(ctx, "loading", 0.3 + 0.65 * done);
}

static void upload_progress(void *pctx, double fraction)
{
    progress(pctx, "uploading weights", fraction);
}

static int32_t find_token(const struct tokenizer *t, const char *text)
{
    return tok_find(t, text, strlen(text));
}

/* The architecture's weights; new_ctx then sets up its KV pool, recurrent state and scratch. */
static bool load_model(struct engine *e, char *err, size_t errlen)
{
    if (e->next)
        return q3n_load(&e->q3n, e->f, err, errlen);
    return model_load(&e->model, e->f, err, errlen);
}

static struct kvpool *engine_kv(struct engine *e)
{
    return e->next ? q3n_ctx_kv(e->q3n_ctx) : e->gpu ? vk_backend_kv(e->gpu) : model_ctx_kv(e->ctx);
}

/* A whole number of at most max written in decimal digits only. */
static bool parse_count(const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (v = v * 10 + (uint64_t)(*s - '0')) > max)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

/* --gpu: a device index (digits) or part of a device name. */
static void gpu_choice(const char *gpu, struct vk_backend_params *vp)
{
    vp->device_index = -1;
    vp->device_name = NULL;
    if (!gpu || !gpu[0])
        return;
    uint32_t index;
    if (parse_count(gpu, 1023, &index))
        vp->device_index = (int)index;
    else
        vp->device_name = gpu;
}

/* --n-cpu-moe: "auto" (or unset) for the plan's choice, else a number of layers. */
static bool cpu_moe_choice(const char *v, int32_t *out, char *err, size_t errlen)
{
    uint32_t n;
    if (!v || strcmp(v, "auto") == 0) {
        *out = MP_CPU_MOE_AUTO;
        return true;
    }
    if (!parse_count(v, 1u << 20, &n)) {
        snprintf(err, errlen, "--n-cpu-moe %s: expected auto or a number of layers", v);
        return false;
    }
    *out = (int32_t)n;
    return true;
}

/* The Vulkan backend for qwen3moe; false with err set when it must run there and cannot, false
 * with err empty when auto falls back to the CPU (device_note says why). */
static bool open_gpu(struct engine *e, const struct engine_params *p, const struct arch_hparams *hp,
                     uint32_t ctx_size, uint32_t max_seq, uint32_t batch, char *err, size_t errlen)
{
    const char *dev = p->device ? p->device : "auto";
    struct vk_backend_params vp = {.required = strcmp(dev, "vulkan") == 0, .n_seqs = p->slots,
                                   .pool_tokens = ctx_size, .max_seq_tokens = max_seq, .max_batch = batch,
                                   .hp = hp, .weight_bytes = mp_weight_bytes(e->f), .mem_budget = p->mem_budget,
                                   .progress = upload_progress, .pctx = (void *)p};
    gpu_choice(p->gpu, &vp);
    if (!cpu_moe_choice(p->n_cpu_moe, &vp.n_cpu_moe, err, errlen))
        return false;
    struct mp_expert_layer *experts = calloc(hp->n_layer ? hp->n_layer : 1, sizeof *experts);
    if (!experts) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (!mp_expert_layers(e->f, hp->n_layer, experts, err, errlen)) {
        free(experts);
        return false;
    }
    vp.experts = experts;
    e->gpu = vk_backend_open(&e->model, &vp, e->device_note, sizeof e->device_note, err, errlen);
    free(experts);
    return e->gpu != NULL;
}

/* The forward pass: qwen3moe on Vulkan when --device asks for it (auto: a GPU if there is one),
 * else on the CPU; qwen3next on the CPU. A device that auto passes over leaves its reason in
 * device_note. */
static bool new_ctx(struct engine *e, const struct engine_params *p, const struct arch_hparams *hp, uint32_t ctx_size,
                    uint32_t max_seq, char *err, size_t errlen)
{
    const char *dev = p->device ? p->device : "auto";
    if (strcmp(dev, "cpu") != 0 && strcmp(dev, "vulkan") != 0 && strcmp(dev, "auto") != 0) {
        snprintf(err, errlen, "--device %s: expected cpu, vulkan or auto", dev);
        return false;
    }
    const uint32_t batch = p->batch_tokens + p->slots;
    if (e->next && strcmp(dev, "vulkan") == 0) {
        snprintf(err, errlen, "--device vulkan: the Vulkan backend runs qwen3moe models only (use cpu or auto)");
        return false;
    }
    int32_t n_cpu_moe;  /* checked whatever the device, so a bad value is never silently ignored */
    if (!cpu_moe_choice(p->n_cpu_moe, &n_cpu_moe, err, errlen))
        return false;
    const bool chunked = p->delta_rule && strcmp(p->delta_rule, "chunked") == 0;
    if (p->delta_rule && !chunked && strcmp(p->delta_rule, "exact") != 0) {
        snprintf(err, errlen, "--delta-rule %s: expected exact or chunked", p->delta_rule);
        return false;
    }
    if (e->next) {
        if (strcmp(dev, "auto") == 0)
            snprintf(e->device_note, sizeof e->device_note, "qwen3next runs on the CPU (the Vulkan backend is qwen3moe only)");
        e->q3n_ctx = q3n_ctx_new(&e->q3n, p->slots, ctx_size, max_seq, batch, MP_DEFAULT_SNAPSHOTS, kv_type_of(p), err,
                                 errlen);
        if (e->q3n_ctx)
            q3n_ctx_set_chunked(e->q3n_ctx, chunked);
        return e->q3n_ctx != NULL;
    }
    if (strcmp(dev, "cpu") != 0 && kv_type_of(p) == Q_F16) {
        err[0] = 0;
        if (open_gpu(e, p, hp, ctx_size, max_seq, batch, err, errlen))
            return true;
        if (err[0])
            return false;
    } else if (strcmp(dev, "vulkan") == 0) {
        snprintf(err, errlen, "--device vulkan: the Vulkan backend caches K and V as f16 only (--kv-type f16)");
        return false;
    }
    return (e->ctx = model_ctx_new(&e->model, p->slots, ctx_size, max_seq, batch, kv_type_of(p), err, errlen)) != NULL;
}

static uint32_t model_n_vocab(const struct engine *e)
{
    return e->next ? e->q3n.hp.n_vocab : e->model.hp.n_vocab;
}

static uint32_t model_n_ctx_train(const struct engine *e)
{
    return e->next ? e->q3n.hp.n_ctx_train : e->model.hp.n_ctx_train;
}

static void fill_info(struct engine *e, const struct engine_params *p, uint32_t ctx_size)
{
    struct engine_info *i = &e->info;
    i->arch = e->next ? "qwen3next" : "qwen3moe";
    i->name = e->name;
    i->n_vocab = model_n_vocab(e);
    i->n_ctx_train = model_n_ctx_train(e);
    i->n_layer = e->next ? e->q3n.hp.n_layer : e->model.hp.n_layer;
    i->n_embd = e->next ? e->q3n.hp.n_embd : e->model.hp.n_embd;
    i->n_expert = e->next ? e->q3n.hp.n_expert : e->model.hp.n_expert;
    i->n_expert_used = e->next ? e->q3n.hp.n_expert_used : e->model.hp.n_expert_used;
    i->slots = p->slots;
    i->ctx_size = ctx_size;
    uint32_t max_ctx = p->max_ctx ? p->max_ctx : i->n_ctx_train;
    i->max_ctx = max_ctx < ctx_size ? max_ctx : ctx_size;
    i->chat_template = e->tmpl;
    i->eos = tok_eos(e->tok);
    i->fim_prefix = find_token(e->tok, "<|fim_prefix|>");
    i->fim_suffix = find_token(e->tok, "<|fim_suffix|>");
    i->fim_middle = find_token(e->tok, "<|fim_middle|>");
    i->fim_pad = find_token(e->tok, "<|fim_pad|>");
    i->repo_name = find_token(e->tok, "<|repo_name|>");
    i->file_sep = find_token(e->tok, "<|file_sep|>");
    i->device_name = e->gpu ? vk_backend_device_name(e->gpu) : "cpu";
    i->device_note = e->device_note[0] ? e->device_note : NULL;
    i->n_cpu_moe = e->gpu ? vk_backend_cpu_moe_layers(e->gpu) : 0;
    i->weight_bytes = mp_weight_bytes(e->f);
    i->kv_bytes = kvpool_bytes(engine_kv(e));
}

struct engine *engine_open(const struct engine_params *p, char *err, size_t errlen)
{
    struct engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (p->threads)
        omp_set_num_threads((int)p->threads);
    progress(p, "validating", 0);
    struct arch_hparams hp;
    uint32_t ctx_size = p->ctx_size;
    bool ok = (e->f = gguf_open(p->path, err, errlen)) != NULL && validate(e, p, &hp, err, errlen) &&
              plan(e, p, &hp, &ctx_size, err, errlen);
    if (ok)
        progress(p, "loading", 0.3);
    e->next = ok && hp.arch == ARCH_QWEN3NEXT;
    ok = ok && (e->model_loaded = load_model(e, err, errlen));
    ok = ok && prefault_range(e->f->map + e->f->data_offset, e->f->size - e->f->data_offset, weights_progress,
                              (void *)p, err, errlen);
    ok = ok && (e->tok = tok_load_gguf(e->f, err, errlen)) != NULL;
    if (ok && tok_vocab_size(e->tok) != model_n_vocab(e)) {
        snprintf(err, errlen, "%s: the tokenizer has %u tokens but token_embd has %u rows", p->path,
                 tok_vocab_size(e->tok), model_n_vocab(e));
        ok = false;
    }
    uint32_t max_seq = p->max_ctx ? p->max_ctx : (ok ? model_n_ctx_train(e) : 0);
    if (ok && max_seq > ctx_size)
        max_seq = ctx_size;
    ok = ok && new_ctx(e, p, &hp, ctx_size, max_seq, err, errlen);
    if (ok) {
        char *base = strdup(p->path);
        char *gname = gguf_get_str_dup(e->f, "general.name");
        e->name = gname ? gname : strdup(base ? basename(base) : "model");
        free(base);
        e->tmpl = gguf_get_str_dup(e->f, "tokenizer.chat_template");
        fill_info(e, p, ctx_size);
        e->info.max_ctx = max_seq;
        progress(p, "ready", 1.0);
        return e;
    }
    engine_close(e);
    return NULL;
}

void engine_close(struct engine *e)
{
    if (!e)
        return;
    model_ctx_free(e->ctx);
    q3n_ctx_free(e->q3n_ctx);
    vk_backend_close(e->gpu);
    if (e->model_loaded && e->next)
        q3n_free(&e->q3n);
    else if (e->model_loaded)
        model_free(&e->model);
    tok_free(e->tok);
    gguf_close(e->f);
    free(e->name);
    free(e->tmpl);
    free(e);
}

const struct engine_info *engine_info(const struct engine *e)
{
    return &e->info;
}

bool engine_decode(struct engine *e, uint32_t n, const int32_t *token, const uint32_t *pos, const uint32_t *seq,
                   const bool *want_logits, float *logits, char *err, size_t errlen)
{
    if (e->next)
        return q3n_decode(e->q3n_ctx, n, token, pos, seq, want_logits, logits, err, errlen);
    if (e->gpu)
        return vk_backend_decode(e->gpu, n, token, pos, seq, want_logits, logits, err, errlen);
    return model_decode(e->ctx, n, token, pos, seq, want_logits, logits, err, errlen);
}

uint32_t engine_seq_keep(struct engine *e, uint32_t seq, uint32_t n_keep)
{
    if (e->next)
        return q3n_seq_keep(e->q3n_ctx, seq, n_keep);
    struct kvpool *kv = engine_kv(e);
    if (seq >= kv->n_seqs)
        return 0;
    kvpool_truncate(kv, seq, n_keep);
    return kv->seqs[seq].n_tokens;
}

int32_t *engine_tokenize(const struct engine *e, const char *text, size_t len, bool special, size_t *n)
{
    return tok_encode(e->tok, text, len, special, n);
}

size_t engine_token_bytes(const struct engine *e, int32_t id, char *buf, size_t cap)
{
    size_t len = 0;
    const char *b = tok_token_bytes(e->tok, id, &len);
    if (b && buf)
        memcpy(buf, b, len < cap ? len : cap);
    return b ? len : 0;
}

bool engine_is_eog(const struct engine *e, int32_t id)
{
    return tok_is_eog(e->tok, id);
}

bool engine_is_control(const struct engine *e, int32_t id)
{
    return tok_is_control(e->tok, id);
}

const struct tokenizer *engine_tokenizer(const struct engine *e)
{
    return e->tok;
}
