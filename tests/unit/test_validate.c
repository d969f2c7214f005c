/* test_validate.c: the load-time validator on every reference model and on mutated copies
 * (each listing all its problems), and the memory planner's arithmetic. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/arch.h"
#include "engine/gguf.h"
#include "engine/memplan.h"
#include "engine/ssm_state.h"
#include "engine/validate.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

/* ------------------------------------------------------- rewriting models --- */

/* Edits applied while copying a model through the writer. */
struct edit {
    const char *drop_tensor[4];      /* tensors left out */
    const char *reshape;             /* tensor written as F32 zeros of shape ne */
    uint32_t reshape_dims;
    int64_t ne[4];
    const char *add_tensor;          /* extra F32 tensor of 256 values */
    const char *set_key;             /* integer key rewritten as u32 */
    uint32_t set_val;
    const char *drop_key;
    const char *set_str_key, *set_str;
    uint64_t drop_tokens;            /* last tokens (and token types) left out */
};

static bool copy_kv(struct gguf_writer *w, const struct gguf_kv *kv, const struct edit *e)
{
    const struct gguf_value *v = &kv->val;
    if (e->drop_key && strcmp(kv->key, e->drop_key) == 0)
        return true;
    if (e->set_key && strcmp(kv->key, e->set_key) == 0)
        return gguf_w_u32(w, kv->key, e->set_val);
    if (e->set_str_key && strcmp(kv->key, e->set_str_key) == 0)
        return gguf_w_str(w, kv->key, e->set_str);
    bool tokens = strcmp(kv->key, "tokenizer.ggml.tokens") == 0 ||
                  strcmp(kv->key, "tokenizer.ggml.token_type") == 0;
    switch (v->type) {
    case GGUF_U32: case GGUF_U8: case GGUF_U16: return gguf_w_u32(w, kv->key, (uint32_t)v->u);
    case GGUF_I32: case GGUF_I8: case GGUF_I16: return gguf_w_i32(w, kv->key, (int32_t)v->i);
    case GGUF_U64: return gguf_w_u64(w, kv->key, v->u);
    case GGUF_F32: case GGUF_F64: return gguf_w_f32(w, kv->key, (float)v->f);
    case GGUF_BOOL: return gguf_w_bool(w, kv->key, v->u != 0);
    case GGUF_STRING: {
        char *s = strndup(v->s.ptr, v->s.len);
        bool ok = s && gguf_w_str(w, kv->key, s);
        free(s);
        return ok;
    }
    case GGUF_ARRAY: {
        uint64_t n = v->a.count - (tokens && e->drop_tokens <= v->a.count ? e->drop_tokens : 0);
        if (v->a.elem_type == GGUF_STRING) {
            char **s = calloc(n ? n : 1, sizeof *s);
            bool ok = s != NULL;
            for (uint64_t i = 0; ok && i < n; i++)
                ok = (s[i] = strndup(v->a.strs[i].ptr, v->a.strs[i].len)) != NULL;
            ok = ok && gguf_w_arr_str(w, kv->key, (const char *const *)s, n);
            for (uint64_t i = 0; s && i < n; i++)
                free(s[i]);
            free(s);
            return ok;
        }
        if (v->a.elem_type == GGUF_I32) {
            int32_t *x = malloc((n ? n : 1) * sizeof *x);
            for (uint64_t i = 0; x && i < n; i++)
                x[i] = (int32_t)gguf_arr_i64(&v->a, i);
            bool ok = x && gguf_w_arr_i32(w, kv->key, x, n);
            free(x);
            return ok;
        }
        return false;
    }
    default: return false;
    }
}

static bool dropped(const struct edit *e, const char *name)
{
    for (int i = 0; i < 4; i++)
        if (e->drop_tensor[i] && strcmp(e->drop_tensor[i], name) == 0)
            return true;
    return false;
}

