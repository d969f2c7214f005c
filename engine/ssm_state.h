/* ssm_state.h: per-sequence recurrent state of a model's DeltaNet layers (conv rows and delta-rule
 * matrices, F32), with copy, reset and position-tagged snapshot slots, and its byte size. */
#ifndef MOESERVE_SSM_STATE_H
#define MOESERVE_SSM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/deltanet.h"

/* One block per sequence and one per snapshot slot, each laid out [layer][conv | matrices]. */
struct ssm_state {
    dn_shape shape;
    uint32_t n_layers;       /* DeltaNet layers only (the model maps its layer ids onto 0..n-1) */
    uint32_t n_seqs;
    uint32_t n_snapshots;
    size_t conv_floats;      /* one layer of one sequence: dn_conv_state_floats */
    size_t ssm_floats;       /* one layer of one sequence: dn_ssm_state_floats */
    size_t block_floats;     /* one sequence, all layers */
    float *data;             /* (n_seqs + n_snapshots) blocks; sequences first */
    int64_t *snap_pos;       /* per slot: position saved, -1 when empty */
};

/* Bytes ssm_state_init allocates for these sizes (for the memory planner); 0 on overflow. */
size_t ssm_state_bytes(const dn_shape *shape, uint32_t n_layers, uint32_t n_seqs,
                       uint32_t n_snapshots);
/* Bytes of one sequence's (or one snapshot's) state. */
size_t ssm_state_seq_bytes(const dn_shape *shape, uint32_t n_layers);

/* Allocates zeroed state for n_seqs sequences and n_snapshots empty snapshot slots. */
bool ssm_state_init(struct ssm_state *st, const dn_shape *shape, uint32_t n_layers,
                    uint32_t n_seqs, uint32_t n_snapshots, char *err, size_t errlen);
void ssm_state_free(struct ssm_state *st);

/* Layer l's conv rows ((K-1) x channels, oldest first) and delta-rule matrices (n_v_heads x
 * head_dim x head_dim, layout as dn_delta_recurrent) of sequence s; NULL if out of range. */
float *ssm_conv(const struct ssm_state *st, uint32_t s, uint32_t l);
float *ssm_matrices(const struct ssm_state *st, uint32_t s, uint32_t l);

/* Zeroes sequence s (the state at position 0). False if s is out of range. */
bool ssm_reset(struct ssm_state *st, uint32_t s);
/* dst = src (both sequences). False if either is out of range. */
bool ssm_copy(struct ssm_state *st, uint32_t dst, uint32_t src);

/* Saves sequence s, which has processed `pos` tokens, into snapshot slot `slot`. */
bool ssm_snapshot_save(struct ssm_state *st, uint32_t slot, uint32_t s, int64_t pos);
/* Restores slot into sequence s and returns the saved position; -1 (s untouched) if the slot is
 * out of range or empty. */
int64_t ssm_snapshot_restore(struct ssm_state *st, uint32_t slot, uint32_t s);
/* Position saved in slot, -1 if empty or out of range. */
int64_t ssm_snapshot_pos(const struct ssm_state *st, uint32_t slot);
/* Empties slot. */
void ssm_snapshot_drop(struct ssm_state *st, uint32_t slot);

/* Layer l's conv rows and matrices inside snapshot slot `slot` (layout as ssm_conv and
 * ssm_matrices), for saving one layer at a time while a batch runs; NULL if out of range. Mark
 * the slot with ssm_snapshot_mark once every layer is written. */
float *ssm_snapshot_conv(const struct ssm_state *st, uint32_t slot, uint32_t l);
float *ssm_snapshot_matrices(const struct ssm_state *st, uint32_t slot, uint32_t l);
/* Records that slot now holds the state after `pos` tokens. False if out of range. */
bool ssm_snapshot_mark(struct ssm_state *st, uint32_t slot, int64_t pos);

#endif
