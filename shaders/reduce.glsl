// reduce.glsl: workgroup-wide sum and max of one float per invocation: subgroup operations, then
// the subgroup results in shared memory; with VK_NO_SUBGROUPS shared memory only, in a fixed order.
// Call from uniform control flow: they use barriers. Workgroups of at most RED_MAX_WG invocations.

#define RED_MAX_WG 128
shared float red_part[RED_MAX_WG];

#if defined(VK_NO_SUBGROUPS)
// Lanes per chunk (the host passes the device's subgroup size, 2..64): each chunk of RED_LANES
// consecutive invocations is summed in order from 0, then the chunk sums in order from 0. That is
// the association of a subgroupAdd that adds its lanes in index order (lavapipe's), so on such a
// device the two variants give the same bits. The including shader leaves constant_id 0 to it.
layout(constant_id = 0) const uint RED_LANES = 8u;
shared float red_lane[RED_MAX_WG];

float wg_reduce(float v, bool take_max)
{
    uint tid = gl_LocalInvocationID.x, wg = gl_WorkGroupSize.x;
    uint chunks = (wg + RED_LANES - 1u) / RED_LANES;
    red_lane[tid] = v;
    barrier();
    if (tid < chunks) {
        uint end = min(wg, (tid + 1u) * RED_LANES);
        precise float s = take_max ? red_lane[tid * RED_LANES] : 0.0;
        for (uint i = tid * RED_LANES; i < end; i++)
            s = take_max ? max(s, red_lane[i]) : s + red_lane[i];
        red_part[tid] = s;
    }
    barrier();
    precise float t = take_max ? red_part[0] : 0.0;
    for (uint i = 0u; i < chunks; i++)
        t = take_max ? max(t, red_part[i]) : t + red_part[i];
    barrier();  // red_lane and red_part may be reused by the next call
    return t;
}

float wg_sum(float v)
{
    return wg_reduce(v, false);
}

float wg_max(float v)
{
    return wg_reduce(v, true);
}
#else
float wg_sum(float v)
{
    float s = subgroupAdd(v);
    if (subgroupElect())
        red_part[gl_SubgroupID] = s;
    barrier();
    float t = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++)
        t += red_part[i];
    barrier();  // red_part may be reused by the next call
    return t;
}

float wg_max(float v)
{
    float s = subgroupMax(v);
    if (subgroupElect())
        red_part[gl_SubgroupID] = s;
    barrier();
    float t = red_part[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++)
        t = max(t, red_part[i]);
    barrier();
    return t;
}
#endif