/* Writes a copy of testdata model `rel` with edits e to a temporary file and opens it. */
static struct gguf_file *edited_model(const char *rel, const struct edit *e, char *path_out)
{
    char path[512], err[512];
    struct gguf_file *src = gguf_open(testdata_path(path, sizeof path, rel), err, sizeof err);
    CHECK(src != NULL, "%s", err);
    if (!src)
        return NULL;
    struct gguf_writer *w = gguf_w_new();
    bool ok = w != NULL;
    static const float extra[256];
    void *zeros = NULL;
    for (uint64_t i = 0; ok && i < src->n_kv; i++)
        ok = copy_kv(w, &src->kv[i], e);
    for (uint64_t i = 0; ok && i < src->n_tensors; i++) {
        const struct gguf_tensor *t = &src->tensors[i];
        if (dropped(e, t->name))
            continue;
        if (e->reshape && strcmp(t->name, e->reshape) == 0) {
            uint64_t n = 1;
            for (uint32_t d = 0; d < e->reshape_dims; d++)
                n *= (uint64_t)e->ne[d];
            ok = (zeros = calloc(n, 4)) != NULL &&
                 gguf_w_tensor(w, t->name, Q_F32, e->reshape_dims, e->ne, zeros);
        } else {
            ok = gguf_w_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
        }
    }
    if (ok && e->add_tensor) {
        const int64_t ne[1] = {256};
        ok = gguf_w_tensor(w, e->add_tensor, Q_F32, 1, ne, extra);
    }
    strcpy(path_out, "/tmp/moeserve-validate-XXXXXX");
    int fd = mkstemp(path_out);
    if (fd >= 0)
        close(fd);
    ok = ok && fd >= 0 && gguf_w_write_file(w, path_out, err, sizeof err);
    CHECK(ok, "rewriting %s: %s", rel, err);
    gguf_w_free(w);
    free(zeros);
    gguf_close(src);
    struct gguf_file *f = ok ? gguf_open(path_out, err, sizeof err) : NULL;
    CHECK(!ok || f != NULL, "reopening the edited %s: %s", rel, err);
    return f;
}

/* Number of messages containing every one of the given substrings. */
static size_t count_msgs(const struct val_report *r, const char *a, const char *b)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += strstr(r->msgs[i], a) && (!b || strstr(r->msgs[i], b));
    return n;
}

static void dump(const struct val_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        fprintf(stderr, "    %s\n", r->msgs[i]);
}

/* Validates model rel with edits e; expects exactly n_expect problems. Returns the report
 * (caller frees) for finer checks. */
static bool run_edited(const char *what, const char *rel, const struct edit *e, size_t n_expect,
                       struct val_report *r)
{
    char path[64];
    struct gguf_file *f = edited_model(rel, e, path);
    memset(r, 0, sizeof *r);
    if (!f) {
        unlink(path);
        return false;
    }
    size_t n = val_check(f, NULL, NULL, r);
    CHECK(n == n_expect, "%s: %zu problems (expected %zu)", what, n, n_expect);
    if (n != n_expect)
        dump(r);
    gguf_close(f);
    unlink(path);
    return true;
}

/* ------------------------------------------------------------------ tests --- */

static const char *const models[] = {
    "models/tiny-qwen3moe-q8_0.gguf", "models/tiny-qwen3moe-q4_k_m.gguf",
    "models/tiny-qwen3moe-asym.gguf", "models/tiny-qwen3moe-asym-pruned.gguf",
    "models/tiny-qwen3moe-mxfp4.gguf", "models/tiny-qwen3next-q8_0.gguf",
    "models/tiny-qwen3next-mxfp4.gguf", "models/tiny-qwen3next-reap8-mxfp4.gguf",
};

static bool accept_all(const struct val_caps *c, uint32_t t)
{
    return true;
}

static bool reject_iq2_s(const struct val_caps *c, uint32_t t)
{
    return t != Q_IQ2_S;
}

static void check_real_models(void)
{
    struct val_caps all = {"test", accept_all, NULL};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char path[512], err[512];
        struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, models[i]), err, sizeof err);
        CHECK(f != NULL, "%s", err);
        if (!f)
            continue;
        struct val_report r;
        struct arch_hparams hp;
        size_t n = val_check(f, &all, &hp, &r);
        CHECK(n == 0, "%s passes (%zu problems)", models[i], n);
        dump(&r);
        val_report_free(&r);
        CHECK(hp.n_vocab == 4122 && hp.n_embd == 256 && hp.head_k == 64, "%s: hparams read", models[i]);
        gguf_close(f);
    }
}

static void check_type_callback(void)
{
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "models/tiny-qwen3moe-asym.gguf"),
                                    err, sizeof err);
    REQUIRE_VOID(f);
    struct val_caps caps = {"mydev", reject_iq2_s, NULL};
    struct val_report r;
    size_t n = val_check(f, &caps, NULL, &r);
    CHECK(n == 1 && count_msgs(&r, "iq2_s", "mydev kernels"), "one problem names the type and device");
    CHECK(n == 1 && count_msgs(&r, "and 5 more", NULL), "6 IQ2_S tensors counted");
    val_report_free(&r);
    gguf_close(f);
}

