/* api_info.c: the routes that do not generate: health, metrics, models, props, tokenize and
 * detokenize, plus the route table itself. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/api.h"
#include "server/app.h"
#include "server/utf8.h"

uint64_t app_random(struct app *a)
{
    pthread_mutex_lock(&a->rng_mu);
    uint64_t z = (a->rng += 0x9E3779B97F4A7C15ULL);
    pthread_mutex_unlock(&a->rng_mu);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

bool app_ready_or_503(struct app *a, struct http_reply *reply)
{
    int st = atomic_load(&a->state);
    if (st == APP_READY)
        return true;
    http_reply_error(reply, 503, NULL, "%s", st == APP_LOADING ? "the model is still loading"
                                             : st == APP_DRAINING ? "the server is shutting down"
                                                                  : "the model failed to load");
    reply->retry_after = st == APP_LOADING ? 5 : 0;
    return false;
}

void api_reply_json(struct http_reply *reply, int status, json_t *body)
{
    reply->status = status;
    reply->body = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!reply->body)
        http_reply_error(reply, 500, NULL, "out of memory");
}

/* 200 when ready; 503 while loading or draining, so balancers route around the replica. */
static void h_health(void *app, const struct http_request *req, struct http_reply *reply)
{
    (void)req;
    struct app *a = app;
    static const char *const names[] = {"loading", "ok", "draining", "failed"};
    int st = atomic_load(&a->state);
    api_reply_json(reply, st == APP_READY ? 200 : 503, json_pack("{s:s}", "status", names[st]));
}

static void h_metrics(void *app, const struct http_request *req, struct http_reply *reply)
{
    (void)req;
    struct app *a = app;
    reply->body = metrics_render(&a->metrics, sched_now(), a->model_id);
    reply->content_type = "text/plain; version=0.0.4";
    if (!reply->body)
        http_reply_error(reply, 500, NULL, "out of memory");
}

static void h_models(void *app, const struct http_request *req, struct http_reply *reply)
{
    (void)req;
    struct app *a = app;
    json_t *m = json_pack("{s:s,s:s,s:I,s:s}", "id", a->model_id, "object", "model", "created",
                          (json_int_t)time(NULL), "owned_by", "moeserve");
    if (a->info) {
        json_object_set_new(m, "context_length", json_integer(a->info->max_ctx));
        json_object_set_new(m, "meta", json_pack("{s:s,s:i,s:i,s:i,s:i,s:i}", "arch", a->info->arch, "n_ctx",
                                                 (int)a->info->max_ctx, "n_ctx_train", (int)a->info->n_ctx_train,
                                                 "n_vocab", (int)a->info->n_vocab, "n_expert", (int)a->info->n_expert,
                                                 "n_expert_used", (int)a->info->n_expert_used));
    }
    api_reply_json(reply, 200, json_pack("{s:s,s:[o]}", "object", "list", "data", m));
}

static void h_props(void *app, const struct http_request *req, struct http_reply *reply)
{
    (void)req;
    struct app *a = app;
    if (!app_ready_or_503(a, reply))
        return;
    const struct engine_info *i = a->info;
    json_t *p = json_pack("{s:{s:i,s:{s:f,s:i,s:f,s:f}},s:i,s:s,s:s,s:s}",
                          "default_generation_settings", "n_ctx", (int)i->max_ctx, "params", "temperature", 0.8,
                          "top_k", 40, "top_p", 0.95, "min_p", 0.05, "total_slots", (int)i->slots, "model_path",
                          a->cfg.model ? a->cfg.model : "", "chat_template", i->chat_template ? i->chat_template : "",
                          "build_info", "moeserve");
    if (p) {
        json_object_set_new(p, "device", json_string(i->device_name));
        json_object_set_new(p, "n_cpu_moe", json_integer(i->n_cpu_moe));
    }
    api_reply_json(reply, 200, p);
}

