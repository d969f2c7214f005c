/* toolcall.h: turns the text of one model tool call into an OpenAI function call.
 * Two forms: Qwen3-Coder's XML (<function=NAME><parameter=P>V</parameter></function>) and
 * Hermes JSON ({"name": ..., "arguments": ...}), both inside <tool_call>...</tool_call>. */
#ifndef MOESERVE_TOOLCALL_H
#define MOESERVE_TOOLCALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum toolcall_form { TOOLCALL_XML, TOOLCALL_JSON };

struct toolcall {
    char *name;
    char *arguments;   /* a JSON object serialised as text, as OpenAI sends it */
};

/* Parses the text between <tool_call> and </tool_call>. `tools` is the request's tools array
 * (may be NULL): XML parameter values are converted by each parameter's JSON-schema type.
 * Returns false when the text is not a well-formed call (the caller keeps it as content). */
bool toolcall_parse(const char *text, size_t len, const json_t *tools, struct toolcall *out);
void toolcall_free(struct toolcall *tc);

/* Which form a chat template asks the model for (XML when it mentions "<function="). */
enum toolcall_form toolcall_form_of_template(const char *template_text);

/* Converts one XML parameter value by its schema type ("string", "integer", "number",
 * "boolean", "object", "array", or NULL when unknown) into a new JSON value. */
json_t *toolcall_convert_value(const char *value, size_t len, const char *schema_type);

/* The JSON-schema type of parameter `param` of function `fn` in `tools`, or NULL. */
const char *toolcall_param_type(const json_t *tools, const char *fn, const char *param);

#endif
