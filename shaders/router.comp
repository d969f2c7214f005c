#version 450
// router.comp: MoE routing per token: softmax over n_expert logits, the k most probable experts
// (ties go to the lower index), and their probabilities, renormalised to sum 1 when p.norm is
// set. One workgroup per token.
#extension GL_GOOGLE_include_directive : require
#if !defined(VK_NO_SUBGROUPS)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#define WG 64
#define MAX_EXPERT 1024
#define MAX_K 16

layout(local_size_x = WG) in;

layout(set = 0, binding = 0, std430) readonly buffer LBuf { float logits[]; };
layout(set = 0, binding = 1, std430) writeonly buffer IdBuf { uint ids[]; };
layout(set = 0, binding = 2, std430) writeonly buffer WBuf { float weights[]; };

layout(push_constant) uniform Push {
    uint n_tokens;
    uint n_expert;
    uint k;
    uint l_off, l_stride;  // floats
    uint id_off, w_off;    // k values per token, contiguous
    uint norm;
} p;

#include "reduce.glsl"

shared float prob[MAX_EXPERT];
shared float best_v[WG];
shared uint best_i[WG];
shared uint chosen[MAX_K];

void main()
{
    uint t = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (t >= p.n_tokens)
        return;
    uint tid = gl_LocalInvocationID.x;
    uint lo = p.l_off + t * p.l_stride;
    float m = -3.0e38;
    for (uint e = tid; e < p.n_expert; e += WG)
        m = max(m, logits[lo + e]);
    m = wg_max(m);
    float s = 0.0;
    for (uint e = tid; e < p.n_expert; e += WG) {
        float v = exp(logits[lo + e] - m);
        prob[e] = v;
        s += v;
    }
    s = wg_sum(s);
    float inv = 1.0 / s;
    for (uint e = tid; e < p.n_expert; e += WG)
        prob[e] *= inv;
    barrier();

    // k rounds of arg-max; a chosen expert's probability is kept aside and replaced by -1.
    float chosen_p[MAX_K];
    for (uint r = 0u; r < p.k; r++) {
        float bv = -2.0;
        uint bi = 0xFFFFFFFFu;
        for (uint e = tid; e < p.n_expert; e += WG)
            if (prob[e] > bv) {  // strided ascending: the first of equals is the lowest index
                bv = prob[e];
                bi = e;
            }
        best_v[tid] = bv;
        best_i[tid] = bi;
        barrier();
        for (uint half_n = WG / 2u; half_n > 0u; half_n /= 2u) {
            if (tid < half_n) {
                float ov = best_v[tid + half_n];
                uint oi = best_i[tid + half_n];
                if (ov > best_v[tid] || (ov == best_v[tid] && oi < best_i[tid])) {
                    best_v[tid] = ov;
                    best_i[tid] = oi;
                }
            }
            barrier();
        }
        chosen_p[r] = best_v[0];
        if (tid == 0u) {
            chosen[r] = best_i[0];
            prob[best_i[0]] = -1.0;
        }
        barrier();
    }
    if (tid == 0u) {
        float sum = 0.0;
        for (uint r = 0u; r < p.k; r++)
            sum += chosen_p[r];
        for (uint r = 0u; r < p.k; r++) {
            ids[p.id_off + t * p.k + r] = chosen[r];
            weights[p.w_off + t * p.k + r] = p.norm != 0u ? chosen_p[r] / sum : chosen_p[r];
        }
    }
}
