// f16.glsl: F32 -> F16 bits with round-to-nearest-even, as ggml converts, whatever rounding the
// device's own conversion uses (GLSL leaves packHalf2x16's rounding to the implementation).

uint f16_bits(float f)
{
    uint x = floatBitsToUint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7FFFFFFFu;
    if (ax >= 0x7F800000u)
        return sign | (ax > 0x7F800000u ? 0x7E00u : 0x7C00u);  // NaN stays NaN, inf stays inf
    if (ax >= 0x477FF000u)
        return sign | 0x7C00u;  // 65520 and above round to infinity
    if (ax < 0x38800000u)       // below 2^-14: an F16 subnormal, in units of 2^-24 (exact product)
        return sign | uint(roundEven(uintBitsToFloat(ax) * 16777216.0));
    uint m = ax - 0x38000000u;  // rebias the exponent from 127 to 15
    m += 0xFFFu + ((m >> 13) & 1u);
    return sign | (m >> 13);
}

uint pack_f16x2(float a, float b)
{
    return f16_bits(a) | (f16_bits(b) << 16);
}
