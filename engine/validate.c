/* validate.c: checks a parsed GGUF model against engine/arch.c's tables before any weight is
 * used, collecting every problem so one run of `inspect --check` shows them all. */
#include "engine/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qtypes.h"

static void report(struct val_report *r, const char *fmt, ...)
{
    if (r->n >= VAL_MAX_MSGS) {
        r->dropped++;
        return;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        char **m = realloc(r->msgs, cap * sizeof *m);
        if (!m) {
            r->oom = true;
            return;
        }
        r->msgs = m;
        r->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = strdup(buf);
    if (!s) {
        r->oom = true;
        return;
    }
    r->msgs[r->n++] = s;
}

void val_report_free(struct val_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->msgs[i]);
    free(r->msgs);
    memset(r, 0, sizeof *r);
}

static bool is_int_type(uint32_t t)
{
    return t <= GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

/* Required keys present with a number in range; returns false if any is not. */
static bool check_keys(const struct gguf_file *f, const struct arch_desc *a,
                       const struct arch_hparams *hp, struct val_report *r)
{
    bool ok = true;
    for (size_t i = 0; i < a->n_keys; i++) {
        const struct arch_key *k = &a->keys[i];
        char key[128];
        snprintf(key, sizeof key, "%s.%s", a->name, k->suffix);
        const struct gguf_kv *kv = gguf_find_kv(f, key);
        if (!kv) {
            if (k->required) {
                report(r, "key '%s': missing (required by %s)", key, a->name);
                ok = false;
            }
            continue;
        }
        if (k->is_float) {
            double v;
            if (!gguf_get_f64(f, key, &v) || !(v >= 0 && v < 1e30)) {
                report(r, "key '%s': expected a non-negative number, found %s", key,
                       gguf_vtype_name(kv->val.type));
                ok = false;
            }
            continue;
        }
        uint64_t v;
        if (!is_int_type(kv->val.type) || !gguf_get_u64(f, key, &v)) {
            report(r, "key '%s': expected a non-negative integer, found %s", key,
                   kv->val.type == GGUF_STRING || kv->val.type == GGUF_ARRAY
                       ? gguf_vtype_name(kv->val.type) : "a negative number");
            ok = false;
        } else if (v < k->min || v > k->max) {
            report(r, "key '%s': expected %llu to %llu, found %llu", key, (unsigned long long)k->min,
                   (unsigned long long)k->max, (unsigned long long)v);
            ok = false;
        }
    }
    return ok;
}

/* Relations between hyperparameters the forward pass relies on. */
static bool check_consistency(const struct arch_desc *a, const struct arch_hparams *hp,
                              struct val_report *r)
{
    bool ok = true;
    if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0) {
        report(r, "key '%s.attention.head_count_kv': expected a divisor of head_count %llu, found %llu",
               a->name, (unsigned long long)hp->n_head, (unsigned long long)hp->n_head_kv);
        ok = false;
    }
    if (hp->n_expert_used > hp->n_expert) {
        report(r, "key '%s.expert_used_count': expected at most expert_count %llu, found %llu",
               a->name, (unsigned long long)hp->n_expert, (unsigned long long)hp->n_expert_used);
        ok = false;
    }
    if (hp->head_k == 0 || hp->head_v == 0) {
        report(r, "key '%s.attention.key_length': head size is 0", a->name);
        ok = false;
    }
    if (hp->rope_dims > hp->head_k || hp->rope_dims % 2 != 0) {
        report(r, "key '%s.rope.dimension_count': expected an even number up to the head size %llu, found %llu",
               a->name, (unsigned long long)hp->head_k, (unsigned long long)hp->rope_dims);
        ok = false;
    }
    if (hp->arch == ARCH_QWEN3NEXT) {
        if (hp->ssm_groups == 0 || hp->ssm_dt_rank % hp->ssm_groups != 0) {
            report(r, "key 'qwen3next.ssm.time_step_rank': expected a multiple of group_count %llu, found %llu",
                   (unsigned long long)hp->ssm_groups, (unsigned long long)hp->ssm_dt_rank);
            ok = false;
        }
        if (hp->ssm_inner != hp->ssm_dt_rank * hp->ssm_state) {
            report(r, "key 'qwen3next.ssm.inner_size': expected time_step_rank x state_size = %llu, found %llu",
                   (unsigned long long)(hp->ssm_dt_rank * hp->ssm_state), (unsigned long long)hp->ssm_inner);
            ok = false;
        }
    }
    return ok;
}

