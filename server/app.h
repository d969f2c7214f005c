/* app.h: the running server's shared state, passed to every route handler: settings, the
 * engine, the chat template, the scheduler, metrics and the lifecycle state. */
#ifndef MOESERVE_APP_H
#define MOESERVE_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "engine/engine.h"
#include "server/chat.h"
#include "server/config.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/sched.h"

enum app_state { APP_LOADING, APP_READY, APP_DRAINING, APP_FAILED };

struct app {
    struct config cfg;
    atomic_int state;
    struct engine *engine;              /* set once loaded; read-only afterwards */
    const struct engine_info *info;
    struct chat_template chat;
    bool has_chat;
    struct sched *sched;
    struct http_server *http;
    struct metrics metrics;
    char model_id[256];
    pthread_mutex_t rng_mu;             /* ids and unseeded sampling */
    uint64_t rng;
};

/* Next value of the app's random stream (thread-safe). */
uint64_t app_random(struct app *a);

/* The routes of the HTTP API (server/api_*.c). */
const struct http_route *api_routes(size_t *n);

/* Fills reply with 503 unless the app is ready to generate (loading, draining). */
bool app_ready_or_503(struct app *a, struct http_reply *reply);

#endif
