/* model_load.c: reads a qwen3moe GGUF into struct model (engine/model.h): hyperparameters from
 * the metadata, every tensor checked for presence, shape and a usable type; weights stay mapped. */
#include "engine/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quants.h"
#include "kernels/vexp.h"

static bool get_u32(const struct gguf_file *f, const char *key, uint32_t *out, char *err, size_t errlen)
{
    char full[128];
    snprintf(full, sizeof full, "qwen3moe.%s", key);
    if (gguf_get_u32(f, full, out) && *out > 0)
        return true;
    snprintf(err, errlen, "%s: missing or invalid metadata key %s", f->path ? f->path : "model", full);
    return false;
}

static bool read_hparams(const struct gguf_file *f, struct model_hparams *hp, char *err, size_t errlen)
{
    char *arch = gguf_get_str_dup(f, "general.architecture");
    bool is_moe = arch && strcmp(arch, "qwen3moe") == 0;
    if (!is_moe) {
        snprintf(err, errlen, "%s: architecture %s is not qwen3moe", f->path ? f->path : "model",
                 arch ? arch : "(missing)");
        free(arch);
        return false;
    }
    free(arch);
    uint32_t head_v = 0;
    if (!get_u32(f, "block_count", &hp->n_layer, err, errlen) ||
        !get_u32(f, "embedding_length", &hp->n_embd, err, errlen) ||
        !get_u32(f, "attention.head_count", &hp->n_head, err, errlen) ||
        !get_u32(f, "attention.head_count_kv", &hp->n_head_kv, err, errlen) ||
        !get_u32(f, "attention.key_length", &hp->head_dim, err, errlen) ||
        !get_u32(f, "attention.value_length", &head_v, err, errlen) ||
        !get_u32(f, "expert_count", &hp->n_expert, err, errlen) ||
        !get_u32(f, "expert_used_count", &hp->n_expert_used, err, errlen) ||
        !get_u32(f, "expert_feed_forward_length", &hp->n_ff_exp, err, errlen) ||
        !get_u32(f, "context_length", &hp->n_ctx_train, err, errlen))
        return false;
    if (!gguf_get_f32(f, "qwen3moe.rope.freq_base", &hp->rope_base))
        hp->rope_base = 10000.0f;
    if (!gguf_get_f32(f, "qwen3moe.attention.layer_norm_rms_epsilon", &hp->rms_eps)) {
        snprintf(err, errlen, "%s: missing qwen3moe.attention.layer_norm_rms_epsilon", f->path);
        return false;
    }
    const char *bad = NULL;
    if (head_v != hp->head_dim)
        bad = "value_length differs from key_length";
    else if (hp->head_dim % 2)
        bad = "odd head size";
    else if (hp->n_head % hp->n_head_kv)
        bad = "head_count is not a multiple of head_count_kv";
    else if (hp->n_expert_used > hp->n_expert)
        bad = "expert_used_count exceeds expert_count";
    else if (hp->n_layer > 4096 || hp->n_embd > (1u << 20) || hp->head_dim > 4096 ||
             hp->n_head > 4096 || hp->n_expert > 65536)
        bad = "implausibly large hyperparameter";
    if (bad) {
        snprintf(err, errlen, "%s: qwen3moe hyperparameters: %s", f->path, bad);
        return false;
    }
    return true;
}

/* A tensor of exactly the given shape (dims beyond n_dims must be 1) whose type is known. */
static const struct gguf_tensor *find(const struct gguf_file *f, const char *name, int64_t ne0,
                                      int64_t ne1, int64_t ne2, char *err, size_t errlen)
{
    const struct gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        snprintf(err, errlen, "%s: missing tensor %s", f->path, name);
        return NULL;
    }
    int64_t want[GGUF_MAX_DIMS] = {ne0, ne1, ne2, 1};
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        if (t->ne[d] != want[d]) {
            snprintf(err, errlen, "%s: tensor %s has shape [%lld, %lld, %lld, %lld], expected "
                     "[%lld, %lld, %lld]", f->path, name, (long long)t->ne[0], (long long)t->ne[1],
                     (long long)t->ne[2], (long long)t->ne[3], (long long)ne0, (long long)ne1,
                     (long long)ne2);
            return NULL;
        }
    if (!q_type_traits(t->type)) {
        snprintf(err, errlen, "%s: tensor %s has unknown type %u", f->path, name, t->type);
        return NULL;
    }
    return t;
}

