// dequant_iq.glsl: the i-quants with 256-value super-blocks: IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S
// (8-value grid entries), IQ3_XXS, IQ3_S (4-value grid entries) and IQ4_XS (non-linear 4-bit
// codebook).

#define QK 256

// Word offsets of the grids in the table buffer (engine/vk_iq_tables.c): 8-byte entries of the
// IQ2 grids take two words, 4-byte entries of the IQ3 grids one.
#define IQ2XXS_AT 0u
#define IQ2XS_AT 512u
#define IQ2S_AT 1536u
#define IQ3XXS_AT 3584u
#define IQ3S_AT 3840u
#define IQ1S_AT 4352u

uvec2 grid64(uint at, uint i)
{
    return uvec2(tab[at + 2u * i], tab[at + 2u * i + 1u]);
}

// 8 grid bytes (two words) times a scale, with sign bits j of `signs`.
void grid8(uvec2 e, float db, uint signs, out vec4 lo, out vec4 hi)
{
    lo = db * vec4(float(byte_of(e.x, 0u)) * sign_of(signs, 0u), float(byte_of(e.x, 1u)) * sign_of(signs, 1u),
                   float(byte_of(e.x, 2u)) * sign_of(signs, 2u), float(byte_of(e.x, 3u)) * sign_of(signs, 3u));
    hi = db * vec4(float(byte_of(e.y, 0u)) * sign_of(signs, 4u), float(byte_of(e.y, 1u)) * sign_of(signs, 5u),
                   float(byte_of(e.y, 2u)) * sign_of(signs, 6u), float(byte_of(e.y, 3u)) * sign_of(signs, 7u));
}

#if defined(QTYPE_iq2_xxs)
#define BLOCK_BYTES 66
// {f16 d; per 32 values: 4 grid index bytes, then a word of 4 x 7 sign bits and a 4-bit scale}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint b = bo + 2u + 8u * ib;
    uint aux = ld_u32(b + 4u);
    float db = ld_f16(bo) * (0.5 + float(aux >> 28)) * 0.25;
    grid8(grid64(IQ2XXS_AT, ld_u8(b + l)), db, iq_signs((aux >> (7u * l)) & 127u), lo, hi);
}

#elif defined(QTYPE_iq2_xs)
#define BLOCK_BYTES 74
// {f16 d; u16 qs[32] (9-bit grid index | 7 sign bits); u8 scales[8] (two 4-bit scales)}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint q = ld_u16(bo + 2u + 2u * g);
    uint sc = (ld_u8(bo + 66u + ib) >> (4u * (l >> 1))) & 15u;
    float db = ld_f16(bo) * (0.5 + float(sc)) * 0.25;
    grid8(grid64(IQ2XS_AT, q & 511u), db, iq_signs(q >> 9), lo, hi);
}

#elif defined(QTYPE_iq2_s)
#define BLOCK_BYTES 82
// {f16 d; u8 qs[32] (grid index low bits); u8 signs[32]; u8 qh[8] (2 high bits each); u8 scales[8]}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint idx = ld_u8(bo + 2u + g) | ((ld_u8(bo + 66u + ib) << (8u - 2u * l)) & 0x300u);
    uint sc = (ld_u8(bo + 74u + ib) >> (4u * (l >> 1))) & 15u;
    float db = ld_f16(bo) * (0.5 + float(sc)) * 0.25;
    grid8(grid64(IQ2S_AT, idx), db, ld_u8(bo + 34u + g), lo, hi);
}

#elif defined(QTYPE_iq3_xxs)
#define BLOCK_BYTES 98
// {f16 d; u8 qs[64] (grid indices); per 32 values a word of 4 x 7 sign bits and a 4-bit scale}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint aux = ld_u32(bo + 66u + 4u * ib);
    float db = ld_f16(bo) * (0.5 + float(aux >> 28)) * 0.5;
    uint i0 = ld_u8(bo + 2u + 2u * g), i1 = ld_u8(bo + 3u + 2u * g);
    grid8(uvec2(tab[IQ3XXS_AT + i0], tab[IQ3XXS_AT + i1]), db, iq_signs((aux >> (7u * l)) & 127u), lo, hi);
}

