/* gen.h: one generation as the API layer runs it on the engine thread: sampling, detokenizing,
 * stop strings, reasoning/tool-call splitting, and writing SSE chunks or the final JSON reply. */
#ifndef MOESERVE_GEN_H
#define MOESERVE_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "server/app.h"
#include "server/openai.h"

struct gen_group;

/* Starts one generation per prompt for `req` (malloc'd; taken) from the prompt token arrays
 * (taken; set to NULL) and answers through reply with a stream. For chat, `forced` is text the
 * prompt already put at the start of the answer and in_reasoning says the prompt opened <think>.
 * route names the endpoint for the request log. */
void gen_start(struct app *a, const char *route, struct oai_request *req, int32_t **prompts, size_t *n_prompts,
               size_t count, const char *forced, bool in_reasoning, struct http_reply *reply);

#endif
