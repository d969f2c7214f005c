/* serve.c: `moeserve serve`: settings, HTTP up first (health says "loading"), then the model,
 * then the scheduler; READY=1 to systemd; signals: TERM/INT drain and exit 0, HUP reopens logs. */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "server/api.h"
#include "server/app.h"
#include "server/commands.h"
#include "server/log.h"
#include "server/progress.h"

/* ----------------------------------------------------------------- engine glue --- */

static bool glue_decode(void *impl, const struct sched_batch *b, float *logits, char *err, size_t errlen)
{
    return engine_decode(impl, b->n, b->token, b->pos, b->slot, b->want_logits, logits, err, errlen);
}

static uint32_t glue_keep(void *impl, uint32_t slot, uint32_t n_keep)
{
    return engine_seq_keep(impl, slot, n_keep);
}

/* ------------------------------------------------------------------ settings --- */

/* API keys from the config, $MOESERVE_API_KEY and api_keys_file, as a NULL-terminated list. */
static char **load_api_keys(const struct config *c, char *err, size_t errlen)
{
    size_t n = 0, cap = 8;
    char **keys = calloc(cap, sizeof *keys);
    if (!keys)
        return NULL;
    const char *env = getenv("MOESERVE_API_KEY");
    if (c->api_key && *c->api_key)
        keys[n++] = strdup(c->api_key);
    if (env && *env)
        keys[n++] = strdup(env);
    if (c->api_keys_file) {
        FILE *f = fopen(c->api_keys_file, "r");
        if (!f) {
            snprintf(err, errlen, "--api-keys-file %s: %s", c->api_keys_file, strerror(errno));
            for (size_t i = 0; i < n; i++)
                free(keys[i]);
            free(keys);
            return NULL;
        }
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#')
                continue;
            if (n + 2 > cap) {
                char **p = realloc(keys, 2 * cap * sizeof *keys);
                if (!p)
                    break;
                keys = p;
                cap *= 2;
            }
            keys[n++] = strdup(line);
        }
        fclose(f);
    }
    keys[n] = NULL;
    return keys;
}

static void free_keys(char **keys)
{
    for (size_t i = 0; keys && keys[i]; i++)
        free(keys[i]);
    free(keys);
}

/* ------------------------------------------------------------------- loading --- */

struct load_report {
    struct progress_bar bar;    /* on a terminal */
    bool log_steps;             /* log every 10% (not when the bar already shows it on stderr) */
    int last_logged;
};

static void load_progress(void *ctx, const char *stage, double fraction)
{
    struct load_report *r = ctx;
    progress_bar_draw(&r->bar, stage, fraction);
    int pct = (int)(fraction * 100);
    if (r->last_logged < 0 || pct / 10 != r->last_logged / 10 || fraction >= 1.0) {
        if (r->log_steps)
            log_msg(LOG_INFO, "loading: %s %d%%", stage, pct);
        sd_notifyf(0, "STATUS=loading: %s %d%%", stage, pct);
        r->last_logged = pct;
    }
}

static bool load_model(struct app *a, char *err, size_t errlen)
{
    struct config *c = &a->cfg;
    struct load_report report = {.last_logged = -1};
    progress_bar_init(&report.bar);
    report.log_steps = !report.bar.tty || c->log_file;
    struct engine_params p = {.path = c->model, .threads = c->threads, .slots = c->slots, .ctx_size = c->ctx_size,
                              .max_ctx = c->max_ctx, .batch_tokens = c->batch_tokens, .kv_type = c->kv_type, .delta_rule = c->delta_rule,
                              .device = c->device, .gpu = c->gpu, .n_cpu_moe = c->n_cpu_moe, .mem_budget = c->mem_budget, .fit = c->fit,
                              .progress = load_progress, .progress_ctx = &report};
    a->engine = engine_open(&p, err, errlen);
    progress_bar_end(&report.bar);
    if (!a->engine)
        return false;
    a->info = engine_info(a->engine);
    if (a->info->device_note)
        log_msg(LOG_INFO, "device: %s", a->info->device_note);
    const char *tmpl = a->info->chat_template;
    char *file_tmpl = NULL;
    if (c->chat_template) {
        FILE *f = fopen(c->chat_template, "rb");
        size_t n = 0;
        if (f && fseek(f, 0, SEEK_END) == 0) {
            long sz = ftell(f);
            rewind(f);
            file_tmpl = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
            n = file_tmpl ? fread(file_tmpl, 1, (size_t)sz, f) : 0;
            if (file_tmpl)
                file_tmpl[n] = 0;
        }
        if (f)
            fclose(f);
        if (!file_tmpl) {
            snprintf(err, errlen, "--chat-template %s: cannot read the file", c->chat_template);
            return false;
        }
        tmpl = file_tmpl;
    }
    if (tmpl) {
        a->has_chat = chat_template_init(&a->chat, tmpl, strlen(tmpl), err, errlen);
        if (!a->has_chat) {
            char *why = strdup(err);
            snprintf(err, errlen, "%s: %s", c->chat_template ? c->chat_template : "tokenizer.chat_template",
                     why ? why : "cannot parse");
            free(why);
        }
    } else {
        log_msg(LOG_WARN, "the model has no chat template: /v1/chat/completions answers 400 (use --chat-template)");
    }
    free(file_tmpl);
    if (tmpl && !a->has_chat)
        return false;
    struct sched_engine se = {.impl = a->engine, .n_vocab = a->info->n_vocab, .n_slots = a->info->slots,
                              .n_ctx_max = a->info->max_ctx, .kv_tokens = a->info->ctx_size,
                              .decode = glue_decode, .seq_keep = glue_keep};
    struct sched_config sc = {.batch_tokens = c->batch_tokens, .queue_size = c->queue_size};
    a->sched = sched_start(&se, &sc, &a->metrics, err, errlen);
    return a->sched != NULL;
}