static void check_missing_and_shape(void)
{
    struct val_report r;
    struct edit e = {.drop_tensor = {"blk.1.attn_k.weight", "blk.2.ffn_norm.weight"},
                     .reshape = "blk.0.attn_q.weight", .reshape_dims = 2, .ne = {256, 128},
                     .add_tensor = "blk.0.bogus.weight"};
    if (!run_edited("missing+shape+extra", "models/tiny-qwen3moe-asym.gguf", &e, 4, &r))
        return;
    CHECK(count_msgs(&r, "'blk.1.attn_k.weight': missing", NULL) == 1, "missing attn_k named");
    CHECK(count_msgs(&r, "'blk.2.ffn_norm.weight': missing", NULL) == 1, "missing ffn_norm named");
    CHECK(count_msgs(&r, "'blk.0.attn_q.weight': expected shape [256, 256]", "found [256, 128]") == 1,
          "wrong shape: expected and found");
    CHECK(count_msgs(&r, "'blk.0.bogus.weight': unexpected", NULL) == 1, "extra tensor reported");
    val_report_free(&r);
}

static void check_block_count(void)
{
    struct val_report r;
    /* pruned file (2 layers) claiming 3: the 12 tensors of layer 2 are missing */
    struct edit more = {.set_key = "qwen3moe.block_count", .set_val = 3};
    if (run_edited("pruned, block_count 3", "models/tiny-qwen3moe-asym-pruned.gguf", &more, 12, &r)) {
        CHECK(count_msgs(&r, "blk.2.", "missing") == 12, "every layer-2 tensor missing");
        val_report_free(&r);
    }
    /* a huge layer count: every problem counted, only the first VAL_MAX_MSGS kept */
    struct edit huge = {.set_key = "qwen3moe.block_count", .set_val = 65536};
    if (run_edited("block_count 65536", "models/tiny-qwen3moe-asym.gguf", &huge, 12 * (65536 - 3), &r)) {
        CHECK(r.n == VAL_MAX_MSGS && strstr(r.msgs[r.n - 1], "more problems"), "messages capped");
        val_report_free(&r);
    }
    /* full file claiming 2: layer 2's tensors are unexpected */
    struct edit fewer = {.set_key = "qwen3moe.block_count", .set_val = 2};
    if (run_edited("block_count 2", "models/tiny-qwen3moe-asym.gguf", &fewer, 12, &r)) {
        CHECK(count_msgs(&r, "blk.2.", "but block_count is 2") == 12, "every layer-2 tensor unexpected");
        val_report_free(&r);
    }
}

static void check_vocab_and_experts(void)
{
    struct val_report r;
    struct edit vocab = {.drop_tokens = 10};
    if (run_edited("vocab 4112", "models/tiny-qwen3moe-asym.gguf", &vocab, 2, &r)) {
        CHECK(count_msgs(&r, "'token_embd.weight': expected shape [256, 4112] (n_embd, n_vocab)",
                         "found [256, 4122]") == 1, "embedding rows vs vocabulary");
        CHECK(count_msgs(&r, "'output.weight'", "the tokenizer has 4112 tokens") == 1, "output rows vs vocabulary");
        val_report_free(&r);
    }
    /* 16 experts in the tensors, 8 in the metadata: router + 3 expert tensors per layer */
    struct edit experts = {.set_key = "qwen3next.expert_count", .set_val = 8};
    if (run_edited("expert_count 8", "models/tiny-qwen3next-mxfp4.gguf", &experts, 16, &r)) {
        CHECK(count_msgs(&r, "ffn_gate_inp.weight': expected shape [256, 8]", "found [256, 16]") == 4,
              "router rows vs expert_count in 4 layers");
        CHECK(count_msgs(&r, "_exps.weight'", "n_expert") == 12, "expert tensors in 4 layers");
        val_report_free(&r);
    }
    struct edit used = {.set_key = "qwen3moe.expert_used_count", .set_val = 17};
    if (run_edited("expert_used 17", "models/tiny-qwen3moe-q8_0.gguf", &used, 1, &r)) {
        CHECK(count_msgs(&r, "expert_used_count", "found 17") == 1, "used > count");
        val_report_free(&r);
    }
}

