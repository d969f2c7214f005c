/* test_rand.h: the kernel tests' random inputs: a xorshift64 stream each test seeds for itself,
 * values of moderate size, F16 scales, and random blocks of any type with sane scales. */
#ifndef MOESERVE_TEST_RAND_H
#define MOESERVE_TEST_RAND_H

#include <stdint.h>
#include <string.h>

#include "kernels/qtypes.h"

struct test_rng {
    uint64_t s;  /* non-zero */
};

static inline uint64_t test_rng_next(struct test_rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* -4 .. 4 in steps of 1/250. */
static inline float test_rng_normalish(struct test_rng *r)
{
    return (float)((int)(test_rng_next(r) % 2001) - 1000) / 250.0f;
}

/* A finite F16 scale of moderate size and random sign, 2^-8 .. 2^-1: sign, exponent and mantissa
 * drawn in that order. */
static inline uint16_t test_rng_half(struct test_rng *r)
{
    const uint16_t sign = (uint16_t)(test_rng_next(r) & 1), exp = (uint16_t)(7 + test_rng_next(r) % 8);
    const uint16_t man = (uint16_t)(test_rng_next(r) & 0x3ff);
    return (uint16_t)(sign << 15 | exp << 10 | man);
}

static inline void test_rng_put_half(struct test_rng *r, uint8_t *p)
{
    const uint16_t h = test_rng_half(r);
    memcpy(p, &h, 2);
}

/* nb blocks of type t (nb values for F32): random bytes, then sane scales where the types with
 * an integer dot product keep them (F16 d, and dmin for Q4_K/Q5_K; an E8M0 exponent for MXFP4);
 * F32 as test_rng_normalish values. Q8_0 weights may hold -128, as other tools may write. */
static inline void test_rng_blocks(struct test_rng *r, uint32_t t, uint8_t *w, int64_t nb)
{
    if (t == Q_F32) {
        for (int64_t i = 0; i < nb; i++) {
            const float f = test_rng_normalish(r);
            memcpy(w + 4 * i, &f, 4);
        }
        return;
    }
    const uint32_t bytes = q_type_traits(t)->block_bytes;
    for (size_t i = 0; i < (size_t)nb * bytes; i++)
        w[i] = (uint8_t)test_rng_next(r);
    for (int64_t i = 0; i < nb; i++) {
        uint8_t *b = w + (size_t)i * bytes;
        if (t == Q_MXFP4)
            b[0] = (uint8_t)(110 + test_rng_next(r) % 30);
        else if (t == Q_Q6_K)
            test_rng_put_half(r, b + 208);
        else if (t == Q_Q4_K || t == Q_Q5_K) {
            test_rng_put_half(r, b);
            test_rng_put_half(r, b + 2);
        } else
            test_rng_put_half(r, b);
    }
}

#endif