static void check_token_id(const struct gguf_file *f, const char *key, uint64_t n_vocab,
                           struct val_report *r)
{
    const struct gguf_kv *kv = gguf_find_kv(f, key);
    uint64_t id;
    if (!kv)
        return;
    if (!is_int_type(kv->val.type) || !gguf_get_u64(f, key, &id))
        report(r, "key '%s': expected a token id, found %s", key, gguf_vtype_name(kv->val.type));
    else if (id >= n_vocab)
        report(r, "key '%s': expected a token id below the vocabulary size %llu, found %llu", key,
               (unsigned long long)n_vocab, (unsigned long long)id);
}

static void check_tokenizer(const struct gguf_file *f, struct val_report *r)
{
    const struct gguf_kv *model = gguf_find_kv(f, "tokenizer.ggml.model");
    if (!model || model->val.type != GGUF_STRING)
        report(r, "key 'tokenizer.ggml.model': expected a string, found %s",
               model ? gguf_vtype_name(model->val.type) : "nothing");
    const struct gguf_array *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!tok || tok->count == 0) {
        report(r, "key 'tokenizer.ggml.tokens': expected a non-empty array of strings, found %s",
               tok ? "an empty one" : "none");
        return;
    }
    const struct gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (types && (types->val.type != GGUF_ARRAY || types->val.a.count != tok->count))
        report(r, "key 'tokenizer.ggml.token_type': expected %llu entries (one per token), found %llu",
               (unsigned long long)tok->count,
               (unsigned long long)(types->val.type == GGUF_ARRAY ? types->val.a.count : 0));
    bool bpe = model && model->val.type == GGUF_STRING && model->val.s.len == 4 &&
               memcmp(model->val.s.ptr, "gpt2", 4) == 0;
    if (bpe && !gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_STRING))
        report(r, "key 'tokenizer.ggml.merges': missing (required by the gpt2 BPE tokenizer)");
    static const char *const ids[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                      "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id",
                                      "tokenizer.ggml.eot_token_id", "tokenizer.ggml.seperator_token_id"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        check_token_id(f, ids[i], tok->count, r);
}

static void shape_str(char *buf, size_t len, const int64_t *ne, uint32_t n)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (uint32_t d = 0; d < n && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
}

static void check_shape(const struct gguf_tensor *t, const struct arch_tensor *p,
                        const struct arch_hparams *hp, struct val_report *r)
{
    int64_t want[GGUF_MAX_DIMS] = {1, 1, 1, 1};
    uint32_t n = 0;
    bool same = true;
    char names[160] = "";
    size_t at = 0;
    for (; n < GGUF_MAX_DIMS && p->dims[n] != AD_NONE; n++) {
        uint64_t v = arch_dim_value(hp, p->dims[n]);
        want[n] = v > INT64_MAX ? INT64_MAX : (int64_t)v;
        if (at < sizeof names)
            at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", n ? ", " : "",
                                   arch_dim_name(p->dims[n]));
    }
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        same = same && t->ne[d] == want[d];
    if (same)
        return;
    char ws[96], fs[96];
    shape_str(ws, sizeof ws, want, n);
    shape_str(fs, sizeof fs, t->ne, t->n_dims);
    /* a row count that disagrees with the tokenizer is the usual cause: say so */
    const char *why = "";
    char vocab[96] = "";
    if (p->dims[1] == AD_VOCAB && t->ne[1] != want[1]) {
        snprintf(vocab, sizeof vocab, "; the tokenizer has %llu tokens", (unsigned long long)hp->n_vocab);
        why = vocab;
    }
    report(r, "tensor '%s': expected shape %s (%s), found %s%s", t->name, ws, names, fs, why);
}

static bool pattern_in_layer(const struct arch_tensor *p, const struct arch_hparams *hp, uint64_t il)
{
    if (p->where == AW_EVERY_LAYER)
        return true;
    bool attn = arch_layer_is_attn(hp, il);
    return p->where == AW_ATTN_LAYER ? attn : p->where == AW_RECURRENT_LAYER ? !attn : false;
}

