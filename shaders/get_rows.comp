#version 450
// get_rows.comp: embedding lookup: row ids[t] of a quantized table (QTYPE_* define), dequantized to
// F32 row t of y. One workgroup per id; ids outside [row_begin, row_begin + row_count) are left to
// other dispatches (a table larger than one binding is looked up in row ranges).
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

// The table's rows row_begin.. as stored in the GGUF file, p.row_bytes each.
layout(set = 0, binding = 0, std430) readonly buffer WeightBuf { uint w32[]; };
layout(set = 0, binding = 1, std430) readonly buffer IdBuf { uint ids[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuf { float y[]; };
layout(set = 0, binding = 3, std430) readonly buffer TableBuf { uint tab[]; };

layout(push_constant) uniform Push {
    uint n_ids;
    uint ncols;       // values per row
    uint row_bytes;
    uint w_off;       // byte offset of row row_begin in binding 0
    uint row_begin;   // first table row this dispatch covers
    uint row_count;
    uint id_off;      // uint offset of ids
    uint y_off;       // float offset of y
    uint y_stride;    // floats between output rows
} p;

#include "bytes.glsl"
#include "dequant.glsl"

void main()
{
    uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= p.n_ids)
        return;
    uint id = ids[p.id_off + t];
    if (id < p.row_begin || id - p.row_begin >= p.row_count)
        return;
    uint rb = p.w_off + (id - p.row_begin) * p.row_bytes;
    uint yo = p.y_off + t * p.y_stride;
    for (uint gi = gl_LocalInvocationID.x; gi < p.ncols / 8u; gi += gl_WorkGroupSize.x) {
        vec4 lo, hi;
        dequant8(rb + (gi / GROUPS_PER_BLOCK) * BLOCK_BYTES, gi % GROUPS_PER_BLOCK, lo, hi);
        for (uint e = 0u; e < 4u; e++) {
            y[yo + 8u * gi + e] = lo[e];
            y[yo + 8u * gi + 4u + e] = hi[e];
        }
    }
}
