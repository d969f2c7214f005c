/* qwen3next_delta.c: qwen3next's Gated DeltaNet layers over a batch of segments (one per sequence)
 * and the recurrent-state snapshots: a multi-token segment runs the chunked delta rule, a single
 * token the recurrent form; the state after all but a segment's last token can be saved. */
#include <omp.h>
#include <string.h>

#include "engine/qwen3next_internal.h"
#include "kernels/ops.h"

/* --------------------------------------------------------------- snapshots --- */

/* Slot for sequence s to save `pos` into: one already at pos, else an empty one, else the one
 * with the lowest position (later positions resume more of a conversation). */
static int32_t pick_slot(const struct q3n_ctx *c, uint32_t s, int64_t pos)
{
    int32_t best = -1;
    int64_t best_pos = 0;
    for (uint32_t i = 0; i < c->snaps_per_seq; i++) {
        const uint32_t slot = s * c->snaps_per_seq + i;
        const int64_t p = ssm_snapshot_pos(&c->st, slot);
        if (p == pos)
            return (int32_t)slot;
        if (best < 0 || p < best_pos) {
            best = (int32_t)slot;
            best_pos = p;
        }
    }
    return best;
}

void q3n_plan_snapshots(struct q3n_ctx *c)
{
    for (uint32_t s = 0; s < c->n_seg; s++) {
        const uint32_t b = c->seg_begin[s], len = c->seg_len[s];
        c->seg_snap[s] = len >= 2 && c->snaps_per_seq ? pick_slot(c, c->seq[b], c->pos[b + len - 1]) : -1;
        if (c->seg_snap[s] >= 0)
            ssm_snapshot_drop(&c->st, (uint32_t)c->seg_snap[s]);
    }
}

void q3n_commit_snapshots(struct q3n_ctx *c)
{
    for (uint32_t s = 0; s < c->n_seg; s++)
        if (c->seg_snap[s] >= 0)
            ssm_snapshot_mark(&c->st, (uint32_t)c->seg_snap[s], c->pos[c->seg_begin[s] + c->seg_len[s] - 1]);
}

uint32_t q3n_seq_keep(struct q3n_ctx *c, uint32_t seq, uint32_t n_keep)
{
    if (seq >= c->kv.n_seqs)
        return 0;
    const uint32_t have = c->kv.seqs[seq].n_tokens;
    if (n_keep >= have && n_keep > 0)
        return have;
    if (!c->st.data) { /* every layer attention: the KV cache cuts anywhere */
        kvpool_truncate(&c->kv, seq, n_keep);
        return n_keep;
    }
    /* the longest snapshot within the kept prefix; later ones describe tokens being dropped */
    int32_t best = -1;
    int64_t best_pos = 0;
    for (uint32_t i = 0; i < c->snaps_per_seq; i++) {
        const uint32_t slot = seq * c->snaps_per_seq + i;
        const int64_t p = ssm_snapshot_pos(&c->st, slot);
        if (p > (int64_t)n_keep || n_keep == 0)
            ssm_snapshot_drop(&c->st, slot);
        else if (p > best_pos) {
            best = (int32_t)slot;
            best_pos = p;
        }
    }
    uint32_t kept = 0;
    if (best >= 0)
        kept = (uint32_t)ssm_snapshot_restore(&c->st, (uint32_t)best, seq);
    else
        ssm_reset(&c->st, seq);
    kvpool_truncate(&c->kv, seq, kept);
    return kept;
}

/* ------------------------------------------------------------------- layer --- */

/* Causal conv + SiLU per segment; a segment that snapshots saves its conv rows before its last token. */
static void conv_segments(struct q3n_ctx *c, const struct q3n_layer *L)
{
    const dn_shape *sh = &c->m->hp.dn;
    const int ch = dn_conv_channels(sh), K = sh->conv_kernel;
#pragma omp parallel for schedule(dynamic, 1) if (c->n_seg > 1)
    for (uint32_t s = 0; s < c->n_seg; s++) {
        const uint32_t b = c->seg_begin[s], len = c->seg_len[s];
        float *state = ssm_conv(&c->st, c->seq[b], L->sub);
        const float *x = c->qkv + (size_t)b * ch;
        float *out = c->conv + (size_t)b * ch;
        if (c->seg_snap[s] < 0) {
            dn_conv_silu(ch, K, L->conv_w, state, x, (size_t)ch, out, (size_t)ch, (int)len);
            continue;
        }
        dn_conv_silu(ch, K, L->conv_w, state, x, (size_t)ch, out, (size_t)ch, (int)len - 1);
        memcpy(ssm_snapshot_conv(&c->st, (uint32_t)c->seg_snap[s], L->sub), state, c->st.conv_floats * sizeof(float));
        dn_conv_silu(ch, K, L->conv_w, state, x + (size_t)(len - 1) * ch, (size_t)ch,
                     out + (size_t)(len - 1) * ch, (size_t)ch, 1);
    }
}

