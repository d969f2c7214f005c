/* http.h: the libmicrohttpd front end: routing, request bodies, limits, API keys, CORS, and
 * streams that another thread fills while the connection is suspended. Knows nothing of models. */
#ifndef MOESERVE_HTTP_H
#define MOESERVE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_server;
struct http_stream;

struct http_request {
    const char *method;         /* "GET", "POST", ... */
    const char *path;           /* without the query string */
    const char *body;           /* NUL-terminated (NULL if none) */
    size_t body_len;
    int fd;                     /* the client socket, to notice a hangup while suspended */
};

/* What a route handler produces: a complete reply, or a stream it hands to a producer. */
struct http_reply {
    int status;
    char *body;                 /* malloc'd; taken by the server */
    const char *content_type;   /* default application/json */
    unsigned retry_after;       /* seconds; adds Retry-After when non-zero */
    struct http_stream *stream; /* set by http_stream_open: the reply comes later */
};

typedef void (*http_handler)(void *app, const struct http_request *req, struct http_reply *reply);

struct http_route {
    const char *method;
    const char *path;
    http_handler handler;
    bool public;                /* served without an API key (health checks, metrics) */
};

struct http_config {
    const char *host;           /* IPv4 or IPv6 literal, or "localhost" */
    uint16_t port;
    unsigned threads;           /* MHD worker threads */
    size_t max_body;            /* bytes; larger bodies get 413 */
    unsigned timeout_s;         /* idle connection timeout */
    const char *const *api_keys;/* NULL-terminated list; NULL or empty: no auth */
    const char *cors_origin;    /* NULL: no CORS headers */
};

/* Starts serving routes on a background thread pool. Returns NULL with a message in err. */
struct http_server *http_start(const struct http_config *cfg, const struct http_route *routes,
                               size_t n_routes, void *app, char *err, size_t errlen);

/* Ends every open stream (clients see 503 or the end of their SSE stream), stops the daemon
 * (safe with suspended connections), and returns once every producer released its stream. */
void http_stop(struct http_server *s);

/* The port actually bound (useful with port 0). */
uint16_t http_port(const struct http_server *s);

/* An OpenAI-shaped error body: {"error":{"message","type","param","code"}} (malloc'd). */
char *http_error_json(int status, const char *message, const char *param);
/* Fills reply with that error. */
void http_reply_error(struct http_reply *reply, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ streams ---
 * A handler calls http_stream_open and returns; a producer thread then writes to the stream and
 * finally ends it. With sse the response starts at once (200, text/event-stream) and every write
 * is sent as it comes; without, the connection waits suspended and http_stream_end's status and
 * body become the whole reply. The stream stays valid for the producer until it calls
 * http_stream_release, whatever the client does. */
struct http_stream *http_stream_open(struct http_server *s, struct http_reply *reply, bool sse);
/* Appends bytes (SSE: whole events). Returns false when the client is gone. */
bool http_stream_write(struct http_stream *st, const char *data, size_t len);
/* Ends the stream; for a non-SSE stream, status and body (taken) are the reply. */
void http_stream_end(struct http_stream *st, int status, char *body);
/* Non-SSE streams: a Retry-After header on the final reply (call before http_stream_end). */
void http_stream_retry_after(struct http_stream *st, unsigned seconds);
/* True once the client has disconnected (checked without blocking). */
bool http_stream_client_gone(struct http_stream *st);
/* The producer is done with the stream (after http_stream_end). */
void http_stream_release(struct http_stream *st);

#endif
