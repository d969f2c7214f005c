/* qwen3next_load.c: qwen3next hyperparameters and tensor references from a GGUF file (names and
 * shapes as testdata/README.md "Tiny qwen3next models" lists them). Weights stay in the mapping;
 * norms, gates and the conv taps are copied out as floats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/qwen3next.h"

struct hp_key {
    const char *suffix;
    uint32_t *dst;
    bool required;
};

static bool read_keys(struct q3n_hparams *hp, const struct gguf_file *f, char *err, size_t errlen)
{
    uint32_t groups = 0, dt_rank = 0, state = 0, inner = 0, conv = 0;
    hp->n_ctx_train = 4096;
    const struct hp_key keys[] = {
        {"block_count", &hp->n_layer, true}, {"embedding_length", &hp->n_embd, true},
        {"attention.head_count", &hp->n_head, true}, {"attention.head_count_kv", &hp->n_head_kv, true},
        {"expert_count", &hp->n_expert, true}, {"expert_used_count", &hp->n_expert_used, true},
        {"expert_feed_forward_length", &hp->n_ff_exp, true},
        {"expert_shared_feed_forward_length", &hp->n_ff_shexp, true},
        {"full_attention_interval", &hp->full_attn_interval, true}, {"ssm.group_count", &groups, true},
        {"ssm.time_step_rank", &dt_rank, true}, {"ssm.state_size", &state, true},
        {"ssm.inner_size", &inner, true}, {"ssm.conv_kernel", &conv, true},
        {"context_length", &hp->n_ctx_train, false}, {"attention.key_length", &hp->head_k, false},
        {"attention.value_length", &hp->head_v, false}, {"rope.dimension_count", &hp->n_rot, false},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char k[128];
        snprintf(k, sizeof k, "qwen3next.%s", keys[i].suffix);
        if (!gguf_get_u32(f, k, keys[i].dst) && keys[i].required) {
            snprintf(err, errlen, "%s: key '%s' is missing or not an integer", f->path, k);
            return false;
        }
    }
    hp->rope_base = 10000.0f;
    gguf_get_f32(f, "qwen3next.rope.freq_base", &hp->rope_base);
    if (!gguf_get_f32(f, "qwen3next.attention.layer_norm_rms_epsilon", &hp->rms_eps)) {
        snprintf(err, errlen, "%s: key 'qwen3next.attention.layer_norm_rms_epsilon' is missing", f->path);
        return false;
    }
    hp->dn = (dn_shape){.n_k_heads = (int)groups, .n_v_heads = (int)dt_rank, .head_dim = (int)state,
                        .conv_kernel = (int)conv};
    if (dn_shape_check(&hp->dn, err, errlen) != 0 || (uint64_t)dt_rank * state != inner) {
        if ((uint64_t)dt_rank * state != inner)
            snprintf(err, errlen, "%s: ssm.inner_size %u is not time_step_rank x state_size", f->path, inner);
        return false;
    }
    return true;
}

static bool read_hparams(struct q3n_hparams *hp, const struct gguf_file *f, char *err, size_t errlen)
{
    memset(hp, 0, sizeof *hp);
    if (!read_keys(hp, f, err, errlen))
        return false;
    if (!hp->head_k && hp->n_head)
        hp->head_k = hp->n_embd / hp->n_head;
    if (!hp->head_v)
        hp->head_v = hp->head_k;
    if (!hp->n_rot)
        hp->n_rot = hp->head_k;
    for (uint32_t il = 0; hp->full_attn_interval && il < hp->n_layer; il++)
        hp->n_attn_layers += (il + 1) % hp->full_attn_interval == 0;
    hp->n_dn_layers = hp->n_layer - hp->n_attn_layers;
    /* the output gate multiplies each head's value output by head_k gate rows */
    if (!hp->n_layer || !hp->n_head || !hp->n_head_kv || hp->n_head % hp->n_head_kv || !hp->head_k ||
        hp->head_v != hp->head_k || hp->n_rot > hp->head_k || hp->n_rot % 2 || !hp->n_expert ||
        !hp->n_expert_used || hp->n_expert_used > hp->n_expert || !hp->n_ff_exp || !hp->n_ff_shexp ||
        hp->head_k > ATTN_MAX_HEAD || !hp->full_attn_interval) {
        snprintf(err, errlen, "%s: inconsistent hyperparameters (layers %u, heads %u/%u, head size %u/%u, rope %u, "
                 "experts %u/%u, ff %u/%u, full_attention_interval %u)", f->path, hp->n_layer, hp->n_head,
                 hp->n_head_kv, hp->head_k, hp->head_v, hp->n_rot, hp->n_expert_used, hp->n_expert, hp->n_ff_exp,
                 hp->n_ff_shexp, hp->full_attn_interval);
        return false;
    }
    return true;
}

