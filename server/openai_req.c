/* openai_req.c: parses and validates OpenAI-compatible request bodies (server/openai.h).
 * Unknown fields are ignored as OpenAI does; a known field of the wrong type or range is a 400
 * naming it. Chat messages are normalised here, before any template sees them. */
#include "server/openai.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool fail(struct oai_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(struct oai_error *e, const char *param, const char *fmt, ...)
{
    e->status = 400;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

/* ------------------------------------------------------------ scalar fields --- */

static bool get_bool(json_t *o, const char *key, bool *out, struct oai_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return fail(e, key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return true;
}

static bool get_num(json_t *o, const char *key, double lo, double hi, float *out, struct oai_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v))
        return fail(e, key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return fail(e, key, "'%s' must be between %g and %g (got %g)", key, lo, hi, d);
    *out = (float)d;
    return true;
}

static bool get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, struct oai_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    double d = json_is_real(v) ? json_real_value(v) : 0;
    if (json_is_integer(v))
        *out = json_integer_value(v);
    else if (json_is_real(v) && d == floor(d) && fabs(d) < 9e15) /* 10.0 is an integer to clients */
        *out = (int64_t)d;
    else
        return fail(e, key, "'%s' must be an integer", key);
    if (*out < lo || *out > hi)
        return fail(e, key, "'%s' must be between %lld and %lld (got %lld)", key, (long long)lo,
                    (long long)hi, (long long)*out);
    return true;
}

static bool get_str(json_t *o, const char *key, char **out, struct oai_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return fail(e, key, "'%s' must be a string", key);
    free(*out);
    *out = strdup(json_string_value(v));
    return *out != NULL || fail(e, key, "out of memory");
}

/* ---------------------------------------------------------------- sampling --- */

/* Defaults are llama-server's, so clients that relied on it behave the same. */
static void sampling_defaults(struct oai_sampling *s)
{
    memset(s, 0, sizeof *s);
    s->temperature = 0.8f;
    s->top_p = 0.95f;
    s->min_p = 0.05f;
    s->top_k = 40;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
}

static bool parse_logit_bias(json_t *o, struct oai_sampling *s, struct oai_error *e)
{
    json_t *lb = json_object_get(o, "logit_bias");
    if (!lb || json_is_null(lb))
        return true;
    if (!json_is_object(lb))
        return fail(e, "logit_bias", "'logit_bias' must be an object mapping token ids to biases");
    size_t n = json_object_size(lb);
    if (n > 1024)
        return fail(e, "logit_bias", "'logit_bias' has %zu entries (at most 1024)", n);
    s->bias = calloc(n ? n : 1, sizeof *s->bias);
    if (!s->bias)
        return fail(e, "logit_bias", "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(lb, key, v) {
        char *end;
        long id = strtol(key, &end, 10);
        if (!*key || *end || id < 0 || id > INT32_MAX)
            return fail(e, "logit_bias", "logit_bias key '%s' is not a token id", key);
        if (!json_is_number(v) || json_number_value(v) < -100 || json_number_value(v) > 100)
            return fail(e, "logit_bias", "logit_bias for token %ld must be a number from -100 to 100", id);
        double b = json_number_value(v);
        /* OpenAI: -100 effectively bans the token */
        s->bias[s->n_bias++] = (struct oai_bias){(int32_t)id, b <= -100 ? -INFINITY : (float)b};
    }
    return true;
}

static bool parse_sampling(json_t *o, struct oai_sampling *s, struct oai_error *e)
{
    sampling_defaults(s);
    int64_t top_k = s->top_k, last_n = s->repeat_last_n, seed = -1;
    bool ok = get_num(o, "temperature", 0, 100, &s->temperature, e) &&
              get_num(o, "top_p", 0, 1, &s->top_p, e) && get_num(o, "min_p", 0, 1, &s->min_p, e) &&
              get_num(o, "presence_penalty", -2, 2, &s->presence_penalty, e) &&
              get_num(o, "frequency_penalty", -2, 2, &s->frequency_penalty, e) &&
              get_num(o, "repeat_penalty", 0, 100, &s->repeat_penalty, e) &&
              get_int(o, "top_k", 0, 1 << 30, &top_k, e) &&
              get_int(o, "repeat_last_n", -1, 1 << 24, &last_n, e) &&
              get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, e) && parse_logit_bias(o, s, e);
    s->top_k = (int32_t)top_k;
    s->repeat_last_n = (int32_t)last_n;
    if (json_object_get(o, "seed") && !json_is_null(json_object_get(o, "seed"))) {
        s->seed = (uint64_t)seed;
        s->has_seed = true;
    }
    return ok;
}

