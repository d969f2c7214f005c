/* api_gen.c: the generation routes: /v1/chat/completions, /v1/completions (with fill-in-the-
 * middle through `suffix`) and llama.cpp's /infill. Each builds prompt tokens and hands them on. */
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/app.h"
#include "server/gen.h"

/* A growable token list. */
struct toks {
    int32_t *v;
    size_t n, cap;
    bool failed;
};

static void toks_add(struct toks *t, const int32_t *ids, size_t n)
{
    if (t->failed)
        return;
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n)
            cap *= 2;
        int32_t *p = realloc(t->v, cap * sizeof *p);
        if (!p) {
            t->failed = true;
            return;
        }
        t->v = p;
        t->cap = cap;
    }
    memcpy(t->v + t->n, ids, n * sizeof *ids);
    t->n += n;
}

static void toks_text(struct toks *t, const struct engine *e, const char *text, bool special)
{
    size_t n = 0;
    int32_t *ids = engine_tokenize(e, text, strlen(text), special, &n);
    if (!ids)
        t->failed = true;
    else
        toks_add(t, ids, n);
    free(ids);
}

static void toks_one(struct toks *t, int32_t id)
{
    toks_add(t, &id, 1);
}

/* Prompt plus completion must fit the longest sequence; the error names both numbers. */
static bool fits(struct app *a, size_t n_prompt, int64_t max_tokens, struct http_reply *reply)
{
    uint32_t max_ctx = a->info->max_ctx;
    if (n_prompt == 0) {
        http_reply_error(reply, 400, "prompt", "the prompt is empty");
        return false;
    }
    if (n_prompt >= max_ctx || (max_tokens > 0 && (uint64_t)n_prompt + (uint64_t)max_tokens > max_ctx)) {
        http_reply_error(reply, 400, max_tokens > 0 ? "max_tokens" : "messages",
                         "the prompt (%zu tokens) plus max_tokens (%lld) exceeds the context of %u tokens", n_prompt,
                         (long long)(max_tokens > 0 ? max_tokens : 0), max_ctx);
        return false;
    }
    return true;
}

/* Logit-bias token ids must exist in this model's vocabulary. */
static bool bias_ok(struct app *a, const struct oai_request *r, struct http_reply *reply)
{
    for (size_t i = 0; i < r->sampling.n_bias; i++)
        if ((uint32_t)r->sampling.bias[i].token >= a->info->n_vocab) {
            http_reply_error(reply, 400, "logit_bias", "logit_bias token %d is not below the vocabulary size %u",
                             r->sampling.bias[i].token, a->info->n_vocab);
            return false;
        }
    return true;
}

static struct oai_request *parse(struct app *a, enum oai_kind kind, const struct http_request *req,
                                 struct http_reply *reply)
{
    struct oai_request *r = calloc(1, sizeof *r);
    struct oai_error e = {0};
    if (!r) {
        http_reply_error(reply, 500, NULL, "out of memory");
        return NULL;
    }
    if (!oai_parse(kind, req->body, req->body_len, r, &e)) {
        http_reply_error(reply, e.status, e.param[0] ? e.param : NULL, "%s", e.message);
        oai_request_free(r);
        free(r);
        return NULL;
    }
    if (!bias_ok(a, r, reply)) {
        oai_request_free(r);
        free(r);
        return NULL;
    }
    return r;
}

static void drop(struct oai_request *r)
{
    oai_request_free(r);
    free(r);
}

void api_chat(void *app, const struct http_request *req, struct http_reply *reply)
{
    struct app *a = app;
    if (!app_ready_or_503(a, reply))
        return;
    struct oai_request *r = parse(a, OAI_CHAT, req, reply);
    if (!r)
        return;
    if (!a->has_chat) {
        http_reply_error(reply, 400, "messages", "this model has no chat template: use /v1/completions, or start the "
                                                 "server with --chat-template FILE");
        drop(r);
        return;
    }
    struct chat_prompt cp;
    char err[512];
    if (!chat_render(&a->chat, r, &cp, err, sizeof err)) {
        http_reply_error(reply, 400, "messages", "%s", err);
        drop(r);
        return;
    }
    struct toks t = {0};
    toks_text(&t, a->engine, cp.text, true);
    if (t.failed || !fits(a, t.n, r->max_tokens, reply)) {
        if (t.failed)
            http_reply_error(reply, 500, NULL, "out of memory");
        free(t.v);
        chat_prompt_free(&cp);
        drop(r);
        return;
    }
    gen_start(a, "/v1/chat/completions", r, &t.v, &t.n, 1, cp.forced, cp.in_reasoning, reply);
    chat_prompt_free(&cp);
}

