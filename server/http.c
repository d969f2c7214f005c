/* http.c: libmicrohttpd front end (server/http.h): routes, bodies, limits, keys, CORS, streams.
 * Streams follow libmicrohttpd's suspend/resume protocol so no HTTP thread ever waits on the engine. */
#include <netinet/in.h>

#include "server/http.h"
#include "server/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

struct http_stream {
    pthread_mutex_t mu;
    struct http_server *srv;
    struct MHD_Connection *conn;   /* NULL once the request completed */
    bool sse, ended, gone, suspended;
    int refs;                      /* the connection's and the producer's */
    char *buf;                     /* bytes not yet handed to MHD */
    size_t len, cap, sent;
    int status;                    /* non-SSE: the final reply */
    unsigned retry_after;          /* and its Retry-After (0: none) */
    char *final_body;
    int fd;
    struct http_stream *prev, *next;
};

struct http_server {
    struct MHD_Daemon *daemon;
    struct http_config cfg;
    const struct http_route *routes;
    size_t n_routes;
    void *app;
    pthread_mutex_t mu;            /* guards the stream list and `stopping` */
    pthread_cond_t streams_gone;   /* signalled when the last stream is freed */
    struct http_stream *streams;
    bool stopping;
    uint16_t port;
};

struct conn_state {
    char *body;
    size_t len, cap;
    bool too_large;
    struct http_stream *stream;
};

/* ------------------------------------------------------------------ errors --- */

static const char *error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* Appends s to out as a JSON string literal body (no quotes), escaping what JSON requires. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        const char *rep = tmp;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c < 0x20) snprintf(tmp, sizeof tmp, "\\u%04x", c);
        else { tmp[0] = (char)c; tmp[1] = 0; }
        size_t l = strlen(rep);
        if (out && n + l < cap)
            memcpy(out + n, rep, l);
        n += l;
    }
    if (out && cap)
        out[n < cap ? n : cap - 1] = 0;
    return n;
}

char *http_error_json(int status, const char *message, const char *param)
{
    size_t ml = json_escape(NULL, 0, message), pl = param ? json_escape(NULL, 0, param) : 0;
    size_t cap = ml + pl + 160;
    char *out = malloc(cap), *m = malloc(ml + 1), *p = malloc(pl + 1);
    if (!out || !m || !p) {
        free(out);
        free(m);
        free(p);
        return NULL;
    }
    json_escape(m, ml + 1, message);
    if (param)
        json_escape(p, pl + 1, param);
    if (param)
        snprintf(out, cap, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":\"%s\",\"code\":%d}}",
                 m, error_type(status), p, status);
    else
        snprintf(out, cap, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":%d}}",
                 m, error_type(status), status);
    free(m);
    free(p);
    return out;
}

void http_reply_error(struct http_reply *reply, int status, const char *param, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(reply->body);
    reply->status = status;
    reply->body = http_error_json(status, msg, param);
    reply->content_type = "application/json";
}

/* --------------------------------------------------------------- responses --- */

static void add_common_headers(struct http_server *s, struct MHD_Response *r)
{
    if (s->cfg.cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", s->cfg.cors_origin);
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    }
}

static enum MHD_Result send_body(struct http_server *s, struct MHD_Connection *conn, int status,
                                 char *body, const char *content_type, unsigned retry_after,
                                 const char *allow)
{
    if (!body)
        body = http_error_json(500, "out of memory", NULL);
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type ? content_type : "application/json");
    if (retry_after) {
        char v[16];
        snprintf(v, sizeof v, "%u", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    add_common_headers(s, r);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct http_server *s, struct MHD_Connection *conn, int status,
                                  const char *msg, const char *allow)
{
    return send_body(s, conn, status, http_error_json(status, msg, NULL), NULL, 0, allow);
}

/* ----------------------------------------------------------------- streams --- */

static void stream_unref(struct http_stream *st)
{
    struct http_server *s = st->srv;
    pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&st->mu);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (last) {
        if (st->prev)
            st->prev->next = st->next;
        else
            s->streams = st->next;
        if (st->next)
            st->next->prev = st->prev;
        if (!s->streams)
            pthread_cond_broadcast(&s->streams_gone);
    }
    pthread_mutex_unlock(&s->mu);
    if (last) {
        pthread_mutex_destroy(&st->mu);
        free(st->buf);
        free(st->final_body);
        free(st);
    }
}

