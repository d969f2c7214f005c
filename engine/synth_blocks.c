/* synth_blocks.c: random but valid quantized blocks of every weight type, for synthetic models.
 * Quant bits are random; every scale field is set to a finite, moderate value of its format. */
#include <string.h>

#include "engine/synth.h"
#include "kernels/qtypes.h"

enum scale_kind { SC_NONE, SC_F16, SC_E8M0, SC_UE4M3X4, SC_IQ1M };

/* Where each type keeps its scales (byte offsets inside a block, from ggml-common.h). */
struct scale_layout {
    enum scale_kind kind;
    uint16_t off[2];
    uint8_t count;
};

static const struct scale_layout layouts[Q_TYPE_COUNT] = {
    [Q_Q4_0] = {SC_F16, {0}, 1},      [Q_Q4_1] = {SC_F16, {0, 2}, 2},
    [Q_Q5_0] = {SC_F16, {0}, 1},      [Q_Q5_1] = {SC_F16, {0, 2}, 2},
    [Q_Q8_0] = {SC_F16, {0}, 1},      [Q_Q2_K] = {SC_F16, {80, 82}, 2},
    [Q_Q3_K] = {SC_F16, {108}, 1},    [Q_Q4_K] = {SC_F16, {0, 2}, 2},
    [Q_Q5_K] = {SC_F16, {0, 2}, 2},   [Q_Q6_K] = {SC_F16, {208}, 1},
    [Q_IQ2_XXS] = {SC_F16, {0}, 1},   [Q_IQ2_XS] = {SC_F16, {0}, 1},
    [Q_IQ3_XXS] = {SC_F16, {0}, 1},   [Q_IQ1_S] = {SC_F16, {0}, 1},
    [Q_IQ4_NL] = {SC_F16, {0}, 1},    [Q_IQ3_S] = {SC_F16, {0}, 1},
    [Q_IQ2_S] = {SC_F16, {0}, 1},     [Q_IQ4_XS] = {SC_F16, {0}, 1},
    [Q_IQ1_M] = {SC_IQ1M, {48}, 1},   [Q_TQ1_0] = {SC_F16, {52}, 1},
    [Q_TQ2_0] = {SC_F16, {64}, 1},    [Q_MXFP4] = {SC_E8M0, {0}, 1},
    [Q_NVFP4] = {SC_UE4M3X4, {0}, 1}, [Q_Q1_0] = {SC_F16, {0}, 1},
    [Q_Q2_0] = {SC_F16, {0}, 1},
};

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A positive f16 between about 2^-10 and 2^-4, built from its bits (no conversion needed). */
static uint16_t small_f16(uint64_t *rng)
{
    uint64_t r = splitmix64(rng);
    uint16_t exponent = (uint16_t)(5 + r % 7);
    return (uint16_t)((exponent << 10) | ((r >> 8) & 0x3ff));
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* IQ1_M spreads its f16 scale over the top nibbles of four u16 sub-block scales. */
static void set_iq1m_scale(uint8_t *scales, uint16_t f16)
{
    for (int i = 0; i < 4; i++) {
        uint16_t v = (uint16_t)(scales[2 * i] | (scales[2 * i + 1] << 8));
        v = (uint16_t)((v & 0x0fff) | (((f16 >> (4 * i)) & 0xf) << 12));
        put_u16(scales + 2 * i, v);
    }
}

static void fix_scales(uint32_t type, uint8_t *block, uint64_t *rng)
{
    const struct scale_layout *l = &layouts[type];
    switch (l->kind) {
    case SC_F16:
        for (int i = 0; i < l->count; i++)
            put_u16(block + l->off[i], small_f16(rng));
        break;
    case SC_E8M0:
        block[0] = (uint8_t)(119 + splitmix64(rng) % 6);
        break;
    case SC_UE4M3X4:
        for (int i = 0; i < 4; i++)
            block[i] = (uint8_t)(((2 + splitmix64(rng) % 5) << 3) | (splitmix64(rng) & 7));
        break;
    case SC_IQ1M:
        set_iq1m_scale(block + l->off[0], small_f16(rng));
        break;
    case SC_NONE:
        break;
    }
}

/* Plain float types: random values of moderate size, written as the type's bits. */
static void random_floats(uint32_t type, uint8_t *out, uint64_t n, uint64_t *rng)
{
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = splitmix64(rng);
        uint32_t sign = (uint32_t)(r >> 63);
        if (type == Q_F32) {
            uint32_t bits = (sign << 31) | ((uint32_t)(117 + r % 8) << 23) | (uint32_t)((r >> 8) & 0x7fffff);
            memcpy(out + 4 * i, &bits, 4);
        } else if (type == Q_F16) {
            put_u16(out + 2 * i, (uint16_t)((sign << 15) | small_f16(rng)));
        } else { /* BF16 */
            uint16_t bits = (uint16_t)((sign << 15) | ((117 + r % 8) << 7) | ((r >> 8) & 0x7f));
            put_u16(out + 2 * i, bits);
        }
    }
}

void synth_random_blocks(uint32_t type, void *out, uint64_t n_blocks, uint64_t *rng)
{
    const struct q_traits *tr = q_type_traits(type);
    uint8_t *p = out;
    if (type == Q_F32 || type == Q_F16 || type == Q_BF16) {
        random_floats(type, p, n_blocks, rng);
        return;
    }
    uint64_t bytes = n_blocks * tr->block_bytes;
    for (uint64_t i = 0; i < bytes; i += 8) {
        uint64_t r = splitmix64(rng);
        memcpy(p + i, &r, bytes - i < 8 ? bytes - i : 8);
    }
    for (uint64_t b = 0; b < n_blocks; b++)
        fix_scales(type, p + b * tr->block_bytes, rng);
}