#elif defined(QTYPE_iq3_s)
#define BLOCK_BYTES 110
// {f16 d; u8 qs[64]; u8 qh[8] (9th index bits); u8 signs[32]; u8 scales[4] (two 4-bit scales)}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint qh = ld_u8(bo + 66u + ib);
    uint i0 = ld_u8(bo + 2u + 2u * g) | ((qh << (8u - 2u * l)) & 256u);
    uint i1 = ld_u8(bo + 3u + 2u * g) | ((qh << (7u - 2u * l)) & 256u);
    uint sc = (ld_u8(bo + 106u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u;
    float db = ld_f16(bo) * float(1u + 2u * sc);
    grid8(uvec2(tab[IQ3S_AT + i0], tab[IQ3S_AT + i1]), db, ld_u8(bo + 74u + g), lo, hi);
}

#elif defined(QTYPE_iq4_xs)
#define BLOCK_BYTES 136
// {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: 32-value sub-blocks with 6-bit scales,
// low nibbles are values 0..15 of a sub-block, high nibbles 16..31.
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, r = g & 3u;
    uint ls = ((ld_u8(bo + 4u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u) |
              (((ld_u16(bo + 2u) >> (2u * ib)) & 3u) << 4);
    float dl = ld_f16(bo) * float(int(ls) - 32);
    uint sh = 4u * (r >> 1);
    uint b = bo + 8u + 16u * ib + 8u * (r & 1u);
    uint a0 = ld_u32(b) >> sh, a1 = ld_u32(b + 4u) >> sh;
    lo = dl * vec4(kvalue_iq4nl(a0 & 15u), kvalue_iq4nl((a0 >> 8) & 15u),
                   kvalue_iq4nl((a0 >> 16) & 15u), kvalue_iq4nl((a0 >> 24) & 15u));
    hi = dl * vec4(kvalue_iq4nl(a1 & 15u), kvalue_iq4nl((a1 >> 8) & 15u),
                   kvalue_iq4nl((a1 >> 16) & 15u), kvalue_iq4nl((a1 >> 24) & 15u));
}
#elif defined(QTYPE_iq1_s) || defined(QTYPE_iq1_m)
// Grid entries of IQ1 are 8 bytes of -1, 0 or 1, shifted by +-1/8 (the delta) and scaled.
void grid8_iq1(uint idx, float dl, float delta, out vec4 lo, out vec4 hi)
{
    uvec2 e = grid64(IQ1S_AT, idx);
    lo = dl * (vec4(sbyte_of(e.x, 0u), sbyte_of(e.x, 1u), sbyte_of(e.x, 2u), sbyte_of(e.x, 3u)) + delta);
    hi = dl * (vec4(sbyte_of(e.y, 0u), sbyte_of(e.y, 1u), sbyte_of(e.y, 2u), sbyte_of(e.y, 3u)) + delta);
}

#if defined(QTYPE_iq1_s)
#define BLOCK_BYTES 50
// {f16 d; u8 qs[32] (grid index, low 8 bits); u16 qh[8] per 32 values: 4 x 3 high index bits,
// a 3-bit scale, the delta's sign}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint qh = ld_u16(bo + 34u + 2u * ib);
    float dl = ld_f16(bo) * float(2u * ((qh >> 12) & 7u) + 1u);
    float delta = (qh & 0x8000u) != 0u ? -0.125 : 0.125;
    grid8_iq1(ld_u8(bo + 2u + g) | (((qh >> (3u * l)) & 7u) << 8), dl, delta, lo, hi);
}
#else
#define BLOCK_BYTES 56
// {u8 qs[32]; u8 qh[16] (per 8 values: 3 high index bits and the delta's sign); u8 scales[8]
// (3-bit scales per 16 values; the top nibbles of the four u16 words form the F16 block scale)}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint ib = g >> 2, l = g & 3u;
    uint s0 = ld_u16(bo + 48u), s1 = ld_u16(bo + 50u), s2 = ld_u16(bo + 52u), s3 = ld_u16(bo + 54u);
    uint dbits = (s0 >> 12) | ((s1 >> 8) & 0xF0u) | ((s2 >> 4) & 0xF00u) | (s3 & 0xF000u);
    float d = unpackHalf2x16(dbits).x;
    uint sc = ld_u16(bo + 48u + 2u * (ib >> 1));
    float dl = d * float(2u * ((sc >> (6u * (ib & 1u) + (l < 2u ? 0u : 3u))) & 7u) + 1u);
    uint qh = ld_u8(bo + 32u + 2u * ib + (l >> 1));
    uint hi_bits = (l & 1u) == 0u ? (qh << 8) : (qh << 4);
    uint sign_bit = (l & 1u) == 0u ? 0x08u : 0x80u;
    float delta = (qh & sign_bit) != 0u ? -0.125 : 0.125;
    grid8_iq1(ld_u8(bo + g) | (hi_bits & 0x700u), dl, delta, lo, hi);
}
#endif
#endif
