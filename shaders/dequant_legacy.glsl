// dequant_legacy.glsl: 32-value blocks with one scale: Q8_0, Q4_0, IQ4_NL (non-linear 4-bit
// codebook) and MXFP4 (E2M1 values with an E8M0 power-of-two scale).

#define QK 32

#if defined(QTYPE_q8_0)
#define BLOCK_BYTES 34
// {f16 d; int8 qs[32]}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    float d = ld_f16(bo);
    uint b = bo + 2u + 8u * g;
    uint a0 = ld_u32(b), a1 = ld_u32(b + 4u);
    lo = d * vec4(sbyte_of(a0, 0u), sbyte_of(a0, 1u), sbyte_of(a0, 2u), sbyte_of(a0, 3u));
    hi = d * vec4(sbyte_of(a1, 0u), sbyte_of(a1, 1u), sbyte_of(a1, 2u), sbyte_of(a1, 3u));
}
#else

// Nibble layout shared by the three: byte j holds value j (low nibble) and value j+16 (high).
// Group g covers bytes 8(g&1)..+7, low nibbles for g<2, high for g>=2.
#if defined(QTYPE_mxfp4)
#define BLOCK_BYTES 17
#define QS_AT 1u
#else
#define BLOCK_BYTES 18
#define QS_AT 2u
#endif

#if defined(QTYPE_q4_0)
float nib_value(uint q) { return float(int(q) - 8); }
#elif defined(QTYPE_iq4_nl)
float nib_value(uint q) { return kvalue_iq4nl(q); }
#else
float nib_value(uint q) { return kvalue_fp4(q); }
#endif

float block_scale(uint bo)
{
#if defined(QTYPE_mxfp4)
    // Half of 2^(e-127); e < 2 gives a subnormal.
    uint e = ld_u8(bo);
    return uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));
#else
    return ld_f16(bo);
#endif
}

void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    float d = block_scale(bo);
    uint b = bo + QS_AT + 8u * (g & 1u);
    uint sh = 4u * (g >> 1);
    uint a0 = ld_u32(b) >> sh, a1 = ld_u32(b + 4u) >> sh;
    lo = d * vec4(nib_value(a0 & 15u), nib_value((a0 >> 8) & 15u), nib_value((a0 >> 16) & 15u),
                  nib_value((a0 >> 24) & 15u));
    hi = d * vec4(nib_value(a1 & 15u), nib_value((a1 >> 8) & 15u), nib_value((a1 >> 16) & 15u),
                  nib_value((a1 >> 24) & 15u));
}
#endif
