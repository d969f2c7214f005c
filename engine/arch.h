/* arch.h: the per-architecture facts (hyperparameter keys, tensor names, groups and shapes)
 * of the models the engine runs; shared by inspect, the load-time validator and the memory planner. */
#ifndef MOESERVE_ARCH_H
#define MOESERVE_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"

enum arch_id { ARCH_QWEN3MOE, ARCH_QWEN3NEXT, ARCH_COUNT };

/* Hyperparameters as read from "<arch>.<key>" (0 where the architecture has no such key). */
struct arch_hparams {
    uint32_t arch;               /* enum arch_id */
    uint64_t n_layer, n_embd, n_head, n_head_kv, head_k, head_v;
    uint64_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp, n_ff, n_ctx_train, rope_dims;
    double rope_base, rms_eps;
    /* qwen3next only */
    uint64_t ssm_conv_kernel, ssm_state, ssm_groups, ssm_dt_rank, ssm_inner, full_attn_interval;
    /* from the tokenizer (0 if absent) */
    uint64_t n_vocab;
};

/* One hyperparameter key of an architecture. */
struct arch_key {
    const char *suffix;          /* after "<arch>." */
    size_t field;                /* offsetof(struct arch_hparams, ...) */
    bool is_float;
    bool required;
    uint64_t min, max;           /* sane range for required integer keys */
};

/* Groups of tensors, as a model card lists them. */
enum arch_group {
    AG_EXP_GATE, AG_EXP_UP, AG_EXP_DOWN, AG_SH_GATE, AG_SH_UP, AG_SH_DOWN, AG_SH_GATE_INP,
    AG_ATTN_Q, AG_ATTN_K, AG_ATTN_V, AG_ATTN_OUT, AG_ATTN_QKV, AG_ATTN_GATE,
    AG_SSM_CONV1D, AG_SSM_A, AG_SSM_DT, AG_SSM_BA, AG_SSM_NORM, AG_SSM_OUT,
    AG_TOKEN_EMBD, AG_OUTPUT, AG_NORM, AG_ROUTER, AG_OTHER, AG_COUNT
};

/* Symbolic dimensions: a tensor's expected shape is a list of these. */
enum arch_dim {
    AD_NONE, AD_ONE, AD_EMBD, AD_VOCAB, AD_Q, AD_Q_GATED, AD_K, AD_V, AD_O, AD_HEAD_K,
    AD_EXPERT, AD_FF_EXP, AD_FF_SH, AD_CONV_K, AD_CONV_CH, AD_SSM_INNER, AD_SSM_BA,
    AD_DT_RANK, AD_STATE
};

/* Which layers a per-layer tensor belongs to. */
enum arch_where { AW_GLOBAL, AW_EVERY_LAYER, AW_ATTN_LAYER, AW_RECURRENT_LAYER };

struct arch_tensor {
    const char *suffix;          /* "token_embd.weight", or after "blk.N." */
    enum arch_where where;
    enum arch_group group;
    bool required;
    uint8_t dims[GGUF_MAX_DIMS]; /* enum arch_dim, AD_NONE-terminated */
};

struct arch_desc {
    const char *name;            /* general.architecture */
    const struct arch_key *keys;
    size_t n_keys;
    const struct arch_tensor *tensors;
    size_t n_tensors;
};

/* Description of architecture name, or NULL if the engine does not run it. */
const struct arch_desc *arch_find(const char *name);
const struct arch_desc *arch_get(uint32_t id);
const char *arch_group_name(enum arch_group g);
const char *arch_dim_name(enum arch_dim d);

/* Value of a symbolic dimension under hp. */
uint64_t arch_dim_value(const struct arch_hparams *hp, enum arch_dim d);

/* True when layer il runs full attention (qwen3moe: every layer; qwen3next: every
 * full_attn_interval-th layer, the others are Gated DeltaNet). */
bool arch_layer_is_attn(const struct arch_hparams *hp, uint64_t il);
uint64_t arch_n_attn_layers(const struct arch_hparams *hp);

/* Splits a tensor name: *layer = N for "blk.N.rest" (rest in *suffix), else -1 and the name. */
void arch_split_name(const char *name, int64_t *layer, const char **suffix);

/* Pattern of the arch that names `suffix` in the given scope, or NULL. */
const struct arch_tensor *arch_match(const struct arch_desc *a, const char *suffix, bool per_layer);

/* Reads the architecture's keys into hp (missing optional ones take defaults: head size
 * n_embd/n_head, rope dims = head_k). Missing or malformed required keys are NOT reported
 * here; the validator does that. Returns false if the architecture is unknown. */
bool arch_read_hparams(const struct gguf_file *f, struct arch_hparams *hp);

#endif
