/* openai.h: OpenAI-compatible requests as typed structs (parsed and validated from JSON),
 * and the response / SSE chunk JSON built from generation results. */
#ifndef MOESERVE_OPENAI_H
#define MOESERVE_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum oai_kind { OAI_CHAT, OAI_COMPLETION, OAI_INFILL };
enum oai_tool_choice { OAI_TOOLS_AUTO, OAI_TOOLS_NONE, OAI_TOOLS_REQUIRED, OAI_TOOLS_NAMED };

struct oai_bias {
    int32_t token;
    float bias;
};

struct oai_sampling {
    float temperature, top_p, min_p, presence_penalty, frequency_penalty, repeat_penalty;
    int32_t top_k, repeat_last_n;
    uint64_t seed;
    bool has_seed;
    struct oai_bias *bias;
    size_t n_bias;
};

/* One completion prompt: text, or token ids when the client sent them. */
struct oai_prompt {
    char *text;
    int32_t *tokens;
    size_t n_tokens;
};

struct oai_request {
    enum oai_kind kind;
    char *model;
    bool stream, include_usage;
    bool ignore_eos;             /* llama-server's extension: generate through end-of-generation tokens */
    int64_t max_tokens;          /* -1: not given */
    struct oai_sampling sampling;
    char **stop;
    size_t n_stop;
    bool logprobs;
    int top_logprobs;
    /* chat */
    json_t *messages;            /* normalised: see docs/api.md */
    json_t *tools;               /* NULL when none */
    enum oai_tool_choice tool_choice;
    char *tool_name;             /* OAI_TOOLS_NAMED */
    bool parallel_tool_calls;
    json_t *template_kwargs;     /* object: chat_template_kwargs (+ enable_thinking) */
    /* completions */
    struct oai_prompt *prompts;
    size_t n_prompts;
    char *suffix;                /* fill-in-the-middle */
    bool echo;
    /* /infill (llama.cpp) */
    char *input_prefix, *input_suffix;
    json_t *input_extra;         /* [{"filename","text"}] */
};

struct oai_error {
    int status;
    char param[64];
    char message[512];
};

/* Parse and validate a request body of the given kind. False fills err (status 400). */
bool oai_parse(enum oai_kind kind, const char *body, size_t len, struct oai_request *req,
               struct oai_error *err);
void oai_request_free(struct oai_request *req);

/* ---------------------------------------------------------------- responses --- */

struct oai_usage {
    uint64_t prompt_tokens, completion_tokens, cached_tokens;
};

struct oai_tool_call {
    char id[40];
    char *name, *arguments;
};

/* Identity of one response: the same for all chunks of a stream. */
struct oai_ident {
    char id[48];            /* chatcmpl-... / cmpl-... */
    long long created;      /* unix seconds */
    const char *model;
};

/* A fresh random id with the given prefix ("chatcmpl-", "cmpl-", "call_"). rng: splitmix state. */
void oai_new_id(char *out, size_t len, const char *prefix, uint64_t *rng);

json_t *oai_usage_json(const struct oai_usage *u);

/* Complete (non-streaming) responses. logprobs may be NULL; it is taken. */
json_t *oai_chat_response(const struct oai_ident *id, const char *content, const char *reasoning,
                          const struct oai_tool_call *calls, size_t n_calls, const char *finish_reason,
                          json_t *logprobs, const struct oai_usage *u);
json_t *oai_completion_response(const struct oai_ident *id, const char *text, const char *finish_reason,
                                json_t *logprobs, const struct oai_usage *u);

/* Streaming chunks; each returns "data: {...}\n\n" (malloc'd). delta is taken. */
char *oai_chat_chunk(const struct oai_ident *id, json_t *delta, const char *finish_reason, json_t *logprobs);
char *oai_completion_chunk(const struct oai_ident *id, const char *text, size_t len, const char *finish_reason,
                           json_t *logprobs);
/* The final chunk with empty choices and usage (stream_options.include_usage). */
char *oai_usage_chunk(const struct oai_ident *id, bool chat, const struct oai_usage *u);
/* A JSON value as one SSE event "data: ...\n\n" (value taken). */
char *oai_sse_event(json_t *value);

#endif
