/* vk_ops.h: the GPU operations of the forward pass besides the dense matmul (engine/vulkan.h):
 * embedding lookup, RMS norm, RoPE, the paged KV cache and attention, MoE routing and experts. */
#ifndef MOESERVE_VK_OPS_H
#define MOESERVE_VK_OPS_H

#include "engine/vulkan.h"

/* Each vk_op_* call records one or a few dispatches into the context's open command buffer
 * (between vk_begin and vk_submit_wait), like vk_matmul_record; it does not wait, and it does not
 * insert barriers except between its own dispatches (vk_op_moe_ffn, split vk_op_attention): call
 * vk_barrier between dependent operations.
 * Arguments are checked (shapes, buffer bounds, alignment) and refused with a message; values in
 * GPU buffers (token ids, expert ids, positions, page tables) cannot be checked and must be valid.
 * Pipelines are built on first use. */
struct vk_ops;

struct vk_ops *vk_ops_create(struct vk_ctx *ctx, char *err, size_t errlen);
void vk_ops_destroy(struct vk_ops *ops);

/* A 2-D array of 32-bit values (float, or uint32/int32 for ids and positions) in a buffer: row r,
 * element i at byte off + 4 (r stride + i). off: a multiple of 4 (16 where noted); stride 0:
 * rows are contiguous. */
struct vk_view {
    const struct vk_buffer *b;
    VkDeviceSize off;
    uint32_t stride;  /* elements between rows */
};

/* Whether vk_op_get_rows / vk_op_moe_matvec have shaders for the weight type (enum q_type). */
bool vk_ops_supports(uint32_t type);

/* ---------------------------------------------------------------- get_rows --- */

/* y[t] = dequantized row ids[t] of a table of n_rows rows of ncols values (a GGUF type, stored as
 * in the file). A table larger than one binding is looked up in row ranges, one dispatch each.
 * Ids >= n_rows leave their output row unwritten. */
struct vk_op_get_rows_args {
    uint32_t type, n_rows, ncols;   /* ncols: a multiple of 8 and of the block size */
    const struct vk_buffer *table;
    VkDeviceSize table_off;         /* a multiple of 4 */
    uint32_t n_ids;
    struct vk_view ids;             /* uint32, one row of n_ids */
    struct vk_view y;               /* n_ids rows of ncols floats */
};
bool vk_op_get_rows(struct vk_ops *ops, const struct vk_op_get_rows_args *a, char *err, size_t errlen);

/* ---------------------------------------------------------------- rms_norm --- */

/* y = x / sqrt(mean(x^2) + eps) * w over rows of n floats; each of n_tokens rows of x/y holds
 * `heads` consecutive rows of n (heads = 1: the hidden state; n_head: per-head q/k norm, n =
 * head_dim). w is n floats, shared by all rows. y may be x (in place). */
struct vk_op_rms_norm_args {
    uint32_t n_tokens, heads, n;
    float eps;
    struct vk_view x, w, y;
};
bool vk_op_rms_norm(struct vk_ops *ops, const struct vk_op_rms_norm_args *a, char *err, size_t errlen);

/* -------------------------------------------------------------------- rope --- */

/* NeoX rotary embedding of each head's first n_rot dims (pairs i, i + n_rot/2, angle
 * pos[t] * freq_base^(-2i/n_rot), computed as ggml does in F32); dims n_rot.. are copied.
 * x/y: n_tokens rows of heads * head_dim floats; y may be x. pos: int32, one row of n_tokens. */
struct vk_op_rope_args {
    uint32_t n_tokens, heads, head_dim, n_rot;  /* n_rot even, <= head_dim */
    float freq_base;
    struct vk_view x, pos, y;
};
bool vk_op_rope(struct vk_ops *ops, const struct vk_op_rope_args *a, char *err, size_t errlen);

/* ---------------------------------------------------------- paged KV cache --- */

/* One layer of the GPU KV cache, laid out as engine/kvpool.h lays out its rows: F16 K and V
 * rows of n_head_kv * head_dim values, position p of page g at row g * page_tokens + p (the
 * layer's pages start at k_off / v_off). The page table holds max_seq_pages uint32 page ids per
 * sequence (kv_seq.pages, padded): position pos of sequence s is in page
 * pages[s * max_seq_pages + pos / page_tokens]. */
struct vk_kv_layer {
    const struct vk_buffer *k, *v;
    VkDeviceSize k_off, v_off;      /* multiples of 4 */
    uint32_t n_pages, page_tokens;
    uint32_t n_head_kv, head_dim;   /* head_dim even */
    const struct vk_buffer *pages;
    VkDeviceSize pages_off;         /* a multiple of 4 */
    uint32_t n_seqs, max_seq_pages;
};

