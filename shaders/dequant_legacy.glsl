// dequant_legacy.glsl: 32-value blocks with one scale: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL
// (non-linear 4-bit codebook) and MXFP4 (E2M1 values with an E8M0 power-of-two scale); and NVFP4
// (64-value blocks of E2M1 values with an unsigned E4M3 scale per 16).

#if defined(QTYPE_nvfp4)
#define QK 64
#else
#define QK 32
#endif

// Nibble layout of the 4-bit types: byte j of a 32-value block holds value j (low nibble) and
// value j+16 (high). Group g covers bytes 8(g&1)..+7 from qs, low nibbles for g<2, high for g>=2.
uvec4 nibbles(uint w, uint sh)
{
    return (uvec4(w, w >> 8, w >> 16, w >> 24) >> sh) & 15u;
}

#if defined(QTYPE_q4_1) || defined(QTYPE_q5_0) || defined(QTYPE_q5_1)
#if defined(QTYPE_q4_1)
#define BLOCK_BYTES 20
#define QS_AT 4u
#elif defined(QTYPE_q5_0)
#define BLOCK_BYTES 22
#define QS_AT 6u
#define QH_AT 2u
#else
#define BLOCK_BYTES 24
#define QS_AT 8u
#define QH_AT 4u
#endif
// {f16 d; [f16 m;] [u8 qh[4]: bit i is the fifth bit of value i;] u8 qs[16]}: value d q (- 16 for
// Q5_0) or d q + m
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint b = bo + QS_AT + 8u * (g & 1u);
    uint sh = 4u * (g >> 1);
    uvec4 q0 = nibbles(ld_u32(b), sh), q1 = nibbles(ld_u32(b + 4u), sh);
#if defined(QH_AT)
    uint h = ld_u32(bo + QH_AT) >> (8u * g);  // the fifth bits of values 8g..8g+7
    q0 |= ((uvec4(h, h >> 1, h >> 2, h >> 3) & 1u) << 4);
    q1 |= ((uvec4(h >> 4, h >> 5, h >> 6, h >> 7) & 1u) << 4);
#endif
    float d = ld_f16(bo);
#if defined(QTYPE_q5_0)
    lo = vec4(ivec4(q0) - 16) * d;
    hi = vec4(ivec4(q1) - 16) * d;
#else
    float m = ld_f16(bo + 2u);
    lo = vec4(q0) * d + m;
    hi = vec4(q1) * d + m;
#endif
}

#elif defined(QTYPE_nvfp4)
#define BLOCK_BYTES 36
// Unsigned E4M3 (bit 7 ignored; 0 and 0x7F read as zero), halved: ggml's scale of the doubled
// E2M1 values.
float ue4m3_half(uint x)
{
    if (x == 0u || x == 0x7Fu)
        return 0.0;
    uint e = (x >> 3) & 15u, m = x & 7u;
    return e == 0u ? float(m) * (1.0 / 1024.0) : ldexp(float(8u + m), int(e) - 11);
}
// {u8 d[4] (a scale per 16 values); u8 qs[32]}: 16-value sub-block s uses bytes 8s..8s+7, value j
// in the low nibble of byte j and value j+8 in its high nibble.
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint s = g >> 1, sh = 4u * (g & 1u);
    float d = ue4m3_half(ld_u8(bo + s));
    uint b = bo + 4u + 8u * s;
    uvec4 q0 = nibbles(ld_u32(b), sh), q1 = nibbles(ld_u32(b + 4u), sh);
    lo = d * vec4(kvalue_fp4(q0.x), kvalue_fp4(q0.y), kvalue_fp4(q0.z), kvalue_fp4(q0.w));
    hi = d * vec4(kvalue_fp4(q1.x), kvalue_fp4(q1.y), kvalue_fp4(q1.z), kvalue_fp4(q1.w));
}

#elif defined(QTYPE_q8_0)
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
