/* test_http.c: the HTTP front end over loopback with raw sockets: routing errors, API keys,
 * body limits, streams filled by another thread (SSE and suspended replies), and disconnects. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/http.h"
#include "tests/test.h"

struct app {
    struct http_server *srv;
    atomic_int producers_done;
    atomic_bool saw_gone;
};

struct producer {
    struct app *app;
    struct http_stream *st;
    bool sse;
    int events; /* SSE events to send; -1: keep sending until the client is gone */
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    if (p->sse) {
        for (int i = 0; p->events < 0 || i < p->events; i++) {
            char ev[64];
            int n = snprintf(ev, sizeof ev, "data: {\"i\":%d}\n\n", i);
            usleep(20000);
            if (!http_stream_write(p->st, ev, (size_t)n) || http_stream_client_gone(p->st)) {
                atomic_store(&p->app->saw_gone, true);
                break;
            }
        }
        http_stream_write(p->st, "data: [DONE]\n\n", 14);
        http_stream_end(p->st, 200, NULL);
    } else if (p->events < 0) {
        while (!http_stream_client_gone(p->st))
            usleep(10000);
        http_stream_end(p->st, 500, strdup("{}"));
    } else {
        usleep(50000);
        http_stream_end(p->st, 202, strdup("{\"late\":true}"));
    }
    http_stream_release(p->st);
    atomic_fetch_add(&p->app->producers_done, 1);
    free(p);
    return NULL;
}

static void start_producer(struct app *app, struct http_reply *reply, bool sse, int events)
{
    struct producer *p = calloc(1, sizeof *p);
    p->app = app;
    p->sse = sse;
    p->events = events;
    p->st = http_stream_open(app->srv, reply, sse);
    pthread_t t;
    pthread_create(&t, NULL, produce, p);
    pthread_detach(t);
}

static void h_hello(void *a, const struct http_request *req, struct http_reply *reply)
{
    (void)a;
    char buf[128];
    snprintf(buf, sizeof buf, "{\"len\":%zu}", req->body_len);
    reply->body = strdup(buf);
}

static void h_sse(void *a, const struct http_request *req, struct http_reply *reply)
{
    start_producer(a, reply, true, strstr(req->body ? req->body : "", "forever") ? -1 : 5);
}

static void h_late(void *a, const struct http_request *req, struct http_reply *reply)
{
    start_producer(a, reply, false, strstr(req->body ? req->body : "", "hang") ? -1 : 0);
}

