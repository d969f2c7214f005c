/* chat.c: renders chat requests with the model's template (server/chat.h).
 * tool_choice "required" or a named function is honoured by starting the answer inside a tool
 * call in the template's own form, which the model then completes: no grammar engine needed. */
#include "server/chat.h"

#include <stdlib.h>
#include <string.h>

bool chat_template_init(struct chat_template *ct, const char *source, size_t len, char *err, size_t errlen)
{
    memset(ct, 0, sizeof *ct);
    ct->tmpl = jinja_parse(source, len, err, errlen);
    if (!ct->tmpl)
        return false;
    char *copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        jinja_free(ct->tmpl);
        ct->tmpl = NULL;
        return false;
    }
    memcpy(copy, source, len);
    copy[len] = 0;
    ct->form = toolcall_form_of_template(copy);
    ct->has_tools = strstr(copy, "tools") != NULL;
    free(copy);
    return true;
}

void chat_template_free(struct chat_template *ct)
{
    jinja_free(ct->tmpl);
    ct->tmpl = NULL;
}

void chat_prompt_free(struct chat_prompt *p)
{
    free(p->text);
    free(p->forced);
    memset(p, 0, sizeof *p);
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The opening of a tool call the model must continue. */
static char *forced_call(const struct chat_template *ct, const struct oai_request *r)
{
    if (r->tool_choice != OAI_TOOLS_REQUIRED && r->tool_choice != OAI_TOOLS_NAMED)
        return NULL;
    char buf[512];
    if (r->tool_choice == OAI_TOOLS_REQUIRED)
        snprintf(buf, sizeof buf, "<tool_call>\n%s", ct->form == TOOLCALL_XML ? "<function=" : "{\"name\": \"");
    else if (ct->form == TOOLCALL_XML)
        snprintf(buf, sizeof buf, "<tool_call>\n<function=%s>\n", r->tool_name);
    else
        snprintf(buf, sizeof buf, "<tool_call>\n{\"name\": \"%s\", \"arguments\": ", r->tool_name);
    return strdup(buf);
}

bool chat_render(const struct chat_template *ct, const struct oai_request *r, struct chat_prompt *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* with tool_choice none the model is not told about tools at all */
    const json_t *tools = r->tool_choice == OAI_TOOLS_NONE ? NULL : r->tools;
    json_t *vars = jinja_chat_vars(r->messages, tools, true, r->template_kwargs);
    if (!vars) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    size_t len = 0;
    char *text = jinja_render(ct->tmpl, vars, &len, err, errlen);
    json_decref(vars);
    if (!text)
        return false;
    out->in_reasoning = ends_with(text, len, "<think>\n") || ends_with(text, len, "<think>");
    out->forced = forced_call(ct, r);
    if (out->forced) {
        size_t fl = strlen(out->forced);
        char *joined = realloc(text, len + fl + 1);
        if (!joined) {
            free(text);
            free(out->forced);
            out->forced = NULL;
            snprintf(err, errlen, "out of memory");
            return false;
        }
        memcpy(joined + len, out->forced, fl + 1);
        text = joined;
        out->in_reasoning = false;
    }
    out->text = text;
    return true;
}
