/* q_fp.c: exact conversions between F32 and the 16-bit float formats (IEEE half, bfloat16),
 * rounding to nearest even as ggml does. */
#include <string.h>

#include "kernels/quants.h"

uint16_t q_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
    if (abs >= 0x477ff000u) /* rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) { /* subnormal half (or zero): scale so the rounding is the FPU's */
        float a;
        memcpy(&a, &abs, 4);
        float scaled = a * 0x1p24f; /* exact */
        uint32_t m = (uint32_t)__builtin_nearbyintf(scaled);
        return (uint16_t)(sign | m);
    }
    /* normal: round the 13 dropped mantissa bits to nearest even */
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

float q_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t q_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: force it quiet */
        return (uint16_t)((x >> 16) | 64);
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}
