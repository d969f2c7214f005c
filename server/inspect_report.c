/* inspect_report.c: gathers and formats what `moeserve inspect` prints: hyperparameters,
 * tokenizer facts, the quant-layout table and memory plans, in text and JSON. */
#include "server/inspect_report.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qtypes.h"

/* ------------------------------------------------------------------ helpers --- */

void ir_type_name(uint32_t t, char *buf, size_t len)
{
    const struct q_traits *tr = q_type_traits(t);
    snprintf(buf, len, "%s", tr ? tr->name : "?");
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

void ir_human_bytes(uint64_t b, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)b);
    else
        snprintf(buf, len, "%.2f %s", v, units[u]);
}

/* A token's bytes made printable: control bytes and invalid UTF-8 escaped as \xNN. */
static void token_text(const struct gguf_str *s, char *buf, size_t len)
{
    size_t o = 0;
    for (uint64_t i = 0; i < s->len && o + 5 < len; i++) {
        unsigned char c = (unsigned char)s->ptr[i];
        if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c == '\\') {
            buf[o++] = '\\';
            buf[o++] = '\\';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        } else if (c < 0x80) {
            buf[o++] = (char)c;
        } else {
            /* copy a whole valid UTF-8 sequence, else escape the byte */
            int n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
            bool ok = n > 0 && i + (uint64_t)n <= s->len && o + (size_t)n + 1 < len;
            for (int k = 1; ok && k < n; k++)
                ok = ((unsigned char)s->ptr[i + (uint64_t)k] & 0xc0) == 0x80;
            if (ok) {
                memcpy(buf + o, s->ptr + i, (size_t)n);
                o += (size_t)n;
                i += (uint64_t)n - 1;
            } else {
                o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
            }
        }
    }
    buf[o] = 0;
}

static void print_str_kv(FILE *out, const struct gguf_file *f, const char *label, const char *key)
{
    char *s = gguf_get_str_dup(f, key);
    if (s)
        fprintf(out, "  %-24s %s\n", label, s);
    free(s);
}

/* --------------------------------------------------------------- hparams --- */

struct hp_field {
    const char *label, *json;
    size_t off;
    bool is_float;
    bool next_only;
};

#define F(l, j, f, fl, n) {l, j, offsetof(struct arch_hparams, f), fl, n}
static const struct hp_field hp_fields[] = {
    F("layers", "n_layer", n_layer, false, false),
    F("embedding size", "n_embd", n_embd, false, false),
    F("attention heads", "n_head", n_head, false, false),
    F("KV heads", "n_head_kv", n_head_kv, false, false),
    F("head size (key)", "head_k", head_k, false, false),
    F("head size (value)", "head_v", head_v, false, false),
    F("experts", "n_expert", n_expert, false, false),
    F("experts used", "n_expert_used", n_expert_used, false, false),
    F("expert FFN size", "n_ff_exp", n_ff_exp, false, false),
    F("shared FFN size", "n_ff_shexp", n_ff_shexp, false, true),
    F("context length", "n_ctx_train", n_ctx_train, false, false),
    F("RoPE base", "rope_base", rope_base, true, false),
    F("RoPE dims", "rope_dims", rope_dims, false, false),
    F("RMS norm eps", "rms_eps", rms_eps, true, false),
    F("SSM state size", "ssm_state", ssm_state, false, true),
    F("SSM group count", "ssm_groups", ssm_groups, false, true),
    F("SSM time-step rank", "ssm_dt_rank", ssm_dt_rank, false, true),
    F("SSM inner size", "ssm_inner", ssm_inner, false, true),
    F("SSM conv kernel", "ssm_conv_kernel", ssm_conv_kernel, false, true),
    F("full_attention_interval", "full_attn_interval", full_attn_interval, false, true),
};
#define N_HP (sizeof hp_fields / sizeof hp_fields[0])

static uint64_t hp_u(const struct arch_hparams *hp, const struct hp_field *fl)
{
    uint64_t v;
    memcpy(&v, (const char *)hp + fl->off, sizeof v);
    return v;
}

static double hp_f(const struct arch_hparams *hp, const struct hp_field *fl)
{
    double v;
    memcpy(&v, (const char *)hp + fl->off, sizeof v);
    return v;
}

static uint64_t shared_experts(const struct gguf_file *f)
{
    return gguf_find_tensor(f, "blk.0.ffn_gate_shexp.weight") ? 1 : 0;
}

