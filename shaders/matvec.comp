#version 450
// matvec.comp: y = W x for a few activation columns (BATCH 1..8); W quantized (QTYPE_* define).
// Each workgroup owns ROWS rows; its threads stride over the rows' 8-value groups, and the
// partial sums are reduced with subgroupAdd, then across subgroups in shared memory (with
// VK_NO_SUBGROUPS: in shared memory only, chunk by chunk in a fixed order; see reduce.glsl).
#if !defined(VK_NO_SUBGROUPS)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 2;   // rows per workgroup, at most MAX_ROWS
layout(constant_id = 2) const uint BATCH = 1;  // activation columns, at most MAX_BATCH

#define MAX_ROWS 4
#define MAX_BATCH 8
#define MAX_SUBGROUPS 32  // subgroups (or VK_NO_SUBGROUPS chunks) per workgroup
#if defined(VK_NO_SUBGROUPS)
#define MAX_WG 64  // the fallback keeps every thread's partial sums: at most 64 threads
layout(constant_id = 3) const uint LANES = 8u;  // threads per chunk, 2..MAX_WG (reduce.glsl's RED_LANES)
#endif

#include "common.glsl"
#include "dequant.glsl"
#include "intdot.glsl"

shared float partial[MAX_SUBGROUPS * MAX_BATCH * MAX_ROWS];

#if defined(HAVE_F32_SLOTS)
shared float f32_slots[MAX_ROWS * MAX_BATCH * 64u];  // 8 KiB

// F32 rows (the router): eight threads per (row, column), each a share of the CPU's slots
// (intdot.glsl f32_row_slots), then one thread per output folds them in the CPU's order.
void f32_rows(uint row0)
{
    uint tid = gl_LocalInvocationID.x, L = tid % 8u;
    bool pp = p.pair_order != 0u;
    for (uint o = tid / 8u; o < ROWS * BATCH; o += gl_WorkGroupSize.x / 8u) {
        uint r = o % ROWS, b = o / ROWS, row = row0 + r;
        float sl[8];
        if (row < p.nrows)
            f32_row_slots(p.w_off + row * p.row_bytes, (p.x_off + b * p.x_stride) / 4u, p.ncols, pp, L, sl);
        for (uint k = 0u; k < 8u; k++)
            f32_slots[o * 64u + L + 8u * k] = row < p.nrows ? sl[k] : 0.0;
    }
    barrier();
    if (tid < ROWS * BATCH && row0 + tid % ROWS < p.nrows) {
        uint r = tid % ROWS, b = tid / ROWS;
        float slot[64];
        for (uint s = 0u; s < 64u; s++)
            slot[s] = f32_slots[tid * 64u + s];
        y[p.y_off + b * p.y_stride + row0 + r] =
            f32_row_sum(p.w_off + (row0 + r) * p.row_bytes, (p.x_off + b * p.x_stride) / 4u, p.ncols, pp, slot);
    }
}
#endif

#if defined(HAVE_LANE_DOT)
shared float lane_acc[MAX_ROWS * MAX_BATCH * 8u];

// With act_round's scales (the forward pass): eight threads per (row, column), thread L the CPU
// kernel's vector lane L over the whole row (row_lane_acc), then one thread per output sums the
// lanes as the CPU's hsum: the CPU's float order for rows of any length, and eight threads at
// work per output instead of one per block.
void lane_rows(uint row0)
{
    uint tid = gl_LocalInvocationID.x, L = tid % 8u;
    for (uint o = tid / 8u; o < ROWS * BATCH; o += gl_WorkGroupSize.x / 8u) {
        uint r = o % ROWS, b = o / ROWS, row = row0 + r;
        lane_acc[o * 8u + L] = row < p.nrows ? row_lane_acc(p.w_off + row * p.row_bytes,
                                                            (p.x_off + b * p.x_stride) / 4u, p.ncols / QK, L)
                                             : 0.0;
    }
    barrier();
    if (tid < ROWS * BATCH && row0 + tid % ROWS < p.nrows) {
        float a[8];
        for (uint l = 0u; l < 8u; l++)
            a[l] = lane_acc[tid * 8u + l];
        precise float v = LANE_LAST_SCALE * lanes_hsum(a);
        y[p.y_off + (tid / ROWS) * p.y_stride + row0 + tid % ROWS] = v;
    }
}
#endif
#if defined(VK_NO_SUBGROUPS)
shared float lane_part[MAX_WG * MAX_BATCH * MAX_ROWS];  // 8 KiB

// partial[c][b][r] = the sum over chunk c's threads of acc[b][r], in thread order from 0 (as an
// in-order subgroupAdd); returns the number of chunks.
uint chunk_sums(float acc[MAX_BATCH][MAX_ROWS])
{
    uint tid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    [[unroll]] for (uint b = 0u; b < MAX_BATCH; b++)
        [[unroll]] for (uint r = 0u; r < MAX_ROWS; r++)
            if (b < BATCH && r < ROWS)
                lane_part[(b * MAX_ROWS + r) * MAX_WG + tid] = acc[b][r];
    barrier();
    uint chunks = (wg + LANES - 1u) / LANES;
    for (uint job = tid; job < BATCH * ROWS * chunks; job += wg) {
        uint c = job % chunks, o = job / chunks;
        uint b = o / ROWS, r = o % ROWS;
        uint base = (b * MAX_ROWS + r) * MAX_WG, end = min(wg, (c + 1u) * LANES);
        precise float s = 0.0;
        for (uint i = c * LANES; i < end; i++)
            s += lane_part[base + i];
        partial[c * (MAX_BATCH * MAX_ROWS) + b * MAX_ROWS + r] = s;
    }
    return chunks;
}
#endif

