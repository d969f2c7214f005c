/* gen.c: a request's generations on the engine thread (server/gen.h). Each prompt is one
 * scheduler job; the jobs of one request form a group that owns the reply. Text flows
 * token -> bytes -> whole UTF-8 characters -> stop-string matcher -> reasoning/tool splitter ->
 * SSE deltas or the final message. */
#include "server/gen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/sample.h"
#include "engine/stop.h"
#include "engine/tokenizer.h"
#include "server/chat_stream.h"
#include "server/log.h"
#include "server/utf8.h"

struct text {
    char *p;
    size_t len, cap;
};

struct gen_group {
    struct app *a;
    const char *route;
    struct oai_request *req;
    struct http_stream *st;
    struct oai_ident ident;
    pthread_mutex_t mu;
    int n, n_done, status;
    char error[256];
    json_t *choices;            /* non-streaming: finished choices by index */
    struct oai_usage usage;
    double t0, t_first;
    bool stream, chat;
};

struct gen {
    struct gen_group *g;
    int index;
    struct sched_job job;
    int32_t *prompt;
    size_t n_prompt;
    sample_state *sampler;
    stop_matcher *stop;
    struct chat_stream *split;
    struct tok_stream ts;
    char *piece;                /* tok_stream output buffer */
    size_t piece_cap;
    int32_t *history;           /* generated tokens, for the penalties (as llama-server) */
    size_t n_history, cap_history;
    struct text content, reasoning;
    struct oai_tool_call *calls;
    size_t n_calls;
    json_t *logprobs;           /* per-token entries when requested, else NULL */
    bool stopped, sent_role, drop_call;
    struct sched_result result;
    int32_t *forced;            /* test builds: tokens to produce instead of sampling */
    size_t n_forced, forced_at;
    double last_ping;
};

/* ------------------------------------------------------------------ helpers --- */

static bool text_add(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p)
            return false;
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
    return true;
}

static void stream_event(struct gen_group *g, char *event)
{
    if (event) {
        http_stream_write(g->st, event, strlen(event));
        free(event);
    }
}

/* A chat delta with exactly one kind of field, as Continue and others expect. */
static void send_delta(struct gen *gn, const char *field, const char *s, size_t n)
{
    struct gen_group *g = gn->g;
    size_t safe_len;
    char *safe = utf8_sanitize(s, n, &safe_len);
    if (!safe)
        return;
    if (g->chat) {
        json_t *delta = json_object();
        if (!gn->sent_role) {
            json_object_set_new(delta, "role", json_string("assistant"));
            gn->sent_role = true;
        }
        json_object_set_new(delta, field, json_stringn(safe, safe_len));
        stream_event(g, oai_chat_chunk(&g->ident, delta, NULL, NULL));
    } else {
        stream_event(g, oai_completion_chunk(&g->ident, safe, safe_len, NULL, NULL));
    }
    free(safe);
}

/* ------------------------------------------------------------- text events --- */

static void on_chat_event(void *ctx, const struct chat_event *ev)
{
    struct gen *gn = ctx;
    bool stream = gn->g->stream;
    switch (ev->kind) {
    case CHAT_CONTENT:
        if (stream)
            send_delta(gn, "content", ev->text, ev->len);
        else
            text_add(&gn->content, ev->text, ev->len);
        break;
    case CHAT_REASONING:
        if (stream)
            send_delta(gn, "reasoning_content", ev->text, ev->len);
        else
            text_add(&gn->reasoning, ev->text, ev->len);
        break;
    case CHAT_TOOL_NAME: {
        if (!gn->g->req->parallel_tool_calls && gn->n_calls >= 1) { /* one call asked for: later ones dropped */
            gn->drop_call = true;
            break;
        }
        gn->drop_call = false;
        struct oai_tool_call *p = realloc(gn->calls, (gn->n_calls + 1) * sizeof *p);
        if (!p)
            return;
        gn->calls = p;
        struct oai_tool_call *c = &gn->calls[gn->n_calls++];
        memset(c, 0, sizeof *c);
        uint64_t rng = app_random(gn->g->a);
        oai_new_id(c->id, sizeof c->id, "call_", &rng);
        c->name = strndup(ev->text, ev->len);
        c->arguments = strdup("");
        if (stream) {
            json_t *delta = json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", ev->tool_index, "id",
                                      c->id, "type", "function", "function", "name", c->name ? c->name : "",
                                      "arguments", "");
            stream_event(gn->g, oai_chat_chunk(&gn->g->ident, delta, NULL, NULL));
        }
        break;
    }
    case CHAT_TOOL_ARGS: {
        if (gn->drop_call || !gn->n_calls)
            break;
        struct oai_tool_call *c = &gn->calls[gn->n_calls - 1];
        free(c->arguments);
        c->arguments = strndup(ev->text, ev->len);
        if (stream) {
            json_t *delta = json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", ev->tool_index, "function",
                                      "arguments", ev->text, ev->len);
            stream_event(gn->g, oai_chat_chunk(&gn->g->ident, delta, NULL, NULL));
        }
        break;
    }
    }
}

