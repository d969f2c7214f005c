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

#endif
