/* synth.h: describes a random-weight qwen3moe or qwen3next model (shapes + quant recipe) and
 * writes it as GGUF. Used by `moeserve synth` for benchmarks and for the README's demo model. */
#ifndef MOESERVE_SYNTH_H
#define MOESERVE_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tensor types of a quantization recipe, by tensor group. */
struct synth_recipe {
    const char *name;
    uint32_t embd, output, attn, gate_up_exps, down_exps;
};

struct synth_spec {
    bool next;                   /* qwen3next (Gated DeltaNet + gated attention + shared expert) */
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_dim;
    uint32_t n_expert, n_expert_used, n_ff_exp, n_vocab, n_ctx;
    /* qwen3next only: shared expert FFN, layer pattern, partial RoPE, DeltaNet shape */
    uint32_t n_ff_shexp, full_attn_interval, n_rot;
    uint32_t ssm_groups, ssm_dt_rank, ssm_state, ssm_conv_kernel;
    float rope_base, rms_eps;
    struct synth_recipe recipe;
    uint64_t seed;
    const char *name;
};

/* The real Qwen3-30B-A3B shapes in the asymmetric recipe. */
struct synth_spec synth_default_spec(void);
/* A small model for demos and tests (runs at interactive speed on two cores). */
struct synth_spec synth_tiny_spec(void);
/* The real Qwen3-Coder-Next shapes (48 layers, 512 experts, top-10) in the MXFP4_MOE recipe. */
struct synth_spec synth_next_spec(void);
/* Its small version: the tiny qwen3next shapes of the reference data. */
struct synth_spec synth_next_tiny_spec(void);

/* Recipe by name ("asym", "q8_0", "q4_k", "mxfp4"), or NULL. */
const struct synth_recipe *synth_find_recipe(const char *name);
/* Comma-separated recipe names, for help texts. */
const char *synth_recipe_names(void);

/* Checks the spec (block sizes divide rows, counts sane); false with a message. */
bool synth_check(const struct synth_spec *s, char *err, size_t errlen);

/* Writes the model to path, streaming tensor data (memory use is one tensor's rows at a time).
 * progress (may be NULL) is called with bytes written so far and the total. */
bool synth_write(const struct synth_spec *s, const char *path,
                 void (*progress)(uint64_t done, uint64_t total, void *ctx), void *ctx,
                 char *err, size_t errlen);

/* Random valid blocks of any weight type: scales finite and moderate, quants random.
 * Writes n_blocks blocks of `type` to out. rng is a splitmix64 state. */
void synth_random_blocks(uint32_t type, void *out, uint64_t n_blocks, uint64_t *rng);

#endif
