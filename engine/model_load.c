/* model_load.c: qwen3moe hyperparameters and tensor references from a GGUF file.
 * Weights stay in the mapping (zero copy, engine/tensor_ref.h); only the norm vectors are copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/model.h"
#include "engine/tensor_ref.h"

static bool get_u32(const struct gguf_file *f, const char *arch, const char *key, uint32_t *out, bool required,
                    char *err, size_t errlen)
{
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    if (gguf_get_u32(f, k, out))
        return true;
    if (!required)
        return true;
    snprintf(err, errlen, "%s: key '%s' is missing or not an integer", f->path, k);
    return false;
}

static bool read_hparams(struct model_hparams *hp, const struct gguf_file *f, const char *arch, char *err,
                         size_t errlen)
{
    char k[128];
    hp->n_ctx_train = 4096;
    bool ok = get_u32(f, arch, "block_count", &hp->n_layer, true, err, errlen) &&
              get_u32(f, arch, "embedding_length", &hp->n_embd, true, err, errlen) &&
              get_u32(f, arch, "attention.head_count", &hp->n_head, true, err, errlen) &&
              get_u32(f, arch, "attention.head_count_kv", &hp->n_head_kv, true, err, errlen) &&
              get_u32(f, arch, "expert_count", &hp->n_expert, true, err, errlen) &&
              get_u32(f, arch, "expert_used_count", &hp->n_expert_used, true, err, errlen) &&
              get_u32(f, arch, "expert_feed_forward_length", &hp->n_ff_exp, true, err, errlen) &&
              get_u32(f, arch, "context_length", &hp->n_ctx_train, false, err, errlen);
    if (!ok)
        return false;
    /* head sizes come from key_length/value_length; n_embd / n_head only as a fallback */
    hp->head_k = hp->head_v = hp->n_head ? hp->n_embd / hp->n_head : 0;
    get_u32(f, arch, "attention.key_length", &hp->head_k, false, err, errlen);
    get_u32(f, arch, "attention.value_length", &hp->head_v, false, err, errlen);
    hp->n_rot = hp->head_k;
    get_u32(f, arch, "rope.dimension_count", &hp->n_rot, false, err, errlen);
    hp->rope_base = 10000.0f;
    snprintf(k, sizeof k, "%s.rope.freq_base", arch);
    gguf_get_f32(f, k, &hp->rope_base);
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!gguf_get_f32(f, k, &hp->rms_eps)) {
        snprintf(err, errlen, "%s: key '%s' is missing", f->path, k);
        return false;
    }
    if (!hp->n_layer || !hp->n_head || !hp->n_head_kv || hp->n_head % hp->n_head_kv || !hp->head_k ||
        !hp->head_v || hp->n_rot > hp->head_k || hp->n_rot % 2 || !hp->n_expert || !hp->n_expert_used ||
        hp->n_expert_used > hp->n_expert || !hp->n_ff_exp || hp->head_k > ATTN_MAX_HEAD || hp->head_v > ATTN_MAX_HEAD) {
        snprintf(err, errlen, "%s: inconsistent hyperparameters (layers %u, heads %u/%u, head size %u/%u, rope %u, experts %u/%u, ff %u)",
                 f->path, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_k, hp->head_v, hp->n_rot, hp->n_expert_used,
                 hp->n_expert, hp->n_ff_exp);
        return false;
    }
    return true;
}

static bool load_layer(struct model_layer *L, const struct gguf_file *f, const struct model_hparams *hp, uint32_t i,
                       char *err, size_t errlen)
{
    char n[96];
    const int64_t e = hp->n_embd, q = (int64_t)hp->n_head * hp->head_k, k = (int64_t)hp->n_head_kv * hp->head_k;
    const int64_t v = (int64_t)hp->n_head_kv * hp->head_v, o = (int64_t)hp->n_head * hp->head_v;
#define NAME(s) (snprintf(n, sizeof n, "blk.%u.%s", i, (s)), n)
    return (L->attn_norm = tref_floats(f, NAME("attn_norm.weight"), e, 1, err, errlen)) &&
           (L->q_norm = tref_floats(f, NAME("attn_q_norm.weight"), hp->head_k, 1, err, errlen)) &&
           (L->k_norm = tref_floats(f, NAME("attn_k_norm.weight"), hp->head_k, 1, err, errlen)) &&
           (L->ffn_norm = tref_floats(f, NAME("ffn_norm.weight"), e, 1, err, errlen)) &&
           tref_mat(&L->wq, f, NAME("attn_q.weight"), e, q, err, errlen) &&
           tref_mat(&L->wk, f, NAME("attn_k.weight"), e, k, err, errlen) &&
           tref_mat(&L->wv, f, NAME("attn_v.weight"), e, v, err, errlen) &&
           tref_mat(&L->wo, f, NAME("attn_output.weight"), o, e, err, errlen) &&
           tref_mat(&L->router, f, NAME("ffn_gate_inp.weight"), e, hp->n_expert, err, errlen) &&
           tref_experts(&L->gate, f, NAME("ffn_gate_exps.weight"), e, hp->n_ff_exp, hp->n_expert, err, errlen) &&
           tref_experts(&L->up, f, NAME("ffn_up_exps.weight"), e, hp->n_ff_exp, hp->n_expert, err, errlen) &&
           tref_experts(&L->down, f, NAME("ffn_down_exps.weight"), hp->n_ff_exp, e, hp->n_expert, err, errlen);
#undef NAME
}

bool model_load(struct model *m, const struct gguf_file *f, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->file = f;
    char *arch = gguf_get_str_dup(f, "general.architecture");
    bool ok = arch && strcmp(arch, "qwen3moe") == 0;
    if (!ok)
        snprintf(err, errlen, "%s: architecture '%s' is not qwen3moe", f->path, arch ? arch : "(none)");
    ok = ok && read_hparams(&m->hp, f, arch, err, errlen);
    free(arch);
    if (!ok)
        return false;
    const struct gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[0] != m->hp.n_embd) {
        snprintf(err, errlen, "%s: tensor 'token_embd.weight' is missing or not [%u, n_vocab]", f->path, m->hp.n_embd);
        return false;
    }
    m->hp.n_vocab = (uint32_t)emb->ne[1];
    ok = tref_mat(&m->token_embd, f, "token_embd.weight", m->hp.n_embd, m->hp.n_vocab, err, errlen) &&
         (m->output_norm = tref_floats(f, "output_norm.weight", m->hp.n_embd, 1, err, errlen)) != NULL;
    if (ok && gguf_find_tensor(f, "output.weight"))
        ok = tref_mat(&m->output, f, "output.weight", m->hp.n_embd, m->hp.n_vocab, err, errlen);
    else if (ok)
        m->output = m->token_embd; /* tied embeddings */
    m->layers = ok ? calloc(m->hp.n_layer, sizeof *m->layers) : NULL;
    if (ok && !m->layers) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    for (uint32_t i = 0; ok && i < m->hp.n_layer; i++)
        ok = load_layer(&m->layers[i], f, &m->hp, i, err, errlen);
    if (!ok)
        model_free(m);
    return ok;
}

void model_free(struct model *m)
{
    if (m->layers)
        for (uint32_t i = 0; i < m->hp.n_layer; i++) {
            free(m->layers[i].attn_norm);
            free(m->layers[i].q_norm);
            free(m->layers[i].k_norm);
            free(m->layers[i].ffn_norm);
        }
    free(m->layers);
    free(m->output_norm);
    memset(m, 0, sizeof *m);
}
