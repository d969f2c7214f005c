#version 450
// attention_merge.comp: combines the per-split partial results of attention.comp: for each
// (token, head), o = sum_z s_z exp(m_z - M) / sum_z l_z exp(m_z - M), M the largest m_z. A split
// that saw no positions has l = 0 and m = -3e38, and weighs nothing.
layout(local_size_x = 64) in;

layout(set = 0, binding = 0, std430) readonly buffer PartBuf { float part[]; };
layout(set = 0, binding = 1, std430) writeonly buffer OBuf { float o[]; };

layout(push_constant) uniform Push {
    uint n_tokens, n_head, head_dim, n_split;
    uint part_off;         // floats
    uint o_off, o_stride;  // floats; head h of token t at o_off + t o_stride + h head_dim
} p;

void main()
{
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    if (t >= p.n_tokens)
        return;
    uint w = p.head_dim + 2u;
    uint base = p.part_off + (t * p.n_head + h) * p.n_split * w;
    float m = -3.0e38;
    for (uint z = 0u; z < p.n_split; z++)
        m = max(m, part[base + z * w + p.head_dim]);
    float l = 0.0;
    for (uint z = 0u; z < p.n_split; z++)
        l += part[base + z * w + p.head_dim + 1u] * exp(part[base + z * w + p.head_dim] - m);
    for (uint d = gl_LocalInvocationID.x; d < p.head_dim; d += gl_WorkGroupSize.x) {
        float s = 0.0;
        for (uint z = 0u; z < p.n_split; z++)
            s += part[base + z * w + d] * exp(part[base + z * w + p.head_dim] - m);
        o[p.o_off + t * p.o_stride + h * p.head_dim + d] = s / l;
    }
}