#define NAME(s) (snprintf(n, sizeof n, "blk.%u.%s", i, (s)), n)

static bool load_attn(struct q3n_layer *L, const struct gguf_file *f, const struct q3n_hparams *hp, uint32_t i,
                      char *err, size_t errlen)
{
    char n[96];
    const int64_t e = hp->n_embd, q = (int64_t)hp->n_head * hp->head_k, k = (int64_t)hp->n_head_kv * hp->head_k;
    const int64_t v = (int64_t)hp->n_head_kv * hp->head_v, o = (int64_t)hp->n_head * hp->head_v;
    return tref_mat(&L->wq, f, NAME("attn_q.weight"), e, 2 * q, err, errlen) &&
           tref_mat(&L->wk, f, NAME("attn_k.weight"), e, k, err, errlen) &&
           tref_mat(&L->wv, f, NAME("attn_v.weight"), e, v, err, errlen) &&
           tref_mat(&L->wo, f, NAME("attn_output.weight"), o, e, err, errlen) &&
           (L->q_norm = tref_floats(f, NAME("attn_q_norm.weight"), hp->head_k, 1, err, errlen)) &&
           (L->k_norm = tref_floats(f, NAME("attn_k_norm.weight"), hp->head_k, 1, err, errlen));
}

static bool load_deltanet(struct q3n_layer *L, const struct gguf_file *f, const struct q3n_hparams *hp, uint32_t i,
                          char *err, size_t errlen)
{
    char n[96];
    const int64_t e = hp->n_embd, ch = dn_conv_channels(&hp->dn), nv = hp->dn.n_v_heads;
    const int64_t inner = nv * hp->dn.head_dim;
    return tref_mat(&L->qkv, f, NAME("attn_qkv.weight"), e, ch, err, errlen) &&
           tref_mat(&L->z, f, NAME("attn_gate.weight"), e, inner, err, errlen) &&
           tref_mat(&L->ba, f, NAME("ssm_ba.weight"), e, 2 * nv, err, errlen) &&
           tref_mat(&L->ssm_out, f, NAME("ssm_out.weight"), inner, e, err, errlen) &&
           (L->conv_w = tref_floats(f, NAME("ssm_conv1d.weight"), hp->dn.conv_kernel, ch, err, errlen)) &&
           (L->dt_bias = tref_floats(f, NAME("ssm_dt.bias"), nv, 1, err, errlen)) &&
           (L->ssm_a = tref_floats(f, NAME("ssm_a"), nv, 1, err, errlen)) &&
           (L->ssm_norm = tref_floats(f, NAME("ssm_norm.weight"), hp->dn.head_dim, 1, err, errlen));
}

static bool load_ffn(struct q3n_layer *L, const struct gguf_file *f, const struct q3n_hparams *hp, uint32_t i,
                     char *err, size_t errlen)
{
    char n[96];
    const int64_t e = hp->n_embd, ne = hp->n_expert, ff = hp->n_ff_exp, sh = hp->n_ff_shexp;
    return tref_mat(&L->router, f, NAME("ffn_gate_inp.weight"), e, ne, err, errlen) &&
           tref_experts(&L->gate, f, NAME("ffn_gate_exps.weight"), e, ff, ne, err, errlen) &&
           tref_experts(&L->up, f, NAME("ffn_up_exps.weight"), e, ff, ne, err, errlen) &&
           tref_experts(&L->down, f, NAME("ffn_down_exps.weight"), ff, e, ne, err, errlen) &&
           tref_mat(&L->sh_gate_inp, f, NAME("ffn_gate_inp_shexp.weight"), e, 1, err, errlen) &&
           tref_mat(&L->sh_gate, f, NAME("ffn_gate_shexp.weight"), e, sh, err, errlen) &&
           tref_mat(&L->sh_up, f, NAME("ffn_up_shexp.weight"), e, sh, err, errlen) &&
           tref_mat(&L->sh_down, f, NAME("ffn_down_shexp.weight"), sh, e, err, errlen);
}

