/* synth.c: writes random-weight qwen3moe and qwen3next models of any shape and quant recipe as GGUF.
 * Tensor data is streamed in chunks, so a 30B-parameter file needs well under 1 GB of memory. */
#include "engine/synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/synth_vocab.h"
#include "kernels/qtypes.h"

static const struct synth_recipe recipes[] = {
    {"asym", Q_Q6_K, Q_Q6_K, Q_Q4_K, Q_IQ2_S, Q_IQ3_S},
    {"q8_0", Q_Q8_0, Q_Q8_0, Q_Q8_0, Q_Q8_0, Q_Q8_0},
    {"q4_k", Q_Q6_K, Q_Q6_K, Q_Q4_K, Q_Q4_K, Q_Q6_K},
    {"mxfp4", Q_Q8_0, Q_Q8_0, Q_Q8_0, Q_MXFP4, Q_MXFP4},
};

const struct synth_recipe *synth_find_recipe(const char *name)
{
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
        if (strcmp(recipes[i].name, name) == 0)
            return &recipes[i];
    return NULL;
}

const char *synth_recipe_names(void)
{
    return "asym, q8_0, q4_k, mxfp4";
}

struct synth_spec synth_default_spec(void)
{
    return (struct synth_spec){
        .next = false, .n_layer = 48, .n_embd = 2048, .n_head = 32, .n_head_kv = 4, .head_dim = 128,
        .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 768, .n_vocab = 151936, .n_ctx = 40960,
        .rope_base = 1e6f, .rms_eps = 1e-6f, .recipe = recipes[0], .seed = 1,
        .name = "synthetic-qwen3moe-30b-a3b",
    };
}

struct synth_spec synth_tiny_spec(void)
{
    struct synth_spec s = synth_default_spec();
    s.n_layer = 4;
    s.n_embd = 256;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.head_dim = 64;
    s.n_expert = 16;
    s.n_expert_used = 4;
    s.n_ff_exp = 256;
    s.n_vocab = 2048;
    s.n_ctx = 8192;
    s.name = "synthetic-qwen3moe-tiny";
    return s;
}

struct synth_spec synth_next_spec(void)
{
    return (struct synth_spec){
        .next = true, .n_layer = 48, .n_embd = 2048, .n_head = 16, .n_head_kv = 2, .head_dim = 256,
        .n_expert = 512, .n_expert_used = 10, .n_ff_exp = 512, .n_vocab = 151936, .n_ctx = 262144,
        .n_ff_shexp = 512, .full_attn_interval = 4, .n_rot = 64, .ssm_groups = 16, .ssm_dt_rank = 32,
        .ssm_state = 128, .ssm_conv_kernel = 4, .rope_base = 1e7f, .rms_eps = 1e-6f, .recipe = recipes[3],
        .seed = 1, .name = "synthetic-qwen3-coder-next",
    };
}

struct synth_spec synth_next_tiny_spec(void)
{
    struct synth_spec s = synth_next_spec();
    s.n_layer = 4;
    s.n_embd = 256;
    s.n_head = 4;
    s.n_head_kv = 2;
    s.head_dim = 64;
    s.n_rot = 16;
    s.n_expert = 16;
    s.n_expert_used = 4;
    s.n_ff_exp = 128;
    s.n_ff_shexp = 256;
    s.ssm_groups = 2;
    s.ssm_dt_rank = 4;
    s.ssm_state = 64;
    s.n_vocab = 2048;
    s.n_ctx = 8192;
    s.name = "synthetic-qwen3next-tiny";
    return s;
}

/* ----------------------------------------------------------------- tensors --- */

/* How a tensor's values are made: random valid blocks, or floats a trained model would have. */
enum fill { FILL_BLOCKS, FILL_NEAR_ONE, FILL_NEGATIVE };

struct tensor_plan {
    char name[64];
    uint32_t type, n_dims;
    int64_t ne[3];
    enum fill fill;
};

struct planner {
    struct tensor_plan *out;
    int n;
    int layer;   /* -1: a global tensor */
};

static void add(struct planner *p, const char *suffix, uint32_t type, uint32_t n_dims, int64_t a, int64_t b,
                int64_t c, enum fill fill)
{
    struct tensor_plan *t = &p->out[p->n++];
    *t = (struct tensor_plan){.type = type, .n_dims = n_dims, .ne = {a, b, c}, .fill = fill};
    if (p->layer < 0)
        snprintf(t->name, sizeof t->name, "%s", suffix);
    else
        snprintf(t->name, sizeof t->name, "blk.%d.%s", p->layer, suffix);
}

