// dequant_k.glsl: the K-quants (256-value super-blocks with 16 or 32-value sub-blocks):
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. A group of 8 never straddles a sub-block.

#define QK 256

// Eight bytes starting at byte b, as two words.
uvec2 ld_8bytes(uint b)
{
    return uvec2(ld_u32(b), ld_u32(b + 4u));
}

// Field (bits sh..sh+width-1) of each of the 8 bytes.
void unpack8(uvec2 a, uint sh, uint mask, out uvec4 lo, out uvec4 hi)
{
    lo = (uvec4(a.x, a.x >> 8, a.x >> 16, a.x >> 24) >> sh) & mask;
    hi = (uvec4(a.y, a.y >> 8, a.y >> 16, a.y >> 24) >> sh) & mask;
}

#if defined(QTYPE_q4_K) || defined(QTYPE_q5_K)
// 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at byte sb.
void scale_min_k4(uint sb, uint j, out float sc, out float m)
{
    if (j < 4u) {
        sc = float(ld_u8(sb + j) & 63u);
        m = float(ld_u8(sb + j + 4u) & 63u);
    } else {
        uint b = ld_u8(sb + j + 4u);
        sc = float((b & 15u) | ((ld_u8(sb + j - 4u) >> 6) << 4));
        m = float((b >> 4) | ((ld_u8(sb + j) >> 6) << 4));
    }
}
#endif

#if defined(QTYPE_q2_K)
#define BLOCK_BYTES 84
// {u8 scales[16] (4-bit scale | 4-bit min); u8 qs[64]; f16 d; f16 dmin}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint n = g >> 4, r = g & 15u;
    uint j = r >> 2, s = (r >> 1) & 1u, l0 = (r & 1u) * 8u;
    uint sc = ld_u8(bo + 8u * n + 2u * j + s);
    float dl = ld_f16(bo + 80u) * float(sc & 15u);
    float ml = ld_f16(bo + 82u) * float(sc >> 4);
    uvec4 qlo, qhi;
    unpack8(ld_8bytes(bo + 16u + 32u * n + 16u * s + l0), 2u * j, 3u, qlo, qhi);
    lo = dl * vec4(qlo) - ml;
    hi = dl * vec4(qhi) - ml;
}

#elif defined(QTYPE_q3_K)
#define BLOCK_BYTES 110
// {u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 x 6 bits); f16 d}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint n = g >> 4, r = g & 15u;
    uint j = r >> 2, s = (r >> 1) & 1u, l0 = (r & 1u) * 8u;
    uint k = 8u * n + 2u * j + s;                        // sub-block 0..15
    uint sc_lo = k < 8u ? (ld_u8(bo + 96u + k) & 15u) : (ld_u8(bo + 96u + k - 8u) >> 4);
    uint sc_hi = (ld_u8(bo + 104u + (k & 3u)) >> (2u * (k >> 2))) & 3u;
    float dl = ld_f16(bo + 108u) * float(int(sc_lo | (sc_hi << 4)) - 32);
    uvec4 qlo, qhi, hlo, hhi;
    unpack8(ld_8bytes(bo + 32u + 32u * n + 16u * s + l0), 2u * j, 3u, qlo, qhi);
    unpack8(ld_8bytes(bo + 16u * s + l0), 4u * n + j, 1u, hlo, hhi);
    // A clear high bit subtracts 4.
    lo = dl * (vec4(qlo) - 4.0 * vec4(1u - hlo));
    hi = dl * (vec4(qhi) - 4.0 * vec4(1u - hhi));
}

#elif defined(QTYPE_q4_K)
#define BLOCK_BYTES 144
// {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: 64-value chunks, low nibbles then high nibbles.
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint c = g >> 3, h = (g >> 2) & 1u, l0 = (g & 3u) * 8u;
    float sc, m;
    scale_min_k4(bo + 4u, 2u * c + h, sc, m);
    float d1 = ld_f16(bo) * sc, m1 = ld_f16(bo + 2u) * m;
    uvec4 qlo, qhi;
    unpack8(ld_8bytes(bo + 16u + 32u * c + l0), 4u * h, 15u, qlo, qhi);
    lo = d1 * vec4(qlo) - m1;
    hi = d1 * vec4(qhi) - m1;
}

#elif defined(QTYPE_q5_K)
#define BLOCK_BYTES 176
// {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint c = g >> 3, h = (g >> 2) & 1u, l0 = (g & 3u) * 8u;
    float sc, m;
    scale_min_k4(bo + 4u, 2u * c + h, sc, m);
    float d1 = ld_f16(bo) * sc, m1 = ld_f16(bo + 2u) * m;
    uvec4 qlo, qhi, hlo, hhi;
    unpack8(ld_8bytes(bo + 48u + 32u * c + l0), 4u * h, 15u, qlo, qhi);
    unpack8(ld_8bytes(bo + 16u + l0), 2u * c + h, 1u, hlo, hhi);
    lo = d1 * vec4(qlo + 16u * hlo) - m1;
    hi = d1 * vec4(qhi + 16u * hhi) - m1;
}

#elif defined(QTYPE_q6_K)
#define BLOCK_BYTES 210
// {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: two 128-value halves of four 32-value quarters.
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint n = g >> 4, q = (g >> 2) & 3u, l0 = (g & 3u) * 8u;
    int sc = bitfieldExtract(int(ld_u8(bo + 192u + 8u * n + (l0 >> 4) + 2u * q)), 0, 8);
    float dl = ld_f16(bo + 208u) * float(sc);
    uvec4 qlo, qhi, hlo, hhi;
    unpack8(ld_8bytes(bo + 64u * n + 32u * (q & 1u) + l0), 4u * (q >> 1), 15u, qlo, qhi);
    unpack8(ld_8bytes(bo + 128u + 32u * n + l0), 2u * q, 3u, hlo, hhi);
    lo = dl * (vec4(qlo | (hlo << 4)) - 32.0);
    hi = dl * (vec4(qhi | (hhi << 4)) - 32.0);
}
#endif
