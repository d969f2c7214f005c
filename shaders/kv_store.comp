#version 450
// kv_store.comp: writes the K and V rows (F32 in, F16 out) of a batch of tokens into the paged KV
// cache of one layer: token t goes to position pos of sequence seq (tokens[2t], tokens[2t+1]), in
// page pages[seq * max_seq_pages + pos / page_tokens], as engine/kvpool.h lays rows out.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

layout(set = 0, binding = 0, std430) readonly buffer KBuf { float k_src[]; };
layout(set = 0, binding = 1, std430) readonly buffer VBuf { float v_src[]; };
layout(set = 0, binding = 2, std430) writeonly buffer KCache { uint kc[]; };
layout(set = 0, binding = 3, std430) writeonly buffer VCache { uint vc[]; };
layout(set = 0, binding = 4, std430) readonly buffer TokBuf { uint tokens[]; };
layout(set = 0, binding = 5, std430) readonly buffer PageBuf { uint pages[]; };

layout(push_constant) uniform Push {
    uint n_tokens;
    uint row_words;      // F16 pairs per cached row (n_head_kv * head_dim / 2)
    uint k_off, k_stride, v_off, v_stride;  // floats
    uint kc_off, vc_off; // words
    uint page_tokens;
    uint max_seq_pages;
    uint tok_off, pages_off;
    uint n_seqs, n_pages;
} p;

#include "f16.glsl"

void main()
{
    uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= p.n_tokens)
        return;
    uint seq = tokens[p.tok_off + 2u * t], ps = tokens[p.tok_off + 2u * t + 1u];
    // A token or page id outside the cache is skipped rather than written out of bounds.
    if (seq >= p.n_seqs || ps / p.page_tokens >= p.max_seq_pages)
        return;
    uint page = pages[p.pages_off + seq * p.max_seq_pages + ps / p.page_tokens];
    if (page >= p.n_pages)
        return;
    uint slot = (page * p.page_tokens + ps % p.page_tokens) * p.row_words;
    uint ko = p.k_off + t * p.k_stride, vo = p.v_off + t * p.v_stride;
    for (uint i = gl_LocalInvocationID.x; i < p.row_words; i += gl_WorkGroupSize.x) {
        kc[p.kc_off + slot + i] = pack_f16x2(k_src[ko + 2u * i], k_src[ko + 2u * i + 1u]);
        vc[p.vc_off + slot + i] = pack_f16x2(v_src[vo + 2u * i], v_src[vo + 2u * i + 1u]);
    }
}