static bool load_layer(struct q3n_layer *L, const struct gguf_file *f, const struct q3n_hparams *hp, uint32_t i,
                       uint32_t sub, char *err, size_t errlen)
{
    char n[96];
    L->is_attn = (i + 1) % hp->full_attn_interval == 0;
    L->sub = sub;
    return (L->attn_norm = tref_floats(f, NAME("attn_norm.weight"), hp->n_embd, 1, err, errlen)) &&
           (L->post_norm = tref_floats(f, NAME("post_attention_norm.weight"), hp->n_embd, 1, err, errlen)) &&
           (L->is_attn ? load_attn(L, f, hp, i, err, errlen) : load_deltanet(L, f, hp, i, err, errlen)) &&
           load_ffn(L, f, hp, i, err, errlen);
}
#undef NAME

static bool load_globals(struct q3n_model *m, const struct gguf_file *f, char *err, size_t errlen)
{
    const struct gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[0] != m->hp.n_embd) {
        snprintf(err, errlen, "%s: tensor 'token_embd.weight' is missing or not [%u, n_vocab]", f->path, m->hp.n_embd);
        return false;
    }
    m->hp.n_vocab = (uint32_t)emb->ne[1];
    if (!tref_mat(&m->token_embd, f, "token_embd.weight", m->hp.n_embd, m->hp.n_vocab, err, errlen) ||
        !(m->output_norm = tref_floats(f, "output_norm.weight", m->hp.n_embd, 1, err, errlen)))
        return false;
    if (!gguf_find_tensor(f, "output.weight")) {
        m->output = m->token_embd; /* tied embeddings */
        return true;
    }
    return tref_mat(&m->output, f, "output.weight", m->hp.n_embd, m->hp.n_vocab, err, errlen);
}

bool q3n_load(struct q3n_model *m, const struct gguf_file *f, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->file = f;
    char *arch = gguf_get_str_dup(f, "general.architecture");
    bool ok = arch && strcmp(arch, "qwen3next") == 0;
    if (!ok)
        snprintf(err, errlen, "%s: architecture '%s' is not qwen3next", f->path, arch ? arch : "(none)");
    free(arch);
    if (!ok || !read_hparams(&m->hp, f, err, errlen) || !load_globals(m, f, err, errlen)) {
        q3n_free(m);
        return false;
    }
    m->layers = calloc(m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) {
        snprintf(err, errlen, "out of memory");
        ok = false;
    }
    uint32_t n_attn = 0, n_dn = 0;
    for (uint32_t i = 0; ok && i < m->hp.n_layer; i++) {
        bool attn = (i + 1) % m->hp.full_attn_interval == 0;
        ok = load_layer(&m->layers[i], f, &m->hp, i, attn ? n_attn++ : n_dn++, err, errlen);
    }
    if (!ok)
        q3n_free(m);
    return ok;
}

void q3n_free(struct q3n_model *m)
{
    for (uint32_t i = 0; m->layers && i < m->hp.n_layer; i++) {
        struct q3n_layer *L = &m->layers[i];
        float *owned[] = {L->attn_norm, L->post_norm, L->q_norm, L->k_norm,
                          L->conv_w, L->dt_bias, L->ssm_a, L->ssm_norm};
        for (size_t j = 0; j < sizeof owned / sizeof owned[0]; j++)
            free(owned[j]);
    }
    free(m->layers);
    free(m->output_norm);
    memset(m, 0, sizeof *m);
}
