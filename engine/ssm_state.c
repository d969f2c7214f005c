/* ssm_state.c: allocation, reset, copy and snapshots of the DeltaNet recurrent state.
 * Each sequence (and snapshot slot) is one contiguous block, so copies are single memcpys. */
#include "engine/ssm_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floats of one block, 0 on overflow or a bad shape. */
static size_t block_floats(const dn_shape *shape, uint32_t n_layers)
{
    char err[8];
    if (dn_shape_check(shape, err, sizeof(err)) != 0)
        return 0;
    const size_t per_layer = dn_conv_state_floats(shape) + dn_ssm_state_floats(shape);
    if (n_layers != 0 && per_layer > SIZE_MAX / sizeof(float) / n_layers)
        return 0;
    return per_layer * n_layers;
}

size_t ssm_state_seq_bytes(const dn_shape *shape, uint32_t n_layers)
{
    return block_floats(shape, n_layers) * sizeof(float);
}

size_t ssm_state_bytes(const dn_shape *shape, uint32_t n_layers, uint32_t n_seqs,
                       uint32_t n_snapshots)
{
    const size_t block = ssm_state_seq_bytes(shape, n_layers);
    const size_t n_blocks = (size_t)n_seqs + n_snapshots;
    if (block == 0 || n_blocks == 0 || block > SIZE_MAX / n_blocks)
        return 0;
    const size_t pos_bytes = (size_t)n_snapshots * sizeof(int64_t);
    if (block * n_blocks > SIZE_MAX - pos_bytes)
        return 0;
    return block * n_blocks + pos_bytes;
}

bool ssm_state_init(struct ssm_state *st, const dn_shape *shape, uint32_t n_layers,
                    uint32_t n_seqs, uint32_t n_snapshots, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    if (dn_shape_check(shape, err, errlen) != 0)
        return false;
    if (n_layers == 0 || n_seqs == 0) {
        snprintf(err, errlen, "ssm state: need at least one layer and one sequence");
        return false;
    }
    if (ssm_state_bytes(shape, n_layers, n_seqs, n_snapshots) == 0) {
        snprintf(err, errlen, "ssm state: size overflows");
        return false;
    }
    st->shape = *shape;
    st->n_layers = n_layers;
    st->n_seqs = n_seqs;
    st->n_snapshots = n_snapshots;
    st->conv_floats = dn_conv_state_floats(shape);
    st->ssm_floats = dn_ssm_state_floats(shape);
    st->block_floats = block_floats(shape, n_layers);
    /* calloc: large blocks come zeroed from the OS without touching every page up front */
    st->data = calloc((size_t)n_seqs + n_snapshots, st->block_floats * sizeof(float));
    st->snap_pos = malloc((n_snapshots ? n_snapshots : 1) * sizeof(int64_t));
    if (!st->data || !st->snap_pos) {
        snprintf(err, errlen, "ssm state: out of memory for %zu bytes",
                 ssm_state_bytes(shape, n_layers, n_seqs, n_snapshots));
        ssm_state_free(st);
        return false;
    }
    for (uint32_t i = 0; i < n_snapshots; i++)
        st->snap_pos[i] = -1;
    return true;
}

void ssm_state_free(struct ssm_state *st)
{
    free(st->data);
    free(st->snap_pos);
    memset(st, 0, sizeof(*st));
}

/* Block b: sequences 0..n_seqs-1, then snapshot slots. */
static float *block(const struct ssm_state *st, size_t b)
{
    return st->data + b * st->block_floats;
}

float *ssm_conv(const struct ssm_state *st, uint32_t s, uint32_t l)
{
    if (s >= st->n_seqs || l >= st->n_layers)
        return NULL;
    return block(st, s) + (size_t)l * (st->conv_floats + st->ssm_floats);
}

float *ssm_matrices(const struct ssm_state *st, uint32_t s, uint32_t l)
{
    float *conv = ssm_conv(st, s, l);
    return conv ? conv + st->conv_floats : NULL;
}

bool ssm_reset(struct ssm_state *st, uint32_t s)
{
    if (s >= st->n_seqs)
        return false;
    memset(block(st, s), 0, st->block_floats * sizeof(float));
    return true;
}

bool ssm_copy(struct ssm_state *st, uint32_t dst, uint32_t src)
{
    if (dst >= st->n_seqs || src >= st->n_seqs)
        return false;
    if (dst != src)
        memcpy(block(st, dst), block(st, src), st->block_floats * sizeof(float));
    return true;
}

bool ssm_snapshot_save(struct ssm_state *st, uint32_t slot, uint32_t s, int64_t pos)
{
    if (slot >= st->n_snapshots || s >= st->n_seqs || pos < 0)
        return false;
    memcpy(block(st, (size_t)st->n_seqs + slot), block(st, s), st->block_floats * sizeof(float));
    st->snap_pos[slot] = pos;
    return true;
}

int64_t ssm_snapshot_restore(struct ssm_state *st, uint32_t slot, uint32_t s)
{
    if (slot >= st->n_snapshots || s >= st->n_seqs || st->snap_pos[slot] < 0)
        return -1;
    memcpy(block(st, s), block(st, (size_t)st->n_seqs + slot), st->block_floats * sizeof(float));
    return st->snap_pos[slot];
}

int64_t ssm_snapshot_pos(const struct ssm_state *st, uint32_t slot)
{
    return slot < st->n_snapshots ? st->snap_pos[slot] : -1;
}

void ssm_snapshot_drop(struct ssm_state *st, uint32_t slot)
{
    if (slot < st->n_snapshots)
        st->snap_pos[slot] = -1;
}

float *ssm_snapshot_conv(const struct ssm_state *st, uint32_t slot, uint32_t l)
{
    if (slot >= st->n_snapshots || l >= st->n_layers)
        return NULL;
    return block(st, (size_t)st->n_seqs + slot) + (size_t)l * (st->conv_floats + st->ssm_floats);
}

float *ssm_snapshot_matrices(const struct ssm_state *st, uint32_t slot, uint32_t l)
{
    float *conv = ssm_snapshot_conv(st, slot, l);
    return conv ? conv + st->conv_floats : NULL;
}

bool ssm_snapshot_mark(struct ssm_state *st, uint32_t slot, int64_t pos)
{
    if (slot >= st->n_snapshots || pos < 0)
        return false;
    st->snap_pos[slot] = pos;
    return true;
}
