/* api.h: route handlers of the HTTP API (server/api_*.c) and their shared helpers. */
#ifndef MOESERVE_API_H
#define MOESERVE_API_H

#include <jansson.h>

#include "server/http.h"

/* Generation routes (server/api_gen.c). */
void api_chat(void *app, const struct http_request *req, struct http_reply *reply);
void api_completions(void *app, const struct http_request *req, struct http_reply *reply);
void api_infill(void *app, const struct http_request *req, struct http_reply *reply);

/* Sets reply to the JSON value (taken) with the status. */
void api_reply_json(struct http_reply *reply, int status, json_t *body);

#endif