static bool is_attn_layer(const struct synth_spec *s, uint32_t l)
{
    return !s->next || (l + 1) % s->full_attn_interval == 0;
}

/* Full attention; qwen3next's attn_q holds each head's query rows then its gate rows. */
static void plan_attention(struct planner *p, const struct synth_spec *s)
{
    const uint32_t at = s->recipe.attn;
    const int64_t e = s->n_embd, q = (int64_t)s->n_head * s->head_dim, kv = (int64_t)s->n_head_kv * s->head_dim;
    add(p, "attn_q.weight", at, 2, e, s->next ? 2 * q : q, 1, FILL_BLOCKS);
    add(p, "attn_k.weight", at, 2, e, kv, 1, FILL_BLOCKS);
    add(p, "attn_v.weight", at, 2, e, kv, 1, FILL_BLOCKS);
    add(p, "attn_output.weight", at, 2, q, e, 1, FILL_BLOCKS);
    add(p, "attn_q_norm.weight", Q_F32, 1, s->head_dim, 1, 1, FILL_NEAR_ONE);
    add(p, "attn_k_norm.weight", Q_F32, 1, s->head_dim, 1, 1, FILL_NEAR_ONE);
}

/* Gated DeltaNet; ssm_a negative (it is -exp(A_log)) so the state decays. */
static void plan_deltanet(struct planner *p, const struct synth_spec *s)
{
    const uint32_t at = s->recipe.attn;
    const int64_t e = s->n_embd, inner = (int64_t)s->ssm_dt_rank * s->ssm_state;
    const int64_t ch = 2 * (int64_t)s->ssm_groups * s->ssm_state + inner;
    add(p, "attn_qkv.weight", at, 2, e, ch, 1, FILL_BLOCKS);
    add(p, "attn_gate.weight", at, 2, e, inner, 1, FILL_BLOCKS);
    add(p, "ssm_ba.weight", at, 2, e, 2 * (int64_t)s->ssm_dt_rank, 1, FILL_BLOCKS);
    add(p, "ssm_conv1d.weight", Q_F32, 2, s->ssm_conv_kernel, ch, 1, FILL_BLOCKS);
    add(p, "ssm_dt.bias", Q_F32, 1, s->ssm_dt_rank, 1, 1, FILL_BLOCKS);
    add(p, "ssm_a", Q_F32, 1, s->ssm_dt_rank, 1, 1, FILL_NEGATIVE);
    add(p, "ssm_norm.weight", Q_F32, 1, s->ssm_state, 1, 1, FILL_NEAR_ONE);
    add(p, "ssm_out.weight", at, 2, inner, e, 1, FILL_BLOCKS);
}

/* Routed experts, and qwen3next's sigmoid-gated shared expert. */
static void plan_ffn(struct planner *p, const struct synth_spec *s)
{
    const struct synth_recipe *r = &s->recipe;
    const int64_t e = s->n_embd, ff = s->n_ff_exp, ne = s->n_expert;
    add(p, s->next ? "post_attention_norm.weight" : "ffn_norm.weight", Q_F32, 1, e, 1, 1, FILL_NEAR_ONE);
    add(p, "ffn_gate_inp.weight", Q_F32, 2, e, ne, 1, FILL_BLOCKS);
    add(p, "ffn_gate_exps.weight", r->gate_up_exps, 3, e, ff, ne, FILL_BLOCKS);
    add(p, "ffn_up_exps.weight", r->gate_up_exps, 3, e, ff, ne, FILL_BLOCKS);
    add(p, "ffn_down_exps.weight", r->down_exps, 3, ff, e, ne, FILL_BLOCKS);
    if (!s->next)
        return;
    add(p, "ffn_gate_inp_shexp.weight", Q_F32, 1, e, 1, 1, FILL_BLOCKS);
    add(p, "ffn_gate_shexp.weight", r->attn, 2, e, s->n_ff_shexp, 1, FILL_BLOCKS);
    add(p, "ffn_up_shexp.weight", r->attn, 2, e, s->n_ff_shexp, 1, FILL_BLOCKS);
    add(p, "ffn_down_shexp.weight", r->attn, 2, s->n_ff_shexp, e, 1, FILL_BLOCKS);
}

