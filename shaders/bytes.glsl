// bytes.glsl: raw byte loaders over the weight words w32[] and the IQ codebook words tab[], which
// the including shader declares. Words, not bytes, so no 8/16-bit storage feature is needed.

uint ld_u8(uint b)
{
    return (w32[b >> 2] >> ((b & 3u) * 8u)) & 0xFFu;
}

// b must be even.
uint ld_u16(uint b)
{
    return (w32[b >> 2] >> ((b & 2u) * 8u)) & 0xFFFFu;
}

// Any alignment: two words are combined when the 4 bytes straddle a word boundary.
uint ld_u32(uint b)
{
    uint s = (b & 3u) * 8u;
    uint lo = w32[b >> 2];
    if (s == 0u)
        return lo;
    return (lo >> s) | (w32[(b >> 2) + 1u] << (32u - s));
}

float ld_f16(uint b)
{
    return unpackHalf2x16(ld_u16(b)).x;
}

// Byte i (0..3) of word w, as unsigned / as sign-extended int.
uint byte_of(uint w, uint i)
{
    return (w >> (8u * i)) & 0xFFu;
}

int sbyte_of(uint w, uint i)
{
    return bitfieldExtract(int(w), int(8u * i), 8);
}

// The IQ sign byte for a 7-bit index: bit 7 makes the number of set bits even.
uint iq_signs(uint i)
{
    return i | ((uint(bitCount(i)) & 1u) << 7);
}

float sign_of(uint signs, uint j)
{
    return ((signs >> j) & 1u) != 0u ? -1.0 : 1.0;
}

// Signed byte q (0..15) of a 16-entry int8 table packed little-endian into four words. Selects
// instead of an indexed constant array: lavapipe spills indexed arrays to memory (10x slower).
float table16(uint q, uint w0, uint w1, uint w2, uint w3)
{
    uint w = q < 8u ? (q < 4u ? w0 : w1) : (q < 12u ? w2 : w3);
    return float(sbyte_of(w, q & 3u));
}

// The IQ4_NL codebook {-127, -104, ..., 113} and doubled E2M1 values {0, 1, 2, 3, 4, 6, 8, 12, -0, ...}.
float kvalue_iq4nl(uint q)
{
    return table16(q, 0xbfad9881u, 0xf6eaddcfu, 0x26190d01u, 0x71594535u);
}

float kvalue_fp4(uint q)
{
    return table16(q, 0x03020100u, 0x0c080604u, 0xfdfeff00u, 0xf4f8fafcu);
}
