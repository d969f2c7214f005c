/* test_q8.h: the scale of one block of the CPU's activation quantizer (Q8_0, Q8_1 or Q8_K), as
 * the Vulkan products take it from act_round (|d|), for the tests that compare them bit for bit. */
#ifndef MOESERVE_TEST_Q8_H
#define MOESERVE_TEST_Q8_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/qtypes.h"
#include "kernels/quants.h"

/* |d| of the block at blk: Q8_K stores an F32 d that may be negative (the sign goes with the
 * values), Q8_0 and Q8_1 an F16 one. */
static inline float q8_block_scale(uint32_t act, const uint8_t *blk)
{
    float d;
    if (act == Q_Q8_K) {
        memcpy(&d, blk, 4);
    } else {
        uint16_t h;
        memcpy(&h, blk, 2);
        d = q_f16_to_f32(h);
    }
    return fabsf(d);
}

#endif