/* ------------------------------------------------------------- stop, shared --- */

static bool add_stop(struct oai_request *r, const char *s, struct oai_error *e)
{
    if (!*s)
        return true;
    if (r->n_stop >= 16)
        return fail(e, "stop", "at most 16 stop sequences");
    if (strlen(s) > 1024)
        return fail(e, "stop", "stop sequences may be at most 1024 bytes");
    char **p = realloc(r->stop, (r->n_stop + 1) * sizeof *p);
    if (!p)
        return fail(e, "stop", "out of memory");
    r->stop = p;
    r->stop[r->n_stop] = strdup(s);
    return r->stop[r->n_stop++] != NULL || fail(e, "stop", "out of memory");
}

static bool parse_stop(json_t *o, struct oai_request *r, struct oai_error *e)
{
    json_t *st = json_object_get(o, "stop");
    if (!st || json_is_null(st))
        return true;
    if (json_is_string(st))
        return add_stop(r, json_string_value(st), e);
    if (!json_is_array(st))
        return fail(e, "stop", "'stop' must be a string or a list of strings");
    size_t i;
    json_t *v;
    json_array_foreach(st, i, v) {
        if (!json_is_string(v))
            return fail(e, "stop", "'stop' must be a string or a list of strings");
        if (!add_stop(r, json_string_value(v), e))
            return false;
    }
    return true;
}

static bool parse_common(json_t *o, struct oai_request *r, struct oai_error *e)
{
    int64_t n = 1, max_tokens = -1, mct = -1, top_lp = 0;
    r->max_tokens = -1;
    bool ok = get_str(o, "model", &r->model, e) && get_bool(o, "stream", &r->stream, e) &&
              get_bool(o, "ignore_eos", &r->ignore_eos, e) &&
              get_int(o, "n", 1, 128, &n, e) && get_int(o, "max_tokens", 0, 1 << 30, &max_tokens, e) &&
              get_int(o, "max_completion_tokens", 0, 1 << 30, &mct, e) &&
              get_int(o, "n_predict", -1, 1 << 30, &max_tokens, e) && parse_sampling(o, &r->sampling, e) &&
              parse_stop(o, r, e);
    if (!ok)
        return false;
    if (n != 1)
        return fail(e, "n", "only n = 1 is supported (got %lld); send separate requests", (long long)n);
    r->max_tokens = mct >= 0 ? mct : max_tokens;
    json_t *so = json_object_get(o, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so))
            return fail(e, "stream_options", "'stream_options' must be an object");
        if (!get_bool(so, "include_usage", &r->include_usage, e))
            return false;
    }
    json_t *lp = json_object_get(o, "logprobs");
    if (r->kind == OAI_COMPLETION && json_is_integer(lp)) {
        /* legacy completions: logprobs is the number of alternatives */
        if (!get_int(o, "logprobs", 0, 20, &top_lp, e))
            return false;
        r->logprobs = true;
    } else {
        if (!get_bool(o, "logprobs", &r->logprobs, e) || !get_int(o, "top_logprobs", 0, 20, &top_lp, e))
            return false;
        if (top_lp > 0 && !r->logprobs)
            return fail(e, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
    }
    r->top_logprobs = (int)top_lp;
    return true;
}

/* ----------------------------------------------------------------- messages --- */

/* Content as a list of parts becomes their text joined; only text parts are supported. */
static bool normalise_content(json_t *msg, size_t idx, struct oai_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", idx);
    json_t *c = json_object_get(msg, "content");
    if (!c || json_is_null(c))
        return json_object_set_new(msg, "content", json_string("")) == 0 || fail(e, param, "out of memory");
    if (json_is_string(c))
        return true;
    if (!json_is_array(c))
        return fail(e, param, "'%s' must be a string or a list of content parts", param);
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(c, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (!type || strcmp(type, "text") != 0 || !json_is_string(text))
            return fail(e, param, "'%s[%zu]': only text parts ({\"type\":\"text\",\"text\":...}) are supported", param, i);
        total += json_string_length(text);
    }
    char *joined = malloc(total + 1), *p = joined;
    if (!joined)
        return fail(e, param, "out of memory");
    json_array_foreach(c, i, part) {
        json_t *text = json_object_get(part, "text");
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    *p = 0;
    bool ok = json_object_set_new(msg, "content", json_stringn(joined, total)) == 0;
    free(joined);
    return ok || fail(e, param, "out of memory");
}

/* Tool-call arguments arrive as a JSON string (OpenAI's form); templates iterate them as a
 * mapping, so a string that parses as an object is replaced by the object. */
static bool normalise_tool_calls(json_t *msg, size_t idx, struct oai_error *e)
{
    json_t *calls = json_object_get(msg, "tool_calls");
    if (!calls || json_is_null(calls)) {
        json_object_del(msg, "tool_calls");
        return true;
    }
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].tool_calls", idx);
    if (!json_is_array(calls))
        return fail(e, param, "'%s' must be a list", param);
    size_t i;
    json_t *call;
    json_array_foreach(calls, i, call) {
        json_t *fn = json_object_get(call, "function");
        if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
            return fail(e, param, "'%s[%zu].function.name' must be a string", param, i);
        json_t *args = json_object_get(fn, "arguments");
        if (json_is_string(args)) {
            json_t *obj = json_loads(json_string_value(args), JSON_DECODE_ANY, NULL);
            if (json_is_object(obj))
                json_object_set_new(fn, "arguments", obj);
            else
                json_decref(obj);
        } else if (!args || json_is_null(args)) {
            json_object_set_new(fn, "arguments", json_object());
        }
    }
    return true;
}