void ir_print_model(FILE *out, const struct gguf_file *f, const struct arch_hparams *hp, bool known_arch)
{
    char sz[32], *arch = gguf_get_str_dup(f, "general.architecture");
    ir_human_bytes(f->size, sz, sizeof sz);
    fprintf(out, "file: %s (%s, GGUF v%u, %llu metadata keys, %llu tensors)\n", f->path, sz, f->version,
            (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
    print_str_kv(out, f, "name", "general.name");
    fprintf(out, "  %-24s %s%s\n", "architecture", arch ? arch : "(none)",
            known_arch ? "" : " (not one moeserve runs)");
    free(arch);
    if (!known_arch)
        return;
    for (size_t i = 0; i < N_HP; i++) {
        const struct hp_field *fl = &hp_fields[i];
        if (fl->next_only && hp->arch != ARCH_QWEN3NEXT)
            continue;
        /* 0 is never a valid value: it means the key is missing */
        if (fl->is_float ? hp_f(hp, fl) == 0 : hp_u(hp, fl) == 0)
            fprintf(out, "  %-24s -\n", fl->label);
        else if (fl->is_float)
            fprintf(out, "  %-24s %g\n", fl->label, hp_f(hp, fl));
        else
            fprintf(out, "  %-24s %llu\n", fl->label, (unsigned long long)hp_u(hp, fl));
    }
    fprintf(out, "  %-24s %llu\n", "shared experts", (unsigned long long)shared_experts(f));
    if (hp->arch == ARCH_QWEN3NEXT)
        fprintf(out, "  %-24s %llu of %llu (the rest Gated DeltaNet)\n", "full-attention layers",
                (unsigned long long)arch_n_attn_layers(hp), (unsigned long long)hp->n_layer);
}

json_t *ir_model_json(const struct gguf_file *f, const struct arch_hparams *hp, bool known_arch)
{
    json_t *o = json_object();
    char *arch = gguf_get_str_dup(f, "general.architecture");
    char *name = gguf_get_str_dup(f, "general.name");
    json_object_set_new(o, "file", json_string(f->path));
    json_object_set_new(o, "file_size", json_integer((json_int_t)f->size));
    json_object_set_new(o, "gguf_version", json_integer(f->version));
    json_object_set_new(o, "n_kv", json_integer((json_int_t)f->n_kv));
    json_object_set_new(o, "n_tensors", json_integer((json_int_t)f->n_tensors));
    json_object_set_new(o, "name", name ? json_string(name) : json_null());
    json_object_set_new(o, "architecture", arch ? json_string(arch) : json_null());
    json_object_set_new(o, "supported", json_boolean(known_arch));
    free(arch);
    free(name);
    if (known_arch) {
        json_t *h = json_object();
        for (size_t i = 0; i < N_HP; i++) {
            const struct hp_field *fl = &hp_fields[i];
            if (fl->next_only && hp->arch != ARCH_QWEN3NEXT)
                continue;
            bool missing = fl->is_float ? hp_f(hp, fl) == 0 : hp_u(hp, fl) == 0;
            json_object_set_new(h, fl->json, missing ? json_null()
                                             : fl->is_float ? json_real(hp_f(hp, fl))
                                                            : json_integer((json_int_t)hp_u(hp, fl)));
        }
        json_object_set_new(h, "n_shared_experts", json_integer((json_int_t)shared_experts(f)));
        json_object_set_new(h, "n_attn_layers", json_integer((json_int_t)arch_n_attn_layers(hp)));
        json_object_set_new(o, "hparams", h);
    }
    return o;
}

/* -------------------------------------------------------------- tokenizer --- */

static const char *const special_names[] = {"bos", "eos", "padding", "unknown", "eot", "eom",
                                            "seperator", "mask"};
#define N_SPECIAL (sizeof special_names / sizeof special_names[0])

static bool special_id(const struct gguf_file *f, size_t i, uint64_t *id)
{
    char key[96];
    snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", special_names[i]);
    return gguf_get_u64(f, key, id);
}

static const struct gguf_str *token_at(const struct gguf_array *tok, uint64_t id)
{
    return tok && id < tok->count ? &tok->strs[id] : NULL;
}

/* Control (3) and user-defined (4) tokens: the ones a chat template or the server may emit. */
static bool is_special_type(const struct gguf_array *types, uint64_t i)
{
    if (!types || i >= types->count)
        return false;
    int64_t t = gguf_arr_i64(types, i);
    return t == 3 || t == 4;
}

static const struct gguf_array *token_types(const struct gguf_file *f, const struct gguf_array *tok)
{
    const struct gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (!kv || kv->val.type != GGUF_ARRAY || !tok || kv->val.a.count != tok->count)
        return NULL;
    uint32_t et = kv->val.a.elem_type;
    return et == GGUF_I32 || et == GGUF_U32 || et == GGUF_I8 || et == GGUF_U8 ? &kv->val.a : NULL;
}

void ir_print_tokenizer(FILE *out, const struct gguf_file *f)
{
    const struct gguf_array *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    const struct gguf_array *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_STRING);
    fprintf(out, "tokenizer:%s\n", tok ? "" : " (none)");
    if (!tok)
        return;
    print_str_kv(out, f, "model", "tokenizer.ggml.model");
    print_str_kv(out, f, "pre-tokenizer", "tokenizer.ggml.pre");
    fprintf(out, "  %-24s %llu\n", "vocab size", (unsigned long long)(tok ? tok->count : 0));
    if (merges)
        fprintf(out, "  %-24s %llu\n", "merges", (unsigned long long)merges->count);
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b))
        fprintf(out, "  %-24s %s\n", "add bos", b ? "yes" : "no");
    const struct gguf_kv *tmpl = gguf_find_kv(f, "tokenizer.chat_template");
    if (tmpl && tmpl->val.type == GGUF_STRING)
        fprintf(out, "  %-24s %llu bytes\n", "chat template", (unsigned long long)tmpl->val.s.len);
    char text[256];
    for (size_t i = 0; i < N_SPECIAL; i++) {
        uint64_t id;
        if (!special_id(f, i, &id))
            continue;
        const struct gguf_str *s = token_at(tok, id);
        if (s)
            token_text(s, text, sizeof text);
        fprintf(out, "  %-24s %llu %s%s%s\n", special_names[i], (unsigned long long)id, s ? "'" : "",
                s ? text : "(out of range)", s ? "'" : "");
    }
    const struct gguf_array *types = token_types(f, tok);
    uint64_t n_special = 0, shown = 0;
    for (uint64_t i = 0; types && i < tok->count; i++)
        n_special += is_special_type(types, i);
    if (n_special) {
        fprintf(out, "  special tokens (%llu):", (unsigned long long)n_special);
        for (uint64_t i = 0; i < tok->count && shown < 32; i++) {
            if (!is_special_type(types, i))
                continue;
            token_text(&tok->strs[i], text, sizeof text);
            fprintf(out, "%s%llu '%s'", shown % 4 ? ", " : "\n    ", (unsigned long long)i, text);
            shown++;
        }
        if (shown < n_special)
            fprintf(out, "\n    ... %llu more", (unsigned long long)(n_special - shown));
        fputc('\n', out);
    }
}

