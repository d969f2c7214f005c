/* vexp.h: ggml-cpu's vectorised expf, computed lane by lane so results match it bit for bit.
 * llama.cpp uses it in softmax and SiLU; plain expf differs by an ulp now and then, and such an
 * ulp can flip a later F16 or Q8_0 rounding. */
#ifndef MOESERVE_VEXP_H
#define MOESERVE_VEXP_H

enum q_vexp_flavour {
    Q_VEXP_LIBM = 0,     /* plain expf */
    Q_VEXP_AVX2 = 1,     /* ggml's AVX2+FMA version */
    Q_VEXP_AVX512 = 2,   /* ggml's AVX-512 version */
};

/* The flavour the reference build used (MOESERVE_VEXP=libm|avx2|avx512 overrides). */
enum q_vexp_flavour q_vexp_default(void);

float q_vexpf(float x, enum q_vexp_flavour f);

/* silu(x) = x / (1 + exp(-x)) with that exp. */
static inline float q_vsilu(float x, enum q_vexp_flavour f)
{
    return x / (1.0f + q_vexpf(-x, f));
}

#endif

#ifndef MOESERVE_VEXP_SOFTMAX
#define MOESERVE_VEXP_SOFTMAX
/* y[i] = exp(x[i] - max); returns the sum as ggml's softmax forms it: per vector of lanes a
 * tree sum in float, added into a double; lanes past n count as masked (exp = 0) when
 * pad_masked, else the tail goes through plain expf one by one (ggml's scalar tail). */
double q_vexp_softmax_sum(const float *x, float *y, int n, float max, enum q_vexp_flavour f,
                          int pad_masked);
#endif
