#version 450
// moe_matvec.comp: expert-indexed matrix-vector products: for pair q = (token t, slot j) of the
// routing, y[q] = W[ids[q]] x[t, j], W a 3-D tensor of n_expert matrices (QTYPE_* define) stored
// back to back. Workgroup (x, y) computes ROWS rows of pair y; pairs whose expert lies outside
// [e_begin, e_begin + e_count) are left to other dispatches (a tensor larger than one binding is
// processed in expert ranges).
#if !defined(VK_NO_SUBGROUPS)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 64) in;

layout(set = 0, binding = 0, std430) readonly buffer WeightBuf { uint w32[]; };
layout(set = 0, binding = 1, std430) readonly buffer XBuf { vec4 x4[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };
layout(set = 0, binding = 3, std430) readonly buffer TableBuf { uint tab[]; };
layout(set = 0, binding = 4, std430) readonly buffer IdBuf { uint ids[]; };

// Activation scales written by act_round.comp (intdot.glsl), when p.xs_off is not NO_SCALES.
layout(set = 0, binding = 5, std430) readonly buffer ScaleBuf { float act_scales[]; };

layout(push_constant) uniform Push {
    uint nrows, ncols, row_bytes;
    uint w_off;          // byte offset of expert e_begin in binding 0
    uint expert_bytes;   // bytes per expert matrix
    uint e_begin, e_count;
    uint k;              // slots per token; pairs = tokens x k
    uint n_pairs;
    uint id_off;
    uint x_off, x_stride, x_slot_stride;  // floats (multiples of 4): x of (t, j) at x_off + t x_stride + j x_slot_stride
    uint y_off, y_stride;                  // floats; y of pair q at y_off + q y_stride
    uint xs_off;  // float offset in act_scales of the scale of x's first block, or NO_SCALES
} p;

#include "bytes.glsl"
#include "dequant.glsl"
#include "intdot.glsl"
#include "reduce.glsl"

// Rows per workgroup (engine/vk_ops.c's moe_rows): eight for the lane and chain paths, whose
// eight threads per row would leave most of the workgroup idle with two.
#if defined(HAVE_LANE_DOT)
#define ROWS 8
shared float lane_acc[ROWS * 8u];
#elif defined(HAVE_CHAIN_DOT)
#define ROWS 8
#else
#define ROWS 2
#endif

void main()
{
    uint q = gl_WorkGroupID.y, row0 = gl_WorkGroupID.x * ROWS;
    if (q >= p.n_pairs || row0 >= p.nrows)
        return;
    uint e = ids[p.id_off + q];
    if (e < p.e_begin || e - p.e_begin >= p.e_count)
        return;
    uint t = q / p.k, j = q % p.k;
    uint xv = (p.x_off + t * p.x_stride + j * p.x_slot_stride) / 4u;
    uint eb = p.w_off + (e - p.e_begin) * p.expert_bytes;
#if defined(HAVE_LANE_DOT)
    // With act_round's scales: eight threads per row, thread L the CPU kernel's vector lane L
    // (intdot.glsl, row_lane_acc), then the lanes summed as the CPU's hsum.
    if (p.xs_off != NO_SCALES) {
        uint tid = gl_LocalInvocationID.x, r = tid / 8u, L = tid % 8u;
        lane_acc[tid] = row0 + r < p.nrows ? row_lane_acc(eb + (row0 + r) * p.row_bytes, xv, p.ncols / QK, L) : 0.0;
        barrier();
        if (tid < ROWS && row0 + tid < p.nrows) {
            float a[8];
            for (uint l = 0u; l < 8u; l++)
                a[l] = lane_acc[tid * 8u + l];
            precise float v = LANE_LAST_SCALE * lanes_hsum(a);
            y[p.y_off + q * p.y_stride + row0 + tid] = v;
        }
        return;
    }
#elif defined(HAVE_CHAIN_DOT)
    // With act_round's scales: eight threads per row, its units' integer sums, the CPU's chain
    // of fused multiply-adds on the group's thread 0 (intdot.glsl, chain_row).
    if (p.xs_off != NO_SCALES) {
        uint tid = gl_LocalInvocationID.x, r = tid / 8u;
        bool live = row0 + r < p.nrows;
        float v = chain_row(eb + (row0 + r) * p.row_bytes, xv, live, tid % 8u, r, false);
        if (live && tid % 8u == 0u)
            y[p.y_off + q * p.y_stride + row0 + r] = v;
        return;
    }
#endif
    float acc[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
        uint row = row0 + r;
        if (row < p.nrows) {
            uint rb = eb + row * p.row_bytes;
#if defined(HAVE_ROW_DOT)
            if (gl_LocalInvocationID.x == 0u)
                acc[r] = row_dot_int(rb, xv, p.ncols / QK, false);
#elif defined(HAVE_INT_DOT)
            for (uint bi = gl_LocalInvocationID.x; bi < p.ncols / QK; bi += gl_WorkGroupSize.x) {
                uint xb = xv + bi * (QK / 4u);
                acc[r] += block_dot_int(rb + bi * BLOCK_BYTES, xb, q8k_scale(xb), false);
            }
#else
            for (uint gi = gl_LocalInvocationID.x; gi < p.ncols / 8u; gi += gl_WorkGroupSize.x) {
                vec4 lo, hi;
                dequant8(rb + (gi / GROUPS_PER_BLOCK) * BLOCK_BYTES, gi % GROUPS_PER_BLOCK, lo, hi);
                acc[r] += dot(lo, x4[xv + 2u * gi]) + dot(hi, x4[xv + 2u * gi + 1u]);
            }
#endif
        }
    }
    [[unroll]] for (uint r = 0u; r < ROWS; r++) {
        float s = wg_sum(acc[r]);
        if (gl_LocalInvocationID.x == 0u && row0 + r < p.nrows)
            y[p.y_off + q * p.y_stride + row0 + r] = s;
    }
}
