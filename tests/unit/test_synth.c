/* test_synth.c: synthetic models: shapes and types follow the spec and recipe, the vocabulary
 * is a consistent BPE (every merge joins two tokens into a third), and every scale is finite;
 * a synthetic qwen3next model validates, loads and runs. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/qwen3next.h"
#include "engine/synth.h"
#include "engine/validate.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

static bool has_token(const struct gguf_array *toks, const char *s, size_t len)
{
    for (uint64_t i = 0; i < toks->count; i++)
        if (toks->strs[i].len == len && memcmp(toks->strs[i].ptr, s, len) == 0)
            return true;
    return false;
}

static void check_vocab(const struct gguf_file *f, uint32_t n_vocab)
{
    const struct gguf_array *toks = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    const struct gguf_array *types = gguf_get_arr(f, "tokenizer.ggml.token_type", GGUF_I32);
    const struct gguf_array *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_STRING);
    REQUIRE_VOID(toks && types && merges);
    CHECK(toks->count == n_vocab && types->count == n_vocab, "vocab size %llu",
          (unsigned long long)toks->count);
    CHECK(merges->count > 100, "%llu merges", (unsigned long long)merges->count);
    int bad = 0;
    for (uint64_t i = 0; i < merges->count; i++) {
        const char *m = merges->strs[i].ptr, *sp = memchr(m, ' ', merges->strs[i].len);
        size_t len = merges->strs[i].len;
        if (!sp) {
            bad++;
            continue;
        }
        char joined[128];
        size_t a = (size_t)(sp - m), b = len - a - 1;
        memcpy(joined, m, a);
        memcpy(joined + a, sp + 1, b);
        if (!has_token(toks, m, a) || !has_token(toks, sp + 1, b) || !has_token(toks, joined, a + b))
            bad++;
    }
    CHECK(bad == 0, "%d merges refer to missing tokens", bad);
    uint32_t eos = 0;
    CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &eos) && eos < n_vocab &&
              toks->strs[eos].len == 10 && memcmp(toks->strs[eos].ptr, "<|im_end|>", 10) == 0,
          "eos is <|im_end|>");
    CHECK(gguf_find_kv(f, "tokenizer.chat_template") != NULL, "has a chat template");
}

/* Every f16 scale at `off` in each block of t must be finite (exponent bits not all ones). */
static void check_f16_scales(const struct gguf_tensor *t, uint32_t off)
{
    const struct q_traits *tr = q_type_traits(t->type);
    uint64_t blocks = t->nbytes / tr->block_bytes, bad = 0;
    for (uint64_t b = 0; b < blocks; b++) {
        const uint8_t *p = (const uint8_t *)t->data + b * tr->block_bytes + off;
        uint16_t h = (uint16_t)(p[0] | p[1] << 8);
        bad += ((h >> 10) & 0x1f) == 0x1f;
    }
    CHECK(bad == 0, "%s: %llu non-finite scales", t->name, (unsigned long long)bad);
}

/* Layer patterns at the extremes: every layer attention (interval 1) or none (interval past the
 * last layer). The model runs, and a cut lands anywhere without DeltaNet layers, at a snapshot
 * or 0 with them. */
static void check_next_pattern(uint32_t interval)
{
    struct synth_spec s = synth_next_tiny_spec();
    s.full_attn_interval = interval;
    char path[] = "/tmp/moeserve-synth-pat-XXXXXX", err[512];
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    CHECK(synth_write(&s, path, NULL, NULL, err, sizeof err), "%s", err);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    REQUIRE_VOID(f);
    struct q3n_model m;
    bool ok = q3n_load(&m, f, err, sizeof err);
    CHECK(ok, "interval %u: %s", interval, err);
    struct q3n_ctx *c = ok ? q3n_ctx_new(&m, 1, 64, 64, 8, 2, Q_F16, err, sizeof err) : NULL;
    CHECK(!ok || c, "%s", err);
    if (c) {
        int32_t tok[4] = {1, 2, 3, 4};
        uint32_t pos[4] = {0, 1, 2, 3}, seq[4] = {0};
        bool want[4] = {false, false, false, true};
        float *logits = malloc(s.n_vocab * sizeof *logits);
        CHECK(q3n_decode(c, 4, tok, pos, seq, want, logits, err, sizeof err), "interval %u: %s", interval, err);
        CHECK(isfinite(logits[0]), "interval %u: finite logits", interval);
        uint32_t kept = q3n_seq_keep(c, 0, 2);
        CHECK(kept == (interval == 1 ? 2u : 0u), "interval %u: keep 2 of 4 kept %u", interval, kept);
        free(logits);
        q3n_ctx_free(c);
    }
    if (ok)
        q3n_free(&m);
    gguf_close(f);
    unlink(path);
}