static json_t *token_json(const struct gguf_str *s)
{
    char text[1024];
    json_t *j = json_stringn(s->ptr, (size_t)s->len);
    if (j)
        return j;
    token_text(s, text, sizeof text);    /* not UTF-8: escaped form */
    return json_string(text);
}

json_t *ir_tokenizer_json(const struct gguf_file *f)
{
    json_t *o = json_object();
    const struct gguf_array *tok = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    const struct gguf_array *merges = gguf_get_arr(f, "tokenizer.ggml.merges", GGUF_STRING);
    char *model = gguf_get_str_dup(f, "tokenizer.ggml.model");
    char *pre = gguf_get_str_dup(f, "tokenizer.ggml.pre");
    json_object_set_new(o, "model", model ? json_string(model) : json_null());
    json_object_set_new(o, "pre", pre ? json_string(pre) : json_null());
    free(model);
    free(pre);
    json_object_set_new(o, "n_vocab", json_integer(tok ? (json_int_t)tok->count : 0));
    json_object_set_new(o, "n_merges", json_integer(merges ? (json_int_t)merges->count : 0));
    bool b;
    if (gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b))
        json_object_set_new(o, "add_bos", json_boolean(b));
    json_t *sp = json_object();
    for (size_t i = 0; i < N_SPECIAL; i++) {
        uint64_t id;
        if (!special_id(f, i, &id))
            continue;
        const struct gguf_str *s = token_at(tok, id);
        json_object_set_new(sp, special_names[i], json_pack("{s:I,s:o}", "id", (json_int_t)id, "text",
                                                            s ? token_json(s) : json_null()));
    }
    json_object_set_new(o, "special", sp);
    json_t *list = json_array();
    const struct gguf_array *types = token_types(f, tok);
    for (uint64_t i = 0; types && i < tok->count; i++)
        if (is_special_type(types, i))
            json_array_append_new(list, json_pack("{s:I,s:o}", "id", (json_int_t)i, "text",
                                                  token_json(&tok->strs[i])));
    json_object_set_new(o, "special_tokens", list);
    return o;
}