/* --------------------------------------------------------------- signal loop --- */

/* Waits for signals; pings the systemd watchdog while the engine thread is alive. */
static void run_until_signalled(struct app *a, const sigset_t *set)
{
    uint64_t wd_usec = 0;
    bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
    double period = watchdog ? (double)wd_usec / 2e6 : 5.0;
    for (;;) {
        struct timespec ts = {.tv_sec = (time_t)period, .tv_nsec = (long)((period - (double)(time_t)period) * 1e9)};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGHUP) {
            log_reopen();
            log_msg(LOG_INFO, "SIGHUP: log reopened");
        } else if (sig == SIGTERM || sig == SIGINT) {
            log_msg(LOG_INFO, "%s: draining (up to %u s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", a->cfg.drain_timeout);
            return;
        }
        /* a stuck engine thread stops the pings, and systemd restarts the service */
        if (watchdog && sched_now() - sched_heartbeat(a->sched) < 2 * period + 60)
            sd_notify(0, "WATCHDOG=1");
    }
}

static void shutdown_app(struct app *a)
{
    if (a->sched) {
        bool drained = sched_drain(a->sched, a->cfg.drain_timeout);
        if (!drained)
            log_msg(LOG_WARN, "drain timeout: ending the remaining requests");
        sched_stop(a->sched);
    }
    http_stop(a->http);
    if (a->has_chat)
        chat_template_free(&a->chat);
    engine_close(a->engine);
    metrics_destroy(&a->metrics);
    pthread_mutex_destroy(&a->rng_mu);
}

static void set_model_id(struct app *a)
{
    if (a->cfg.alias) {
        snprintf(a->model_id, sizeof a->model_id, "%s", a->cfg.alias);
        return;
    }
    char *copy = strdup(a->cfg.model);
    snprintf(a->model_id, sizeof a->model_id, "%s", copy ? basename(copy) : "model");
    free(copy);
}

int cmd_serve(int argc, char **argv)
{
    static struct app a; /* handlers reach it through the HTTP server until it stops */
    config_init(&a.cfg);
    char err[4096];
    bool help;
    if (!config_parse_args(&a.cfg, argc, argv, &help, err, sizeof err)) {
        fprintf(stderr, "moeserve serve: %s\n", err);
        config_free(&a.cfg);
        return 2;
    }
    if (help) {
        config_print_help(stdout);
        config_free(&a.cfg);
        return 0;
    }
    if (!a.cfg.model) {
        fprintf(stderr, "moeserve serve: -m/--model FILE is required (or model = in the config file)\n");
        config_free(&a.cfg);
        return 2;
    }
    if (!log_setup(a.cfg.log_level, a.cfg.log_file, err, sizeof err)) {
        fprintf(stderr, "moeserve serve: %s\n", err);
        config_free(&a.cfg);
        return 2;
    }
    char **keys = load_api_keys(&a.cfg, err, sizeof err);
    if (!keys) {
        fprintf(stderr, "moeserve serve: %s\n", err);
        config_free(&a.cfg);
        return 2;
    }
    /* every thread started from here on inherits the blocked signals; this one waits for them */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    metrics_init(&a.metrics, sched_now());
    pthread_mutex_init(&a.rng_mu, NULL);
    a.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    atomic_store(&a.state, APP_LOADING);
    set_model_id(&a);
    size_t n_routes;
    const struct http_route *routes = api_routes(&n_routes);
    struct http_config hc = {.host = a.cfg.host, .port = (uint16_t)a.cfg.port, .threads = a.cfg.http_threads,
                             .max_body = a.cfg.max_body, .timeout_s = a.cfg.idle_timeout,
                             .api_keys = (const char *const *)keys, .cors_origin = a.cfg.cors_origin};
    a.http = http_start(&hc, routes, n_routes, &a, err, sizeof err);
    int rc = 0;
    if (!a.http) {
        log_msg(LOG_ERROR, "%s", err);
        rc = 1;
    } else {
        log_msg(LOG_INFO, "listening on http://%s:%u (loading %s)", a.cfg.host, http_port(a.http), a.cfg.model);
        if (!load_model(&a, err, sizeof err)) {
            log_msg(LOG_ERROR, "%s", err);
            atomic_store(&a.state, APP_FAILED);
            sd_notifyf(0, "STATUS=failed: %s", err);
            rc = 1;
        } else {
            atomic_store(&a.state, APP_READY);
            log_msg(LOG_INFO, "ready: %s (%s), %u slots, KV pool %u tokens, longest request %u tokens, %s",
                    a.model_id, a.info->arch, a.info->slots, a.info->ctx_size, a.info->max_ctx, a.info->device_name);
            sd_notify(0, "READY=1\nSTATUS=serving");
            run_until_signalled(&a, &set);
            atomic_store(&a.state, APP_DRAINING);
            sd_notify(0, "STOPPING=1\nSTATUS=draining");
        }
    }
    shutdown_app(&a);
    free_keys(keys);
    config_free(&a.cfg);
    return rc;
}
