/* iq_grids.h: the codebooks (grids) and sign table of the grid-based i-quant formats.
 * A grid entry packs 8 (or 4) byte values, value j in byte j (little-endian hosts). */
#ifndef MOESERVE_IQ_GRIDS_H
#define MOESERVE_IQ_GRIDS_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the i-quant grids and block readers assume a little-endian host"
#endif

extern const uint8_t iq_ksigns[128];
extern const uint64_t iq_grid_2xxs[256];
extern const uint64_t iq_grid_2xs[512];
extern const uint64_t iq_grid_2s[1024];
extern const uint32_t iq_grid_3xxs[256];
extern const uint32_t iq_grid_3s[512];
extern const uint64_t iq_grid_1s[2048];

#endif