/* Fill-in-the-middle as Qwen2.5/3-Coder were trained: <|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>. */
static bool fim_tokens(struct app *a, struct toks *t, const char *prefix, const char *suffix, const char *typed,
                       struct http_reply *reply)
{
    const struct engine_info *i = a->info;
    if (i->fim_prefix < 0 || i->fim_suffix < 0 || i->fim_middle < 0) {
        http_reply_error(reply, 400, "suffix", "this model has no fill-in-the-middle tokens");
        return false;
    }
    toks_one(t, i->fim_prefix);
    toks_text(t, a->engine, prefix, false);
    if (typed)
        toks_text(t, a->engine, typed, false);
    toks_one(t, i->fim_suffix);
    toks_text(t, a->engine, suffix, false);
    toks_one(t, i->fim_middle);
    return true;
}

void api_completions(void *app, const struct http_request *req, struct http_reply *reply)
{
    struct app *a = app;
    if (!app_ready_or_503(a, reply))
        return;
    struct oai_request *r = parse(a, OAI_COMPLETION, req, reply);
    if (!r)
        return;
    size_t n = r->n_prompts;
    int32_t **prompts = calloc(n, sizeof *prompts);
    size_t *lens = calloc(n, sizeof *lens);
    bool ok = prompts && lens;
    for (size_t k = 0; ok && k < n; k++) {
        struct toks t = {0};
        const struct oai_prompt *p = &r->prompts[k];
        if (r->suffix)
            ok = fim_tokens(a, &t, p->text ? p->text : "", r->suffix, NULL, reply);
        else if (p->text)
            toks_text(&t, a->engine, p->text, true);
        else
            toks_add(&t, p->tokens, p->n_tokens);
        for (size_t j = 0; ok && j < t.n; j++)
            if (t.v[j] < 0 || (uint32_t)t.v[j] >= a->info->n_vocab) {
                http_reply_error(reply, 400, "prompt", "token %d is not below the vocabulary size %u", t.v[j],
                                 a->info->n_vocab);
                ok = false;
            }
        ok = ok && !t.failed && fits(a, t.n, r->max_tokens, reply);
        prompts[k] = t.v;
        lens[k] = t.n;
    }
    if (ok)
        gen_start(a, "/v1/completions", r, prompts, lens, n, NULL, false, reply);
    else {
        for (size_t k = 0; prompts && k < n; k++)
            free(prompts[k]);
        drop(r);
    }
    free(prompts);
    free(lens);
}

/* llama.cpp's /infill: repository context (<|repo_name|>, then <|file_sep|>name\ntext per extra
 * chunk), then the FIM prompt with the text typed so far after the prefix. */
void api_infill(void *app, const struct http_request *req, struct http_reply *reply)
{
    struct app *a = app;
    if (!app_ready_or_503(a, reply))
        return;
    struct oai_request *r = parse(a, OAI_INFILL, req, reply);
    if (!r)
        return;
    struct toks t = {0};
    const struct engine_info *i = a->info;
    if (i->repo_name >= 0) {
        toks_one(&t, i->repo_name);
        toks_text(&t, a->engine, "myproject\n", false);
    }
    size_t k;
    json_t *chunk;
    json_array_foreach(r->input_extra, k, chunk) {
        const char *name = json_string_value(json_object_get(chunk, "filename"));
        const char *text = json_string_value(json_object_get(chunk, "text"));
        if (i->file_sep >= 0) {
            toks_one(&t, i->file_sep);
            toks_text(&t, a->engine, name ? name : "tmp", false);
            toks_text(&t, a->engine, "\n", false);
        }
        toks_text(&t, a->engine, text ? text : "", false);
    }
    if (i->file_sep >= 0) {
        toks_one(&t, i->file_sep);
        toks_text(&t, a->engine, "filename\n", false);
    }
    const char *typed = r->n_prompts && r->prompts[0].text && *r->prompts[0].text ? r->prompts[0].text : NULL;
    bool ok = fim_tokens(a, &t, r->input_prefix ? r->input_prefix : "", r->input_suffix ? r->input_suffix : "",
                         typed, reply);
    if (ok && !t.failed && fits(a, t.n, r->max_tokens, reply)) {
        gen_start(a, "/infill", r, &t.v, &t.n, 1, NULL, false, reply);
        return;
    }
    if (t.failed)
        http_reply_error(reply, 500, NULL, "out of memory");
    free(t.v);
    drop(r);
}
