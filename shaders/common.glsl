// common.glsl: buffer bindings and push constants shared by the matvec and matmul shaders (the
// raw byte loaders the dequantizers use are in bytes.glsl).

// Weight matrix: GGUF blocks exactly as stored in the file, rows of p.row_bytes bytes.
layout(set = 0, binding = 0, std430) readonly buffer WeightBuf { uint w32[]; };
// Activations: p.batch rows of p.ncols floats, row stride p.x_stride floats.
layout(set = 0, binding = 1, std430) readonly buffer XBuf { vec4 x4[]; };
// Output: p.batch rows of p.nrows floats, row stride p.y_stride floats.
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };
// Codebooks of the i-quants (engine/vk_iq_tables.c); bound for every type, read by IQ ones.
layout(set = 0, binding = 3, std430) readonly buffer TableBuf { uint tab[]; };
// Activation scales written by act_round.comp (one float per block of x, in x's order), read by
// intdot.glsl when p.xs_off is not NO_SCALES; otherwise bound to any buffer and unused.
layout(set = 0, binding = 4, std430) readonly buffer ScaleBuf { float act_scales[]; };

layout(push_constant) uniform Push {
    uint nrows;      // rows of W = outputs per batch column
    uint ncols;      // values per row of W (a multiple of 8 and of the block size)
    uint batch;      // columns of x / y
    uint row_bytes;  // bytes per row of W
    uint w_off;      // byte offset of row 0 inside the bound weight range
    uint x_off;      // float offset of x (a multiple of 4)
    uint y_off;      // float offset of y
    uint x_stride;   // floats between batch rows of x (a multiple of 4)
    uint y_stride;   // floats between batch rows of y
    uint pair_order; // 1: ggml's batched order (Q4_K gemm, F32 tinyBLAS; intdot.glsl)
    uint xs_off;     // float offset in act_scales of the scale of x's first block, or NO_SCALES
} p;

#include "bytes.glsl"
