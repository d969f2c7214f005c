/* jinja.h: public interface of the Jinja-subset interpreter that renders chat templates.
 * Parse a template once (errors carry line/column), render it many times from JSON variables. */
#ifndef MOESERVE_JINJA_H
#define MOESERVE_JINJA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds that keep a bad template or input from exhausting the process. */
#define JINJA_MAX_OUTPUT   ((size_t)64 << 20)   /* longest string a render may build */
#define JINJA_MAX_MEMORY   ((size_t)512 << 20)  /* working memory of one render */
#define JINJA_MAX_STEPS    50000000u            /* default: evaluated nodes and loop turns */
#define JINJA_MAX_DEPTH    1000                 /* nested evaluation and value nesting */

typedef struct jinja_template jinja_template;

/* Parses template source (UTF-8, `len` bytes) with Hugging Face's settings (trim_blocks,
 * lstrip_blocks, one trailing newline dropped). Syntax errors, unknown or unsupported tags,
 * jinja2 filters this interpreter lacks, and unknown filters/tests fail here with
 * "chat template line L col C: ..." in err (NULL returned). Like jinja2, an unknown filter or
 * test directly inside {% if %} or an inline if is accepted and fails only when evaluated. */
jinja_template *jinja_parse(const char *src, size_t len, char *err, size_t errlen);
void jinja_free(jinja_template *t);

/* Lowers (or, with 0, restores) the work one render may do before failing with RuntimeError.
 * Call before rendering, not while other threads render the template. */
void jinja_set_step_limit(jinja_template *t, uint64_t max_steps);

/* Renders with the members of the JSON object `vars` as template variables (JSON null is
 * Python None; object key order is kept). Returns a malloc'd NUL-terminated string (its byte
 * length in *out_len if non-NULL; the text may itself contain NUL bytes), or NULL with
 * "chat template line L: <Kind>: message" in err, where Kind is TemplateError (from
 * raise_exception), UndefinedError, TypeError, ... as jinja2 would raise. The template is
 * not modified, so one template may be rendered from several threads at once. */
char *jinja_render(const jinja_template *t, const json_t *vars, size_t *out_len,
                   char *err, size_t errlen);

/* The context transformers' apply_chat_template builds: messages, tools (NULL or JSON null:
 * None), documents = None, add_generation_prompt, plus every member of kwargs (may be NULL;
 * transformers also passes the special tokens, e.g. bos_token/eos_token: put them there).
 * Returns a new object reference (NULL on allocation failure). */
json_t *jinja_chat_vars(const json_t *messages, const json_t *tools, bool add_generation_prompt,
                        const json_t *kwargs);

#endif