/* llama-server's /tokenize: {"content": "...", "add_special": false, "with_pieces": false} */
static void h_tokenize(void *app, const struct http_request *req, struct http_reply *reply)
{
    struct app *a = app;
    if (!app_ready_or_503(a, reply))
        return;
    json_error_t jerr;
    json_t *o = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
    json_t *content = json_object_get(o, "content");
    if (!json_is_string(content)) {
        http_reply_error(reply, 400, "content", "expected a JSON object with a string 'content'");
        json_decref(o);
        return;
    }
    bool pieces = json_is_true(json_object_get(o, "with_pieces"));
    bool special = !json_is_false(json_object_get(o, "parse_special"));
    size_t n = 0;
    int32_t *ids = engine_tokenize(a->engine, json_string_value(content), json_string_length(content), special, &n);
    json_t *arr = json_array();
    for (size_t k = 0; ids && k < n; k++) {
        if (!pieces) {
            json_array_append_new(arr, json_integer(ids[k]));
            continue;
        }
        char buf[256];
        size_t len = engine_token_bytes(a->engine, ids[k], buf, sizeof buf), out_len;
        char *safe = utf8_sanitize(buf, len < sizeof buf ? len : sizeof buf, &out_len);
        json_array_append_new(arr, json_pack("{s:i,s:s%}", "id", ids[k], "piece", safe ? safe : "", safe ? out_len : 0));
        free(safe);
    }
    free(ids);
    json_decref(o);
    api_reply_json(reply, 200, json_pack("{s:o}", "tokens", arr));
}

static void h_detokenize(void *app, const struct http_request *req, struct http_reply *reply)
{
    struct app *a = app;
    if (!app_ready_or_503(a, reply))
        return;
    json_error_t jerr;
    json_t *o = json_loadb(req->body ? req->body : "", req->body_len, 0, &jerr);
    json_t *toks = json_object_get(o, "tokens");
    if (!json_is_array(toks)) {
        http_reply_error(reply, 400, "tokens", "expected a JSON object with a list 'tokens'");
        json_decref(o);
        return;
    }
    size_t cap = 256, len = 0, i;
    char *text = malloc(cap);
    json_t *v;
    json_array_foreach(toks, i, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= (json_int_t)a->info->n_vocab) {
            http_reply_error(reply, 400, "tokens", "tokens[%zu] is not a token id below %u", i, a->info->n_vocab);
            free(text);
            json_decref(o);
            return;
        }
        for (;;) {
            size_t got = engine_token_bytes(a->engine, (int32_t)id, text ? text + len : NULL, text ? cap - len : 0);
            if (text && got <= cap - len) {
                len += got;
                break;
            }
            cap = 2 * (cap + got);
            char *p = realloc(text, cap);
            if (!p) {
                free(text);
                json_decref(o);
                http_reply_error(reply, 500, NULL, "out of memory");
                return;
            }
            text = p;
        }
    }
    size_t out_len;
    char *safe = utf8_sanitize(text ? text : "", len, &out_len);
    free(text);
    json_decref(o);
    api_reply_json(reply, 200, json_pack("{s:s%}", "content", safe ? safe : "", safe ? out_len : 0));
    free(safe);
}

static const struct http_route routes[] = {
    {"GET", "/health", h_health, true},
    {"GET", "/v1/health", h_health, true},
    {"GET", "/metrics", h_metrics, true},
    {"GET", "/v1/models", h_models, false},
    {"GET", "/models", h_models, false},
    {"GET", "/props", h_props, false},
    {"POST", "/tokenize", h_tokenize, false},
    {"POST", "/detokenize", h_detokenize, false},
    {"POST", "/v1/chat/completions", api_chat, false},
    {"POST", "/chat/completions", api_chat, false},
    {"POST", "/v1/completions", api_completions, false},
    {"POST", "/completions", api_completions, false},
    {"POST", "/infill", api_infill, false},
};

const struct http_route *api_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}