static void check_keys_and_arch(void)
{
    struct val_report r;
    struct edit nokey = {.drop_key = "qwen3moe.embedding_length"};
    if (run_edited("no embedding_length", "models/tiny-qwen3moe-q8_0.gguf", &nokey, 1, &r)) {
        CHECK(count_msgs(&r, "'qwen3moe.embedding_length': missing", NULL) == 1, "missing key named");
        val_report_free(&r);
    }
    struct edit arch = {.set_str_key = "general.architecture", .set_str = "llama"};
    if (run_edited("arch llama", "models/tiny-qwen3moe-q8_0.gguf", &arch, 1, &r)) {
        CHECK(count_msgs(&r, "general.architecture", "found 'llama'") == 1, "unsupported architecture");
        val_report_free(&r);
    }
    /* qwen3next with attention every 2nd layer: layer 1 lacks its 6 attention tensors and its
     * 8 DeltaNet tensors are unexpected */
    struct edit inter = {.set_key = "qwen3next.full_attention_interval", .set_val = 2};
    if (run_edited("interval 2", "models/tiny-qwen3next-q8_0.gguf", &inter, 14, &r)) {
        CHECK(count_msgs(&r, "blk.1.", "in a full-attention layer") == 6, "attention tensors missing");
        CHECK(count_msgs(&r, "blk.1.", "is a full-attention layer") == 8, "DeltaNet tensors unexpected");
        val_report_free(&r);
    }
}

/* A type whose block size does not divide the row: the reader refuses it before validation. */
static void check_block_size(void)
{
    char path[512], err[512];
    FILE *in = fopen(testdata_path(path, sizeof path, "models/tiny-qwen3moe-asym.gguf"), "rb");
    REQUIRE_VOID(in);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size);
    bool read_ok = buf && fread(buf, 1, (size_t)size, in) == (size_t)size;
    fclose(in);
    REQUIRE_VOID(read_ok);
    struct gguf_file *f = gguf_parse(buf, (size_t)size, "asym", err, sizeof err);
    REQUIRE_VOID(f);
    const struct gguf_tensor *t = gguf_find_tensor(f, "blk.0.attn_k_norm.weight");
    REQUIRE_VOID(t);
    /* info: u64 name length, name, u32 n_dims, n_dims x u64, u32 type */
    uint64_t at = t->info_offset + 8 + strlen(t->name) + 4 + 8 * t->n_dims;
    gguf_close(f);
    CHECK(buf[at] == Q_F32, "type byte located");
    buf[at] = Q_Q4_K;            /* 64 values per row, Q4_K blocks are 256 */
    f = gguf_parse(buf, (size_t)size, "asym", err, sizeof err);
    CHECK(!f && strstr(err, "blk.0.attn_k_norm.weight") && strstr(err, "block size 256"), "%s", err);
    gguf_close(f);
    free(buf);
}

/* ---------------------------------------------------------------- planner --- */

static struct arch_hparams qwen3_30b(void)
{
    struct arch_hparams hp = {.arch = ARCH_QWEN3MOE, .n_layer = 48, .n_embd = 2048, .n_head = 32,
                              .n_head_kv = 4, .head_k = 128, .head_v = 128, .n_expert = 128,
                              .n_expert_used = 8, .n_ff_exp = 768, .n_ctx_train = 40960,
                              .n_vocab = 151936};
    return hp;
}

