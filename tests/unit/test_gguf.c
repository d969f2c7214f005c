/* test_gguf.c: the GGUF reader on every reference file, and writer round trips.
 * Facts checked here are the ones testdata/README.md states. */
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

static struct gguf_file *open_testdata(const char *rel)
{
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, rel), err, sizeof err);
    CHECK(f != NULL, "%s", err);
    return f;
}

static void check_quants_file(void)
{
    struct gguf_file *f = open_testdata("quants.gguf");
    if (!f)
        return;
    uint32_t rows = 0, cols = 0;
    CHECK(f->version == 3, "quants.gguf is GGUF v3 (got %u)", f->version);
    CHECK(gguf_get_u32(f, "vectors.rows", &rows) && rows == 4, "vectors.rows = 4");
    CHECK(gguf_get_u32(f, "vectors.cols", &cols) && cols == 1024, "vectors.cols = 1024");
    const struct gguf_array *types = gguf_get_arr(f, "vectors.types", GGUF_STRING);
    CHECK(types && types->count == 27, "27 types listed");
    /* five tensors per type plus `source` and `imatrix` */
    CHECK(types && f->n_tensors == types->count * 5 + 2, "tensor count %llu",
          (unsigned long long)f->n_tensors);
    const struct gguf_tensor *src = gguf_find_tensor(f, "source");
    CHECK(src && src->type == Q_F32 && src->ne[0] == 1024 && src->ne[1] == 4, "source is F32 4x1024");
    const struct gguf_tensor *t = gguf_find_tensor(f, "iq2_s.q");
    CHECK(t && t->type == Q_IQ2_S && t->nbytes == 4 * 4 * 82, "iq2_s.q is 4 rows of 4 blocks");
    const struct gguf_array *vd = gguf_get_arr(f, "q4_K.vec_dot", GGUF_F32);
    CHECK(vd && vd->count == 4, "q4_K.vec_dot has 4 floats");
    gguf_close(f);
}

static void check_vocab_file(void)
{
    struct gguf_file *f = open_testdata("qwen3-vocab.gguf");
    if (!f)
        return;
    const struct gguf_array *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    const struct gguf_array *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_STRING);
    CHECK(tok && tok->count == 151936, "151,936 tokens");
    CHECK(merges && merges->count == 151387, "151,387 merges");
    char *pre = gguf_get_str_dup(f, "tokenizer.ggml.pre");
    CHECK(pre && strcmp(pre, "qwen2") == 0, "pre-tokenizer qwen2 (got %s)", pre ? pre : "none");
    free(pre);
    CHECK(f->n_tensors == 0, "vocab-only file has no tensors");
    gguf_close(f);
}

/* Per-layer tensor count and the expected types of a few tensors of one model. */
static void check_model(const char *rel, const char *arch, uint32_t layers, uint64_t tensors,
                        const char *tensor, uint32_t type)
{
    struct gguf_file *f = open_testdata(rel);
    if (!f)
        return;
    char *a = gguf_get_str_dup(f, "general.architecture"), key[128];
    CHECK(a && strcmp(a, arch) == 0, "%s: architecture %s", rel, a ? a : "none");
    snprintf(key, sizeof key, "%s.block_count", arch);
    uint32_t n = 0;
    CHECK(gguf_get_u32(f, key, &n) && n == layers, "%s: %u layers (got %u)", rel, layers, n);
    CHECK(f->n_tensors == tensors, "%s: %llu tensors (got %llu)", rel, (unsigned long long)tensors,
          (unsigned long long)f->n_tensors);
    const struct gguf_tensor *t = gguf_find_tensor(f, tensor);
    CHECK(t && t->type == type, "%s: %s has type %u", rel, tensor, t ? t->type : 999);
    free(a);
    gguf_close(f);
}

static void check_models(void)
{
    /* qwen3moe: 12 tensors per layer + token_embd, output_norm, output */
    check_model("models/tiny-qwen3moe-q8_0.gguf", "qwen3moe", 3, 39, "blk.0.attn_q.weight", Q_Q8_0);
    check_model("models/tiny-qwen3moe-asym.gguf", "qwen3moe", 3, 39, "blk.2.ffn_gate_exps.weight", Q_IQ2_S);
    check_model("models/tiny-qwen3moe-asym.gguf", "qwen3moe", 3, 39, "blk.1.ffn_down_exps.weight", Q_IQ3_S);
    check_model("models/tiny-qwen3moe-asym.gguf", "qwen3moe", 3, 39, "token_embd.weight", Q_Q6_K);
    check_model("models/tiny-qwen3moe-asym-pruned.gguf", "qwen3moe", 2, 27, "blk.1.attn_v.weight", Q_Q4_K);
    check_model("models/tiny-qwen3moe-mxfp4.gguf", "qwen3moe", 3, 39, "blk.0.ffn_up_exps.weight", Q_MXFP4);
    check_model("models/tiny-qwen3moe-q4_k_m.gguf", "qwen3moe", 3, 39, "output_norm.weight", Q_F32);
    check_model("models/tiny-qwen3next-mxfp4.gguf", "qwen3next", 4, 73, "blk.3.ffn_down_exps.weight", Q_MXFP4);
    check_model("models/tiny-qwen3next-q8_0.gguf", "qwen3next", 4, 73, "blk.0.ssm_conv1d.weight", Q_F32);
    check_model("models/tiny-qwen3next-reap8-mxfp4.gguf", "qwen3next", 4, 73, "blk.0.ssm_a", Q_F32);
    struct gguf_file *f = open_testdata("models/tiny-qwen3next-reap8-mxfp4.gguf");
    if (f) {
        const struct gguf_tensor *t = gguf_find_tensor(f, "blk.1.ffn_gate_exps.weight");
        CHECK(t && t->ne[0] == 256 && t->ne[1] == 128 && t->ne[2] == 8, "reap8: 8 experts of 128x256");
        gguf_close(f);
    }
}