/* The qwen3next shapes: DeltaNet and attention layers in the pattern, the engine loads and runs it. */
static void check_next(void)
{
    struct synth_spec s = synth_next_tiny_spec();
    char path[] = "/tmp/moeserve-synth-next-XXXXXX", err[512];
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    CHECK(synth_write(&s, path, NULL, NULL, err, sizeof err), "%s", err);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    REQUIRE_VOID(f);
    /* 3 DeltaNet layers of 18 tensors, 1 attention layer of 16, 3 globals: as the reference model */
    CHECK(f->n_tensors == 3 + 3 * 18 + 16, "qwen3next tensor count %llu", (unsigned long long)f->n_tensors);
    const struct gguf_tensor *q = gguf_find_tensor(f, "blk.3.attn_q.weight");
    CHECK(q && q->ne[1] == 2 * s.n_head * s.head_dim, "attn_q holds queries and gates");
    const struct gguf_tensor *e = gguf_find_tensor(f, "blk.0.ffn_up_exps.weight");
    CHECK(e && e->type == Q_MXFP4, "experts MXFP4");
    CHECK(gguf_find_tensor(f, "blk.0.ssm_a") && !gguf_find_tensor(f, "blk.0.attn_q.weight"), "layer 0 is DeltaNet");
    struct val_report rep = {0};
    struct arch_hparams hp;
    size_t problems = val_check(f, val_cpu_caps(), &hp, &rep);
    CHECK(problems == 0, "validates: %s", rep.n ? rep.msgs[0] : "");
    val_report_free(&rep);
    struct q3n_model m;
    bool ok = q3n_load(&m, f, err, sizeof err);
    CHECK(ok, "%s", err);
    struct q3n_ctx *c = ok ? q3n_ctx_new(&m, 1, 64, 64, 8, 2, Q_F16, err, sizeof err) : NULL;
    CHECK(!ok || c, "%s", err);
    if (c) {
        int32_t tok[4] = {1, 2, 3, 4};
        uint32_t pos[4] = {0, 1, 2, 3}, seq[4] = {0};
        bool want[4] = {false, false, false, true};
        float *logits = malloc(s.n_vocab * sizeof *logits);
        CHECK(q3n_decode(c, 4, tok, pos, seq, want, logits, err, sizeof err), "%s", err);
        bool finite = true;
        for (uint32_t i = 0; i < s.n_vocab; i++)
            finite &= isfinite(logits[i]);
        CHECK(finite, "finite logits (decaying state)");
        free(logits);
        q3n_ctx_free(c);
    }
    if (ok)
        q3n_free(&m);
    gguf_close(f);
    unlink(path);
}

int main(void)
{
    struct synth_spec s = synth_tiny_spec();
    char path[] = "/tmp/moeserve-synth-XXXXXX", err[512];
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "temp file");
    close(fd);
    CHECK(synth_write(&s, path, NULL, NULL, err, sizeof err), "%s", err);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    REQUIRE(f, "%s", err);
    CHECK(f->n_tensors == 3 + 12 * s.n_layer, "tensor count %llu", (unsigned long long)f->n_tensors);
    const struct gguf_tensor *g = gguf_find_tensor(f, "blk.3.ffn_gate_exps.weight");
    CHECK(g && g->type == Q_IQ2_S && g->ne[0] == s.n_embd && g->ne[1] == s.n_ff_exp && g->ne[2] == s.n_expert,
          "gate experts IQ2_S [embd, ff, experts]");
    const struct gguf_tensor *d = gguf_find_tensor(f, "blk.0.ffn_down_exps.weight");
    CHECK(d && d->type == Q_IQ3_S && d->ne[0] == s.n_ff_exp, "down experts IQ3_S");
    const struct gguf_tensor *q = gguf_find_tensor(f, "blk.1.attn_q.weight");
    CHECK(q && q->type == Q_Q4_K, "attention Q4_K");
    const struct gguf_tensor *e = gguf_find_tensor(f, "token_embd.weight");
    CHECK(e && e->type == Q_Q6_K && e->ne[1] == s.n_vocab, "token_embd Q6_K");
    if (q)
        check_f16_scales(q, 0);
    if (e)
        check_f16_scales(e, 208);
    if (d)
        check_f16_scales(d, 0);
    uint32_t layers = 0;
    CHECK(gguf_get_u32(f, "qwen3moe.block_count", &layers) && layers == s.n_layer, "block_count");
    check_vocab(f, s.n_vocab);
    gguf_close(f);

    struct synth_spec bad = s;
    bad.n_ff_exp = 100; /* not a multiple of IQ3_S's 256-value blocks */
    CHECK(!synth_check(&bad, err, sizeof err) && strstr(err, "ffn_down_exps"), "bad shape: %s", err);
    unlink(path);
    check_next();
    check_next_pattern(1);
    check_next_pattern(8);
    return test_finish();
}