/* Text that passed the stop-string matcher: to the splitter (chat) or straight out. */
static void emit_text(struct gen *gn, const char *s, size_t n)
{
    if (!n)
        return;
    if (gn->split)
        chat_stream_feed(gn->split, s, n, on_chat_event, gn);
    else if (gn->g->stream)
        send_delta(gn, "content", s, n);
    else
        text_add(&gn->content, s, n);
}


/* Text that passed the stop matcher. */
static void pass_stop(struct gen *gn, const char *s, size_t n)
{
    if (!gn->stop) {
        emit_text(gn, s, n);
        return;
    }
    stop_out out;
    char err[128];
    if (stop_feed(gn->stop, s, n, &out, err, sizeof err) == 0) {
        emit_text(gn, out.text, out.len);
        if (out.hit)
            gn->stopped = true;
    }
}

/* ------------------------------------------------------------- job hooks --- */

static void record_logprobs(struct gen *gn, int32_t tok)
{
    const struct engine *e = gn->g->a->engine;
    float lp = 0;
    sample_logprob top[20];
    int n_top = gn->g->req->top_logprobs;
    int got = sample_logprobs(gn->sampler, tok, &lp, top, n_top);
    json_t *alts = json_array();
    for (int i = 0; i < got; i++) {
        char b[256];
        size_t len = engine_token_bytes(e, top[i].token, b, sizeof b), sl;
        char *safe = utf8_sanitize(b, len < sizeof b ? len : sizeof b, &sl);
        json_array_append_new(alts, json_pack("{s:s%,s:f}", "token", safe ? safe : "", safe ? sl : 0, "logprob",
                                              isfinite(top[i].logprob) ? top[i].logprob : -9999.0));
        free(safe);
    }
    char b[256];
    size_t len = engine_token_bytes(e, tok, b, sizeof b), sl;
    char *safe = utf8_sanitize(b, len < sizeof b ? len : sizeof b, &sl);
    json_t *bytes = json_array();
    for (size_t i = 0; i < len && i < sizeof b; i++)
        json_array_append_new(bytes, json_integer((unsigned char)b[i]));
    json_array_append_new(gn->logprobs, json_pack("{s:s%,s:f,s:o,s:o}", "token", safe ? safe : "", safe ? sl : 0,
                                                  "logprob", isfinite(lp) ? lp : -9999.0, "bytes", bytes,
                                                  "top_logprobs", alts));
    free(safe);
}

static int32_t hook_choose(void *ctx, const float *logits)
{
    struct gen *gn = ctx;
    if (gn->forced) /* test builds: the text the test asked for, then end of generation */
        return gn->forced_at < gn->n_forced ? gn->forced[gn->forced_at++] : gn->g->a->info->eos;
    sample_result r;
    char err[128];
    if (sample_next(gn->sampler, logits, gn->history, gn->n_history, &r, err, sizeof err) != 0)
        return gn->g->a->info->eos; /* every token banned: end the answer */
    if (gn->logprobs)
        record_logprobs(gn, r.token);
    return r.token;
}

static bool hook_accept(void *ctx, int32_t tok)
{
    struct gen *gn = ctx;
    const struct engine *e = gn->g->a->engine;
    if (engine_is_eog(e, tok) && !gn->g->req->ignore_eos)
        return false;
    if (gn->n_history == gn->cap_history) {
        size_t cap = gn->cap_history ? 2 * gn->cap_history : 256;
        int32_t *h = realloc(gn->history, cap * sizeof *h);
        if (h) {
            gn->history = h;
            gn->cap_history = cap;
        }
    }
    if (gn->n_history < gn->cap_history)
        gn->history[gn->n_history++] = tok;
    size_t n = 0;
    if (tok_stream_push(&gn->ts, engine_tokenizer(e), tok, gn->piece, gn->piece_cap, &n) && n)
        pass_stop(gn, gn->piece, n);
    return !gn->stopped;
}

static bool hook_cancelled(void *ctx)
{
    struct gen *gn = ctx;
    return http_stream_client_gone(gn->g->st);
}

