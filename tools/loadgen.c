/* loadgen.c: load tool for moeserve: N concurrent streaming chat clients for a bounded time on
 * loopback; reports requests/s, tokens/s, time-to-first-token and inter-token latency
 * percentiles, errors, and the server's RSS at start and end (given its pid). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct opts {
    const char *host;
    int port, clients, seconds, max_tokens, pid;
    const char *prompt;
};

struct samples {
    double *v;
    size_t n, cap;
};

struct client {
    const struct opts *o;
    double end_time;
    unsigned requests, errors, tokens;
    struct samples ttft, itl;
    pthread_t thread;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void add_sample(struct samples *s, double v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

static int connect_server(const struct opts *o)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    struct timeval tv = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* True when the event carries a non-empty string for `key` (the first chunk's "" does not count). */
static bool has_text(const char *event, const char *key)
{
    const char *p = strstr(event, key);
    return p && p[strlen(key)] != '"';
}

/* One streaming request; counts content chunks as tokens. Returns false on any error. */
static bool one_request(struct client *c, int n)
{
    const struct opts *o = c->o;
    char body[1024], req[2048];
    int bl = snprintf(body, sizeof body,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"%s %d\"}],\"stream\":true,"
                      "\"max_tokens\":%d,\"temperature\":0.7,\"seed\":%d}", o->prompt, n, o->max_tokens, n);
    int rl = snprintf(req, sizeof req, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s", o->host, bl, body);
    int fd = connect_server(o);
    if (fd < 0)
        return false;
    double t0 = now(), last = 0;
    bool ok = write(fd, req, (size_t)rl) == rl, done = false, status_ok = false;
    char buf[16384];
    size_t have = 0;
    while (ok && !done) {
        ssize_t r = read(fd, buf + have, sizeof buf - have - 1);
        if (r <= 0)
            break;
        have += (size_t)r;
        buf[have] = 0;
        if (!status_ok)
            status_ok = strncmp(buf, "HTTP/1.1 200", 12) == 0;
        if (!status_ok)
            break;
        /* count "delta":{"content" occurrences in complete lines, keep the partial tail */
        char *line_end, *p = buf;
        while ((line_end = strstr(p, "\n\n")) != NULL) {
            *line_end = 0;
            if (strstr(p, "data: [DONE]"))
                done = true;
            else if (has_text(p, "\"content\":\"") || has_text(p, "\"reasoning_content\":\"")) {
                double t = now();
                if (last == 0)
                    add_sample(&c->ttft, t - t0);
                else
                    add_sample(&c->itl, t - last);
                last = t;
                c->tokens++;
            }
            p = line_end + 2;
        }
        have -= (size_t)(p - buf);
        memmove(buf, p, have);
    }
    close(fd);
    return ok && status_ok && done;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    for (int n = 0; now() < c->end_time; n++) {
        if (one_request(c, n))
            c->requests++;
        else
            c->errors++;
    }
    return NULL;
}

static long rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(struct samples *s, double q)
{
    if (!s->n)
        return NAN;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static void merge(struct samples *into, const struct samples *from)
{
    for (size_t i = 0; i < from->n; i++)
        add_sample(into, from->v[i]);
}

int main(int argc, char **argv)
{
    struct opts o = {.host = "127.0.0.1", .port = 8080, .clients = 8, .seconds = 20, .max_tokens = 32,
                     .pid = 0, .prompt = "Write a short story about a robot."};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) o.host = v;
        else if (!strcmp(k, "--port")) o.port = atoi(v);
        else if (!strcmp(k, "--clients")) o.clients = atoi(v);
        else if (!strcmp(k, "--seconds")) o.seconds = atoi(v);
        else if (!strcmp(k, "--max-tokens")) o.max_tokens = atoi(v);
        else if (!strcmp(k, "--pid")) o.pid = atoi(v);
        else if (!strcmp(k, "--prompt")) o.prompt = v;
        else {
            fprintf(stderr, "loadgen: unknown option '%s'\n", k);
            return 2;
        }
    }
    if (o.clients < 1 || o.clients > 1024 || o.seconds < 1 || o.seconds > 3600 || o.port < 1 || o.port > 65535) {
        fprintf(stderr, "loadgen: --clients 1..1024, --seconds 1..3600, --port 1..65535\n");
        return 2;
    }
    long rss0 = o.pid ? rss_kib(o.pid) : -1;
    struct client *cl = calloc((size_t)o.clients, sizeof *cl);
    double t0 = now();
    for (int i = 0; i < o.clients; i++) {
        cl[i].o = &o;
        cl[i].end_time = t0 + o.seconds;
        pthread_create(&cl[i].thread, NULL, client_main, &cl[i]);
    }
    struct samples ttft = {0}, itl = {0};
    unsigned reqs = 0, errs = 0, toks = 0;
    for (int i = 0; i < o.clients; i++) {
        pthread_join(cl[i].thread, NULL);
        reqs += cl[i].requests;
        errs += cl[i].errors;
        toks += cl[i].tokens;
        merge(&ttft, &cl[i].ttft);
        merge(&itl, &cl[i].itl);
        free(cl[i].ttft.v);
        free(cl[i].itl.v);
    }
    double el = now() - t0;
    long rss1 = o.pid ? rss_kib(o.pid) : -1;
    printf("clients %d, %.1f s: %u requests (%.2f/s), %u errors, %u tokens (%.1f tokens/s)\n", o.clients, el, reqs,
           reqs / el, errs, toks, toks / el);
    printf("time to first token: p50 %.3f s, p99 %.3f s; inter-token: p50 %.4f s, p99 %.4f s\n",
           percentile(&ttft, 0.5), percentile(&ttft, 0.99), percentile(&itl, 0.5), percentile(&itl, 0.99));
    if (o.pid)
        printf("server RSS: start %ld KiB, end %ld KiB (%+.1f%%)\n", rss0, rss1,
               rss0 > 0 ? 100.0 * (double)(rss1 - rss0) / (double)rss0 : 0.0);
    free(ttft.v);
    free(itl.v);
    free(cl);
    return errs ? 1 : 0;
}
