/* synth.c: writes random-weight qwen3moe models of any shape and quant recipe as GGUF.
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
        .n_layer = 48, .n_embd = 2048, .n_head = 32, .n_head_kv = 4, .head_dim = 128,
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

/* ----------------------------------------------------------------- tensors --- */

struct tensor_plan {
    char name[64];
    uint32_t type, n_dims;
    int64_t ne[3];
    bool is_norm;
};

static int plan_tensors(const struct synth_spec *s, struct tensor_plan *out)
{
    const struct synth_recipe *r = &s->recipe;
    int64_t e = s->n_embd, q = (int64_t)s->n_head * s->head_dim, kv = (int64_t)s->n_head_kv * s->head_dim;
    int n = 0;
#define T(nm, ty, nd, a, b, c, norm)                                                   \
    do {                                                                               \
        out[n] = (struct tensor_plan){.type = (ty), .n_dims = (nd), .ne = {(a), (b), (c)}, \
                                      .is_norm = (norm)};                              \
        snprintf(out[n].name, sizeof out[n].name, "%s", (nm));                        \
        n++;                                                                           \
    } while (0)
    T("token_embd.weight", r->embd, 2, e, s->n_vocab, 1, false);
    for (uint32_t l = 0; l < s->n_layer; l++) {
        char nm[64];
#define L(suffix, ty, nd, a, b, c, norm)                            \
        do {                                                        \
            snprintf(nm, sizeof nm, "blk.%u.%s", l, (suffix));      \
            T(nm, ty, nd, a, b, c, norm);                           \
        } while (0)
        L("attn_norm.weight", Q_F32, 1, e, 1, 1, true);
        L("attn_q.weight", r->attn, 2, e, q, 1, false);
        L("attn_k.weight", r->attn, 2, e, kv, 1, false);
        L("attn_v.weight", r->attn, 2, e, kv, 1, false);
        L("attn_output.weight", r->attn, 2, q, e, 1, false);
        L("attn_q_norm.weight", Q_F32, 1, s->head_dim, 1, 1, true);
        L("attn_k_norm.weight", Q_F32, 1, s->head_dim, 1, 1, true);
        L("ffn_norm.weight", Q_F32, 1, e, 1, 1, true);
        L("ffn_gate_inp.weight", Q_F32, 2, e, s->n_expert, 1, false);
        L("ffn_gate_exps.weight", r->gate_up_exps, 3, e, s->n_ff_exp, s->n_expert, false);
        L("ffn_up_exps.weight", r->gate_up_exps, 3, e, s->n_ff_exp, s->n_expert, false);
        L("ffn_down_exps.weight", r->down_exps, 3, s->n_ff_exp, e, s->n_expert, false);
#undef L
    }
    T("output_norm.weight", Q_F32, 1, e, 1, 1, true);
    T("output.weight", r->output, 2, e, s->n_vocab, 1, false);
#undef T
    return n;
}

static int tensor_count(const struct synth_spec *s)
{
    return 3 + 12 * (int)s->n_layer;
}

bool synth_check(const struct synth_spec *s, char *err, size_t errlen)
{
    if (s->n_layer < 1 || s->n_layer > 1024 || s->n_embd < 1 || s->n_head < 1 || s->n_head_kv < 1 ||
        s->n_head % s->n_head_kv != 0 || s->head_dim < 2 || s->head_dim % 2 || s->n_expert < 1 ||
        s->n_expert_used < 1 || s->n_expert_used > s->n_expert || s->n_ff_exp < 1 ||
        s->n_vocab < 512 || s->n_ctx < 16) {
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
    int n = plan_tensors(s, plan);
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

static bool write_metadata(struct gguf_writer *w, const struct synth_spec *s)
{
    const char *a = "qwen3moe";
    char k[96];
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", a, (suffix)), k)
    return gguf_w_str(w, "general.architecture", a) && gguf_w_str(w, "general.name", s->name) &&
           gguf_w_u32(w, KEY("context_length"), s->n_ctx) &&
           gguf_w_u32(w, KEY("embedding_length"), s->n_embd) &&
           gguf_w_u32(w, KEY("block_count"), s->n_layer) &&
           gguf_w_u32(w, KEY("feed_forward_length"), s->n_embd * 3) &&
           gguf_w_u32(w, KEY("attention.head_count"), s->n_head) &&
           gguf_w_u32(w, KEY("attention.head_count_kv"), s->n_head_kv) &&
           gguf_w_u32(w, KEY("attention.key_length"), s->head_dim) &&
           gguf_w_u32(w, KEY("attention.value_length"), s->head_dim) &&
           gguf_w_u32(w, KEY("rope.dimension_count"), s->head_dim) &&
           gguf_w_f32(w, KEY("rope.freq_base"), s->rope_base) &&
           gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps) &&
           gguf_w_u32(w, KEY("expert_count"), s->n_expert) &&
           gguf_w_u32(w, KEY("expert_used_count"), s->n_expert_used) &&
           gguf_w_u32(w, KEY("expert_feed_forward_length"), s->n_ff_exp) &&
           synth_vocab_write(w, s->n_vocab) && gguf_w_u32(w, "general.quantization_version", 2);
#undef KEY
}

/* Norm weights near 1 (as trained models have); everything else random blocks. */
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
        if (t->is_norm) {
            float *f = (float *)chunk;
            for (uint64_t i = 0; i < nb; i++) {
                uint64_t r = *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
                f[i] = 1.0f + ((float)(r >> 40) / (float)(1 << 24) - 0.5f) * 0.2f;
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
    int n = tensor_count(s);
    struct tensor_plan *plan = malloc((size_t)n * sizeof *plan);
    struct gguf_writer *w = gguf_w_new();
    const size_t chunk_bytes = 8u << 20;
    uint8_t *chunk = malloc(chunk_bytes);
    FILE *out = NULL;
    bool ok = plan && w && chunk;
    if (!ok)
        snprintf(err, errlen, "synth: out of memory");
    uint64_t total = 0, written = 0, rng = s->seed;
    if (ok) {
        plan_tensors(s, plan);
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
