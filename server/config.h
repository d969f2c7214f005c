/* config.h: the server's settings: one table of options read from a config file and overridden
 * by command-line flags; the same table prints `moeserve serve --help` with every default. */
#ifndef MOESERVE_CONFIG_H
#define MOESERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config {
    char *model;            /* GGUF path */
    char *host;
    uint32_t port;
    uint32_t slots;         /* sequences generated at once */
    uint32_t ctx_size;      /* KV pool in tokens, shared by all slots */
    uint32_t max_ctx;       /* longest single request (0: the model's context length) */
    char *kv_type;          /* f16 | q8_0 */
    char *delta_rule;       /* exact | chunked: qwen3next's DeltaNet prompt path */
    uint32_t threads;       /* engine threads (0: all cores) */
    uint32_t http_threads;
    char *device;           /* cpu | vulkan | auto */
    char *gpu;              /* Vulkan device index or part of its name (NULL: the best) */
    char *n_cpu_moe;        /* auto | layers whose routed experts stay on the CPU */
    uint32_t batch_tokens;  /* tokens per engine step (chunked prefill budget) */
    uint32_t queue_size;    /* waiting requests before 503 */
    uint32_t request_timeout;
    uint32_t drain_timeout;
    uint32_t idle_timeout;  /* HTTP connection idle timeout */
    uint64_t max_body;      /* bytes */
    uint32_t max_tokens_default;
    char *api_key;          /* single key (also MOESERVE_API_KEY) */
    char *api_keys_file;    /* one key per line */
    char *cors_origin;
    char *chat_template;    /* file overriding the model's template */
    char *log_level;        /* error | warn | info | debug */
    char *log_file;
    uint64_t mem_budget;    /* bytes (0: MemAvailable / device heap) */
    bool fit;               /* shrink ctx_size/slots to fit the budget */
    char *alias;            /* model id shown by /v1/models (default: file name) */
};

/* Fills defaults. */
void config_init(struct config *c);
void config_free(struct config *c);

/* Reads "key = value" lines (# comments). Errors name the file, line and key. */
bool config_load_file(struct config *c, const char *path, char *err, size_t errlen);

/* Applies --flag value arguments (a --config FILE among them is read first, so flags win).
 * Returns false with a message naming the flag; sets *help when --help was given. */
bool config_parse_args(struct config *c, int argc, char **argv, bool *help, char *err, size_t errlen);

/* Prints every option with its default and meaning. */
void config_print_help(FILE *out);

#endif
