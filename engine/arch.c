/* arch.c: the tables of engine/arch.h for qwen3moe and qwen3next, and hyperparameter reading.
 * Shapes follow llama.cpp's loader (ggml ne order: ne[0] is the row length). */
#include "engine/arch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HP(f) offsetof(struct arch_hparams, f)
#define BIG (UINT64_C(1) << 40)

/* Keys common to both architectures. */
#define COMMON_KEYS                                                              \
    {"block_count", HP(n_layer), false, true, 1, 65536},                         \
    {"embedding_length", HP(n_embd), false, true, 1, 1 << 20},                   \
    {"attention.head_count", HP(n_head), false, true, 1, 65536},                 \
    {"attention.head_count_kv", HP(n_head_kv), false, true, 1, 65536},           \
    {"attention.key_length", HP(head_k), false, false, 1, 65536},                \
    {"attention.value_length", HP(head_v), false, false, 1, 65536},              \
    {"expert_count", HP(n_expert), false, true, 1, 65536},                       \
    {"expert_used_count", HP(n_expert_used), false, true, 1, 65536},             \
    {"expert_feed_forward_length", HP(n_ff_exp), false, true, 1, 1 << 24},       \
    {"feed_forward_length", HP(n_ff), false, false, 0, BIG},                     \
    {"context_length", HP(n_ctx_train), false, true, 1, BIG},                    \
    {"rope.dimension_count", HP(rope_dims), false, false, 1, 65536},             \
    {"rope.freq_base", HP(rope_base), true, false, 0, 0},                        \
    {"attention.layer_norm_rms_epsilon", HP(rms_eps), true, true, 0, 0}

static const struct arch_key qwen3moe_keys[] = {COMMON_KEYS};

static const struct arch_key qwen3next_keys[] = {
    COMMON_KEYS,
    {"expert_shared_feed_forward_length", HP(n_ff_shexp), false, true, 1, 1 << 24},
    {"ssm.conv_kernel", HP(ssm_conv_kernel), false, true, 2, 64},
    {"ssm.state_size", HP(ssm_state), false, true, 1, 4096},
    {"ssm.group_count", HP(ssm_groups), false, true, 1, 65536},
    {"ssm.time_step_rank", HP(ssm_dt_rank), false, true, 1, 65536},
    {"ssm.inner_size", HP(ssm_inner), false, true, 1, 1 << 24},
    {"full_attention_interval", HP(full_attn_interval), false, true, 1, 65536},
};

#define D(...) {__VA_ARGS__}
static const struct arch_tensor qwen3moe_tensors[] = {
    {"token_embd.weight", AW_GLOBAL, AG_TOKEN_EMBD, true, D(AD_EMBD, AD_VOCAB)},
    {"output_norm.weight", AW_GLOBAL, AG_NORM, true, D(AD_EMBD)},
    {"output.weight", AW_GLOBAL, AG_OUTPUT, false, D(AD_EMBD, AD_VOCAB)},
    {"attn_norm.weight", AW_EVERY_LAYER, AG_NORM, true, D(AD_EMBD)},
    {"attn_q.weight", AW_EVERY_LAYER, AG_ATTN_Q, true, D(AD_EMBD, AD_Q)},
    {"attn_k.weight", AW_EVERY_LAYER, AG_ATTN_K, true, D(AD_EMBD, AD_K)},
    {"attn_v.weight", AW_EVERY_LAYER, AG_ATTN_V, true, D(AD_EMBD, AD_V)},
    {"attn_output.weight", AW_EVERY_LAYER, AG_ATTN_OUT, true, D(AD_O, AD_EMBD)},
    {"attn_q_norm.weight", AW_EVERY_LAYER, AG_NORM, true, D(AD_HEAD_K)},
    {"attn_k_norm.weight", AW_EVERY_LAYER, AG_NORM, true, D(AD_HEAD_K)},
    {"ffn_norm.weight", AW_EVERY_LAYER, AG_NORM, true, D(AD_EMBD)},
    {"ffn_gate_inp.weight", AW_EVERY_LAYER, AG_ROUTER, true, D(AD_EMBD, AD_EXPERT)},
    {"ffn_gate_exps.weight", AW_EVERY_LAYER, AG_EXP_GATE, true, D(AD_EMBD, AD_FF_EXP, AD_EXPERT)},
    {"ffn_up_exps.weight", AW_EVERY_LAYER, AG_EXP_UP, true, D(AD_EMBD, AD_FF_EXP, AD_EXPERT)},
    {"ffn_down_exps.weight", AW_EVERY_LAYER, AG_EXP_DOWN, true, D(AD_FF_EXP, AD_EMBD, AD_EXPERT)},
};