static int plan_tensors(const struct synth_spec *s, struct tensor_plan *out)
{
    struct planner p = {.out = out, .layer = -1};
    add(&p, "token_embd.weight", s->recipe.embd, 2, s->n_embd, s->n_vocab, 1, FILL_BLOCKS);
    for (uint32_t l = 0; l < s->n_layer; l++) {
        p.layer = (int)l;
        add(&p, "attn_norm.weight", Q_F32, 1, s->n_embd, 1, 1, FILL_NEAR_ONE);
        if (is_attn_layer(s, l))
            plan_attention(&p, s);
        else
            plan_deltanet(&p, s);
        plan_ffn(&p, s);
    }
    p.layer = -1;
    add(&p, "output_norm.weight", Q_F32, 1, s->n_embd, 1, 1, FILL_NEAR_ONE);
    add(&p, "output.weight", s->recipe.output, 2, s->n_embd, s->n_vocab, 1, FILL_BLOCKS);
    return p.n;
}

/* An upper bound of plan_tensors' count (qwen3next's DeltaNet layers have the most tensors). */
static int tensor_count(const struct synth_spec *s)
{
    return 3 + 18 * (int)s->n_layer;
}

static bool next_shape_ok(const struct synth_spec *s)
{
    return s->full_attn_interval >= 1 && s->n_ff_shexp >= 1 && s->n_rot >= 2 && s->n_rot % 2 == 0 &&
           s->n_rot <= s->head_dim && s->ssm_groups >= 1 && s->ssm_dt_rank % s->ssm_groups == 0 &&
           s->ssm_state >= 1 && s->ssm_state <= 512 && s->ssm_conv_kernel >= 2 && s->ssm_conv_kernel <= 64 &&
           s->ssm_dt_rank >= 1;
}

bool synth_check(const struct synth_spec *s, char *err, size_t errlen)
{
    if (s->n_layer < 1 || s->n_layer > 1024 || s->n_embd < 1 || s->n_head < 1 || s->n_head_kv < 1 ||
        s->n_head % s->n_head_kv != 0 || s->head_dim < 2 || s->head_dim % 2 || s->n_expert < 1 ||
        s->n_expert_used < 1 || s->n_expert_used > s->n_expert || s->n_ff_exp < 1 ||
        s->n_vocab < 512 || s->n_ctx < 16 || (s->next && !next_shape_ok(s))) {
        snprintf(err, errlen, "synth: inconsistent shape (layers %u, embd %u, heads %u/%u, head size %u, "
                 "experts %u/%u, vocab %u; vocab must be >= 512, heads a multiple of KV heads)",
                 s->n_layer, s->n_embd, s->n_head, s->n_head_kv, s->head_dim, s->n_expert,
                 s->n_expert_used, s->n_vocab);
        return false;
    }
    struct tensor_plan *plan = malloc((size_t)tensor_count(s) * sizeof *plan);
    if (!plan) {
        snprintf(err, errlen, "synth: out of memory");
        return false;
    }
    const int n = plan_tensors(s, plan);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        uint64_t bytes;
        if (!q_row_bytes(plan[i].type, (uint64_t)plan[i].ne[0], &bytes)) {
            const struct q_traits *tr = q_type_traits(plan[i].type);
            snprintf(err, errlen, "synth: tensor %s: row of %lld values is not a multiple of %s's block size %u",
                     plan[i].name, (long long)plan[i].ne[0], tr ? tr->name : "?", tr ? tr->block_size : 0);
            ok = false;
        }
    }
    free(plan);
    return ok;
}

/* ----------------------------------------------------------------- writing --- */

/* qwen3next's extra keys: shared expert, layer pattern, DeltaNet shape. */
static bool write_next_metadata(struct gguf_writer *w, const struct synth_spec *s)
{
    return gguf_w_u32(w, "qwen3next.expert_shared_feed_forward_length", s->n_ff_shexp) &&
           gguf_w_u32(w, "qwen3next.full_attention_interval", s->full_attn_interval) &&
           gguf_w_u32(w, "qwen3next.ssm.conv_kernel", s->ssm_conv_kernel) &&
           gguf_w_u32(w, "qwen3next.ssm.state_size", s->ssm_state) &&
           gguf_w_u32(w, "qwen3next.ssm.group_count", s->ssm_groups) &&
           gguf_w_u32(w, "qwen3next.ssm.time_step_rank", s->ssm_dt_rank) &&
           gguf_w_u32(w, "qwen3next.ssm.inner_size", s->ssm_dt_rank * s->ssm_state);
}