/* ------------------------------------------------------------------ layout --- */

static enum arch_group classify(const struct arch_desc *a, const char *name)
{
    int64_t layer;
    const char *suffix;
    arch_split_name(name, &layer, &suffix);
    /* the file's own architecture first, then any other the engine knows */
    for (uint32_t i = 0; i <= ARCH_COUNT; i++) {
        const struct arch_desc *d = i == 0 ? a : arch_get(i - 1);
        const struct arch_tensor *p = d ? arch_match(d, suffix, layer >= 0) : NULL;
        if (p)
            return p->group;
    }
    return AG_OTHER;
}

static int cmp_rows(const void *x, const void *y)
{
    const struct ir_row *a = x, *b = y;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    return a->type < b->type ? -1 : a->type > b->type;
}

bool ir_layout_build(const struct gguf_file *f, struct ir_layout *out)
{
    memset(out, 0, sizeof *out);
    char *arch = gguf_get_str_dup(f, "general.architecture");
    const struct arch_desc *a = arch_find(arch);
    free(arch);
    out->rows = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *out->rows);
    if (!out->rows)
        return false;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        enum arch_group g = classify(a, t->name);
        struct ir_row *r = NULL;
        for (size_t k = 0; k < out->n && !r; k++)
            if (out->rows[k].group == g && out->rows[k].type == t->type)
                r = &out->rows[k];
        if (!r) {
            r = &out->rows[out->n++];
            r->group = g;
            r->type = t->type;
        }
        uint64_t nel = (uint64_t)gguf_tensor_nelements(t);
        r->tensors++;
        r->params += nel;
        r->bytes += t->nbytes;
        out->params += nel;
        out->bytes += t->nbytes;
    }
    qsort(out->rows, out->n, sizeof *out->rows, cmp_rows);
    return true;
}

void ir_layout_free(struct ir_layout *l)
{
    free(l->rows);
    memset(l, 0, sizeof *l);
}

static double bpw(uint64_t bytes, uint64_t params)
{
    return params ? 8.0 * (double)bytes / (double)params : 0.0;
}

void ir_print_layout(FILE *out, const struct ir_layout *l)
{
    char ty[16], hb[32];
    fprintf(out, "quant layout:\n  %-32s %-8s %6s %8s %14s %14s\n", "group", "type", "bpw", "tensors",
            "params", "bytes");
    for (size_t i = 0; i < l->n; i++) {
        const struct ir_row *r = &l->rows[i];
        ir_type_name(r->type, ty, sizeof ty);
        fprintf(out, "  %-32s %-8s %6.2f %8llu %14llu %14llu\n", arch_group_name(r->group), ty,
                q_type_bpw(r->type), (unsigned long long)r->tensors, (unsigned long long)r->params,
                (unsigned long long)r->bytes);
    }
    ir_human_bytes(l->bytes, hb, sizeof hb);
    fprintf(out, "totals: %llu parameters, %llu bytes (%s), %.3f bits per weight\n",
            (unsigned long long)l->params, (unsigned long long)l->bytes, hb, bpw(l->bytes, l->params));
}

json_t *ir_layout_json(const struct ir_layout *l)
{
    json_t *rows = json_array();
    char ty[16];
    for (size_t i = 0; i < l->n; i++) {
        const struct ir_row *r = &l->rows[i];
        ir_type_name(r->type, ty, sizeof ty);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:f,s:I,s:I,s:I}", "group",
                                              arch_group_name(r->group), "type", ty, "bpw",
                                              q_type_bpw(r->type), "tensors", (json_int_t)r->tensors,
                                              "params", (json_int_t)r->params, "bytes", (json_int_t)r->bytes));
    }
    return json_pack("{s:o,s:{s:I,s:I,s:f}}", "layout", rows, "totals", "params", (json_int_t)l->params,
                     "bytes", (json_int_t)l->bytes, "bpw", bpw(l->bytes, l->params));
}

/* -------------------------------------------------------------------- plan --- */