/* Wakes a connection waiting for data (caller holds st->mu). */
static void wake(struct http_stream *st)
{
    if (st->suspended && st->conn) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct http_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    ssize_t n = 0;
    if (st->sent < st->len) {
        size_t avail = st->len - st->sent;
        n = (ssize_t)(avail < max ? avail : max);
        memcpy(buf, st->buf + st->sent, (size_t)n);
        st->sent += (size_t)n;
        if (st->sent == st->len)
            st->sent = st->len = 0;
    } else if (st->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* Nothing to send yet: park the connection until the producer writes. */
        st->suspended = true;
        MHD_suspend_connection(st->conn);
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

struct http_stream *http_stream_open(struct http_server *s, struct http_reply *reply, bool sse)
{
    struct http_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    pthread_mutex_init(&st->mu, NULL);
    st->srv = s;
    st->sse = sse;
    st->refs = 2;
    st->fd = -1;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_destroy(&st->mu);
        free(st);
        return NULL;
    }
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    pthread_mutex_unlock(&s->mu);
    reply->stream = st;
    return st;
}

bool http_stream_write(struct http_stream *st, const char *data, size_t len)
{
    pthread_mutex_lock(&st->mu);
    bool ok = !st->gone && !st->ended;
    if (ok && st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + len)
            cap *= 2;
        char *p = realloc(st->buf, cap);
        if (p) {
            st->buf = p;
            st->cap = cap;
        } else {
            ok = false;
        }
    }
    if (ok) {
        memcpy(st->buf + st->len, data, len);
        st->len += len;
        wake(st);
    }
    pthread_mutex_unlock(&st->mu);
    return ok;
}

void http_stream_end(struct http_stream *st, int status, char *body)
{
    pthread_mutex_lock(&st->mu);
    if (!st->ended) {
        st->ended = true;
        st->status = status;
        st->final_body = body;
        body = NULL;
    }
    wake(st);
    pthread_mutex_unlock(&st->mu);
    free(body);
}

void http_stream_retry_after(struct http_stream *st, unsigned seconds)
{
    pthread_mutex_lock(&st->mu);
    st->retry_after = seconds;
    pthread_mutex_unlock(&st->mu);
}

bool http_stream_client_gone(struct http_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool gone = st->gone;
    int fd = st->fd;
    pthread_mutex_unlock(&st->mu);
    if (gone || fd < 0)
        return gone;
    /* A suspended connection is not watched by MHD: ask the socket directly. */
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
        pthread_mutex_lock(&st->mu);
        st->gone = true;
        pthread_mutex_unlock(&st->mu);
        return true;
    }
    return false;
}

void http_stream_release(struct http_stream *st)
{
    stream_unref(st);
}

/* ---------------------------------------------------------------- requests --- */

static const struct http_route *find_route(struct http_server *s, const char *path, const char *method,
                                           bool *path_known, char *allow, size_t allow_len)
{
    *path_known = false;
    allow[0] = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        if (strcmp(s->routes[i].path, path) != 0)
            continue;
        *path_known = true;
        if (strcmp(s->routes[i].method, method) == 0)
            return &s->routes[i];
        size_t l = strlen(allow);
        snprintf(allow + l, allow_len - l, "%s%s", l ? ", " : "", s->routes[i].method);
    }
    return NULL;
}

static bool key_ok(struct http_server *s, struct MHD_Connection *conn)
{
    const char *const *keys = s->cfg.api_keys;
    if (!keys || !keys[0])
        return true;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    auth += 7;
    for (; *keys; keys++) {
        /* compare every byte so timing says nothing about how much of a key matched */
        size_t a = strlen(auth), b = strlen(*keys), n = a > b ? a : b;
        unsigned diff = (unsigned)(a != b);
        for (size_t i = 0; i < n; i++)
            diff |= (unsigned)((i < a ? auth[i] : 0) ^ (i < b ? (*keys)[i] : 0));
        if (!diff)
            return true;
    }
    return false;
}

static bool append_body(struct http_server *s, struct conn_state *cs, const char *data, size_t len)
{
    if (cs->too_large || len > s->cfg.max_body - cs->len) {
        cs->too_large = true;
        return true;
    }
    if (cs->len + len + 1 > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 1024;
        while (cap < cs->len + len + 1)
            cap *= 2;
        char *p = realloc(cs->body, cap);
        if (!p)
            return false;
        cs->body = p;
        cs->cap = cap;
    }
    memcpy(cs->body + cs->len, data, len);
    cs->len += len;
    cs->body[cs->len] = 0;
    return true;
}

