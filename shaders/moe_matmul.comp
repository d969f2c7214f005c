#version 450
// moe_matmul.comp: the expert products of moe_matvec.comp for many tokens at once: the pairs routed
// to one expert, grouped by moe_group.comp, multiply that expert's matrix as one tiled product.
// Workgroup (x, y) computes rows BM x of tile y (up to BN pairs of one expert), staging BK-wide
// slices of the dequantized weights and of the pairs' activations in shared memory; each thread
// owns a 4 x 4 block (as matmul.comp). Tiles of experts outside [e_begin, e_begin + e_count) are
// left to other dispatches.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

#define BM 64
#define BN 32
#define BK 32
#define WG 128

layout(local_size_x = WG) in;

layout(set = 0, binding = 0, std430) readonly buffer WeightBuf { uint w32[]; };
layout(set = 0, binding = 1, std430) readonly buffer XBuf { vec4 x4[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };
layout(set = 0, binding = 3, std430) readonly buffer TableBuf { uint tab[]; };
layout(set = 0, binding = 4, std430) readonly buffer RouteBuf { uint route[]; };

// Activation scales written by act_round.comp (intdot.glsl), when p.xs_off is not NO_SCALES.
layout(set = 0, binding = 5, std430) readonly buffer ScaleBuf { float act_scales[]; };

layout(push_constant) uniform Push {
    uint nrows, ncols, row_bytes;
    uint w_off;          // byte offset of expert e_begin in binding 0
    uint expert_bytes;
    uint e_begin, e_count;
    uint k;
    uint route_off, max_tiles;
    uint x_off, x_stride, x_slot_stride;  // floats (multiples of 4)
    uint y_off, y_stride;
    uint xs_off;  // float offset in act_scales of the scale of x's first block, or NO_SCALES
} p;

#include "bytes.glsl"
#include "dequant.glsl"
#include "intdot.glsl"

shared float ws[BM][BK + 1];
shared float xs[BN][BK + 1];
shared uint pair_of[BN];

void main()
{
    uint tile = gl_WorkGroupID.y;
    if (tile >= route[p.route_off])
        return;
    uint tb = p.route_off + 1u + 3u * tile;
    uint e = route[tb], first = route[tb + 1u], end = route[tb + 2u];
    if (e < p.e_begin || e - p.e_begin >= p.e_count)
        return;
    uint n_cols = end - first;
    uint order = p.route_off + 1u + 3u * p.max_tiles;
    uint m0 = gl_WorkGroupID.x * BM;
    uint tid = gl_LocalInvocationID.x;
    uint tr = tid % 16u, tc = tid / 16u;
    uint ngroups = p.ncols / 8u;
    uint eb = p.w_off + (e - p.e_begin) * p.expert_bytes;
    if (tid < BN)
        pair_of[tid] = tid < n_cols ? route[order + first + tid] : 0u;
    barrier();

    float acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++)
            acc[i][j] = 0.0;

#if defined(HAVE_ROW_DOT)
    // Float sums across a row's blocks (intdot.glsl): each thread its 4 x 4 outputs, row by row.
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint c = tc + 8u * j;
        if (c >= n_cols)
            continue;
        uint pr = pair_of[c];
        uint xv = (p.x_off + (pr / p.k) * p.x_stride + (pr % p.k) * p.x_slot_stride) / 4u;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint row = m0 + tr + 16u * i;
            if (row < p.nrows)
                acc[i][j] = row_dot_int(eb + row * p.row_bytes, xv, p.ncols / QK, false);
        }
    }
#elif defined(HAVE_INT_DOT)
    // Integer block sums (intdot.glsl): each thread its 4 x 4 outputs, block by block.
    for (uint bi = 0u; bi < p.ncols / QK; bi++) {
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint c = tc + 8u * j;
            if (c >= n_cols)
                continue;
            uint pr = pair_of[c];
            uint xv = (p.x_off + (pr / p.k) * p.x_stride + (pr % p.k) * p.x_slot_stride) / 4u + bi * (QK / 4u);
            float d8 = q8k_scale(xv);
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                uint row = m0 + tr + 16u * i;
                if (row < p.nrows)
                    acc[i][j] += block_dot_int(eb + row * p.row_bytes + bi * BLOCK_BYTES, xv, d8, false);
            }
        }
    }
#else
    for (uint k0 = 0u; k0 < p.ncols; k0 += BK) {
        for (uint t = tid; t < BM * (BK / 8u); t += WG) {
            uint r = t / (BK / 8u), g = t % (BK / 8u);
            uint row = m0 + r, gi = k0 / 8u + g;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (row < p.nrows && gi < ngroups)
                dequant8(eb + row * p.row_bytes + (gi / GROUPS_PER_BLOCK) * BLOCK_BYTES, gi % GROUPS_PER_BLOCK, lo,
                         hi);
            [[unroll]] for (uint q = 0u; q < 4u; q++) {
                ws[r][8u * g + q] = lo[q];
                ws[r][8u * g + 4u + q] = hi[q];
            }
        }
        for (uint t = tid; t < BN * (BK / 4u); t += WG) {
            uint c = t / (BK / 4u), v = t % (BK / 4u), kk = k0 + 4u * v;
            vec4 xv = vec4(0.0);
            if (c < n_cols && kk < p.ncols) {
                uint pr = pair_of[c];
                xv = x4[(p.x_off + (pr / p.k) * p.x_stride + (pr % p.k) * p.x_slot_stride + kk) / 4u];
            }
            [[unroll]] for (uint q = 0u; q < 4u; q++)
                xs[c][4u * v + q] = xv[q];
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[4], bx[4];
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                a[i] = ws[tr + 16u * i][kk];
            [[unroll]] for (uint j = 0u; j < 4u; j++)
                bx[j] = xs[tc + 8u * j][kk];
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                [[unroll]] for (uint j = 0u; j < 4u; j++)
                    acc[i][j] += a[i] * bx[j];
        }
        barrier();
    }
#endif

    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint row = m0 + tr + 16u * i, c = tc + 8u * j;
            if (row < p.nrows && c < n_cols)
                y[p.y_off + pair_of[c] * p.y_stride + row] = acc[i][j];
        }
}
