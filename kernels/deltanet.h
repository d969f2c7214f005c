/* deltanet.h: the Gated DeltaNet math of qwen3next's linear-attention layers: causal conv + SiLU,
 * L2 norm, beta/decay gates, the gated delta rule (recurrent and chunked forms), gated RMSNorm. */
#ifndef MOESERVE_DELTANET_H
#define MOESERVE_DELTANET_H

#include <stddef.h>

/* Shapes of one DeltaNet layer (GGUF qwen3next.ssm.*). q, k and v heads all have head_dim values;
 * v-head j reads k-head j / (n_v_heads / n_k_heads) (repeat-interleave, not tiling). */
typedef struct {
    int n_k_heads;   /* ssm.group_count */
    int n_v_heads;   /* ssm.time_step_rank; a multiple of n_k_heads */
    int head_dim;    /* ssm.state_size; ssm.inner_size == n_v_heads * head_dim */
    int conv_kernel; /* ssm.conv_kernel (K) */
} dn_shape;

/* 0 if the shape is usable, else -1 with a message in err. */
int dn_shape_check(const dn_shape *s, char *err, size_t errlen);
/* Conv channels: q | k | v = 2 * n_k_heads * head_dim + n_v_heads * head_dim. */
int dn_conv_channels(const dn_shape *s);
/* Floats of one sequence's conv state: (K - 1) rows of dn_conv_channels. */
size_t dn_conv_state_floats(const dn_shape *s);
/* Floats of one sequence's delta-rule state: n_v_heads matrices of head_dim x head_dim. */
size_t dn_ssm_state_floats(const dn_shape *s);

/* Causal depthwise conv over `channels` channels, kernel K, no bias, then SiLU, for n_tokens
 * consecutive tokens of one sequence. x: token t's row at x + t * x_stride; out likewise (must not
 * overlap x). weight: ggml {K, channels}, i.e. channel c's taps at weight[c * K + p], tap K-1 on
 * the current token, tap 0 on the token K-1 back. conv_state: (K-1) rows of `channels` floats,
 * the inputs of the previous K-1 tokens, oldest first (zeros at a sequence's start); updated to
 * the last K-1 inputs. Taps are summed in float from tap 0 up with fused multiply-adds, and SiLU
 * takes ggml's vectorised exp, as ggml_ssm_conv and ggml_silu do (op_silu_at). */
void dn_conv_silu(int channels, int kernel, const float *weight, float *conv_state,
                  const float *x, size_t x_stride, float *out, size_t out_stride, int n_tokens);

/* x /= max(||x||, eps) in place (ggml_l2_norm: sum of squares in double; eps is the model's
 * rms eps in llama.cpp's qwen3next graph). */
void dn_l2_norm(float *x, int n, float eps);
/* L2-normalise the q and k heads of n_tokens conv output rows (row t at x + t * stride). */
void dn_l2_norm_qk(const dn_shape *s, float *x, size_t stride, int n_tokens, float eps);

/* One token's ssm_ba output (2 * n_v_heads values, grouped per k-head g: the beta logits of its
 * n_v/n_k v-heads, then their alpha logits) -> beta[j] = sigmoid(b_j) and the log-decay
 * g[j] = ssm_a[j] * softplus(a_j + dt_bias[j]) (negative since ssm_a = -exp(A_log) < 0). */
void dn_beta_gate(const dn_shape *s, const float *ba, const float *dt_bias, const float *ssm_a,
                  float *beta, float *g);

/* Inputs and output of the delta rule for n_tokens tokens of one sequence. Token t: q/k head h at
 * q + t * q_stride + h * head_dim (n_k_heads heads, already L2-normalised, q NOT pre-scaled),
 * v head j at v + t * v_stride + j * head_dim, g and beta at [t * n_v_heads + j], output head j
 * at out + t * out_stride + j * head_dim (out must not overlap the inputs). */
typedef struct {
    const float *q, *k, *v;
    size_t q_stride, k_stride, v_stride;
    const float *g, *beta;
    float *out;
    size_t out_stride;
} dn_delta_io;

/* The gated delta rule, token by token, on v-heads [head_begin, head_end) (split heads across
 * threads this way; heads are independent). state: the sequence's dn_ssm_state_floats floats;
 * v-head j's matrix S (k index i, v index c) at state + j*d*d + i*d + c, i.e. row i holds S[i][:]
 * (the transpose of ggml's memory order, same matrix). Per token, as ggml's GATED_DELTA_NET op:
 * S = exp(g) S; u = beta (v - S^T k); S += k u^T; o = S^T q / sqrt(d). (The decay is applied to
 * S^T k rather than to S before the product: equal up to rounding, one pass over S fewer.)
 * Processing a sequence in pieces gives bit-identical results to processing it at once. */
void dn_delta_recurrent(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state,
                        int head_begin, int head_end);

/* Floats of scratch dn_delta_chunked needs for chunks of `chunk` tokens. */
size_t dn_chunk_scratch_floats(const dn_shape *s, int chunk);
/* The same rule in chunks of `chunk` tokens (WY / UT-transform form): per chunk and head, the
 * inverse of a unit lower-triangular chunk x chunk matrix, then matrix products against the state.
 * Same outputs and final state as dn_delta_recurrent up to float rounding (about 1e-6 relative),
 * faster for prompts at Qwen3-Next's 128x128 states (chunk 16-32 is best on the CPU).
 * scratch: dn_chunk_scratch_floats(s, chunk) floats, one per concurrent caller. chunk < 1 means
 * token by token (no scratch used). */
void dn_delta_chunked(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state,
                      int chunk, float *scratch, int head_begin, int head_end);

/* Floats of scratch dn_delta_ggml needs, one per concurrent caller. */
size_t dn_ggml_scratch_floats(const dn_shape *s);
/* The same rule in exactly ggml-cpu's float order (its GATED_DELTA_NET op, which llama.cpp runs
 * for prompt chunks and single tokens alike), so a qwen3next model gives llama.cpp's numbers: per
 * token and v-head, S *= e^g (one rounding per element); u = (v - S^T k) beta; S += k u^T (fused
 * multiply-adds); o = (S^T q) / sqrt(d); both S^T x summed as ggml's AVX-512 vec_dot_f32 (four
 * 16-lane accumulators over steps of 64, folded (0 + 2) + (1 + 3), the tail after the fold). Same
 * layout and arguments as dn_delta_recurrent; any split of a sequence gives the same bits. */
void dn_delta_ggml(const dn_shape *s, const dn_delta_io *io, int n_tokens, float *state, float *scratch,
                   int head_begin, int head_end);

/* Which build of the hot loops runs: "avx2" (AVX2 + FMA, when the CPU has them) or "sse2"
 * (the x86-64 baseline; also forced by MOESERVE_ISA=scalar). */
const char *dn_isa(void);

/* Gated RMSNorm of n_heads heads of head_dim values in place:
 * o = (o / sqrt(mean(o^2) + eps)) * weight * silu(z), weight shared by the heads. */
void dn_gated_rmsnorm(float *o, const float *z, const float *weight, int n_heads, int head_dim,
                      float eps);

#endif