static enum MHD_Result start_stream(struct http_server *s, struct MHD_Connection *conn,
                                    struct conn_state *cs, struct http_stream *st)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&st->mu);
    st->conn = conn;
    st->fd = ci ? ci->connect_fd : -1;
    cs->stream = st;
    if (!st->sse) {
        /* Wait, suspended, for the producer's http_stream_end; then this handler runs again. */
        if (!st->ended) {
            st->suspended = true;
            MHD_suspend_connection(conn);
        }
        pthread_mutex_unlock(&st->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&st->mu);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_reader, st, NULL);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    add_common_headers(s, r);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result finish_suspended(struct http_server *s, struct MHD_Connection *conn,
                                        struct http_stream *st)
{
    pthread_mutex_lock(&st->mu);
    if (!st->ended) { /* spurious wake-up: keep waiting */
        st->suspended = true;
        MHD_suspend_connection(conn);
        pthread_mutex_unlock(&st->mu);
        return MHD_YES;
    }
    char *body = st->final_body;
    int status = st->status;
    unsigned retry = st->retry_after;
    st->final_body = NULL;
    pthread_mutex_unlock(&st->mu);
    return send_body(s, conn, status ? status : 500, body, NULL, retry, NULL);
}

static enum MHD_Result dispatch(struct http_server *s, struct MHD_Connection *conn, const char *url,
                                const char *method, struct conn_state *cs)
{
    if (s->cfg.cors_origin && strcmp(method, "OPTIONS") == 0)
        return send_body(s, conn, 204, strdup(""), "text/plain", 0, NULL);
    char allow[64];
    bool path_known;
    const struct http_route *rt = find_route(s, url, method, &path_known, allow, sizeof allow);
    if (!rt && path_known)
        return send_error(s, conn, 405, "method not allowed on this route", allow);
    if (!rt)
        return send_error(s, conn, 404, "no such route", NULL);
    if (!rt->public && !key_ok(s, conn))
        return send_error(s, conn, 401, "missing or invalid API key (Authorization: Bearer KEY)", NULL);
    if (cs->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body larger than the limit of %zu bytes", s->cfg.max_body);
        return send_error(s, conn, 413, msg, NULL);
    }
    struct http_request req = {.method = method, .path = url, .body = cs->body, .body_len = cs->len};
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    req.fd = ci ? ci->connect_fd : -1;
    struct http_reply reply = {.status = 200};
    rt->handler(s->app, &req, &reply);
    if (reply.stream) {
        free(reply.body);
        return start_stream(s, conn, cs, reply.stream);
    }
    return send_body(s, conn, reply.status, reply.body, reply.content_type, reply.retry_after, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct http_server *s = cls;
    struct conn_state *cs = *con_cls;
    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        *con_cls = cs;
        return MHD_YES;
    }
    if (cs->stream)
        return finish_suspended(s, conn, cs->stream);
    if (*upload_size) {
        bool ok = append_body(s, cs, upload, *upload_size);
        *upload_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    return dispatch(s, conn, url, method, cs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct conn_state *cs = *con_cls;
    if (!cs)
        return;
    struct http_stream *st = cs->stream;
    if (st) {
        pthread_mutex_lock(&st->mu);
        st->conn = NULL;
        st->suspended = false;
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || !st->ended)
            st->gone = true;
        pthread_mutex_unlock(&st->mu);
        stream_unref(st);
    }
    free(cs->body);
    free(cs);
    *con_cls = NULL;
}

/* ------------------------------------------------------------- start/stop --- */

/* libmicrohttpd's own messages (mostly clients that went away) are debug detail. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    log_vmsg(LOG_DEBUG, fmt, ap);
}

static bool resolve(const char *host, uint16_t port, struct sockaddr_storage *ss, bool *v6, char *err,
                    size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "--host '%s': %s", host, gai_strerror(rc));
        return false;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    if (*v6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    freeaddrinfo(res);
    return true;
}

struct http_server *http_start(const struct http_config *cfg, const struct http_route *routes,
                               size_t n_routes, void *app, char *err, size_t errlen)
{
    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->routes = routes;
    s->n_routes = n_routes;
    s->app = app;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->streams_gone, NULL);
    struct sockaddr_storage ss;
    bool v6;
    if (!resolve(cfg->host, cfg->port, &ss, &v6, err, errlen)) {
        pthread_cond_destroy(&s->streams_gone);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
    s->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_THREAD_POOL_SIZE, cfg->threads ? cfg->threads : 2,
                                 MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s port %u (address in use or not permitted)", cfg->host,
                 cfg->port);
        pthread_cond_destroy(&s->streams_gone);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return s;
}

uint16_t http_port(const struct http_server *s)
{
    return s->port;
}

void http_stop(struct http_server *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (struct http_stream *st = s->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        if (!st->ended) {
            st->ended = true;
            st->status = 503;
            st->final_body = http_error_json(503, "server shutting down", NULL);
        }
        st->gone = true;
        wake(st);
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    /* Producers hold their streams until they notice the end; wait for the last release. */
    pthread_mutex_lock(&s->mu);
    while (s->streams)
        pthread_cond_wait(&s->streams_gone, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->streams_gone);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