/* Per token of a batch: (sequence, position) as two uint32, one row of 2 n_tokens. Values the
 * host cannot check are guarded on the GPU: kv_store skips a token whose sequence, position or
 * page id lies outside the layout; attention reads no memory outside it (results for such a
 * token are meaningless). */

/* Stores token t's K and V rows (F32, n_head_kv * head_dim each, rounded to F16 to nearest
 * even) at its (sequence, position). Positions must have pages in the table. */
struct vk_op_kv_store_args {
    const struct vk_kv_layer *kv;
    uint32_t n_tokens;
    struct vk_view k, v, tokens;
};
bool vk_op_kv_store(struct vk_ops *ops, const struct vk_op_kv_store_args *a, char *err, size_t errlen);

/* Causal GQA attention: token t (sequence s, position pos) attends with each of its n_head
 * query heads (q: rows of n_head * head_dim floats) to positions 0..pos of sequence s, which
 * must be stored already (record vk_op_kv_store, then vk_barrier). Head h reads KV head
 * h / (n_head / n_head_kv); softmax(scale q.k) in F32; out: rows of n_head * head_dim floats.
 * scale 0: 1/sqrt(head_dim). q_f16: round q to F16 before the K products, as ggml's CPU path
 * does (the probabilities stay F32: the softmax is computed online). Flash style: online
 * softmax over tiles of positions staged in shared memory, one workgroup per (KV head, token);
 * n_head / n_head_kv * head_dim <= 4096.
 * n_split > 1 (up to 64; for decoding long contexts, where n_head_kv x n_tokens workgroups are
 * too few): each (KV head, token) is spread over n_split workgroups, each taking a range of
 * ceil(max_len / n_split) positions (rounded up to the tile), whose partial results go to
 * scratch (n_tokens n_head n_split (head_dim + 2) floats) and are merged by a second dispatch
 * (recorded after a barrier). max_len: more than every token's position. */
struct vk_op_attention_args {
    const struct vk_kv_layer *kv;
    uint32_t n_tokens, n_head;
    float scale;
    bool q_f16;
    bool p_f16;  /* round the probabilities to F16 before the V products, as ggml's CPU path does
                  * without flash attention: two passes over K (max and sum, then values); only
                  * with n_split 1 (ignored otherwise) */
    struct vk_view q, tokens, out;
    uint32_t n_split, max_len;
    struct vk_view scratch;
};
bool vk_op_attention(struct vk_ops *ops, const struct vk_op_attention_args *a, char *err, size_t errlen);

/* ------------------------------------------------------------------ router --- */

/* Per token: softmax over n_expert logits (<= 1024), the k (<= 16) most probable experts, ties to
 * the lower index, in decreasing probability; their probabilities, divided by their sum when
 * norm. ids (uint32) and weights: n_tokens rows of k. */
struct vk_op_router_args {
    uint32_t n_tokens, n_expert, k;
    bool norm;
    struct vk_view logits, ids, weights;
};
bool vk_op_router(struct vk_ops *ops, const struct vk_op_router_args *a, char *err, size_t errlen);

/* ------------------------------------------------------------------- MoE ---- */

/* Expert-indexed matrix-vector products: for pair q = t k + j (token t, slot j < k),
 * y[q] = W[ids[q]] x(t, j), where W is n_expert matrices of nrows x ncols (a GGUF type, the
 * tensor [ncols, nrows, n_expert] as stored) and x(t, j) starts x_slot_stride floats after
 * x(t, 0) = row t of x (x_slot_stride 0: every slot multiplies the token's row). A tensor larger
 * than one binding runs in expert ranges, one dispatch each. x's offset, stride and slot stride:
 * multiples of 16 bytes / 4 floats.
 * route set (the output of vk_op_moe_group for these ids, recorded before, then vk_barrier): the
 * pairs of each expert are multiplied as one tiled matrix product (for prefill batches) instead of
 * one matrix-vector product per pair. The results are the same up to F32 summation order. */
struct vk_op_moe_matvec_args {
    uint32_t type, nrows, ncols, n_expert;
    const struct vk_buffer *w;
    VkDeviceSize w_off;             /* a multiple of 4 */
    uint32_t n_tokens, k;
    struct vk_view ids;             /* uint32, n_tokens rows of k (stride ignored: k) */
    struct vk_view x;
    uint32_t x_slot_stride;
    struct vk_view y;               /* n_tokens k rows of nrows */
    struct vk_view route;           /* optional: uint32 scratch written by vk_op_moe_group */
    struct vk_view xs;              /* optional: x's activation scales from vk_op_act_round (the scale
                                     * of x's first block at xs.off; stride ignored) */
};
bool vk_op_moe_matvec(struct vk_ops *ops, const struct vk_op_moe_matvec_args *a, char *err, size_t errlen);