/* Everything the writer can produce must read back identically. */
static void check_writer_round_trip(void)
{
    struct gguf_writer *w = gguf_w_new();
    REQUIRE_VOID(w);
    static const char *const strs[] = {"a", "", "héllo"};
    static const int32_t ints[] = {-1, 0, 7};
    static const float floats[] = {0.5f, -2.0f};
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    uint8_t q8[2 * 34] = {0};
    const int64_t ne_f[2] = {32, 2}, ne_q[1] = {64};
    CHECK(gguf_w_u32(w, "k.u32", 42) && gguf_w_i32(w, "k.i32", -5) && gguf_w_u64(w, "k.u64", 1ULL << 40) &&
              gguf_w_f32(w, "k.f32", 1.5f) && gguf_w_bool(w, "k.bool", true) &&
              gguf_w_str(w, "k.str", "text") && gguf_w_arr_str(w, "k.astr", strs, 3) &&
              gguf_w_arr_i32(w, "k.ai32", ints, 3) && gguf_w_arr_f32(w, "k.af32", floats, 2),
          "metadata added");
    CHECK(gguf_w_tensor(w, "t.f32", Q_F32, 2, ne_f, data) && gguf_w_tensor(w, "t.q8", Q_Q8_0, 1, ne_q, q8),
          "tensors added");
    char path[] = "/tmp/moeserve-test-XXXXXX", err[512];
    int fd = mkstemp(path);
    REQUIRE_VOID(fd >= 0);
    close(fd);
    CHECK(gguf_w_write_file(w, path, err, sizeof err), "%s", err);
    gguf_w_free(w);
    struct gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "%s", err);
    if (f) {
        uint32_t u = 0;
        int64_t i = 0;
        uint64_t u64 = 0;
        float fl = 0;
        bool b = false;
        CHECK(gguf_get_u32(f, "k.u32", &u) && u == 42, "u32");
        CHECK(gguf_get_i64(f, "k.i32", &i) && i == -5, "i32");
        CHECK(gguf_get_u64(f, "k.u64", &u64) && u64 == 1ULL << 40, "u64");
        CHECK(!gguf_get_u32(f, "k.u64", &u), "u64 past 32 bits does not read as u32");
        CHECK(gguf_get_f32(f, "k.f32", &fl) && fl == 1.5f, "f32");
        CHECK(gguf_get_bool(f, "k.bool", &b) && b, "bool");
        char *s = gguf_get_str_dup(f, "k.str");
        CHECK(s && strcmp(s, "text") == 0, "string");
        free(s);
        const struct gguf_array *as = gguf_get_arr(f, "k.astr", GGUF_STRING);
        CHECK(as && as->count == 3 && as->strs[1].len == 0 && as->strs[2].len == 6 &&
                  memcmp(as->strs[2].ptr, "héllo", 6) == 0,
              "string array");
        const struct gguf_array *ai = gguf_get_arr(f, "k.ai32", GGUF_I32);
        CHECK(ai && ai->count == 3 && gguf_arr_i64(ai, 0) == -1 && gguf_arr_i64(ai, 2) == 7, "i32 array");
        const struct gguf_array *af = gguf_get_arr(f, "k.af32", GGUF_F32);
        CHECK(af && gguf_arr_f64(af, 1) == -2.0, "f32 array");
        const struct gguf_tensor *t = gguf_find_tensor(f, "t.f32");
        CHECK(t && t->ne[0] == 32 && t->ne[1] == 2 && memcmp(t->data, data, sizeof data) == 0,
              "f32 tensor data");
        const struct gguf_tensor *q = gguf_find_tensor(f, "t.q8");
        CHECK(q && q->nbytes == 68 && q->offset % 32 == 0, "q8_0 tensor size and alignment");
        CHECK(!gguf_find_tensor(f, "missing") && !gguf_find_kv(f, "missing"), "absent names");
        gguf_close(f);
    }
    unlink(path);
}

int main(void)
{
    check_quants_file();
    check_vocab_file();
    check_models();
    check_writer_round_trip();
    return test_finish();
}
