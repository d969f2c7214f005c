/* test_fuzz_seeds.c: builds the smallest valid qwen3moe and qwen3next (attention, DeltaNet) files straight from the
 * architecture table, checks they validate, and that tests/fuzz/seeds/ holds exactly them. */
#include <string.h>
#include <unistd.h>

#include "engine/arch.h"
#include "engine/gguf.h"
#include "engine/validate.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

/* Tiny shapes that still satisfy every relation the validator checks. */
static struct arch_hparams tiny_hparams(uint32_t arch, uint64_t interval)
{
    struct arch_hparams hp = {.arch = arch, .n_layer = 1, .n_embd = 32, .n_head = 1, .n_head_kv = 1,
                              .head_k = 32, .head_v = 32, .n_expert = 1, .n_expert_used = 1,
                              .n_ff_exp = 32, .n_ctx_train = 64, .rope_dims = 32, .rope_base = 10000,
                              .rms_eps = 1e-6, .n_vocab = 8};
    if (arch == ARCH_QWEN3NEXT) {
        hp.n_ff_shexp = 32;
        hp.rope_dims = 8;
        hp.ssm_conv_kernel = 4;
        hp.ssm_state = 32;
        hp.ssm_groups = 1;
        hp.ssm_dt_rank = 1;
        hp.ssm_inner = 32;
        hp.full_attn_interval = interval;
    }
    return hp;
}

static bool add_keys(struct gguf_writer *w, const struct arch_desc *a, const struct arch_hparams *hp)
{
    bool ok = gguf_w_str(w, "general.architecture", a->name);
    for (size_t i = 0; ok && i < a->n_keys; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", a->name, a->keys[i].suffix);
        const void *field = (const char *)hp + a->keys[i].field;
        if (a->keys[i].is_float) {
            double v;
            memcpy(&v, field, sizeof v);
            ok = gguf_w_f32(w, key, (float)v);
        } else {
            uint64_t v;
            memcpy(&v, field, sizeof v);
            ok = v == 0 || gguf_w_u32(w, key, (uint32_t)v);
        }
    }
    static const char *const tokens[] = {"a", "b", "ab", "Ġ", "Ġa", "<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 3, 3, 3};
    static const char *const merges[] = {"a b", "Ġ a"};
    return ok && gguf_w_str(w, "tokenizer.ggml.model", "gpt2") && gguf_w_str(w, "tokenizer.ggml.pre", "qwen2") &&
           gguf_w_arr_str(w, "tokenizer.ggml.tokens", tokens, 8) &&
           gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, 8) &&
           gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, 2) &&
           gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 7) && gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 5);
}

static bool add_tensor(struct gguf_writer *w, const struct arch_tensor *p, const struct arch_hparams *hp,
                       const char *name, void **blobs, size_t *n_blobs)
{
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t n = 0;
    for (; n < GGUF_MAX_DIMS && p->dims[n] != AD_NONE; n++)
        ne[n] = (int64_t)arch_dim_value(hp, p->dims[n]);
    /* 2-D and larger weights in the smallest block type, vectors F32 */
    uint32_t type = n >= 2 && ne[0] % 32 == 0 ? Q_Q4_0 : Q_F32;
    uint64_t rows = 1, row_bytes;
    for (uint32_t d = 1; d < n; d++)
        rows *= (uint64_t)ne[d];
    if (!q_row_bytes(type, (uint64_t)ne[0], &row_bytes))
        return false;
    void *data = calloc(rows * row_bytes, 1);
    if (!data)
        return false;
    blobs[(*n_blobs)++] = data;
    return gguf_w_tensor(w, name, type, n, ne, data);
}

/* Writes the tiny model of arch to path. */
static bool build_seed(uint32_t arch, uint64_t interval, const char *path, char *err, size_t errlen)
{
    const struct arch_desc *a = arch_get(arch);
    struct arch_hparams hp = tiny_hparams(arch, interval);
    struct gguf_writer *w = gguf_w_new();
    void *blobs[128];
    size_t n_blobs = 0;
    bool ok = w && add_keys(w, a, &hp);
    for (size_t i = 0; ok && i < a->n_tensors; i++) {
        const struct arch_tensor *p = &a->tensors[i];
        char name[128];
        if (p->where == AW_GLOBAL) {
            ok = add_tensor(w, p, &hp, p->suffix, blobs, &n_blobs);
            continue;
        }
        for (uint64_t il = 0; ok && il < hp.n_layer; il++) {
            bool attn = arch_layer_is_attn(&hp, il);
            if ((p->where == AW_ATTN_LAYER && !attn) || (p->where == AW_RECURRENT_LAYER && attn))
                continue;
            snprintf(name, sizeof name, "blk.%llu.%s", (unsigned long long)il, p->suffix);
            ok = n_blobs < 128 && add_tensor(w, p, &hp, name, blobs, &n_blobs);
        }
    }
    ok = ok && gguf_w_write_file(w, path, err, errlen);
    for (size_t i = 0; i < n_blobs; i++)
        free(blobs[i]);
    gguf_w_free(w);
    return ok;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return NULL;
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *p = size > 0 ? malloc((size_t)size) : NULL;
    if (p && fread(p, 1, (size_t)size, in) != (size_t)size) {
        free(p);
        p = NULL;
    }
    fclose(in);
    *n = p ? (size_t)size : 0;
    return p;
}

static void check_seed(uint32_t arch, uint64_t interval, const char *seed)
{
    char path[] = "/tmp/moeserve-seed-XXXXXX", err[512];
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    CHECK(build_seed(arch, interval, path, err, sizeof err), "%s: %s", seed, err);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (f) {
        struct val_report r;
        size_t n = val_check(f, NULL, NULL, &r);
        CHECK(n == 0, "%s validates (%zu problems, first: %s)", seed, n, n ? r.msgs[0] : "");
        val_report_free(&r);
        CHECK(f->size < 12288, "%s is small (%zu bytes)", seed, f->size);
        gguf_close(f);
    }
    size_t na, nb;
    uint8_t *a = slurp(path, &na), *b = slurp(seed, &nb);
    if (getenv("MOESERVE_WRITE_SEEDS") && a) {
        FILE *out = fopen(seed, "wb");
        CHECK(out && fwrite(a, 1, na, out) == na && fclose(out) == 0, "writing %s", seed);
    } else {
        CHECK(a && b && na == nb && memcmp(a, b, na) == 0,
              "%s matches the generator (MOESERVE_WRITE_SEEDS=1 rewrites it)", seed);
    }
    free(a);
    free(b);
    unlink(path);
}

int main(void)
{
    check_seed(ARCH_QWEN3MOE, 0, "tests/fuzz/seeds/qwen3moe-tiny.seed");
    /* one full-attention layer; one Gated DeltaNet layer (interval past the last layer) */
    check_seed(ARCH_QWEN3NEXT, 1, "tests/fuzz/seeds/qwen3next-attn.seed");
    check_seed(ARCH_QWEN3NEXT, 2, "tests/fuzz/seeds/qwen3next-deltanet.seed");
    return test_finish();
}
