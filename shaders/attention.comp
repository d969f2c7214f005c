#version 450
// attention.comp: causal grouped-query attention over the paged F16 KV cache, flash style. One
// workgroup per (KV head, token) serves the G = n_head / n_head_kv query heads that share the KV
// head: it walks the token's positions 0..pos in tiles of BC, staging each K/V tile in shared
// memory, and keeps a running max and sum per query head (online softmax) so that scores are
// never stored beyond one tile. Tokens of several sequences may share a dispatch. With
// p.n_split > 1 (long contexts, few tokens), workgroup z covers positions [z split_len,
// (z + 1) split_len) only and writes its unnormalised sums, max and sum to `part`, which
// attention_merge.comp combines. With p.p_f16 (and one split) the probabilities are rounded to
// F16 before the V products as ggml's CPU path does: a first pass over the tiles finds each
// head's max and sum, a second recomputes the scores and accumulates f16(exp(s - max) / sum) V.
#extension GL_EXT_control_flow_attributes : require

#define WG 128
#define MAX_PER_THREAD 32   // output values per invocation: G * D <= WG * MAX_PER_THREAD

layout(local_size_x = WG) in;
layout(constant_id = 0) const uint D = 128;   // head_dim (even)
layout(constant_id = 1) const uint G = 1;     // query heads per KV head
layout(constant_id = 2) const uint BC = 32;   // positions per tile

layout(set = 0, binding = 0, std430) readonly buffer QBuf { float q[]; };
layout(set = 0, binding = 1, std430) readonly buffer KCache { uint kc[]; };
layout(set = 0, binding = 2, std430) readonly buffer VCache { uint vc[]; };
layout(set = 0, binding = 3, std430) readonly buffer TokBuf { uint tokens[]; };
layout(set = 0, binding = 4, std430) readonly buffer PageBuf { uint pages[]; };
layout(set = 0, binding = 5, std430) writeonly buffer OBuf { float o[]; };
// Per (token, head, split): head_dim sums, then the running max and sum.
layout(set = 0, binding = 6, std430) writeonly buffer PartBuf { float part[]; };

layout(push_constant) uniform Push {
    uint n_tokens;
    uint n_head_kv;
    uint q_off, q_stride;   // floats; head h of token t at q_off + t * q_stride + h * D
    uint o_off, o_stride;
    uint kc_off, vc_off;    // words
    uint row_words;         // words per cached position (n_head_kv * D / 2)
    uint page_tokens;
    uint max_seq_pages;
    uint tok_off, pages_off;
    float scale;
    // D / 2 and BC again: loop bounds the compiler cannot see, so that it does not unroll the
    // score and value loops (lavapipe then took seconds to compile each variant)
    uint head_words, tile;
    uint n_split, split_len;
    uint part_off;          // floats
    uint q_f16;             // round q to F16 first, as ggml's CPU K products do
    uint n_seqs, n_pages;
    uint p_f16;             // round the probabilities to F16 (two passes; n_split 1 only)
} p;

#include "f16.glsl"

const uint HD = D / 2u;        // words per head in the cache
const uint NE = (G * D + WG - 1u) / WG;
const float NEG_BIG = -3.0e38; // "minus infinity" without inf arithmetic

shared float qs[G * D];
shared uint ks[BC * HD];
shared uint vs[BC * HD];
shared float sc[G * BC];       // scores, then probabilities, of one tile
shared float run_max[G], run_sum[G], corr[G];