/* qwen3next: layers alternate Gated DeltaNet (recurrent) and gated full attention; see
 * testdata/README.md "Tiny qwen3next models". */
static const struct arch_tensor qwen3next_tensors[] = {
    {"token_embd.weight", AW_GLOBAL, AG_TOKEN_EMBD, true, D(AD_EMBD, AD_VOCAB)},
    {"output_norm.weight", AW_GLOBAL, AG_NORM, true, D(AD_EMBD)},
    {"output.weight", AW_GLOBAL, AG_OUTPUT, false, D(AD_EMBD, AD_VOCAB)},
    {"attn_norm.weight", AW_EVERY_LAYER, AG_NORM, true, D(AD_EMBD)},
    {"post_attention_norm.weight", AW_EVERY_LAYER, AG_NORM, true, D(AD_EMBD)},
    {"attn_q.weight", AW_ATTN_LAYER, AG_ATTN_Q, true, D(AD_EMBD, AD_Q_GATED)},
    {"attn_k.weight", AW_ATTN_LAYER, AG_ATTN_K, true, D(AD_EMBD, AD_K)},
    {"attn_v.weight", AW_ATTN_LAYER, AG_ATTN_V, true, D(AD_EMBD, AD_V)},
    {"attn_output.weight", AW_ATTN_LAYER, AG_ATTN_OUT, true, D(AD_O, AD_EMBD)},
    {"attn_q_norm.weight", AW_ATTN_LAYER, AG_NORM, true, D(AD_HEAD_K)},
    {"attn_k_norm.weight", AW_ATTN_LAYER, AG_NORM, true, D(AD_HEAD_K)},
    {"attn_qkv.weight", AW_RECURRENT_LAYER, AG_ATTN_QKV, true, D(AD_EMBD, AD_CONV_CH)},
    {"attn_gate.weight", AW_RECURRENT_LAYER, AG_ATTN_GATE, true, D(AD_EMBD, AD_SSM_INNER)},
    {"ssm_ba.weight", AW_RECURRENT_LAYER, AG_SSM_BA, true, D(AD_EMBD, AD_SSM_BA)},
    {"ssm_conv1d.weight", AW_RECURRENT_LAYER, AG_SSM_CONV1D, true, D(AD_CONV_K, AD_CONV_CH)},
    {"ssm_dt.bias", AW_RECURRENT_LAYER, AG_SSM_DT, true, D(AD_DT_RANK)},
    {"ssm_a", AW_RECURRENT_LAYER, AG_SSM_A, true, D(AD_DT_RANK)},
    {"ssm_norm.weight", AW_RECURRENT_LAYER, AG_SSM_NORM, true, D(AD_STATE)},
    {"ssm_out.weight", AW_RECURRENT_LAYER, AG_SSM_OUT, true, D(AD_SSM_INNER, AD_EMBD)},
    {"ffn_gate_inp.weight", AW_EVERY_LAYER, AG_ROUTER, true, D(AD_EMBD, AD_EXPERT)},
    {"ffn_gate_exps.weight", AW_EVERY_LAYER, AG_EXP_GATE, true, D(AD_EMBD, AD_FF_EXP, AD_EXPERT)},
    {"ffn_up_exps.weight", AW_EVERY_LAYER, AG_EXP_UP, true, D(AD_EMBD, AD_FF_EXP, AD_EXPERT)},
    {"ffn_down_exps.weight", AW_EVERY_LAYER, AG_EXP_DOWN, true, D(AD_FF_EXP, AD_EMBD, AD_EXPERT)},
    /* llama.cpp's converter writes {n_embd, 1}, llama-quantize 1-D: trailing 1s compare equal */
    {"ffn_gate_inp_shexp.weight", AW_EVERY_LAYER, AG_SH_GATE_INP, true, D(AD_EMBD)},
    {"ffn_gate_shexp.weight", AW_EVERY_LAYER, AG_SH_GATE, true, D(AD_EMBD, AD_FF_SH)},
    {"ffn_up_shexp.weight", AW_EVERY_LAYER, AG_SH_UP, true, D(AD_EMBD, AD_FF_SH)},
    {"ffn_down_shexp.weight", AW_EVERY_LAYER, AG_SH_DOWN, true, D(AD_FF_SH, AD_EMBD)},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
static const struct arch_desc archs[ARCH_COUNT] = {
    [ARCH_QWEN3MOE] = {"qwen3moe", qwen3moe_keys, N(qwen3moe_keys), qwen3moe_tensors, N(qwen3moe_tensors)},
    [ARCH_QWEN3NEXT] = {"qwen3next", qwen3next_keys, N(qwen3next_keys), qwen3next_tensors,
                        N(qwen3next_tensors)},
};

static const char *const group_names[AG_COUNT] = {
    [AG_EXP_GATE] = "routed expert gate", [AG_EXP_UP] = "routed expert up",
    [AG_EXP_DOWN] = "routed expert down", [AG_SH_GATE] = "shared expert gate",
    [AG_SH_UP] = "shared expert up", [AG_SH_DOWN] = "shared expert down",
    [AG_SH_GATE_INP] = "shared expert gate input", [AG_ATTN_Q] = "attention q",
    [AG_ATTN_K] = "attention k", [AG_ATTN_V] = "attention v", [AG_ATTN_OUT] = "attention output",
    [AG_ATTN_QKV] = "attention qkv (fused, DeltaNet)", [AG_ATTN_GATE] = "attention gate",
    [AG_SSM_CONV1D] = "ssm conv1d", [AG_SSM_A] = "ssm a", [AG_SSM_DT] = "ssm dt",
    [AG_SSM_BA] = "ssm ba", [AG_SSM_NORM] = "ssm norm", [AG_SSM_OUT] = "ssm out",
    [AG_TOKEN_EMBD] = "token_embd", [AG_OUTPUT] = "output", [AG_NORM] = "norms",
    [AG_ROUTER] = "router", [AG_OTHER] = "other",
};

static const char *const dim_names[] = {
    [AD_NONE] = "-", [AD_ONE] = "1", [AD_EMBD] = "n_embd", [AD_VOCAB] = "n_vocab",
    [AD_Q] = "n_head*head_k", [AD_Q_GATED] = "2*n_head*head_k", [AD_K] = "n_head_kv*head_k",
    [AD_V] = "n_head_kv*head_v", [AD_O] = "n_head*head_v", [AD_HEAD_K] = "head_k",
    [AD_EXPERT] = "n_expert", [AD_FF_EXP] = "n_ff_exp", [AD_FF_SH] = "n_ff_shexp",
    [AD_CONV_K] = "conv_kernel", [AD_CONV_CH] = "2*groups*state+inner",
    [AD_SSM_INNER] = "inner_size", [AD_SSM_BA] = "2*time_step_rank",
    [AD_DT_RANK] = "time_step_rank", [AD_STATE] = "state_size",
};

const struct arch_desc *arch_find(const char *name)
{
    for (size_t i = 0; name && i < ARCH_COUNT; i++)
        if (strcmp(archs[i].name, name) == 0)
            return &archs[i];
    return NULL;
}

const struct arch_desc *arch_get(uint32_t id)
{
    return id < ARCH_COUNT ? &archs[id] : NULL;
}

const char *arch_group_name(enum arch_group g)
{
    return (unsigned)g < AG_COUNT ? group_names[g] : "?";
}

const char *arch_dim_name(enum arch_dim d)
{
    return (unsigned)d < N(dim_names) ? dim_names[d] : "?";
}

/* Products saturate instead of wrapping: an absurd hyperparameter must give an absurd size,
 * never a small one that happens to match. */
static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t arch_dim_value(const struct arch_hparams *hp, enum arch_dim d)
{
    switch (d) {
    case AD_NONE: case AD_ONE: return 1;
    case AD_EMBD: return hp->n_embd;
    case AD_VOCAB: return hp->n_vocab;
    case AD_Q: return mul_sat(hp->n_head, hp->head_k);
    case AD_Q_GATED: return mul_sat(2, mul_sat(hp->n_head, hp->head_k));
    case AD_K: return mul_sat(hp->n_head_kv, hp->head_k);
    case AD_V: return mul_sat(hp->n_head_kv, hp->head_v);
    case AD_O: return mul_sat(hp->n_head, hp->head_v);
    case AD_HEAD_K: return hp->head_k;
    case AD_EXPERT: return hp->n_expert;
    case AD_FF_EXP: return hp->n_ff_exp;
    case AD_FF_SH: return hp->n_ff_shexp;
    case AD_CONV_K: return hp->ssm_conv_kernel;
    case AD_CONV_CH: return add_sat(mul_sat(2, mul_sat(hp->ssm_groups, hp->ssm_state)), hp->ssm_inner);
    case AD_SSM_INNER: return hp->ssm_inner;
    case AD_SSM_BA: return mul_sat(2, hp->ssm_dt_rank);
    case AD_DT_RANK: return hp->ssm_dt_rank;
    case AD_STATE: return hp->ssm_state;
    }
    return 0;
}

bool arch_layer_is_attn(const struct arch_hparams *hp, uint64_t il)
{
    if (hp->arch != ARCH_QWEN3NEXT)
        return true;
    return hp->full_attn_interval && (il + 1) % hp->full_attn_interval == 0;
}

uint64_t arch_n_attn_layers(const struct arch_hparams *hp)
{
    if (hp->arch != ARCH_QWEN3NEXT)
        return hp->n_layer;
    return hp->full_attn_interval ? hp->n_layer / hp->full_attn_interval : 0;
}

void arch_split_name(const char *name, int64_t *layer, const char **suffix)
{
    *layer = -1;
    *suffix = name;
    if (strncmp(name, "blk.", 4) != 0)
        return;
    const char *p = name + 4;
    int64_t v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 12) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || digits == 12 || *p != '.' || (digits > 1 && name[4] == '0'))
        return;
    *layer = v;
    *suffix = p + 1;
}