static const struct http_route routes[] = {
    {"POST", "/hello", h_hello, false},
    {"GET", "/health", h_hello, true},
    {"POST", "/sse", h_sse, false},
    {"POST", "/late", h_late, false},
};

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a request and reads the whole reply (Connection: close). Returns malloc'd text. */
static char *request(uint16_t port, const char *method, const char *path, const char *headers,
                     const char *body, size_t body_len)
{
    int fd = connect_to(port);
    if (fd < 0)
        return NULL;
    char head[512];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
                     method, path, headers ? headers : "", body_len);
    ssize_t w = write(fd, head, (size_t)n);
    for (size_t off = 0; body && off < body_len && w > 0; off += (size_t)w)
        w = write(fd, body + off, body_len - off);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    ssize_t r;
    while ((r = read(fd, out + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (len + 1 == cap)
            out = realloc(out, cap *= 2);
    }
    out[len] = 0;
    close(fd);
    return out;
}

static int status_of(const char *reply)
{
    int st = 0;
    if (reply)
        sscanf(reply, "HTTP/1.%*d %d", &st);
    return st;
}

static void check_routing(uint16_t port)
{
    char *r = request(port, "POST", "/hello", "Authorization: Bearer k1\r\n", "abc", 3);
    CHECK(status_of(r) == 200 && strstr(r, "{\"len\":3}"), "sync reply: %s", r ? r : "none");
    free(r);
    r = request(port, "POST", "/nope", "Authorization: Bearer k1\r\n", "", 0);
    CHECK(status_of(r) == 404 && strstr(r, "\"error\"") && strstr(r, "not_found_error"), "404 in OpenAI shape");
    free(r);
    r = request(port, "GET", "/hello", "Authorization: Bearer k1\r\n", "", 0);
    CHECK(status_of(r) == 405 && strstr(r, "Allow: POST"), "405 with Allow");
    free(r);
    r = request(port, "POST", "/hello", NULL, "", 0);
    CHECK(status_of(r) == 401, "401 without a key");
    free(r);
    r = request(port, "POST", "/hello", "Authorization: Bearer k1x\r\n", "", 0);
    CHECK(status_of(r) == 401, "401 with a wrong key");
    free(r);
    r = request(port, "GET", "/health", NULL, "", 0);
    CHECK(status_of(r) == 200, "public route needs no key");
    free(r);
    size_t big = 200 * 1024;
    char *body = malloc(big);
    memset(body, 'x', big);
    r = request(port, "POST", "/hello", "Authorization: Bearer k1\r\n", body, big);
    CHECK(status_of(r) == 413, "413 over the body limit (got %d)", status_of(r));
    free(r);
    free(body);
}

static void check_streams(struct app *app, uint16_t port)
{
    char *r = request(port, "POST", "/sse", "Authorization: Bearer k2\r\n", "{}", 2);
    CHECK(status_of(r) == 200 && strstr(r, "text/event-stream") && strstr(r, "{\"i\":4}") &&
              strstr(r, "data: [DONE]"),
          "SSE stream complete: %s", r ? r : "none");
    free(r);
    r = request(port, "POST", "/late", "Authorization: Bearer k2\r\n", "{}", 2);
    CHECK(status_of(r) == 202 && strstr(r, "{\"late\":true}"), "suspended reply delivered");
    free(r);
    /* a client that leaves mid-stream is noticed by the producer */
    int fd = connect_to(port);
    const char *req = "POST /sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nContent-Length: 7\r\n\r\nforever";
    CHECK(write(fd, req, strlen(req)) > 0, "send");
    char buf[256];
    CHECK(read(fd, buf, sizeof buf) > 0, "first bytes of the stream");
    close(fd);
    for (int i = 0; i < 200 && !atomic_load(&app->saw_gone); i++)
        usleep(10000);
    CHECK(atomic_load(&app->saw_gone), "producer saw the disconnect");
}

int main(void)
{
    struct app app = {0};
    static const char *const keys[] = {"k1", "k2", NULL};
    struct http_config cfg = {.host = "127.0.0.1", .port = 0, .threads = 2, .max_body = 100 * 1024,
                              .timeout_s = 10, .api_keys = keys};
    char err[256];
    app.srv = http_start(&cfg, routes, sizeof routes / sizeof routes[0], &app, err, sizeof err);
    REQUIRE(app.srv, "%s", err);
    uint16_t port = http_port(app.srv);
    CHECK(port != 0, "bound a port");
    check_routing(port);
    check_streams(&app, port);
    for (int i = 0; i < 300 && atomic_load(&app.producers_done) < 3; i++)
        usleep(10000);
    CHECK(atomic_load(&app.producers_done) == 3, "all producers finished");
    /* stopping while a reply waits suspended must not abort; the client gets 503 */
    int fd = connect_to(port);
    const char *req = "POST /late HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nContent-Length: 4\r\n\r\nhang";
    CHECK(write(fd, req, strlen(req)) > 0, "send");
    usleep(100000);
    http_stop(app.srv);
    CHECK(atomic_load(&app.producers_done) == 4, "stop waited for the last producer");
    char buf[512] = {0};
    ssize_t got = read(fd, buf, sizeof buf - 1);
    CHECK(got <= 0 || status_of(buf) == 503, "a waiting client sees 503 or a closed socket: %s", buf);
    close(fd);
    return test_finish();
}
