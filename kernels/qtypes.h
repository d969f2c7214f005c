/* qtypes.h: the one table of ggml tensor types (name, block size, bytes per block).
 * The GGUF reader, inspect, the memory planner and the kernels all share this truth. */
#ifndef MOESERVE_QTYPES_H
#define MOESERVE_QTYPES_H

#include <stdbool.h>
#include <stdint.h>

/* Numbers are the ones stored in GGUF tensor infos (ggml's enum ggml_type). */
enum q_type {
    Q_F32 = 0, Q_F16 = 1, Q_Q4_0 = 2, Q_Q4_1 = 3,
    Q_Q5_0 = 6, Q_Q5_1 = 7, Q_Q8_0 = 8, Q_Q8_1 = 9,
    Q_Q2_K = 10, Q_Q3_K = 11, Q_Q4_K = 12, Q_Q5_K = 13, Q_Q6_K = 14, Q_Q8_K = 15,
    Q_IQ2_XXS = 16, Q_IQ2_XS = 17, Q_IQ3_XXS = 18, Q_IQ1_S = 19, Q_IQ4_NL = 20,
    Q_IQ3_S = 21, Q_IQ2_S = 22, Q_IQ4_XS = 23,
    Q_I8 = 24, Q_I16 = 25, Q_I32 = 26, Q_I64 = 27, Q_F64 = 28,
    Q_IQ1_M = 29, Q_BF16 = 30, Q_TQ1_0 = 34, Q_TQ2_0 = 35,
    Q_MXFP4 = 39, Q_NVFP4 = 40, Q_Q1_0 = 41, Q_Q2_0 = 42,
    Q_TYPE_COUNT = 43
};

struct q_traits {
    const char *name;      /* ggml's name: "q4_K", "iq2_s", ... (NULL: number not a type) */
    uint32_t block_size;   /* values per block */
    uint32_t block_bytes;  /* bytes per block */
};

/* Traits of type t, or NULL if t is not a known type number. */
const struct q_traits *q_type_traits(uint32_t t);

/* Type whose name equals `name` (case-insensitive), or -1. */
int q_type_from_name(const char *name);

/* Bits per weight of type t (0 for an unknown type). */
double q_type_bpw(uint32_t t);

/* Bytes of one row of n values of type t; false if n is not a whole number of blocks
 * or the size overflows. */
bool q_row_bytes(uint32_t t, uint64_t n, uint64_t *bytes);

#endif