static const char *kv_name(uint32_t t)
{
    return t == Q_Q8_0 ? "q8_0" : t == Q_F16 ? "f16" : "?";
}

/* A plan from mp_plan_vulkan (the device first, then the host). */
static bool is_vulkan_plan(const struct mp_plan *p)
{
    return p->n_dev == 2 && strcmp(p->dev[0].name, "vulkan") == 0;
}

void ir_print_plan(FILE *out, const struct mp_request *rq, const struct mp_plan *p, const char *budget_src)
{
    char hb[32];
    fprintf(out, "memory plan: ctx %llu x %llu slot%s, KV %s, batch %llu\n", (unsigned long long)rq->n_ctx,
            (unsigned long long)rq->n_slots, rq->n_slots == 1 ? "" : "s", kv_name(rq->kv_type),
            (unsigned long long)(rq->n_batch ? rq->n_batch : MP_DEFAULT_BATCH));
    for (size_t d = 0; d < p->n_dev; d++) {
        const struct mp_device *dev = &p->dev[d];
        fprintf(out, "  device %s:\n", dev->name);
        for (int k = 0; k < MP_PART_COUNT; k++) {
            ir_human_bytes(dev->part[k], hb, sizeof hb);
            fprintf(out, "    %-18s %16llu  %12s\n", mp_part_name(k), (unsigned long long)dev->part[k], hb);
        }
        ir_human_bytes(dev->total, hb, sizeof hb);
        fprintf(out, "    %-18s %16llu  %12s\n", "total", (unsigned long long)dev->total, hb);
        ir_human_bytes(dev->budget, hb, sizeof hb);
        fprintf(out, "    %-18s %16llu  %12s  (%s)\n", "budget", (unsigned long long)dev->budget, hb,
                is_vulkan_plan(p) && d == 0 ? "--vram" : budget_src);
        fprintf(out, "    %-18s %s\n", "fits", dev->fits ? "yes" : "no");
    }
    fprintf(out, "  largest context with %llu slot%s: %llu\n", (unsigned long long)rq->n_slots,
            rq->n_slots == 1 ? "" : "s", (unsigned long long)p->max_ctx);
    if (!is_vulkan_plan(p)) {
        fprintf(out, "  most slots at context %llu: %llu\n", (unsigned long long)rq->n_ctx,
                (unsigned long long)p->max_slots);
    } else if (p->n_cpu_moe) {
        fprintf(out, "  routed experts on the CPU: layers 0-%u (%u layer%s)\n", p->n_cpu_moe - 1, p->n_cpu_moe,
                p->n_cpu_moe == 1 ? "" : "s");
    } else {
        fprintf(out, "  routed experts on the CPU: none\n");
    }
}

json_t *ir_plan_json(const struct mp_request *rq, const struct mp_plan *p, const char *budget_src)
{
    json_t *devs = json_array();
    for (size_t d = 0; d < p->n_dev; d++) {
        const struct mp_device *dev = &p->dev[d];
        json_t *parts = json_object();
        static const char *const keys[MP_PART_COUNT] = {"weights", "kv_cache", "recurrent_state",
                                                        "compute", "overhead"};
        for (int k = 0; k < MP_PART_COUNT; k++)
            json_object_set_new(parts, keys[k], json_integer((json_int_t)dev->part[k]));
        json_array_append_new(devs, json_pack("{s:s,s:o,s:I,s:I,s:b}", "device", dev->name, "parts", parts,
                                              "total", (json_int_t)dev->total, "budget",
                                              (json_int_t)dev->budget, "fits", dev->fits));
    }
    json_t *o = json_pack("{s:I,s:I,s:s,s:I,s:s,s:o,s:I}", "ctx", (json_int_t)rq->n_ctx, "slots",
                          (json_int_t)rq->n_slots, "kv_type", kv_name(rq->kv_type), "batch",
                          (json_int_t)(rq->n_batch ? rq->n_batch : MP_DEFAULT_BATCH), "budget_source", budget_src,
                          "devices", devs, "max_ctx", (json_int_t)p->max_ctx);
    if (o)
        json_object_set_new(o, is_vulkan_plan(p) ? "n_cpu_moe" : "max_slots",
                            json_integer((json_int_t)(is_vulkan_plan(p) ? p->n_cpu_moe : p->max_slots)));
    return o;
}

json_t *ir_check_json(const struct val_report *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(list, json_string(r->msgs[i]));
    return json_pack("{s:b,s:o}", "ok", r->n == 0 && !r->oom, "problems", list);
}