static bool load_mat(const struct gguf_file *f, const char *name, int64_t cols, int64_t rows,
                     struct q_mat *m, char *err, size_t errlen)
{
    const struct gguf_tensor *t = find(f, name, cols, rows, 1, err, errlen);
    if (!t)
        return false;
    char why[160];
    if (!q_mat_init(m, t->data, t->type, rows, cols, why, sizeof why)) {
        snprintf(err, errlen, "%s: tensor %s: %s", f->path, name, why);
        return false;
    }
    return true;
}

/* Dequantizes a norm vector into the model's own F32 storage at *next. */
static const float *load_norm(const struct gguf_file *f, const char *name, int64_t n, float **next,
                              char *err, size_t errlen)
{
    const struct gguf_tensor *t = find(f, name, n, 1, 1, err, errlen);
    if (!t)
        return NULL;
    const struct q_kernels *k = q_kernels_get(t->type);
    uint64_t rb;
    if (!k || !k->dequant || !q_row_bytes(t->type, (uint64_t)n, &rb)) {
        snprintf(err, errlen, "%s: tensor %s: type %s cannot be read as a norm vector", f->path,
                 name, q_type_traits(t->type)->name);
        return NULL;
    }
    float *dst = *next;
    k->dequant(t->data, dst, n);
    *next += n;
    return dst;
}

static bool load_experts(const struct gguf_file *f, int il, const struct model_hparams *hp,
                         struct q_moe_weights *w, char *err, size_t errlen)
{
    char name[96];
    const struct gguf_tensor *g, *u, *d;
    snprintf(name, sizeof name, "blk.%d.ffn_gate_exps.weight", il);
    if (!(g = find(f, name, hp->n_embd, hp->n_ff_exp, hp->n_expert, err, errlen)))
        return false;
    snprintf(name, sizeof name, "blk.%d.ffn_up_exps.weight", il);
    if (!(u = find(f, name, hp->n_embd, hp->n_ff_exp, hp->n_expert, err, errlen)))
        return false;
    snprintf(name, sizeof name, "blk.%d.ffn_down_exps.weight", il);
    if (!(d = find(f, name, hp->n_ff_exp, hp->n_embd, hp->n_expert, err, errlen)))
        return false;
    *w = (struct q_moe_weights){.gate = g->data, .up = u->data, .down = d->data,
                                .gate_type = g->type, .up_type = u->type, .down_type = d->type,
                                .n_embd = hp->n_embd, .n_ff = hp->n_ff_exp, .n_expert = hp->n_expert,
                                .silu_exp = q_vexp_default()};
    char why[160];
    if (!q_moe_check(w, why, sizeof why)) {
        snprintf(err, errlen, "%s: experts of layer %d: %s", f->path, il, why);
        return false;
    }
    return true;
}

