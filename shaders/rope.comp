#version 450
// rope.comp: rotary position embedding, NeoX style: in each head, dims i and i + n_rot/2
// (i < n_rot/2) rotate by pos * base^(-2i/n_rot); dims n_rot..head_dim-1 are copied. One
// workgroup per (token, head). x and y may be the same memory.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

layout(set = 0, binding = 0, std430) readonly buffer XBuf { float x[]; };
layout(set = 0, binding = 1, std430) readonly buffer PosBuf { int pos[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };

layout(push_constant) uniform Push {
    uint n_rows;      // tokens x heads
    uint heads;
    uint head_dim;
    uint n_rot;       // even, <= head_dim
    uint x_off, x_stride;  // floats; stride between tokens
    uint y_off, y_stride;
    uint pos_off;
    float theta_scale;     // base^(-2/n_rot), computed on the host with powf as ggml does
} p;

// theta mod 2pi, in [-pi, pi]. 2pi is split into four parts (Cody-Waite), the first three of 8
// significant bits, so that k * part is exact for |k| < 2^16 (positions up to ~400000) and the
// reduction loses nothing beyond the last part's rounding. GLSL's sin/cos are only specified on
// [-pi, pi].
const float INV_TWO_PI = 0.159154943091895336;
const float TWO_PI_1 = 6.28125;
const float TWO_PI_2 = 0.0019378662109375;
const float TWO_PI_3 = -2.562999725341797e-06;
const float TWO_PI_4 = 3.968374517882012e-09;

float reduce_angle(float th)
{
    precise float k = round(th * INV_TWO_PI);
    precise float r = th - k * TWO_PI_1;
    r = r - k * TWO_PI_2;
    r = r - k * TWO_PI_3;
    r = r - k * TWO_PI_4;
    return r;
}

void main()
{
    uint r = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (r >= p.n_rows)
        return;
    uint t = r / p.heads, h = r % p.heads;
    uint xo = p.x_off + t * p.x_stride + h * p.head_dim, yo = p.y_off + t * p.y_stride + h * p.head_dim;
    uint half_rot = p.n_rot / 2u;
    float ps = float(pos[p.pos_off + t]);
    for (uint i = gl_LocalInvocationID.x; i < p.head_dim / 2u; i += gl_WorkGroupSize.x) {
        if (i < half_rot) {
            // ggml's cache: theta = pos, multiplied by theta_scale once per pair, in F32
            precise float th = ps;
            for (uint k = 0u; k < i; k++)
                th *= p.theta_scale;
            float a = reduce_angle(th);
            float c = cos(a), s = sin(a);
            float x0 = x[xo + i], x1 = x[xo + i + half_rot];
            y[yo + i] = x0 * c - x1 * s;
            y[yo + i + half_rot] = x0 * s + x1 * c;
        } else {
            uint d = p.n_rot + 2u * (i - half_rot);
            y[yo + d] = x[xo + d];
            y[yo + d + 1u] = x[xo + d + 1u];
        }
    }
}
