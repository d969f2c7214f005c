// reduce.glsl: workgroup-wide sum and max of one float per invocation (subgroup operations, then
// the subgroup results in shared memory). Call from uniform control flow: they use barriers.

#define RED_MAX_SUBGROUPS 128
shared float red_part[RED_MAX_SUBGROUPS];

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