static bool normalise_message(json_t *msg, size_t idx, struct oai_error *e)
{
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", idx);
    if (!json_is_object(msg))
        return fail(e, param, "'%s' must be an object", param);
    const char *role = json_string_value(json_object_get(msg, "role"));
    if (!role)
        return fail(e, param, "'%s.role' must be a string", param);
    if (strcmp(role, "developer") == 0) /* OpenAI's newer name for the system role */
        json_object_set_new(msg, "role", json_string("system"));
    else if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool"))
        return fail(e, param, "'%s.role' must be system, developer, user, assistant or tool (got '%s')", param, role);
    return normalise_content(msg, idx, e) && normalise_tool_calls(msg, idx, e);
}

static bool parse_tools(json_t *o, struct oai_request *r, struct oai_error *e)
{
    json_t *tools = json_object_get(o, "tools");
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools))
            return fail(e, "tools", "'tools' must be a list");
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            json_t *fn = json_object_get(t, "function");
            if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
                return fail(e, "tools", "'tools[%zu].function.name' must be a string", i);
        }
        if (json_array_size(tools))
            r->tools = json_incref(tools);
    }
    r->parallel_tool_calls = true;
    if (!get_bool(o, "parallel_tool_calls", &r->parallel_tool_calls, e))
        return false;
    json_t *tc = json_object_get(o, "tool_choice");
    r->tool_choice = r->tools ? OAI_TOOLS_AUTO : OAI_TOOLS_NONE;
    if (!tc || json_is_null(tc))
        return true;
    const char *s = json_string_value(tc);
    if (s && strcmp(s, "auto") == 0)
        return true;
    if (s && strcmp(s, "none") == 0) {
        r->tool_choice = OAI_TOOLS_NONE;
        return true;
    }
    if (s && strcmp(s, "required") == 0)
        r->tool_choice = OAI_TOOLS_REQUIRED;
    else if (json_is_object(tc) && json_is_string(json_object_get(json_object_get(tc, "function"), "name"))) {
        r->tool_choice = OAI_TOOLS_NAMED;
        r->tool_name = strdup(json_string_value(json_object_get(json_object_get(tc, "function"), "name")));
    } else
        return fail(e, "tool_choice", "'tool_choice' must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":...}}");
    if (!r->tools)
        return fail(e, "tool_choice", "'tool_choice' requires 'tools'");
    if (r->tool_choice == OAI_TOOLS_NAMED) {
        size_t i;
        json_t *t;
        json_array_foreach(r->tools, i, t) {
            if (strcmp(json_string_value(json_object_get(json_object_get(t, "function"), "name")), r->tool_name) == 0)
                return true;
        }
        return fail(e, "tool_choice", "'tool_choice' names '%s', which is not in 'tools'", r->tool_name);
    }
    return true;
}

