// dequant_float.glsl: F32, F16 and BF16 weights, seen as "blocks" of 8 values so that they share
// the quantized types' group-of-8 interface.

#define QK 8

#if defined(QTYPE_f32)
#define BLOCK_BYTES 32
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint w = bo >> 2;
    lo = uintBitsToFloat(uvec4(w32[w], w32[w + 1u], w32[w + 2u], w32[w + 3u]));
    hi = uintBitsToFloat(uvec4(w32[w + 4u], w32[w + 5u], w32[w + 6u], w32[w + 7u]));
}
#elif defined(QTYPE_f16)
#define BLOCK_BYTES 16
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint w = bo >> 2;
    lo = vec4(unpackHalf2x16(w32[w]), unpackHalf2x16(w32[w + 1u]));
    hi = vec4(unpackHalf2x16(w32[w + 2u]), unpackHalf2x16(w32[w + 3u]));
}
#else
#define BLOCK_BYTES 16
// BF16 is the high half of an F32.
vec2 bf16x2(uint v)
{
    return uintBitsToFloat(uvec2(v << 16, v & 0xFFFF0000u));
}
void dequant8(uint bo, uint g, out vec4 lo, out vec4 hi)
{
    uint w = bo >> 2;
    lo = vec4(bf16x2(w32[w]), bf16x2(w32[w + 1u]));
    hi = vec4(bf16x2(w32[w + 2u]), bf16x2(w32[w + 3u]));
}
#endif
