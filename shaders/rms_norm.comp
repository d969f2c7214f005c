#version 450
// rms_norm.comp: y = x / sqrt(mean(x^2) + eps) * w over rows of n floats; a token holds `heads`
// consecutive rows (1 for the hidden state, n_head for the per-head q/k norm). One workgroup per
// row. x and y may be the same memory: each invocation writes only what it read.
#extension GL_GOOGLE_include_directive : require
#if !defined(VK_NO_SUBGROUPS)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x = 64) in;

layout(set = 0, binding = 0, std430) readonly buffer XBuf { float x[]; };
layout(set = 0, binding = 1, std430) readonly buffer WBuf { float w[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Push {
    uint n_rows;    // tokens x heads
    uint n;         // floats per row
    uint heads;     // rows per token
    uint x_off, x_stride;  // floats; stride between tokens
    uint y_off, y_stride;
    uint w_off;
    float eps;
} p;

#include "reduce.glsl"

void main()
{
    uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (r >= p.n_rows)
        return;
    uint t = r / p.heads, h = r % p.heads;
    uint xo = p.x_off + t * p.x_stride + h * p.n, yo = p.y_off + t * p.y_stride + h * p.n;
    float ss = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += gl_WorkGroupSize.x)
        ss += x[xo + i] * x[xo + i];
    ss = wg_sum(ss);
    // ggml: scale = 1/sqrt(mean + eps), then (x * scale) * w
    float scale = 1.0 / sqrt(ss / float(p.n) + p.eps);
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += gl_WorkGroupSize.x)
        y[yo + i] = (x[xo + i] * scale) * w[p.w_off + i];
}
