/* vk_iq_tables.c: packs the IQ1/IQ2/IQ3 grid codebooks (kernels/iq_grids.c, the same data the CPU
 * kernels use) into the one word array the i-quant shaders bind. */
#include "engine/vk_internal.h"

#include <string.h>

#include "kernels/iq_grids.h"

/* Layout (word offsets, 64-bit entries as low word then high word):
 *   iq2xxs_grid  at    0,  256 entries
 *   iq2xs_grid   at  512,  512 entries
 *   iq2s_grid    at 1536, 1024 entries
 *   iq3xxs_grid  at 3584,  256 entries
 *   iq3s_grid    at 3840,  512 entries
 *   iq1s_grid    at 4352, 2048 entries (bytes -1, 0, 1)
 * shaders/dequant_iq.glsl uses the same offsets. */
void vk_iq_tables_build(uint32_t out[VK_IQ_TABLE_WORDS])
{
    _Static_assert(sizeof iq_grid_2xxs + sizeof iq_grid_2xs + sizeof iq_grid_2s + sizeof iq_grid_3xxs +
                       sizeof iq_grid_3s + sizeof iq_grid_1s == VK_IQ_TABLE_WORDS * 4,
                   "the packed tables hold exactly the grids");
    uint8_t *p = (uint8_t *)out;
    /* little-endian hosts: a 64-bit entry is its low word then its high word, as the shaders read */
    memcpy(p, iq_grid_2xxs, sizeof iq_grid_2xxs);
    memcpy(p + 512 * 4, iq_grid_2xs, sizeof iq_grid_2xs);
    memcpy(p + 1536 * 4, iq_grid_2s, sizeof iq_grid_2s);
    memcpy(p + 3584 * 4, iq_grid_3xxs, sizeof iq_grid_3xxs);
    memcpy(p + 3840 * 4, iq_grid_3s, sizeof iq_grid_3s);
    memcpy(p + 4352 * 4, iq_grid_1s, sizeof iq_grid_1s);
}