/* Every required tensor of every layer is present with its shape. */
static void check_required(const struct gguf_file *f, const struct arch_desc *a,
                           const struct arch_hparams *hp, bool shapes, struct val_report *r)
{
    char name[160];
    for (size_t i = 0; i < a->n_tensors; i++) {
        const struct arch_tensor *p = &a->tensors[i];
        uint64_t layers = p->where == AW_GLOBAL ? 1 : hp->n_layer;
        for (uint64_t il = 0; il < layers; il++) {
            if (p->where == AW_GLOBAL)
                snprintf(name, sizeof name, "%s", p->suffix);
            else if (pattern_in_layer(p, hp, il))
                snprintf(name, sizeof name, "blk.%llu.%s", (unsigned long long)il, p->suffix);
            else
                continue;
            const struct gguf_tensor *t = gguf_find_tensor(f, name);
            if (!t && p->required)
                report(r, "tensor '%s': missing (required%s)", name,
                       p->where == AW_ATTN_LAYER ? " in a full-attention layer"
                       : p->where == AW_RECURRENT_LAYER ? " in a DeltaNet layer" : "");
            else if (t && shapes)
                check_shape(t, p, hp, r);
        }
    }
}

/* Every tensor in the file is one the architecture names, in a layer that exists. */
static void check_unexpected(const struct gguf_file *f, const struct arch_desc *a,
                             const struct arch_hparams *hp, struct val_report *r)
{
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        int64_t layer;
        const char *suffix;
        arch_split_name(t->name, &layer, &suffix);
        const struct arch_tensor *p = arch_match(a, suffix, layer >= 0);
        if (!p)
            report(r, "tensor '%s': unexpected (not a %s tensor)", t->name, a->name);
        else if (layer >= 0 && (uint64_t)layer >= hp->n_layer)
            report(r, "tensor '%s': unexpected (layer %lld, but block_count is %llu)", t->name,
                   (long long)layer, (unsigned long long)hp->n_layer);
        else if (layer >= 0 && !pattern_in_layer(p, hp, (uint64_t)layer))
            report(r, "tensor '%s': unexpected (layer %lld is a %s layer)", t->name, (long long)layer,
                   arch_layer_is_attn(hp, (uint64_t)layer) ? "full-attention" : "DeltaNet");
    }
}

/* One message per type the device cannot run, naming a tensor that uses it. */
static void check_types(const struct gguf_file *f, const struct val_caps *caps, struct val_report *r)
{
    uint64_t count[Q_TYPE_COUNT] = {0};
    const char *first[Q_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        uint32_t ty = f->tensors[i].type;
        if (ty >= Q_TYPE_COUNT)
            continue;
        if (!count[ty]++)
            first[ty] = f->tensors[i].name;
    }
    for (uint32_t ty = 0; ty < Q_TYPE_COUNT; ty++)
        if (count[ty] && !caps->type_ok(caps, ty))
            report(r, "tensor '%s' (and %llu more of type %s): expected a type with %s kernels, found %s",
                   first[ty], (unsigned long long)(count[ty] - 1), q_type_traits(ty)->name, caps->name,
                   q_type_traits(ty)->name);
}

size_t val_check(const struct gguf_file *f, const struct val_caps *caps, struct arch_hparams *hp_out,
                 struct val_report *r)
{
    struct arch_hparams hp;
    memset(r, 0, sizeof *r);
    char *arch = gguf_get_str_dup(f, "general.architecture");
    const struct arch_desc *a = arch_find(arch);
    if (!a) {
        report(r, "key 'general.architecture': expected qwen3moe or qwen3next, found %s%s%s",
               arch ? "'" : "", arch ? arch : "nothing", arch ? "'" : "");
        free(arch);
        if (caps)
            check_types(f, caps, r);
        return r->n;
    }
    free(arch);
    arch_read_hparams(f, &hp);
    if (hp_out)
        *hp_out = hp;
    bool keys_ok = check_keys(f, a, &hp, r);
    bool sane = keys_ok && check_consistency(a, &hp, r);
    check_tokenizer(f, r);
    /* Without a layer count nothing per-layer can be checked; without the other keys shapes
     * would be compared against zeros and drown the real problem in noise. */
    if (hp.n_layer >= 1 && hp.n_layer <= 65536 && (hp.arch != ARCH_QWEN3NEXT || hp.full_attn_interval)) {
        check_required(f, a, &hp, sane && hp.n_vocab > 0, r);
        check_unexpected(f, a, &hp, r);
    }
    if (caps)
        check_types(f, caps, r);
    size_t total = r->n + r->dropped;
    if (r->dropped) {
        size_t dropped = r->dropped;
        r->n--;                  /* make room for the summary in place of the last message */
        free(r->msgs[r->n]);
        report(r, "... and %zu more problems", dropped + 1);
        r->dropped = dropped;
    }
    return total;
}