static bool parse_chat(json_t *o, struct oai_request *r, struct oai_error *e)
{
    json_t *msgs = json_object_get(o, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return fail(e, "messages", "'messages' must be a non-empty list");
    r->messages = json_deep_copy(msgs);
    if (!r->messages)
        return fail(e, "messages", "out of memory");
    size_t i;
    json_t *m;
    json_array_foreach(r->messages, i, m) {
        if (!normalise_message(m, i, e))
            return false;
    }
    json_t *kw = json_object_get(o, "chat_template_kwargs");
    if (kw && !json_is_null(kw) && !json_is_object(kw))
        return fail(e, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
    r->template_kwargs = kw && json_is_object(kw) ? json_deep_copy(kw) : json_object();
    json_t *think = json_object_get(o, "enable_thinking");
    if (json_is_boolean(think) && !json_object_get(r->template_kwargs, "enable_thinking"))
        json_object_set(r->template_kwargs, "enable_thinking", think);
    return r->template_kwargs != NULL && parse_tools(o, r, e);
}

/* ---------------------------------------------------------------- prompts --- */

static bool token_list(json_t *arr, struct oai_prompt *p, const char *param, struct oai_error *e)
{
    size_t n = json_array_size(arr), i;
    p->tokens = malloc((n ? n : 1) * sizeof *p->tokens);
    if (!p->tokens)
        return fail(e, param, "out of memory");
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return fail(e, param, "'%s' token lists must hold non-negative integers", param);
        p->tokens[i] = (int32_t)json_integer_value(v);
    }
    p->n_tokens = n;
    return true;
}

/* A prompt: a string, a list of token ids, or a list of either (several prompts). */
static bool parse_prompts(json_t *o, struct oai_request *r, struct oai_error *e)
{
    json_t *pr = json_object_get(o, "prompt");
    if (!pr || json_is_null(pr))
        pr = json_string("");
    else
        json_incref(pr);
    bool ok = true;
    bool many = json_is_array(pr) && json_array_size(pr) > 0 &&
                (json_is_string(json_array_get(pr, 0)) || json_is_array(json_array_get(pr, 0)));
    size_t n = many ? json_array_size(pr) : 1;
    if (!json_is_string(pr) && !json_is_array(pr))
        ok = fail(e, "prompt", "'prompt' must be a string, a list of token ids, or a list of those");
    else if (n > 64)
        ok = fail(e, "prompt", "at most 64 prompts per request");
    else if (!(r->prompts = calloc(n, sizeof *r->prompts)))
        ok = fail(e, "prompt", "out of memory");
    for (size_t i = 0; ok && i < n; i++) {
        json_t *item = many ? json_array_get(pr, i) : pr;
        r->n_prompts++;
        if (json_is_string(item))
            ok = (r->prompts[i].text = strdup(json_string_value(item))) != NULL || fail(e, "prompt", "out of memory");
        else if (json_is_array(item))
            ok = token_list(item, &r->prompts[i], "prompt", e);
        else
            ok = fail(e, "prompt", "'prompt[%zu]' must be a string or a list of token ids", i);
    }
    json_decref(pr);
    return ok && get_str(o, "suffix", &r->suffix, e) && get_bool(o, "echo", &r->echo, e);
}

static bool parse_infill(json_t *o, struct oai_request *r, struct oai_error *e)
{
    if (!get_str(o, "input_prefix", &r->input_prefix, e) || !get_str(o, "input_suffix", &r->input_suffix, e))
        return false;
    json_t *extra = json_object_get(o, "input_extra");
    if (extra && !json_is_null(extra)) {
        if (!json_is_array(extra))
            return fail(e, "input_extra", "'input_extra' must be a list of {\"filename\", \"text\"}");
        size_t i;
        json_t *c;
        json_array_foreach(extra, i, c) {
            if (!json_is_string(json_object_get(c, "text")) ||
                (json_object_get(c, "filename") && !json_is_string(json_object_get(c, "filename"))))
                return fail(e, "input_extra", "'input_extra[%zu]' needs a string 'text' (and 'filename')", i);
        }
        r->input_extra = json_incref(extra);
    }
    /* the optional prompt is text typed after the cursor's prefix */
    json_t *p = json_object_get(o, "prompt");
    if (p && !json_is_null(p) && !json_is_string(p))
        return fail(e, "prompt", "'prompt' must be a string");
    return parse_prompts(o, r, e);
}

bool oai_parse(enum oai_kind kind, const char *body, size_t len, struct oai_request *r, struct oai_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    if (!body || !len)
        return fail(e, NULL, "the request body is empty; expected a JSON object");
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return fail(e, NULL, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
    bool ok = json_is_object(o) || fail(e, NULL, "the request body must be a JSON object");
    ok = ok && parse_common(o, r, e);
    if (ok && kind == OAI_CHAT)
        ok = parse_chat(o, r, e);
    else if (ok && kind == OAI_COMPLETION)
        ok = parse_prompts(o, r, e);
    else if (ok)
        ok = parse_infill(o, r, e);
    json_decref(o);
    return ok;
}

void oai_request_free(struct oai_request *r)
{
    free(r->model);
    free(r->sampling.bias);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    json_decref(r->messages);
    json_decref(r->tools);
    free(r->tool_name);
    json_decref(r->template_kwargs);
    for (size_t i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        free(r->prompts[i].tokens);
    }
    free(r->prompts);
    free(r->suffix);
    free(r->input_prefix);
    free(r->input_suffix);
    json_decref(r->input_extra);
    memset(r, 0, sizeof *r);
}
