#version 450
// elementwise.comp: y = f(a, b) over rows of n floats; OP (specialization constant) picks f:
// 0 add a + b, 1 SwiGLU silu(a) * b, 2 sigmoid gate a * sigmoid(b), 3 scale a * s. b may be one
// value per row (b_per_row), as the shared expert's gate is. y may alias a or b.
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint OP = 0;

layout(set = 0, binding = 0, std430) readonly buffer ABuf { float a[]; };
layout(set = 0, binding = 1, std430) readonly buffer BBuf { float b[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Push {
    uint rows, n;
    uint a_off, a_stride;  // floats
    uint b_off, b_stride;
    uint y_off, y_stride;
    uint b_per_row;        // 1: b holds one value per row (at b_off + row b_stride)
    float s;
} p;

void main()
{
    uint i = gl_GlobalInvocationID.x, r = gl_WorkGroupID.y;
    if (i >= p.n || r >= p.rows)
        return;
    float av = a[p.a_off + r * p.a_stride + i];
    float v;
    if (OP == 3u) {
        v = av * p.s;
    } else {
        float bv = b[p.b_off + r * p.b_stride + (p.b_per_row != 0u ? 0u : i)];
        if (OP == 0u)
            v = av + bv;
        else if (OP == 1u)
            v = av / (1.0 + exp(-av)) * bv;
        else
            v = av / (1.0 + exp(-bv));
    }
    y[p.y_off + r * p.y_stride + i] = v;
}
