#version 450
// act_round.comp: y = the F32 values ggml's CPU path feeds a quantized product: x quantized to the
// dot product's activation type and dequantized. KIND (specialization constant): 0 Q8_0 / Q8_1
// (blocks of 32, F16 scale), 1 Q8_K (blocks of 256, F32 scale, sign of the largest magnitude),
// 2 F16, 3 BF16, 4 a plain copy. One workgroup per 256 values of a row; y may alias x.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
layout(constant_id = 0) const uint KIND = 0;

#include "f16.glsl"

layout(set = 0, binding = 0, std430) readonly buffer XBuf { float x[]; };
layout(set = 0, binding = 1, std430) writeonly buffer YBuf { float y[]; };
// The scale of each Q8 block (KIND 0 and 1), one float per block in y's order: the |d| that
// intdot.glsl would otherwise derive from the values (0 for a block of zeros).
layout(set = 0, binding = 2, std430) writeonly buffer ScaleBuf { float ys[]; };

layout(push_constant) uniform Push {
    uint rows, n;
    uint x_off, x_stride;  // floats
    uint y_off, y_stride;
    uint ys_off;           // float offset of row 0's first scale in ys, or 0xFFFFFFFF: none
} p;

shared float s_abs[256];
shared float s_val[256];
shared uint s_idx[256];

// The largest magnitude of each block of B values in the workgroup, the first one on ties (as
// the CPU's scan finds it): its index within the workgroup.
uint block_argmax(uint lid, uint B)
{
    for (uint step = B / 2u; step > 0u; step >>= 1u) {
        if (lid % B < step && s_abs[lid + step] > s_abs[lid]) {
            s_abs[lid] = s_abs[lid + step];
            s_idx[lid] = s_idx[lid + step];
        }
        barrier();
    }
    return s_idx[lid - lid % B];
}

// a / b rounded to nearest, as the CPU divides: Vulkan lets `/` be 2.5 ulp off, which would move
// every value of a Q8_K block (its scale is 1 / iscale). The quotient is corrected once by the
// exact residual a - q b, computed with Dekker's product from correctly rounded * and -.
precise float two_prod_err(float x, float y, float p)
{
    const float split = 4097.0;  // 2^12 + 1
    float cx = split * x, cy = split * y;
    float xh = cx - (cx - x), yh = cy - (cy - y);
    float xl = x - xh, yl = y - yh;
    return ((xh * yh - p) + xh * yl + xl * yh) + xl * yl;
}

precise float div_rn(float a, float b)
{
    float q = a / b;
    float p = q * b;
    float r = (a - p) - two_prod_err(q, b, p);
    return q + r / b;
}

// v rounded as its block's values are; *d the block's scale.
float round_q8(float v, uint lid, out float d)
{
    const uint B = KIND == 0u ? 32u : 256u;
    uint mi = block_argmax(lid, B);
    float amax = abs(s_val[mi]);
    d = 0.0;
    if (amax == 0.0)
        return 0.0;
    if (KIND == 0u) {
        d = unpackHalf2x16(f16_bits(div_rn(amax, 127.0))).x;
        return d * roundEven(v * div_rn(127.0, amax));
    }
    float iscale = div_rn(-127.0, s_val[mi]);
    d = div_rn(1.0, iscale);
    return d * min(127.0, roundEven(iscale * v));
}

void main()
{
    uint lid = gl_LocalInvocationID.x, r = gl_WorkGroupID.y, i = gl_WorkGroupID.x * 256u + lid;
    bool live = i < p.n;
    float v = live ? x[p.x_off + r * p.x_stride + i] : 0.0;
    float out_v = v;
    if (KIND <= 1u) {
        s_abs[lid] = abs(v);
        s_val[lid] = v;
        s_idx[lid] = lid;
        barrier();
        float d;
        out_v = round_q8(v, lid, d);
        const uint B = KIND == 0u ? 32u : 256u;
        // |d|: the products take the values' integers with the sign of x / |d| (intdot.glsl)
        if (live && p.ys_off != 0xFFFFFFFFu && lid % B == 0u)
            ys[p.ys_off + (r * p.y_stride + i) / B] = abs(d);
    } else if (KIND == 2u) {
        out_v = unpackHalf2x16(f16_bits(v)).x;
    } else if (KIND == 3u) {
        uint u = floatBitsToUint(v);
        u += 0x7FFFu + ((u >> 16) & 1u);
        out_v = uintBitsToFloat(u & 0xFFFF0000u);
    }
    if (live)
        y[p.y_off + r * p.y_stride + i] = out_v;
}
