// common.glsl: buffer bindings, push constants and raw byte loaders shared by the matvec and
// matmul shaders. Weights are read as 32-bit words so no 8/16-bit storage feature is needed.

// Weight matrix: GGUF blocks exactly as stored in the file, rows of p.row_bytes bytes.
layout(set = 0, binding = 0, std430) readonly buffer WeightBuf { uint w32[]; };
// Activations: p.batch rows of p.ncols floats, row stride p.x_stride floats.
layout(set = 0, binding = 1, std430) readonly buffer XBuf { vec4 x4[]; };
// Output: p.batch rows of p.nrows floats, row stride p.y_stride floats.
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };
// Codebooks of the i-quants (engine/vk_iq_tables.c); bound for every type, read by IQ ones.
layout(set = 0, binding = 3, std430) readonly buffer TableBuf { uint tab[]; };

layout(push_constant) uniform Push {
    uint nrows;      // rows of W = outputs per batch column
    uint ncols;      // values per row of W (a multiple of 8 and of the block size)
    uint batch;      // columns of x / y
    uint row_bytes;  // bytes per row of W
    uint w_off;      // byte offset of row 0 inside the bound weight range
    uint x_off;      // float offset of x (a multiple of 4)
    uint y_off;      // float offset of y
    uint x_stride;   // floats between batch rows of x (a multiple of 4)
    uint y_stride;   // floats between batch rows of y
} p;

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