/* During a long prompt an SSE comment now and then keeps proxies from timing the stream out. */
static void hook_progress(void *ctx, uint32_t done, uint32_t total)
{
    (void)done;
    (void)total;
    struct gen *gn = ctx;
    double now = sched_now();
    if (gn->g->stream && now - gn->last_ping > 2.0) {
        http_stream_write(gn->g->st, ": ping\n\n", 8);
        gn->last_ping = now;
    }
}

/* ---------------------------------------------------------------- finishing --- */

static const char *finish_reason(const struct gen *gn)
{
    if (gn->result.reason == SCHED_LENGTH)
        return "length";
    return gn->n_calls ? "tool_calls" : "stop";
}

/* Held-back bytes out through the stop matcher and the splitter, at the end of generation. */
static void flush_text(struct gen *gn)
{
    char tail[4];
    size_t n = tok_stream_flush(&gn->ts, tail);
    if (n)
        pass_stop(gn, tail, n);
    if (gn->stop && !gn->stopped) {
        stop_out out;
        stop_flush(gn->stop, &out);
        emit_text(gn, out.text, out.len);
    }
    if (gn->split)
        chat_stream_finish(gn->split, on_chat_event, gn);
}

/* Generated bytes may not be valid UTF-8 (byte tokens); JSON strings must be. */
static void sanitize_text(struct text *t)
{
    if (!t->p || utf8_valid(t->p, t->len))
        return;
    size_t n;
    char *clean = utf8_sanitize(t->p, t->len, &n);
    if (clean) {
        free(t->p);
        t->p = clean;
        t->len = t->cap = n;
    }
}

static json_t *choice_json(struct gen *gn)
{
    struct gen_group *g = gn->g;
    sanitize_text(&gn->content);
    sanitize_text(&gn->reasoning);
    json_t *lp = gn->logprobs ? json_pack("{s:O}", "content", gn->logprobs) : NULL;
    struct oai_usage none = {0};
    json_t *r = g->chat ? oai_chat_response(&g->ident, gn->content.p ? gn->content.p : "", gn->reasoning.p,
                                            gn->calls, gn->n_calls, finish_reason(gn), lp, &none)
                        : oai_completion_response(&g->ident, gn->content.p ? gn->content.p : "", finish_reason(gn),
                                                  lp, &none);
    json_t *choice = json_incref(json_array_get(json_object_get(r, "choices"), 0));
    json_object_set_new(choice, "index", json_integer(gn->index));
    json_decref(r);
    return choice;
}

static void stream_finish_chunk(struct gen *gn)
{
    struct gen_group *g = gn->g;
    if (g->chat)
        stream_event(g, oai_chat_chunk(&g->ident, json_object(), finish_reason(gn), NULL));
    else
        stream_event(g, oai_completion_chunk(&g->ident, "", 0, finish_reason(gn), NULL));
}

static int status_of(enum sched_finish r)
{
    switch (r) {
    case SCHED_STOP: case SCHED_LENGTH: return 200;
    case SCHED_CANCELLED: return 499;
    case SCHED_TIMEOUT: return 504;
    case SCHED_SHUTDOWN: return 503;
    default: return 500;
    }
}

static void free_gen(struct gen *gn)
{
    sample_free(gn->sampler);
    stop_free(gn->stop);
    chat_stream_free(gn->split);
    for (size_t i = 0; i < gn->n_calls; i++) {
        free(gn->calls[i].name);
        free(gn->calls[i].arguments);
    }
    free(gn->calls);
    json_decref(gn->logprobs);
    free(gn->content.p);
    free(gn->reasoning.p);
    free(gn->history);
    free(gn->piece);
    free(gn->prompt);
    free(gn->forced);
    free(gn);
}

