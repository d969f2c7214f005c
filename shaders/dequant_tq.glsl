// dequant_tq.glsl: the ternary types TQ1_0 and TQ2_0 (256-value blocks of -1, 0, 1 times an F16
// scale).

#define QK 256

#if defined(QTYPE_tq2_0)
#define BLOCK_BYTES 66
// {u8 qs[64]; f16 d}: value 128 h + 32 l + m is bits 2l..2l+1 of byte 32 h + m, minus 1.
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint v = 8u * g;
    uint b = bo + 32u * (v >> 7) + (v & 31u);
    uint sh = 2u * ((v >> 5) & 3u);
    uint a0 = ld_u32(b), a1 = ld_u32(b + 4u);
    uvec4 q0 = (uvec4(a0, a0 >> 8, a0 >> 16, a0 >> 24) >> sh) & 3u;
    uvec4 q1 = (uvec4(a1, a1 >> 8, a1 >> 16, a1 >> 24) >> sh) & 3u;
    float d = ld_f16(bo + 64u);
    lo = vec4(ivec4(q0) - 1) * d;
    hi = vec4(ivec4(q1) - 1) * d;
}

#else
#define BLOCK_BYTES 54
// {u8 qs[48]; u8 qh[4]; f16 d}: five base-3 digits per byte, the n-th read as the top of
// (byte 3^n mod 256) * 3 / 256. Values 0..159: digit v/32 of byte v%32; 160..239: digit
// (v-160)/16 of byte 32 + v%16; 240..255: digit (v-240)/4 of qh byte v%4.
uint pow3(uint n)
{
    return n < 3u ? (n == 0u ? 1u : (n == 1u ? 3u : 9u)) : (n == 3u ? 27u : (n == 4u ? 81u : 243u));
}

float trit(uint byte_v, uint n)
{
    uint q = (byte_v * pow3(n)) & 255u;
    return float(int((q * 3u) >> 8) - 1);
}

void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint v = 8u * g;
    float d = ld_f16(bo + 52u);
    if (v < 240u) {
        uint b, n;
        if (v < 160u) {
            n = v >> 5;
            b = bo + (v & 31u);
        } else {
            n = (v - 160u) >> 4;
            b = bo + 32u + (v & 15u);
        }
        uint a0 = ld_u32(b), a1 = ld_u32(b + 4u);
        lo = d * vec4(trit(byte_of(a0, 0u), n), trit(byte_of(a0, 1u), n), trit(byte_of(a0, 2u), n),
                      trit(byte_of(a0, 3u), n));
        hi = d * vec4(trit(byte_of(a1, 0u), n), trit(byte_of(a1, 1u), n), trit(byte_of(a1, 2u), n),
                      trit(byte_of(a1, 3u), n));
    } else {
        uint n = (v - 240u) >> 2, a = ld_u32(bo + 48u);
        lo = d * vec4(trit(byte_of(a, 0u), n), trit(byte_of(a, 1u), n), trit(byte_of(a, 2u), n),
                      trit(byte_of(a, 3u), n));
        hi = d * vec4(trit(byte_of(a, 0u), n + 1u), trit(byte_of(a, 1u), n + 1u), trit(byte_of(a, 2u), n + 1u),
                      trit(byte_of(a, 3u), n + 1u));
    }
}
#endif
