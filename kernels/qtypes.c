/* qtypes.c: the ggml tensor type table and the size arithmetic built on it.
 * Block layouts are facts of the GGUF format (ggml-common.h); only sizes live here. */
#include "qtypes.h"

#include <stddef.h>
#include <strings.h>

static const struct q_traits q_table[Q_TYPE_COUNT] = {
    [Q_F32]     = {"f32",       1,   4},
    [Q_F16]     = {"f16",       1,   2},
    [Q_Q4_0]    = {"q4_0",     32,  18},
    [Q_Q4_1]    = {"q4_1",     32,  20},
    [Q_Q5_0]    = {"q5_0",     32,  22},
    [Q_Q5_1]    = {"q5_1",     32,  24},
    [Q_Q8_0]    = {"q8_0",     32,  34},
    [Q_Q8_1]    = {"q8_1",     32,  36},
    [Q_Q2_K]    = {"q2_K",    256,  84},
    [Q_Q3_K]    = {"q3_K",    256, 110},
    [Q_Q4_K]    = {"q4_K",    256, 144},
    [Q_Q5_K]    = {"q5_K",    256, 176},
    [Q_Q6_K]    = {"q6_K",    256, 210},
    [Q_Q8_K]    = {"q8_K",    256, 292},
    [Q_IQ2_XXS] = {"iq2_xxs", 256,  66},
    [Q_IQ2_XS]  = {"iq2_xs",  256,  74},
    [Q_IQ3_XXS] = {"iq3_xxs", 256,  98},
    [Q_IQ1_S]   = {"iq1_s",   256,  50},
    [Q_IQ4_NL]  = {"iq4_nl",   32,  18},
    [Q_IQ3_S]   = {"iq3_s",   256, 110},
    [Q_IQ2_S]   = {"iq2_s",   256,  82},
    [Q_IQ4_XS]  = {"iq4_xs",  256, 136},
    [Q_I8]      = {"i8",        1,   1},
    [Q_I16]     = {"i16",       1,   2},
    [Q_I32]     = {"i32",       1,   4},
    [Q_I64]     = {"i64",       1,   8},
    [Q_F64]     = {"f64",       1,   8},
    [Q_IQ1_M]   = {"iq1_m",   256,  56},
    [Q_BF16]    = {"bf16",      1,   2},
    [Q_TQ1_0]   = {"tq1_0",   256,  54},
    [Q_TQ2_0]   = {"tq2_0",   256,  66},
    [Q_MXFP4]   = {"mxfp4",    32,  17},
    [Q_NVFP4]   = {"nvfp4",    64,  36},
    [Q_Q1_0]    = {"q1_0",    128,  18},
    [Q_Q2_0]    = {"q2_0",     64,  18},
};

const struct q_traits *q_type_traits(uint32_t t)
{
    if (t >= Q_TYPE_COUNT || q_table[t].name == NULL)
        return NULL;
    return &q_table[t];
}

int q_type_from_name(const char *name)
{
    for (int t = 0; t < Q_TYPE_COUNT; t++)
        if (q_table[t].name && strcasecmp(q_table[t].name, name) == 0)
            return t;
    return -1;
}

double q_type_bpw(uint32_t t)
{
    const struct q_traits *tr = q_type_traits(t);
    return tr ? 8.0 * tr->block_bytes / tr->block_size : 0.0;
}

bool q_row_bytes(uint32_t t, uint64_t n, uint64_t *bytes)
{
    const struct q_traits *tr = q_type_traits(t);
    if (!tr || n % tr->block_size != 0)
        return false;
    uint64_t blocks = n / tr->block_size;
    if (blocks > UINT64_MAX / tr->block_bytes)
        return false;
    *bytes = blocks * tr->block_bytes;
    return true;
}