void main()
{
    uint kvh = gl_WorkGroupID.x, t = gl_WorkGroupID.y, split = gl_WorkGroupID.z;
    if (t >= p.n_tokens)
        return;
    uint tid = gl_LocalInvocationID.x;
    uint seq = tokens[p.tok_off + 2u * t], last = tokens[p.tok_off + 2u * t + 1u];
    // Ids outside the cache read nothing out of bounds: a bad sequence reads sequence 0, a
    // position past the page table stops there, a bad page id reads zeros.
    seq = seq < p.n_seqs ? seq : 0u;
    last = min(last, p.max_seq_pages * p.page_tokens - 1u);
    uint first = 0u;
    if (p.n_split > 1u) {  // this workgroup's share of positions 0..last (possibly none)
        first = split * p.split_len;
        last = min(last, first + p.split_len - 1u);
    }
    uint qo = p.q_off + t * p.q_stride + kvh * G * D;
    for (uint i = tid; i < G * D; i += WG) {
        float v = q[qo + i];
        qs[i] = p.q_f16 != 0u ? unpackHalf2x16(f16_bits(v)).x : v;
    }
    if (tid < G) {
        run_max[tid] = NEG_BIG;
        run_sum[tid] = 0.0;
    }
    float acc[MAX_PER_THREAD];
    [[unroll]] for (uint e = 0u; e < MAX_PER_THREAD; e++)
        acc[e] = 0.0;
    barrier();

    bool two_pass = p.p_f16 != 0u && p.n_split <= 1u;
    for (uint pass = two_pass ? 0u : 1u; pass < 2u; pass++) {
    bool values = pass == 1u;  // the pass that reads V and accumulates
    for (uint j0 = first; j0 <= last; j0 += BC) {
        // Stage the tile's K and V rows of this KV head (zeros past the token's position).
        for (uint i = tid; i < BC * HD; i += WG) {
            uint j = i / HD, w = i % HD, ps = j0 + j;
            uint kw = 0u, vw = 0u;
            if (ps <= last) {
                uint page = pages[p.pages_off + seq * p.max_seq_pages + ps / p.page_tokens];
                uint at = (page * p.page_tokens + ps % p.page_tokens) * p.row_words + kvh * HD + w;
                if (page < p.n_pages) {
                    kw = kc[p.kc_off + at];
                    vw = values ? vc[p.vc_off + at] : 0u;
                }
            }
            ks[i] = kw;
            vs[i] = vw;
        }
        barrier();
        for (uint i = tid; i < G * BC; i += WG) {
            uint g = i / BC, j = i % BC;
            float s = NEG_BIG;
            if (j0 + j <= last) {
                float d = 0.0;
                for (uint w = 0u; w < p.head_words; w++) {
                    vec2 kv = unpackHalf2x16(ks[j * HD + w]);
                    d += qs[g * D + 2u * w] * kv.x + qs[g * D + 2u * w + 1u] * kv.y;
                }
                s = d * p.scale;
            }
            sc[i] = s;
        }
        barrier();
        if (tid < G && two_pass && values) {
            float m = run_max[tid], inv = 1.0 / run_sum[tid];
            for (uint j = 0u; j < p.tile; j++) {
                float pj = j0 + j <= last ? exp(sc[tid * BC + j] - m) * inv : 0.0;
                sc[tid * BC + j] = unpackHalf2x16(f16_bits(pj)).x;
            }
            corr[tid] = 1.0;
        } else if (tid < G) {
            float m_old = run_max[tid], m = m_old;
            for (uint j = 0u; j < p.tile; j++)
                m = max(m, sc[tid * BC + j]);
            float sum = 0.0;
            for (uint j = 0u; j < p.tile; j++) {
                float pj = j0 + j <= last ? exp(sc[tid * BC + j] - m) : 0.0;
                sc[tid * BC + j] = pj;
                sum += pj;
            }
            float c = exp(m_old - m);
            corr[tid] = c;
            run_max[tid] = m;
            run_sum[tid] = run_sum[tid] * c + sum;
        }
        barrier();
        [[unroll]] for (uint e = 0u; e < MAX_PER_THREAD; e++) {
            uint i = tid + e * WG;
            if (values && e < NE && i < G * D) {
                uint g = i / D, d = i % D;
                float a = acc[e] * corr[g];
                for (uint j = 0u; j < p.tile; j++)
                    a += sc[g * BC + j] * unpackHalf2x16(vs[j * HD + d / 2u])[d & 1u];
                acc[e] = a;
            }
        }
        barrier();  // the next tile overwrites ks, vs and sc
    }
    }

    if (p.n_split > 1u) {
        // head h = kvh G + g of token t, split z: at ((t n_head + h) n_split + z) (D + 2)
        uint n_head = p.n_head_kv * G;
        [[unroll]] for (uint e = 0u; e < MAX_PER_THREAD; e++) {
            uint i = tid + e * WG;
            if (e < NE && i < G * D)
                part[p.part_off + ((t * n_head + kvh * G + i / D) * p.n_split + split) * (D + 2u) + i % D] = acc[e];
        }
        if (tid < G) {
            uint at = p.part_off + ((t * n_head + kvh * G + tid) * p.n_split + split) * (D + 2u) + D;
            part[at] = run_max[tid];
            part[at + 1u] = run_sum[tid];
        }
        return;
    }
    uint oo = p.o_off + t * p.o_stride + kvh * G * D;
    [[unroll]] for (uint e = 0u; e < MAX_PER_THREAD; e++) {
        uint i = tid + e * WG;
        if (e < NE && i < G * D)
            o[oo + i] = two_pass ? acc[e] : acc[e] / run_sum[i / D];
    }
}
