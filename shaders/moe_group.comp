#version 450
// moe_group.comp: groups the routing's (token, slot) pairs by expert for moe_matmul.comp: a list
// of pair indices ordered by expert (and by pair within one), cut into tiles of at most BN pairs
// of one expert. One invocation does it all: a few thousand pairs are microseconds, and the
// order it produces is deterministic.
layout(local_size_x = 1) in;

layout(set = 0, binding = 0, std430) readonly buffer IdBuf { uint ids[]; };
// route: [0] the number of tiles; then max_tiles tiles of (expert, first, end) into the order;
// then the order, n_pairs pair indices.
layout(set = 0, binding = 1, std430) buffer RouteBuf { uint route[]; };

layout(push_constant) uniform Push {
    uint n_pairs, n_expert;
    uint id_off, route_off;
    uint bn;         // pairs per tile
    uint max_tiles;
} p;

#define MAX_EXPERT 1024
shared uint cursor[MAX_EXPERT];

void main()
{
    for (uint e = 0u; e < p.n_expert; e++)
        cursor[e] = 0u;
    for (uint i = 0u; i < p.n_pairs; i++) {
        uint e = ids[p.id_off + i];
        if (e < p.n_expert)
            cursor[e]++;
    }
    uint tiles = p.route_off + 1u, order = tiles + 3u * p.max_tiles;
    uint n = 0u, at = 0u;
    for (uint e = 0u; e < p.n_expert; e++) {
        uint c = cursor[e];
        for (uint s = 0u; s < c; s += p.bn) {
            route[tiles + 3u * n] = e;
            route[tiles + 3u * n + 1u] = at + s;
            route[tiles + 3u * n + 2u] = at + min(s + p.bn, c);
            n++;
        }
        cursor[e] = at;  // from now on: where the expert's next pair goes
        at += c;
    }
    route[p.route_off] = n;
    for (uint i = 0u; i < p.n_pairs; i++) {
        uint e = ids[p.id_off + i];
        if (e < p.n_expert)
            route[order + cursor[e]++] = i;
    }
}