/* The whole request is done: the reply (or the stream's end), the log line, the metrics. */
static void finalize(struct gen_group *g)
{
    struct app *a = g->a;
    if (g->stream) {
        if (g->status == 200 && g->req->include_usage)
            stream_event(g, oai_usage_chunk(&g->ident, g->chat, &g->usage));
        if (g->status != 200 && g->status != 499) { /* headers are out: the error becomes an event */
            char *body = http_error_json(g->status, g->error, NULL);
            if (body) {
                http_stream_write(g->st, "data: ", 6);
                http_stream_write(g->st, body, strlen(body));
                http_stream_write(g->st, "\n\n", 2);
                free(body);
            }
        }
        http_stream_write(g->st, "data: [DONE]\n\n", 14);
        http_stream_end(g->st, 200, NULL);
    } else if (g->status == 200) {
        json_t *r = g->chat ? oai_chat_response(&g->ident, "", NULL, NULL, 0, "stop", NULL, &g->usage)
                            : oai_completion_response(&g->ident, "", "stop", NULL, &g->usage);
        json_object_set(r, "choices", g->choices);
        char *body = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(r);
        http_stream_end(g->st, body ? 200 : 500, body ? body : http_error_json(500, "out of memory", NULL));
    } else {
        if (g->status == 503)
            http_stream_retry_after(g->st, 1);
        http_stream_end(g->st, g->status == 499 ? 400 : g->status, http_error_json(g->status == 499 ? 400 : g->status,
                                                                                  g->error, NULL));
    }
    double now = sched_now(), ttft = g->t_first > 0 ? g->t_first - g->t0 : 0;
    double gen_time = g->t_first > 0 ? now - g->t_first : 0;
    metrics_request_done(&a->metrics, g->status == 499 ? 499 : g->status);
    log_msg(LOG_INFO, "%s %s %d prompt=%llu cached=%llu generated=%llu ttft=%.3fs tps=%.1f", g->ident.id, g->route,
            g->status, (unsigned long long)g->usage.prompt_tokens, (unsigned long long)g->usage.cached_tokens,
            (unsigned long long)g->usage.completion_tokens, ttft,
            gen_time > 0 ? (double)g->usage.completion_tokens / gen_time : 0.0);
    http_stream_release(g->st);
    json_decref(g->choices);
    oai_request_free(g->req);
    free(g->req);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* One generation of the group is over (engine thread, or the submitting thread on failure). */
static void gen_done(struct gen_group *g, int status, const char *error)
{
    pthread_mutex_lock(&g->mu);
    if (status != 200 && g->status == 200) {
        g->status = status;
        snprintf(g->error, sizeof g->error, "%s", error ? error : "generation failed");
    }
    bool last = ++g->n_done == g->n;
    pthread_mutex_unlock(&g->mu);
    if (last)
        finalize(g);
}

static void hook_finish(void *ctx, const struct sched_result *r)
{
    struct gen *gn = ctx;
    struct gen_group *g = gn->g;
    gn->result = *r;
    if (r->reason == SCHED_STOP || r->reason == SCHED_LENGTH) {
        flush_text(gn);
        if (g->stream)
            stream_finish_chunk(gn);
    }
    pthread_mutex_lock(&g->mu);
    g->usage.prompt_tokens += r->prompt_tokens;
    g->usage.cached_tokens += r->cached_tokens;
    g->usage.completion_tokens += r->generated;
    if (r->t_first_token > 0 && (g->t_first == 0 || r->t_first_token < g->t_first))
        g->t_first = r->t_first_token;
    if (!g->stream && (r->reason == SCHED_STOP || r->reason == SCHED_LENGTH))
        json_array_append_new(g->choices, choice_json(gn));
    pthread_mutex_unlock(&g->mu);
    int status = status_of(r->reason);
    const char *msg = r->error[0] ? r->error : r->reason == SCHED_CANCELLED ? "client went away" : NULL;
    free_gen(gn);
    gen_done(g, status, msg);
}

/* ------------------------------------------------------------------ start --- */

static bool sampler_params(const struct oai_sampling *o, sample_params *p)
{
    sample_params_default(p);
    p->temperature = o->temperature;
    p->top_k = o->top_k;
    p->top_p = o->top_p;
    p->min_p = o->min_p;
    p->repeat_penalty = o->repeat_penalty;
    p->repeat_last_n = o->repeat_last_n;
    p->presence_penalty = o->presence_penalty;
    p->frequency_penalty = o->frequency_penalty;
    p->logit_bias = (const sample_bias *)o->bias;
    p->n_logit_bias = o->n_bias;
    p->has_seed = o->has_seed;
    p->seed = o->seed;
    return true;
}

_Static_assert(sizeof(struct oai_bias) == sizeof(sample_bias), "logit bias layouts agree");

#ifdef MOESERVE_TEST_HOOKS
/* Test builds only: MOESERVE_TEST_OUTPUT makes every generation produce that text, so the
 * integration tests can drive tool-call parsing end to end through a random-weight model. */
static void force_output(struct gen *gn)
{
    const char *text = getenv("MOESERVE_TEST_OUTPUT");
    if (text && *text)
        gn->forced = engine_tokenize(gn->g->a->engine, text, strlen(text), true, &gn->n_forced);
}
#endif

static struct gen *new_gen(struct gen_group *g, int index, int32_t *prompt, size_t n_prompt, const char *forced,
                           bool in_reasoning, char *err, size_t errlen)
{
    struct app *a = g->a;
    struct oai_request *r = g->req;
    struct gen *gn = calloc(1, sizeof *gn);
    if (!gn) {
        free(prompt);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    gn->g = g;
    gn->index = index;
    gn->prompt = prompt;
    gn->n_prompt = n_prompt;
    gn->piece_cap = tok_stream_cap(engine_tokenizer(a->engine));
    gn->piece = malloc(gn->piece_cap);
    tok_stream_init(&gn->ts, true);
    sample_params sp;
    sampler_params(&r->sampling, &sp);
    gn->sampler = sample_create(&sp, (int32_t)a->info->n_vocab, app_random(a), err, errlen);
    bool ok = gn->piece && gn->sampler;
    if (ok && r->n_stop)
        ok = (gn->stop = stop_create((const char *const *)r->stop, r->n_stop, err, errlen)) != NULL;
    if (ok && g->chat) {
        struct chat_stream_opts o = {.parse_reasoning = true, .start_in_reasoning = in_reasoning,
                                     .parse_tools = r->tools && r->tool_choice != OAI_TOOLS_NONE, .tools = r->tools};
        ok = (gn->split = chat_stream_new(&o)) != NULL;
        /* the prompt already opened a tool call: the splitter must see that opening too */
        if (ok && forced)
            chat_stream_feed(gn->split, forced, strlen(forced), on_chat_event, gn);
    }
    if (ok && r->logprobs)
        ok = (gn->logprobs = json_array()) != NULL;
    if (!ok) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        free_gen(gn);
        return NULL;
    }
#ifdef MOESERVE_TEST_HOOKS
    force_output(gn);
#endif
    if (r->echo && r->kind == OAI_COMPLETION) { /* legacy completions: the prompt leads the text */
        size_t len = 0;
        char *text = tok_decode(engine_tokenizer(a->engine), prompt, n_prompt, false, &len);
        if (text && g->stream)
            send_delta(gn, "content", text, len);
        else if (text)
            text_add(&gn->content, text, len);
        free(text);
    }
    uint32_t max_new = r->max_tokens >= 0 ? (uint32_t)r->max_tokens : a->cfg.max_tokens_default;
    gn->job = (struct sched_job){.prompt = gn->prompt, .n_prompt = (uint32_t)n_prompt, .max_new = max_new,
                                 .deadline = sched_now() + a->cfg.request_timeout, .ctx = gn,
                                 .choose = hook_choose, .accept = hook_accept, .cancelled = hook_cancelled,
                                 .progress = hook_progress, .finish = hook_finish};
    return gn;
}

void gen_start(struct app *a, const char *route, struct oai_request *req, int32_t **prompts, size_t *n_prompts,
               size_t count, const char *forced, bool in_reasoning, struct http_reply *reply)
{
    struct gen_group *g = calloc(1, sizeof *g);
    if (!g) {
        http_reply_error(reply, 500, NULL, "out of memory");
        goto fail_early;
    }
    g->a = a;
    g->route = route;
    g->req = req;
    g->chat = req->kind == OAI_CHAT;
    g->stream = req->stream;
    g->status = 200;
    g->n = (int)count;
    g->t0 = sched_now();
    g->ident.created = (long long)time(NULL);
    g->ident.model = a->model_id;
    uint64_t rng = app_random(a);
    oai_new_id(g->ident.id, sizeof g->ident.id, g->chat ? "chatcmpl-" : "cmpl-", &rng);
    g->choices = json_array();
    pthread_mutex_init(&g->mu, NULL);
    g->st = http_stream_open(a->http, reply, g->stream);
    if (!g->st) {
        http_reply_error(reply, 503, NULL, "the server is shutting down");
        json_decref(g->choices);
        pthread_mutex_destroy(&g->mu);
        free(g);
        goto fail_early;
    }
    for (size_t i = 0; i < count; i++) {
        char err[256] = "";
        struct gen *gn = new_gen(g, (int)i, prompts[i], n_prompts[i], forced, in_reasoning, err, sizeof err);
        prompts[i] = NULL;
        enum sched_submit_result sr = gn ? sched_submit(a->sched, &gn->job) : SCHED_CLOSED;
        if (gn && sr == SCHED_OK)
            continue;
        int status = !gn ? 500 : sr == SCHED_QUEUE_FULL || sr == SCHED_CLOSED ? 503 : 400;
        if (gn)
            snprintf(err, sizeof err, "%s", sr == SCHED_QUEUE_FULL ? "the request queue is full; retry shortly"
                                            : sr == SCHED_CLOSED ? "the server is shutting down"
                                                                 : "the prompt does not fit in the context");
        if (gn)
            free_gen(gn);
        gen_done(g, status, err);
    }
    return;
fail_early:
    for (size_t i = 0; i < count; i++)
        free(prompts[i]);
    oai_request_free(req);
    free(req);
}
