/* qkernels.c: CPU feature detection and the per-type kernel table.
 * The table is filled once (thread-safe) by the family files, capped by MOESERVE_ISA. */
#include "kernels/quants.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static struct q_cpu detected_cpu;
static struct q_kernels kernel_table[Q_TYPE_COUNT];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void detect_cpu(struct q_cpu *c)
{
    memset(c, 0, sizeof *c);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c->avx2 = __builtin_cpu_supports("avx2");
    c->fma = __builtin_cpu_supports("fma");
    c->f16c = c->avx2; /* every AVX2 CPU has F16C; gcc 12 cannot query it by name */
    c->avx512f = __builtin_cpu_supports("avx512f");
    c->avx512bw = __builtin_cpu_supports("avx512bw");
    c->avx512vl = __builtin_cpu_supports("avx512vl");
    c->avx512vnni = __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
    c->neon = true;
#endif
}

/* MOESERVE_ISA lowers what the kernels may use, so tests can compare every level. */
static void apply_isa_cap(struct q_cpu *c)
{
    const char *cap = getenv("MOESERVE_ISA");
    if (!cap || !*cap)
        return;
    if (strcmp(cap, "scalar") == 0) {
        memset(c, 0, sizeof *c);
    } else if (strcmp(cap, "avx2") == 0) {
        c->avx512f = c->avx512bw = c->avx512vl = c->avx512vnni = false;
    }
}

static void fill_table(void)
{
    detect_cpu(&detected_cpu);
    struct q_cpu usable = detected_cpu;
    apply_isa_cap(&usable);
    q_register_basic(kernel_table, &usable);
    q_register_iq(kernel_table, &usable);
    /* MOESERVE_DOT_TOKENS=off: one dot per (row, token) everywhere, to measure what the
     * several-token kernels gain (their results are identical) */
    const char *tokens = getenv("MOESERVE_DOT_TOKENS");
    const bool no_tokens = tokens && strcmp(tokens, "off") == 0;
    for (int t = 0; t < Q_TYPE_COUNT; t++) {
        if (kernel_table[t].dot && !kernel_table[t].dot_isa)
            kernel_table[t].dot_isa = "scalar";
        if (no_tokens) {
            kernel_table[t].dot_tokens = NULL;
            for (int k = 0; k < Q_ROW_KINDS; k++)
                kernel_table[t].batched.tokens_by_kind[k] = NULL;
        }
    }
}

const struct q_cpu *q_cpu_features(void)
{
    pthread_once(&table_once, fill_table);
    return &detected_cpu;
}

const struct q_kernels *q_kernels_get(uint32_t t)
{
    pthread_once(&table_once, fill_table);
    if (!q_type_traits(t))
        return NULL;
    return &kernel_table[t];
}