/* The delta rule for heads [h0, h1) of `len` tokens from row b: ggml's own recurrence (llama.cpp
 * runs it for prompts and single tokens alike, so any split of a prompt gives the same bits), or
 * the chunked form when asked for (faster on long prompts, equal only up to rounding). */
static void delta_run(struct q3n_ctx *c, float *S, uint32_t b, uint32_t len, int h0, int h1, float *scratch)
{
    const dn_shape *sh = &c->m->hp.dn;
    const size_t ch = (size_t)dn_conv_channels(sh), d = (size_t)sh->head_dim, nk = (size_t)sh->n_k_heads;
    const size_t nv = (size_t)sh->n_v_heads;
    const dn_delta_io io = {.q = c->conv + b * ch, .k = c->conv + b * ch + nk * d, .v = c->conv + b * ch + 2 * nk * d,
                            .q_stride = ch, .k_stride = ch, .v_stride = ch, .g = c->g + b * nv,
                            .beta = c->beta + b * nv, .out = c->o + b * nv * d, .out_stride = nv * d};
    if (c->delta_chunk && len > 1)
        dn_delta_chunked(sh, &io, (int)len, S, c->delta_chunk, scratch, h0, h1);
    else
        dn_delta_ggml(sh, &io, (int)len, S, scratch, h0, h1);
}

/* Per (segment, k-head) work item: the v-heads sharing a k-head share the chunk's key products. */
static void delta_segments(struct q3n_ctx *c, const struct q3n_layer *L)
{
    const dn_shape *sh = &c->m->hp.dn;
    const int rep = sh->n_v_heads / sh->n_k_heads, nk = sh->n_k_heads;
    const size_t dd = (size_t)sh->head_dim * sh->head_dim;
    const int64_t items = (int64_t)c->n_seg * nk;
#pragma omp parallel for schedule(dynamic, 1) if (items > 1)
    for (int64_t it = 0; it < items; it++) {
        const uint32_t s = (uint32_t)(it / nk), b = c->seg_begin[s], len = c->seg_len[s];
        const int h0 = (int)(it % nk) * rep, h1 = h0 + rep;
        float *S = ssm_matrices(&c->st, c->seq[b], L->sub);
        float *scratch = c->chunk + (size_t)omp_get_thread_num() * c->chunk_floats;
        if (c->seg_snap[s] < 0) {
            delta_run(c, S, b, len, h0, h1, scratch);
            continue;
        }
        delta_run(c, S, b, len - 1, h0, h1, scratch);
        float *snap = ssm_snapshot_matrices(&c->st, (uint32_t)c->seg_snap[s], L->sub);
        memcpy(snap + (size_t)h0 * dd, S + (size_t)h0 * dd, (size_t)rep * dd * sizeof(float));
        delta_run(c, S, b + len - 1, 1, h0, h1, scratch);
    }
}

bool q3n_deltanet_layer(struct q3n_ctx *c, const struct q3n_layer *L, uint32_t n)
{
    const struct q3n_hparams *hp = &c->m->hp;
    const dn_shape *sh = &hp->dn;
    const int64_t e = hp->n_embd, nv = sh->n_v_heads, d = sh->head_dim;
    const size_t ch = (size_t)dn_conv_channels(sh);
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++)
        op_rms_norm(c->x + (size_t)t * e, L->attn_norm, e, hp->rms_eps, c->h + (size_t)t * e);
    if (!q_matmul_kinds(&L->qkv, c->h, n, c->kind, c->qkv, &c->act) ||
        !q_matmul_kinds(&L->z, c->h, n, c->kind, c->z, &c->act) || !q_matmul_kinds(&L->ba, c->h, n, c->kind, c->ba, &c->act))
        return false;
    conv_segments(c, L);
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++) {
        dn_l2_norm_qk(sh, c->conv + (size_t)t * ch, ch, 1, hp->rms_eps);
        dn_beta_gate(sh, c->ba + (size_t)t * 2 * nv, L->dt_bias, L->ssm_a, c->beta + (size_t)t * nv,
                     c->g + (size_t)t * nv);
    }
    delta_segments(c, L);
#pragma omp parallel for schedule(static) if (n >= 16)
    for (uint32_t t = 0; t < n; t++)
        dn_gated_rmsnorm(c->o + (size_t)t * nv * d, c->z + (size_t)t * nv * d, L->ssm_norm, (int)nv, (int)d,
                         hp->rms_eps);
    if (!q_matmul_kinds(&L->ssm_out, c->o, n, c->kind, c->tmp, &c->act))
        return false;
    for (size_t i = 0; i < (size_t)n * e; i++)
        c->x[i] += c->tmp[i];
    return true;
}
