/* openai_resp.c: builds OpenAI-shaped responses and SSE chunks (server/openai.h).
 * Field order follows OpenAI's own output, which some clients' tests compare textually. */
#include "server/openai.h"

#include <stdlib.h>
#include <string.h>

#define FINGERPRINT "moeserve"

void oai_new_id(char *out, size_t len, const char *prefix, uint64_t *rng)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = (size_t)snprintf(out, len, "%s", prefix);
    for (; n + 1 < len && n < strlen(prefix) + 24; n++) {
        uint64_t z = (*rng += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        out[n] = alphabet[(z ^ (z >> 31)) % (sizeof alphabet - 1)];
    }
    out[n < len ? n : len - 1] = 0;
}

json_t *oai_usage_json(const struct oai_usage *u)
{
    return json_pack("{s:I,s:I,s:I,s:{s:I}}", "prompt_tokens", (json_int_t)u->prompt_tokens,
                     "completion_tokens", (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens), "prompt_tokens_details",
                     "cached_tokens", (json_int_t)u->cached_tokens);
}

static json_t *envelope(const struct oai_ident *id, const char *object)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", id->id, "object", object, "created",
                     (json_int_t)id->created, "model", id->model ? id->model : "", "system_fingerprint",
                     FINGERPRINT);
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *tool_calls_json(const struct oai_tool_call *calls, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", calls[i].id, "type", "function",
                                             "function", "name", calls[i].name, "arguments", calls[i].arguments));
    return arr;
}

json_t *oai_chat_response(const struct oai_ident *id, const char *content, const char *reasoning,
                          const struct oai_tool_call *calls, size_t n_calls, const char *finish_reason,
                          json_t *logprobs, const struct oai_usage *u)
{
    json_t *msg = json_pack("{s:s,s:o}", "role", "assistant", "content",
                            n_calls && (!content || !*content) ? json_null() : str_or_null(content ? content : ""));
    if (reasoning && *reasoning)
        json_object_set_new(msg, "reasoning_content", json_string(reasoning));
    if (n_calls)
        json_object_set_new(msg, "tool_calls", tool_calls_json(calls, n_calls));
    json_t *choice = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "message", msg, "logprobs",
                               logprobs ? logprobs : json_null(), "finish_reason", finish_reason);
    json_t *r = envelope(id, "chat.completion");
    json_object_set_new(r, "choices", json_pack("[o]", choice));
    json_object_set_new(r, "usage", oai_usage_json(u));
    return r;
}

json_t *oai_completion_response(const struct oai_ident *id, const char *text, const char *finish_reason,
                                json_t *logprobs, const struct oai_usage *u)
{
    json_t *choice = json_pack("{s:s,s:i,s:o,s:s}", "text", text, "index", 0, "logprobs",
                               logprobs ? logprobs : json_null(), "finish_reason", finish_reason);
    json_t *r = envelope(id, "text_completion");
    json_object_set_new(r, "choices", json_pack("[o]", choice));
    json_object_set_new(r, "usage", oai_usage_json(u));
    return r;
}

char *oai_sse_event(json_t *value)
{
    char *body = value ? json_dumps(value, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(value);
    if (!body)
        return NULL;
    size_t n = strlen(body);
    char *ev = malloc(n + 9);
    if (ev) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, body, n);
        memcpy(ev + 6 + n, "\n\n", 3);
    }
    free(body);
    return ev;
}

char *oai_chat_chunk(const struct oai_ident *id, json_t *delta, const char *finish_reason, json_t *logprobs)
{
    json_t *choice = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "delta", delta ? delta : json_object(),
                               "logprobs", logprobs ? logprobs : json_null(), "finish_reason",
                               str_or_null(finish_reason));
    json_t *r = envelope(id, "chat.completion.chunk");
    json_object_set_new(r, "choices", json_pack("[o]", choice));
    return oai_sse_event(r);
}

char *oai_completion_chunk(const struct oai_ident *id, const char *text, size_t len, const char *finish_reason,
                           json_t *logprobs)
{
    json_t *choice = json_pack("{s:s%,s:i,s:o,s:o}", "text", text ? text : "", text ? len : 0, "index", 0,
                               "logprobs", logprobs ? logprobs : json_null(), "finish_reason",
                               str_or_null(finish_reason));
    json_t *r = envelope(id, "text_completion");
    json_object_set_new(r, "choices", json_pack("[o]", choice));
    return oai_sse_event(r);
}

char *oai_usage_chunk(const struct oai_ident *id, bool chat, const struct oai_usage *u)
{
    json_t *r = envelope(id, chat ? "chat.completion.chunk" : "text_completion");
    json_object_set_new(r, "choices", json_array());
    json_object_set_new(r, "usage", oai_usage_json(u));
    return oai_sse_event(r);
}