static bool load_layer(const struct gguf_file *f, int il, struct model *m, float **next,
                       char *err, size_t errlen)
{
    const struct model_hparams *hp = &m->hp;
    struct model_layer *L = &m->layers[il];
    int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%d." s, il), name)
    if (!(L->attn_norm = load_norm(f, NAME("attn_norm.weight"), hp->n_embd, next, err, errlen)) ||
        !(L->attn_q_norm = load_norm(f, NAME("attn_q_norm.weight"), hp->head_dim, next, err, errlen)) ||
        !(L->attn_k_norm = load_norm(f, NAME("attn_k_norm.weight"), hp->head_dim, next, err, errlen)) ||
        !(L->ffn_norm = load_norm(f, NAME("ffn_norm.weight"), hp->n_embd, next, err, errlen)) ||
        !load_mat(f, NAME("attn_q.weight"), hp->n_embd, q_dim, &L->wq, err, errlen) ||
        !load_mat(f, NAME("attn_k.weight"), hp->n_embd, kv_dim, &L->wk, err, errlen) ||
        !load_mat(f, NAME("attn_v.weight"), hp->n_embd, kv_dim, &L->wv, err, errlen) ||
        !load_mat(f, NAME("attn_output.weight"), q_dim, hp->n_embd, &L->wo, err, errlen) ||
        !load_mat(f, NAME("ffn_gate_inp.weight"), hp->n_embd, hp->n_expert, &L->router, err, errlen))
        return false;
#undef NAME
    return load_experts(f, il, hp, &L->moe, err, errlen);
}

static bool load_globals(const struct gguf_file *f, struct model *m, float **next, char *err, size_t errlen)
{
    const struct gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb) {
        snprintf(err, errlen, "%s: missing tensor token_embd.weight", f->path);
        return false;
    }
    if (emb->ne[1] <= 0 || emb->ne[1] > (1 << 24)) {
        snprintf(err, errlen, "%s: token_embd.weight has an invalid vocabulary size", f->path);
        return false;
    }
    m->hp.n_vocab = (uint32_t)emb->ne[1];
    if (!(emb = find(f, "token_embd.weight", m->hp.n_embd, m->hp.n_vocab, 1, err, errlen)))
        return false;
    const struct q_kernels *k = q_kernels_get(emb->type);
    uint64_t rb;
    if (!k->dequant || !q_row_bytes(emb->type, m->hp.n_embd, &rb)) {
        snprintf(err, errlen, "%s: token_embd.weight: type %s has no dequantizer", f->path,
                 q_type_traits(emb->type)->name);
        return false;
    }
    m->tok_embd = emb->data;
    m->tok_embd_type = emb->type;
    m->tok_embd_row_bytes = rb;
    if (!(m->output_norm = load_norm(f, "output_norm.weight", m->hp.n_embd, next, err, errlen)))
        return false;
    const char *out_name = gguf_find_tensor(f, "output.weight") ? "output.weight" : "token_embd.weight";
    return load_mat(f, out_name, m->hp.n_embd, m->hp.n_vocab, &m->output, err, errlen);
}

struct model *model_from_gguf(struct gguf_file *f, bool take_ownership, char *err, size_t errlen)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory loading a model");
        if (take_ownership)
            gguf_close(f);
        return NULL;
    }
    m->gguf = f;
    m->owns_gguf = take_ownership;
    if (!read_hparams(f, &m->hp, err, errlen))
        goto fail;
    const struct model_hparams *hp = &m->hp;
    size_t norm_floats = (size_t)hp->n_embd +
                         (size_t)hp->n_layer * (2 * (size_t)hp->n_embd + 2 * (size_t)hp->head_dim);
    m->norms = malloc(norm_floats * sizeof(float));
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->norms || !m->layers) {
        snprintf(err, errlen, "out of memory loading %s", f->path);
        goto fail;
    }
    float *next = m->norms;
    if (!load_globals(f, m, &next, err, errlen))
        goto fail;
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if (!load_layer(f, (int)il, m, &next, err, errlen))
            goto fail;
    return m;
fail:
    model_free(m);
    return NULL;
}

struct model *model_load(const char *path, char *err, size_t errlen)
{
    struct gguf_file *f = gguf_open(path, err, errlen);
    if (!f)
        return NULL;
    return model_from_gguf(f, true, err, errlen);
}

void model_free(struct model *m)
{
    if (!m)
        return;
    if (m->owns_gguf)
        gguf_close(m->gguf);
    free(m->layers);
    free(m->norms);
    free(m);
}
