#version 450
// matmul.comp: Y = W X for larger batches; W quantized (QTYPE_* define). Each workgroup computes
// a BM x BN tile of Y (rows of W x activation columns), staging BK-wide slices of the dequantized
// W tile and of X in shared memory; each thread owns a 4 x 4 block of the tile.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

#define BM 64
#define BN 32
#define BK 32
#define WG 128

layout(local_size_x = WG) in;

#include "common.glsl"
#include "dequant.glsl"
#include "intdot.glsl"

// +1 padding keeps the column reads of the inner loop on distinct banks.
shared float ws[BM][BK + 1];
shared float xs[BN][BK + 1];

void main()
{
    uint m0 = gl_WorkGroupID.x * BM;      // first row of W
    uint n0 = gl_WorkGroupID.y * BN;      // first activation column
    uint tid = gl_LocalInvocationID.x;
    uint tr = tid % 16u, tc = tid / 16u;  // this thread: rows tr+16i, columns tc+8j
    uint ngroups = p.ncols / 8u;

    float acc[4][4];
    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++)
            acc[i][j] = 0.0;

#if defined(HAVE_ROW_DOT)
    // Float sums across a row's blocks (intdot.glsl): each thread its 4 x 4 outputs, row by row.
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
        uint col = n0 + tc + 8u * j;
        if (col >= p.batch)
            continue;
        uint xv = (p.x_off + col * p.x_stride) / 4u;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint row = m0 + tr + 16u * i;
            if (row < p.nrows)
                acc[i][j] = row_dot_int(p.w_off + row * p.row_bytes, xv, p.ncols / QK, p.pair_order != 0u);
        }
    }
#elif defined(HAVE_INT_DOT)
    // Integer block sums (intdot.glsl): each thread its 4 x 4 outputs, block by block.
    for (uint bi = 0u; bi < p.ncols / QK; bi++) {
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint col = n0 + tc + 8u * j;
            if (col >= p.batch)
                continue;
            uint xv = (p.x_off + col * p.x_stride) / 4u + bi * (QK / 4u);
            float d8 = q8k_scale(xv);
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                uint row = m0 + tr + 16u * i;
                if (row < p.nrows)
                    acc[i][j] += block_dot_int(p.w_off + row * p.row_bytes + bi * BLOCK_BYTES, xv, d8,
                                               p.pair_order != 0u);
            }
        }
    }
#else
    for (uint k0 = 0u; k0 < p.ncols; k0 += BK) {
        // W tile: BM rows x BK/8 groups, two groups per thread.
        for (uint t = tid; t < BM * (BK / 8u); t += WG) {
            uint r = t / (BK / 8u), g = t % (BK / 8u);
            uint row = m0 + r, gi = k0 / 8u + g;
            vec4 lo = vec4(0.0), hi = vec4(0.0);
            if (row < p.nrows && gi < ngroups)
                dequant8(p.w_off + row * p.row_bytes + (gi / GROUPS_PER_BLOCK) * BLOCK_BYTES,
                         gi % GROUPS_PER_BLOCK, lo, hi);
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                ws[r][8u * g + e] = lo[e];
                ws[r][8u * g + 4u + e] = hi[e];
            }
        }
        // X tile: BN columns x BK values, as vec4.
        for (uint t = tid; t < BN * (BK / 4u); t += WG) {
            uint c = t / (BK / 4u), v = t % (BK / 4u);
            uint col = n0 + c, k = k0 + 4u * v;
            vec4 xv = vec4(0.0);
            if (col < p.batch && k < p.ncols)
                xv = x4[(p.x_off + col * p.x_stride + k) / 4u];
            [[unroll]] for (uint e = 0u; e < 4u; e++)
                xs[c][4u * v + e] = xv[e];
        }
        barrier();
        for (uint k = 0u; k < BK; k++) {
            float a[4], bx[4];
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                a[i] = ws[tr + 16u * i][k];
            [[unroll]] for (uint j = 0u; j < 4u; j++)
                bx[j] = xs[tc + 8u * j][k];
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                [[unroll]] for (uint j = 0u; j < 4u; j++)
                    acc[i][j] += a[i] * bx[j];
        }
        barrier();
    }
#endif

    [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            uint row = m0 + tr + 16u * i, col = n0 + tc + 8u * j;
            if (row < p.nrows && col < p.batch)
                y[p.y_off + col * p.y_stride + row] = acc[i][j];
        }
}