const struct arch_tensor *arch_match(const struct arch_desc *a, const char *suffix, bool per_layer)
{
    for (size_t i = 0; i < a->n_tensors; i++)
        if ((a->tensors[i].where != AW_GLOBAL) == per_layer && strcmp(a->tensors[i].suffix, suffix) == 0)
            return &a->tensors[i];
    return NULL;
}

bool arch_read_hparams(const struct gguf_file *f, struct arch_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    char *name = gguf_get_str_dup(f, "general.architecture");
    const struct arch_desc *a = arch_find(name);
    free(name);
    if (!a)
        return false;
    hp->arch = (uint32_t)(a - archs);
    for (size_t i = 0; i < a->n_keys; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", a->name, a->keys[i].suffix);
        void *field = (char *)hp + a->keys[i].field;
        if (a->keys[i].is_float) {
            double v;
            if (gguf_get_f64(f, key, &v))
                memcpy(field, &v, sizeof v);
        } else {
            uint64_t v;
            if (gguf_get_u64(f, key, &v))
                memcpy(field, &v, sizeof v);
        }
    }
    if (!hp->head_k && hp->n_head)
        hp->head_k = hp->n_embd / hp->n_head;
    if (!hp->head_v && hp->n_head)
        hp->head_v = hp->n_embd / hp->n_head;
    if (!hp->rope_dims)
        hp->rope_dims = hp->head_k;
    const struct gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (tok && tok->val.type == GGUF_ARRAY)
        hp->n_vocab = tok->val.a.count;
    return true;
}
