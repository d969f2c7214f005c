#version 450
// moe_combine.comp: y[t] = sum_j w[t, j] x[t, j] over the k slots of each token, in slot order
// (the weighted sum of the experts' down projections).
layout(local_size_x = 64) in;

layout(set = 0, binding = 0, std430) readonly buffer XBuf { float x[]; };
layout(set = 0, binding = 1, std430) readonly buffer WBuf { float w[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Push {
    uint n_tokens, k, n;
    uint x_off, x_stride;  // floats; row of pair (t, j) at x_off + (t k + j) x_stride
    uint w_off;            // k weights per token
    uint y_off, y_stride;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
    if (i >= p.n || t >= p.n_tokens)
        return;
    float s = 0.0;
    for (uint j = 0u; j < p.k; j++)
        s += w[p.w_off + t * p.k + j] * x[p.x_off + (t * p.k + j) * p.x_stride + i];
    y[p.y_off + t * p.y_stride + i] = s;
}