static void check_planner(void)
{
    struct arch_hparams hp = qwen3_30b();
    /* 48 layers x 16384 x 1 slot x 4 heads x 128 x 2 (K and V) x 2 bytes */
    CHECK(mp_kv_bytes(&hp, 16384, 1, Q_F16) == 48ULL * 16384 * 4 * 128 * 2 * 2, "F16 KV");
    CHECK(mp_kv_bytes(&hp, 16384, 1, Q_F16) == 1610612736ULL, "F16 KV = 1.5 GiB");
    /* Q8_0: 34 bytes per 32 values */
    CHECK(mp_kv_bytes(&hp, 16384, 2, Q_Q8_0) == 48ULL * 16384 * 2 * 4 * 128 * 2 * 34 / 32, "Q8_0 KV");
    CHECK(mp_recurrent_bytes(&hp, 4) == 0, "no recurrent state in qwen3moe");
    /* docs/memory.md by hand: 512 x (44,176 x 4 + 28,672 x 292/256) + 151,936 x 4 */
    CHECK(mp_compute_bytes(&hp, 512, 1) == 107824640ULL, "compute buffers %llu",
          (unsigned long long)mp_compute_bytes(&hp, 512, 1));
    CHECK(mp_overhead_bytes(&hp, 3426176) == 21538688ULL, "overhead: 8 MiB + header + 64 per token");

    struct arch_hparams nx = {.arch = ARCH_QWEN3NEXT, .n_layer = 4, .n_embd = 256, .n_head = 4,
                              .n_head_kv = 2, .head_k = 64, .head_v = 64, .ssm_conv_kernel = 4,
                              .ssm_state = 64, .ssm_groups = 2, .ssm_dt_rank = 4, .ssm_inner = 256,
                              .full_attn_interval = 4};
    /* 3 DeltaNet layers x ((4-1) x 512 conv + 4 x 64 x 64 state) x 4 bytes, per slot */
    CHECK(mp_recurrent_bytes(&nx, 2) == 2ULL * 3 * (3 * 512 + 4 * 64 * 64) * 4, "recurrent state");
    CHECK(mp_kv_bytes(&nx, 100, 1, Q_F16) == 1ULL * 100 * 2 * 64 * 2 * 2, "only attention layers hold KV");
    /* the planner counts what the engine allocates: 2 sequences + 4 snapshot slots (and their tags) */
    const dn_shape dn = {.n_k_heads = 2, .n_v_heads = 4, .head_dim = 64, .conv_kernel = 4};
    CHECK(ssm_state_bytes(&dn, 3, 2, 4) == mp_recurrent_bytes(&nx, 6) + 4 * sizeof(int64_t),
          "planner and ssm_state agree");
    struct mp_request nrq = {.n_ctx = 1024, .n_slots = 1, .kv_type = Q_F16, .n_state_seqs = 3, .n_snapshots = 2};
    struct mp_plan np;
    mp_plan_cpu(&nx, 1000, &nrq, UINT64_MAX, &np);
    CHECK(np.dev[0].part[MP_RECURRENT] == mp_recurrent_bytes(&nx, 9), "3 slots with 2 snapshots each: 9 states");

    uint64_t weights = 11400000000ULL;
    struct mp_request rq = {.n_ctx = 16384, .n_slots = 1, .kv_type = Q_F16};
    struct mp_plan p;
    mp_plan_cpu(&hp, weights, &rq, UINT64_MAX, &p);
    uint64_t need = p.dev[0].total;
    uint64_t sum = 0;
    for (int k = 0; k < MP_PART_COUNT; k++)
        sum += p.dev[0].part[k];
    CHECK(sum == need && p.dev[0].part[MP_WEIGHTS] == weights, "total is the sum of the parts");
    mp_plan_cpu(&hp, weights, &rq, need, &p);
    CHECK(p.dev[0].fits && p.max_ctx >= 16384 && p.max_slots >= 1, "budget = need fits");
    mp_plan_cpu(&hp, weights, &rq, need - 1, &p);
    CHECK(!p.dev[0].fits && p.max_ctx < 16384 && p.max_slots == 0, "budget = need - 1 does not");
    /* the largest context is exactly the boundary */
    uint64_t budget = 16ULL << 30;
    mp_plan_cpu(&hp, weights, &rq, budget, &p);
    uint64_t max_ctx = p.max_ctx, max_slots = p.max_slots;
    struct mp_request at = rq, past = rq;
    at.n_ctx = max_ctx;
    past.n_ctx = max_ctx + 1;
    struct mp_plan pa, pp;
    mp_plan_cpu(&hp, weights, &at, budget, &pa);
    mp_plan_cpu(&hp, weights, &past, budget, &pp);
    CHECK(pa.dev[0].fits && !pp.dev[0].fits, "max_ctx %llu is the boundary", (unsigned long long)max_ctx);
    at = rq;
    at.n_slots = max_slots + 1;
    mp_plan_cpu(&hp, weights, &at, budget, &pa);
    CHECK(!pa.dev[0].fits, "one slot more than max_slots %llu does not fit", (unsigned long long)max_slots);
    rq.kv_type = Q_Q8_0;
    mp_plan_cpu(&hp, weights, &rq, budget, &pp);
    CHECK(pp.max_ctx > max_ctx, "Q8_0 KV fits a longer context");

    uint64_t v = 0;
    CHECK(mp_parse_size("16G", &v) && v == 16ULL << 30, "16G");
    CHECK(mp_parse_size("16GiB", &v) && v == 16ULL << 30, "16GiB");
    CHECK(mp_parse_size("16GB", &v) && v == 16000000000ULL, "16GB");
    CHECK(mp_parse_size("512M", &v) && v == 512ULL << 20, "512M");
    CHECK(mp_parse_size("1.5G", &v) && v == 3ULL << 29, "1.5G");
    CHECK(mp_parse_size("123456", &v) && v == 123456, "bytes");
    CHECK(!mp_parse_size("abc", &v) && !mp_parse_size("-1G", &v) && !mp_parse_size("16X", &v) &&
              !mp_parse_size("", &v) && !mp_parse_size("1.5", &v) && !mp_parse_size("99999999999T", &v),
          "bad sizes rejected");
    CHECK(mp_mem_available(&v, (char[64]){0}, 64) && v > 0, "MemAvailable read");
}

int main(void)
{
    check_real_models();
    check_type_callback();
    check_missing_and_shape();
    check_block_count();
    check_vocab_and_experts();
    check_keys_and_arch();
    check_block_size();
    check_planner();
    return test_finish();
}