static bool write_metadata(struct gguf_writer *w, const struct synth_spec *s)
{
    const char *a = s->next ? "qwen3next" : "qwen3moe";
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, (suffix)), k)
    return gguf_w_str(w, "general.architecture", a) && gguf_w_str(w, "general.name", s->name) &&
           (!s->next || write_next_metadata(w, s)) &&
           gguf_w_u32(w, KEY("context_length"), s->n_ctx) &&
           gguf_w_u32(w, KEY("embedding_length"), s->n_embd) &&
           gguf_w_u32(w, KEY("block_count"), s->n_layer) &&
           gguf_w_u32(w, KEY("feed_forward_length"), s->n_embd * 3) &&
           gguf_w_u32(w, KEY("attention.head_count"), s->n_head) &&
           gguf_w_u32(w, KEY("attention.head_count_kv"), s->n_head_kv) &&
           gguf_w_u32(w, KEY("attention.key_length"), s->head_dim) &&
           gguf_w_u32(w, KEY("attention.value_length"), s->head_dim) &&
           gguf_w_u32(w, KEY("rope.dimension_count"), s->next ? s->n_rot : s->head_dim) &&
           gguf_w_f32(w, KEY("rope.freq_base"), s->rope_base) &&
           gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps) &&
           gguf_w_u32(w, KEY("expert_count"), s->n_expert) &&
           gguf_w_u32(w, KEY("expert_used_count"), s->n_expert_used) &&
           gguf_w_u32(w, KEY("expert_feed_forward_length"), s->n_ff_exp) &&
           synth_vocab_write(w, s->n_vocab) && gguf_w_u32(w, "general.quantization_version", 2);
#undef KEY
}

/* Norm weights near 1 (as trained models have), ssm_a between -1.5 and -0.5, everything else
 * random blocks. */
static bool write_tensor_data(const struct tensor_plan *t, FILE *out, uint64_t *rng, uint8_t *chunk,
                              size_t chunk_bytes, uint64_t *written)
{
    const struct q_traits *tr = q_type_traits(t->type);
    uint64_t row_bytes;
    q_row_bytes(t->type, (uint64_t)t->ne[0], &row_bytes);
    uint64_t rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2], total = row_bytes * rows;
    uint64_t blocks_per_chunk = chunk_bytes / tr->block_bytes, blocks_left = total / tr->block_bytes;
    while (blocks_left > 0) {
        uint64_t nb = blocks_left < blocks_per_chunk ? blocks_left : blocks_per_chunk;
        if (t->fill != FILL_BLOCKS) {
            float *f = (float *)chunk;
            for (uint64_t i = 0; i < nb; i++) {
                uint64_t r = *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
                float u = (float)(r >> 40) / (float)(1 << 24) - 0.5f;
                f[i] = t->fill == FILL_NEAR_ONE ? 1.0f + u * 0.2f : -1.0f + u;
            }
        } else {
            synth_random_blocks(t->type, chunk, nb, rng);
        }
        size_t bytes = (size_t)(nb * tr->block_bytes);
        if (fwrite(chunk, 1, bytes, out) != bytes)
            return false;
        blocks_left -= nb;
        *written += bytes;
    }
    return true;
}

bool synth_write(const struct synth_spec *s, const char *path,
                 void (*progress)(uint64_t done, uint64_t total, void *ctx), void *ctx, char *err,
                 size_t errlen)
{
    if (!synth_check(s, err, errlen))
        return false;
    int n = 0;
    struct tensor_plan *plan = malloc((size_t)tensor_count(s) * sizeof *plan);
    struct gguf_writer *w = gguf_w_new();
    const size_t chunk_bytes = 8u << 20;
    uint8_t *chunk = malloc(chunk_bytes);
    FILE *out = NULL;
    bool ok = plan && w && chunk;
    if (!ok)
        snprintf(err, errlen, "synth: out of memory");
    uint64_t total = 0, written = 0, rng = s->seed;
    if (ok) {
        n = plan_tensors(s, plan);
        ok = write_metadata(w, s);
        for (int i = 0; ok && i < n; i++) {
            uint64_t row_bytes;
            q_row_bytes(plan[i].type, (uint64_t)plan[i].ne[0], &row_bytes);
            total += row_bytes * (uint64_t)plan[i].ne[1] * (uint64_t)plan[i].ne[2];
            ok = gguf_w_tensor_info(w, plan[i].name, plan[i].type, plan[i].n_dims, plan[i].ne);
        }
        if (!ok)
            snprintf(err, errlen, "synth: out of memory building metadata");
    }
    if (ok && !(out = fopen(path, "wb"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        ok = false;
    }
    ok = ok && gguf_w_write_header(w, out, err, errlen);
    for (int i = 0; ok && i < n; i++) {
        uint64_t before = written;
        ok = write_tensor_data(&plan[i], out, &rng, chunk, chunk_bytes, &written) &&
             gguf_w_pad(w, out, written - before);
        if (!ok)
            snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        else if (progress)
            progress(written, total, ctx);
    }
    if (out && fclose(out) != 0 && ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok && out)
        remove(path);
    gguf_w_free(w);
    free(chunk);
    free(plan);
    return ok;
}