void main()
{
    // Row blocks are numbered across a 2D grid: one dimension may hold at most 65535 groups.
    uint row0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * ROWS;
    if (row0 >= p.nrows)
        return;  // the whole workgroup leaves together, before any barrier
    uint ngroups = p.ncols / 8u;
    uint tid = gl_LocalInvocationID.x;
    uint wg = gl_WorkGroupSize.x;
#if defined(HAVE_F32_SLOTS)
    f32_rows(row0);  // F32 activations are never rounded: always this path
    return;
#elif defined(HAVE_LANE_DOT)
    if (p.xs_off != NO_SCALES) {  // uniform: a push constant
        lane_rows(row0);
        return;
    }
#elif defined(HAVE_CHAIN_DOT)
    if (p.xs_off != NO_SCALES) {  // eight threads per output, its units' sums (intdot.glsl)
        for (uint o0 = 0u; o0 < ROWS * BATCH; o0 += wg / 8u) {
            uint o = o0 + tid / 8u, r = o % ROWS, b = o / ROWS;
            bool live = o < ROWS * BATCH && row0 + r < p.nrows;
            float v = chain_row(p.w_off + (row0 + r) * p.row_bytes, (p.x_off + b * p.x_stride) / 4u, live, tid % 8u,
                                tid / 8u, p.pair_order != 0u);
            if (live && tid % 8u == 0u)
                y[p.y_off + b * p.y_stride + row0 + r] = v;
        }
        return;
    }
#endif

    // Loops run to the MAX_ bounds and test the spec constants so that they unroll and acc is
    // only ever indexed by constants (a dynamically indexed array spills to memory).
    float acc[MAX_BATCH][MAX_ROWS];
    [[unroll]] for (uint b = 0u; b < MAX_BATCH; b++)
        [[unroll]] for (uint r = 0u; r < MAX_ROWS; r++)
            acc[b][r] = 0.0;

    [[unroll]] for (uint r = 0u; r < MAX_ROWS; r++) {
        uint row = row0 + r;
        if (r < ROWS && row < p.nrows) {
            uint rb = p.w_off + row * p.row_bytes;
#if defined(HAVE_ROW_DOT)
            // Float sums across the row's blocks (intdot.glsl): one thread per row.
            if (tid == 0u) {
                [[unroll]] for (uint b = 0u; b < MAX_BATCH; b++)
                    if (b < BATCH)
                        acc[b][r] = row_dot_int(rb, (p.x_off + b * p.x_stride) / 4u, p.ncols / QK, p.pair_order != 0u);
            }
#elif defined(HAVE_INT_DOT)
            // Integer block sums (intdot.glsl): one thread per super-block.
            for (uint bi = tid; bi < p.ncols / QK; bi += wg) {
                [[unroll]] for (uint b = 0u; b < MAX_BATCH; b++) {
                    if (b < BATCH) {
                        uint xv = (p.x_off + b * p.x_stride) / 4u + bi * (QK / 4u);
                        acc[b][r] += block_dot_int(rb + bi * BLOCK_BYTES, xv, q8k_scale(xv), p.pair_order != 0u);
                    }
                }
            }
#else
            for (uint gi = tid; gi < ngroups; gi += wg) {
                vec4 lo, hi;
                dequant8(rb + (gi / GROUPS_PER_BLOCK) * BLOCK_BYTES, gi % GROUPS_PER_BLOCK, lo, hi);
                [[unroll]] for (uint b = 0u; b < MAX_BATCH; b++) {
                    if (b < BATCH) {
                        uint xv = (p.x_off + b * p.x_stride) / 4u + 2u * gi;
                        acc[b][r] += dot(lo, x4[xv]) + dot(hi, x4[xv + 1u]);
                    }
                }
            }
#endif
        }
    }

    // Reduce: within each subgroup (chunk), then the subgroup (chunk) sums meet in shared memory.
#if defined(VK_NO_SUBGROUPS)
    uint n_parts = chunk_sums(acc);
#else
    [[unroll]] for (uint b = 0u; b < MAX_BATCH; b++)
        [[unroll]] for (uint r = 0u; r < MAX_ROWS; r++) {
            if (b < BATCH && r < ROWS) {
                float s = subgroupAdd(acc[b][r]);
                if (subgroupElect())
                    partial[gl_SubgroupID * (MAX_BATCH * MAX_ROWS) + b * MAX_ROWS + r] = s;
            }
        }
    uint n_parts = gl_NumSubgroups;
#endif
    barrier();
    if (tid < BATCH * ROWS) {
        uint b = tid / ROWS, r = tid % ROWS;
        uint row = row0 + r;
        if (row < p.nrows) {
            float s = 0.0;
            for (uint sg = 0u; sg < n_parts; sg++)
                s += partial[sg * (MAX_BATCH * MAX_ROWS) + b * MAX_ROWS + r];
            y[p.y_off + b * p.y_stride + row] = s;
        }
    }
}
