/* validate.h: load-time validation of a parsed GGUF model against the architecture table:
 * hyperparameters, every tensor's presence, shape and type, and the tokenizer; all problems at once. */
#ifndef MOESERVE_VALIDATE_H
#define MOESERVE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/arch.h"
#include "engine/gguf.h"

/* What a compute device can run. A backend (CPU now, Vulkan later) passes its own. */
struct val_caps {
    const char *name;            /* "cpu": used in messages */
    /* True when the device has kernels (dequantize and dot product) for weights of `type`. */
    bool (*type_ok)(const struct val_caps *caps, uint32_t type);
    void *ctx;                   /* the backend's own data */
};

/* The CPU kernels table: a type is runnable when q_kernels_get gives dequant and dot. */
const struct val_caps *val_cpu_caps(void);

/* The problems found, one message per problem, each naming the key or tensor, what was
 * expected and what was found. */
struct val_report {
    char **msgs;
    size_t n, cap;
    size_t dropped;              /* problems past VAL_MAX_MSGS, counted but not kept */
    bool oom;                    /* some messages were lost to allocation failure */
};

/* A hostile file (block_count 65536, no tensors) must not make a million messages. */
#define VAL_MAX_MSGS 256

/* Checks f. caps NULL skips the kernel-availability check. hp (may be NULL) receives the
 * hyperparameters read. Returns the number of problems (0: the engine can run the file); past
 * VAL_MAX_MSGS they are counted and summarised in one last message. */
size_t val_check(const struct gguf_file *f, const struct val_caps *caps, struct arch_hparams *hp,
                 struct val_report *r);

void val_report_free(struct val_report *r);

#endif
