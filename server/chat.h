/* chat.h: the model's chat template applied to an OpenAI chat request: tools, thinking switch,
 * and the text the prompt forces the answer to start with (tool_choice required / named). */
#ifndef MOESERVE_CHAT_H
#define MOESERVE_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "server/jinja.h"
#include "server/openai.h"
#include "server/toolcall.h"

struct chat_template {
    jinja_template *tmpl;
    enum toolcall_form form;   /* how this template asks for tool calls */
    bool has_tools;            /* the template renders a tools section */
};

/* Parses a template (the model's tokenizer.chat_template or a --chat-template file).
 * Unsupported constructs fail here, at load, with line and column. */
bool chat_template_init(struct chat_template *ct, const char *source, size_t len, char *err, size_t errlen);
void chat_template_free(struct chat_template *ct);

struct chat_prompt {
    char *text;                /* the rendered prompt */
    char *forced;              /* text appended to the prompt that the answer starts with; NULL if none */
    bool in_reasoning;         /* the prompt leaves a <think> block open */
};

/* Renders the prompt for a chat request; false with a message (a template error is the
 * request's fault: 400). */
bool chat_render(const struct chat_template *ct, const struct oai_request *r, struct chat_prompt *out,
                 char *err, size_t errlen);
void chat_prompt_free(struct chat_prompt *p);

#endif