/* Groups the (token, slot) pairs of the routing ids by expert into `route`, a uint32 scratch of
 * vk_op_moe_route_words(n_tokens k, n_expert) words (n_expert <= 1024), for the grouped products
 * of vk_op_moe_matvec. One small dispatch; ids >= n_expert are left out. */
uint32_t vk_op_moe_route_words(uint32_t n_pairs, uint32_t n_expert);
struct vk_op_moe_group_args {
    uint32_t n_tokens, k, n_expert;
    struct vk_view ids, route;
};
bool vk_op_moe_group(struct vk_ops *ops, const struct vk_op_moe_group_args *a, char *err, size_t errlen);

/* y[t] = sum over j < k of weights[t][j] x[t k + j] (rows of n floats), in slot order. */
struct vk_op_moe_combine_args {
    uint32_t n_tokens, k, n;
    struct vk_view x, weights, y;   /* weights: n_tokens rows of k (stride ignored: k) */
};
bool vk_op_moe_combine(struct vk_ops *ops, const struct vk_op_moe_combine_args *a, char *err, size_t errlen);

/* The routed experts' FFN: y[t] = sum_j w[t][j] down[e] (silu(gate[e] x[t]) * up[e] x[t]), e =
 * ids[t][j], from the router's ids and weights; records gate/up products, SwiGLU, down products
 * and the weighted sum with barriers between them (and after). gate/up: [n_embd, n_ff,
 * n_expert], down: [n_ff, n_embd, n_expert]. Scratch: gate_out and up_out hold n_tokens k rows of
 * n_ff floats (contiguous, n_ff a multiple of 4), down_out n_tokens k rows of n_embd; route
 * (optional, see vk_op_moe_group): the products run grouped by expert, the grouping recorded
 * first. */
struct vk_op_moe_ffn_args {
    uint32_t n_tokens, k, n_expert, n_embd, n_ff;
    uint32_t gate_type, up_type, down_type;
    const struct vk_buffer *gate, *up, *down;
    VkDeviceSize gate_off, up_off, down_off;
    struct vk_view ids, weights, x, y;
    struct vk_view gate_out, up_out, down_out;
    struct vk_view route;
    bool act_round;                 /* as ggml: x is already rounded for gate_type (see vk_op_act_round;
                                     * up_type must pair with the same activation type), and the
                                     * SwiGLU output is rounded here for down_type */
    struct vk_view x_scales;        /* optional, with act_round: x's scales from vk_op_act_round */
    struct vk_view gate_scales;     /* optional, with act_round: scratch for the SwiGLU output's scales,
                                     * n_tokens k n_ff / 32 floats */
};
bool vk_op_moe_ffn(struct vk_ops *ops, const struct vk_op_moe_ffn_args *a, char *err, size_t errlen);

/* ------------------------------------------------------------- elementwise --- */

enum vk_op_ew {
    VK_EW_ADD,          /* a + b */
    VK_EW_SWIGLU,       /* silu(a) * b = a / (1 + exp(-a)) * b */
    VK_EW_SIGMOID_MUL,  /* a * sigmoid(b) */
    VK_EW_SCALE,        /* a * s (b unused) */
};

/* y = f(a, b) over `rows` rows of n floats. b_per_row: b holds one value per row (element 0 of
 * each b row), as a per-token gate. y may be a or b. */
struct vk_op_ew_args {
    enum vk_op_ew op;
    uint32_t rows, n;
    struct vk_view a, b, y;
    bool b_per_row;
    float s;
};
bool vk_op_elementwise(struct vk_ops *ops, const struct vk_op_ew_args *a, char *err, size_t errlen);

/* ----------------------------------------------------------- act rounding --- */

/* y = x as ggml's CPU path hands it to a product with weights of type wtype: quantized to the type
 * that type's dot product pairs with (Q8_0 / Q8_1 blocks of 32 with an F16 scale, Q8_K blocks of 256,
 * F16, BF16) and dequantized, so the shaders' F32 products see the values ggml's integer dot
 * products see. F32 weights: a copy. rows of n floats, n a multiple of the block; y may be x. */
struct vk_op_act_round_args {
    uint32_t wtype, rows, n;
    struct vk_view x, y;
    struct vk_view scales;          /* optional (Q8_0 / Q8_1 / Q8_K): the scale of each block, rows x
                                     * (y stride / block) floats from scales.off, in y's order; y's row
                                     * stride must then be whole blocks */
};
bool vk_op_act_round(struct vk_ops *ops, const struct vk_op_act_round_args *a, char *err, size_t errlen);
/* The activation type ggml pairs with weights of type wtype (enum q_type; Q_F32 for F32 weights). */
uint32_t vk_op_act_type(uint32_t wtype);

#endif
