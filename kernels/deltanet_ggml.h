/* deltanet_ggml.h: internal to dn_delta_ggml (kernels/deltanet_ggml.c): one token of one v-head
 * in ggml's float order, scalar and AVX2, so the dispatcher and the tests can reach both. */
#ifndef MOESERVE_DELTANET_GGML_H
#define MOESERVE_DELTANET_GGML_H

/* vec_dot_f32's lanes: four accumulators of 16 */
#define DN_GGML_SLOTS 64

/* S (d x d, row i = S[i][:]) one step: see dn_delta_ggml. scratch: DN_GGML_SLOTS * d + d floats. */
typedef void (*dn_ggml_step_fn)(int d, float *S, const float *q, const float *k, const float *v, float g,
                                float beta, float scale, float *o, float *scratch);

void dn_ggml_step_scalar(int d, float *S, const float *q, const float *k, const float *v, float g, float beta,
                         float scale, float *o, float *scratch);
void dn_ggml_step_avx2(int d, float *S, const float *q, const float *k, const float *v, float g, float beta,
                       float scale, float *o, float *scratch);

#endif
