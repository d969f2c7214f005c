/* test_deltanet.c: the DeltaNet kernels against a float64 reference written from the formulas,
 * recurrent vs chunked delta rule, pieces vs whole, conv state, and ssm_state snapshots. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ssm_state.h"
#include "kernels/deltanet.h"
#include "kernels/deltanet_ggml.h"
#include "kernels/deltanet_internal.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"

/* ------------------------------------------------------------------ random data --- */

static struct test_rng rng = {0x9e3779b97f4a7c15ull};

static float frand(void) /* uniform in [-1, 1) */
{
    const uint64_t v = test_rng_next(&rng);
    return (float)((double)(v >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_floats(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float));
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = frand() * scale;
    return p;
}

/* max |a - b| / max |b|: a normwise relative error */
static double rel_err_fd(const float *a, const double *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs(b[i]));
    }
    return mb > 0 ? md / mb : md;
}

static double rel_err_ff(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)a[i] - (double)b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    return mb > 0 ? md / mb : md;
}

/* ------------------------------------------------------------ one DeltaNet layer --- */

/* The tiny qwen3next shapes: 2 k-heads, 4 v-heads of 64, conv kernel 4 (512 channels). */
static const dn_shape TINY = {.n_k_heads = 2, .n_v_heads = 4, .head_dim = 64, .conv_kernel = 4};
static const float EPS = 1e-6f;

struct layer {
    dn_shape sh;
    float *convw;   /* {K, channels} */
    float *dt_bias; /* [n_v] */
    float *ssm_a;   /* [n_v], negative */
    float *normw;   /* [head_dim] */
};

static bool layer_init(struct layer *L, const dn_shape *sh)
{
    L->sh = *sh;
    const int ch = dn_conv_channels(sh);
    L->convw = rand_floats((size_t)ch * sh->conv_kernel, 0.7f);
    L->dt_bias = rand_floats((size_t)sh->n_v_heads, 1.0f);
    L->ssm_a = rand_floats((size_t)sh->n_v_heads, 1.0f);
    L->normw = rand_floats((size_t)sh->head_dim, 1.0f);
    if (!L->convw || !L->dt_bias || !L->ssm_a || !L->normw)
        return false;
    for (int j = 0; j < sh->n_v_heads; j++) /* -exp(A_log), A_log in [-1, 1.5) */
        L->ssm_a[j] = -expf(1.25f * L->ssm_a[j] + 0.25f);
    return true;
}

static void layer_free(struct layer *L)
{
    free(L->convw);
    free(L->dt_bias);
    free(L->ssm_a);
    free(L->normw);
}

/* Inputs for T tokens: qkv (the attn_qkv projection), ba (the ssm_ba projection), z (gate). */
struct inputs {
    int T;
    float *qkv, *ba, *z;
};

static bool inputs_init(struct inputs *in, const dn_shape *sh, int T)
{
    in->T = T;
    in->qkv = rand_floats((size_t)T * dn_conv_channels(sh), 2.0f);
    in->ba = rand_floats((size_t)T * 2 * sh->n_v_heads, 2.5f);
    in->z = rand_floats((size_t)T * sh->n_v_heads * sh->head_dim, 2.0f);
    return in->qkv && in->ba && in->z;
}

static void inputs_free(struct inputs *in)
{
    free(in->qkv);
    free(in->ba);
    free(in->z);
}

/* -------------------------------------------------------- float64 reference ---
 * Written from the README's description, with switches for the classic mistakes so the test can
 * show that it tells them apart. */

struct ref_opts {
    bool tiled_heads;    /* v-head j reads k-head j % n_k instead of j / rep */
    bool ba_split;       /* ssm_ba read as [all beta | all alpha] */
    bool decay_positive; /* exp(-g) instead of exp(g) */
    bool reset_per_token;/* forget S every token */
    bool conv_reversed;  /* tap 0 on the current token */
    bool norm_plus_one;  /* (1 + ssm_norm) as for the zero-centred norms */
};

static double dsilu(double x) { return x / (1.0 + exp(-x)); }

/* out: T x (n_v*d) after the gated RMSNorm; S_out (optional): final n_v x d x d, S[j][i][c]. */
static void reference(const struct layer *L, const struct inputs *in, struct ref_opts o,
                      double *out, double *S_out)
{
    const dn_shape *sh = &L->sh;
    const int d = sh->head_dim, nk = sh->n_k_heads, nv = sh->n_v_heads, K = sh->conv_kernel;
    const int ch = dn_conv_channels(sh), rep = nv / nk, T = in->T;
    double *S = calloc((size_t)nv * d * d, sizeof(double));
    double *c = malloc((size_t)ch * sizeof(double));
    double *u = malloc((size_t)d * sizeof(double)), *oh = malloc((size_t)d * sizeof(double));
    if (!S || !c || !u || !oh)
        goto done;
    for (int t = 0; t < T; t++) {
        /* causal conv: tap K-1 on token t, tap 0 on token t-(K-1); before the start: zero */
        for (int ci = 0; ci < ch; ci++) {
            double acc = 0;
            for (int p = 0; p < K; p++) {
                int src = t - (K - 1) + p;
                const int tap = o.conv_reversed ? K - 1 - p : p;
                if (src >= 0)
                    acc += (double)L->convw[(size_t)ci * K + tap] * in->qkv[(size_t)src * ch + ci];
            }
            c[ci] = dsilu(acc);
        }
        /* L2 norm of each q and k head */
        for (int h = 0; h < 2 * nk; h++) {
            double ss = 0;
            for (int i = 0; i < d; i++)
                ss += c[h * d + i] * c[h * d + i];
            double nrm = fmax(sqrt(ss), 1e-6);
            for (int i = 0; i < d; i++)
                c[h * d + i] /= nrm;
        }
        if (o.reset_per_token)
            memset(S, 0, (size_t)nv * d * d * sizeof(double));
        for (int j = 0; j < nv; j++) {
            const int g_of_j = j / rep, r = j % rep;
            double bl, al;
            if (o.ba_split) {
                bl = in->ba[(size_t)t * 2 * nv + j];
                al = in->ba[(size_t)t * 2 * nv + nv + j];
            } else {
                bl = in->ba[(size_t)t * 2 * nv + g_of_j * 2 * rep + r];
                al = in->ba[(size_t)t * 2 * nv + g_of_j * 2 * rep + rep + r];
            }
            const double beta = 1.0 / (1.0 + exp(-bl));
            const double x = al + L->dt_bias[j];
            const double g = L->ssm_a[j] * log1p(exp(x));
            const int kh = o.tiled_heads ? j % nk : j / rep;
            const double *q = c + kh * d, *k = c + (nk + kh) * d, *v = c + 2 * nk * d + j * d;
            double *Sj = S + (size_t)j * d * d; /* Sj[i*d + cc] = S[i][cc] */
            const double dec = exp(o.decay_positive ? -g : g);
            for (size_t e = 0; e < (size_t)d * d; e++)
                Sj[e] *= dec;
            for (int cc = 0; cc < d; cc++) { /* u = beta (v - S^T k) */
                double sk = 0;
                for (int i = 0; i < d; i++)
                    sk += Sj[(size_t)i * d + cc] * k[i];
                u[cc] = beta * (v[cc] - sk);
            }
            for (int i = 0; i < d; i++)
                for (int cc = 0; cc < d; cc++)
                    Sj[(size_t)i * d + cc] += k[i] * u[cc];
            double ss = 0;
            for (int cc = 0; cc < d; cc++) { /* o = S^T q / sqrt(d) */
                double acc = 0;
                for (int i = 0; i < d; i++)
                    acc += Sj[(size_t)i * d + cc] * q[i];
                oh[cc] = acc / sqrt((double)d);
                ss += oh[cc] * oh[cc];
            }
            const double inv = 1.0 / sqrt(ss / d + EPS);
            const float *z = in->z + (size_t)t * nv * d + (size_t)j * d;
            double *dst = out + (size_t)t * nv * d + (size_t)j * d;
            for (int cc = 0; cc < d; cc++)
                dst[cc] = oh[cc] * inv * (L->normw[cc] + (o.norm_plus_one ? 1.0 : 0.0)) * dsilu(z[cc]);
        }
    }
    if (S_out)
        memcpy(S_out, S, (size_t)nv * d * d * sizeof(double));
done:
    free(S);
    free(c);
    free(u);
    free(oh);
}

/* ------------------------------------------------------------ kernel pipeline --- */

/* Runs tokens [t0, t0+n) of `in` through the kernels on the given state. chunk 0: recurrent;
 * chunk -1: ggml's exact order (dn_delta_ggml). */
static bool pipeline(const struct layer *L, const struct inputs *in, int t0, int n, int chunk,
                     float *conv_state, float *S, float *out)
{
    const dn_shape *sh = &L->sh;
    const int d = sh->head_dim, nv = sh->n_v_heads, nk = sh->n_k_heads;
    const int ch = dn_conv_channels(sh);
    float *c = malloc((size_t)n * ch * sizeof(float));
    float *beta = malloc((size_t)n * nv * sizeof(float)), *g = malloc((size_t)n * nv * sizeof(float));
    float *scratch = chunk > 0   ? malloc(dn_chunk_scratch_floats(sh, chunk) * sizeof(float))
                     : chunk < 0 ? malloc(dn_ggml_scratch_floats(sh) * sizeof(float))
                                 : NULL;
    bool ok = c && beta && g && (scratch || !chunk);
    if (ok) {
        dn_conv_silu(ch, sh->conv_kernel, L->convw, conv_state, in->qkv + (size_t)t0 * ch,
                     (size_t)ch, c, (size_t)ch, n);
        dn_l2_norm_qk(sh, c, (size_t)ch, n, EPS);
        for (int t = 0; t < n; t++)
            dn_beta_gate(sh, in->ba + (size_t)(t0 + t) * 2 * nv, L->dt_bias, L->ssm_a,
                         beta + (size_t)t * nv, g + (size_t)t * nv);
        dn_delta_io io = {
            .q = c, .k = c + (size_t)nk * d, .v = c + (size_t)2 * nk * d,
            .q_stride = (size_t)ch, .k_stride = (size_t)ch, .v_stride = (size_t)ch,
            .g = g, .beta = beta, .out = out, .out_stride = (size_t)nv * d,
        };
        if (chunk > 0)
            dn_delta_chunked(sh, &io, n, S, chunk, scratch, 0, nv);
        else if (chunk < 0)
            dn_delta_ggml(sh, &io, n, S, scratch, 0, nv);
        else
            dn_delta_recurrent(sh, &io, n, S, 0, nv);
        for (int t = 0; t < n; t++)
            dn_gated_rmsnorm(out + (size_t)t * nv * d, in->z + (size_t)(t0 + t) * nv * d,
                             L->normw, nv, d, EPS);
    }
    free(c);
    free(beta);
    free(g);
    free(scratch);
    return ok;
}

/* ---------------------------------------------------------------------- tests --- */

static void test_shapes(void)
{
    char err[128];
    CHECK(dn_shape_check(&TINY, err, sizeof(err)) == 0, "tiny shape rejected");
    CHECK(dn_conv_channels(&TINY) == 512, "channels %d", dn_conv_channels(&TINY));
    CHECK(dn_conv_state_floats(&TINY) == 3 * 512, "conv floats");
    CHECK(dn_ssm_state_floats(&TINY) == 4 * 64 * 64, "ssm floats");
    dn_shape bad = TINY;
    bad.n_v_heads = 3;
    CHECK(dn_shape_check(&bad, err, sizeof(err)) != 0 && strstr(err, "multiple"), "%s", err);
    bad = TINY;
    bad.head_dim = 0;
    CHECK(dn_shape_check(&bad, err, sizeof(err)) != 0, "head_dim 0 accepted");
}

/* Conv: zero history at the start, taps in the right order, state carried across calls. */
static void test_conv(void)
{
    enum { CH = 5, K = 4, T = 9 };
    float w[CH * K], x[T * CH], whole[T * CH], piece[T * CH];
    for (int i = 0; i < CH * K; i++)
        w[i] = frand();
    for (int i = 0; i < T * CH; i++)
        x[i] = frand() * 3;
    float st[(K - 1) * CH] = {0};
    dn_conv_silu(CH, K, w, st, x, CH, whole, CH, T);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < CH; c++) {
            double acc = 0;
            for (int p = 0; p < K; p++) {
                int src = t - (K - 1) + p;
                if (src >= 0)
                    acc += (double)w[c * K + p] * x[src * CH + c];
            }
            worst = fmax(worst, fabs(dsilu(acc) - whole[t * CH + c]));
        }
    CHECK(worst < 1e-5, "conv vs reference: %g", worst);
    /* first token sees only tap K-1 */
    CHECK(fabsf(whole[2] - (float)dsilu((double)w[2 * K + K - 1] * x[2])) < 1e-6f, "token 0");
    /* state after = last K-1 inputs, oldest first */
    CHECK(memcmp(st, x + (T - (K - 1)) * CH, sizeof(st)) == 0, "state after whole");

    /* pieces of 1, 2, then the rest: bit-identical outputs (same summation order) */
    float st2[(K - 1) * CH] = {0};
    dn_conv_silu(CH, K, w, st2, x, CH, piece, CH, 1);
    CHECK(st2[0] == 0 && st2[CH] == 0 && memcmp(st2 + 2 * CH, x, CH * sizeof(float)) == 0,
          "state after one token: zeros then x0");
    dn_conv_silu(CH, K, w, st2, x + CH, CH, piece + CH, CH, 2);
    CHECK(memcmp(st2, x, 3 * CH * sizeof(float)) == 0, "state after three tokens");
    dn_conv_silu(CH, K, w, st2, x + 3 * CH, CH, piece + 3 * CH, CH, T - 3);
    CHECK(memcmp(piece, whole, sizeof(whole)) == 0, "pieces differ from whole");
    CHECK(memcmp(st2, st, sizeof(st)) == 0, "state differs after pieces");
}

static void test_l2_norm(void)
{
    float z[8] = {0};
    dn_l2_norm(z, 8, 1e-6f);
    bool zeros = true;
    for (int i = 0; i < 8; i++)
        zeros = zeros && z[i] == 0.0f;
    CHECK(zeros, "zero vector changed");
    float tiny[2] = {3e-7f, 4e-7f}; /* norm 5e-7 < eps: divided by eps */
    dn_l2_norm(tiny, 2, 1e-6f);
    CHECK(fabsf(tiny[0] - 0.3f) < 1e-6f && fabsf(tiny[1] - 0.4f) < 1e-6f, "%g %g", tiny[0], tiny[1]);
    float v[3] = {3, 0, -4};
    dn_l2_norm(v, 3, 1e-6f);
    CHECK(fabsf(v[0] - 0.6f) < 1e-7f && fabsf(v[2] + 0.8f) < 1e-7f, "%g %g", v[0], v[2]);
}

static void test_beta_gate(void)
{
    /* 2 k-heads, 4 v-heads: rows b0 b1 a0 a1 b2 b3 a2 a3 */
    const float ba[8] = {0.5f, -1, 2, -3, 1.5f, 0, 25, -0.5f};
    const float dt[4] = {0.1f, 0.2f, 0.3f, -4};
    const float A[4] = {-1, -2, -0.5f, -3};
    float beta[4], g[4];
    dn_beta_gate(&TINY, ba, dt, A, beta, g);
    const double bl[4] = {0.5, -1, 1.5, 0}, al[4] = {2, -3, 25, -0.5};
    for (int j = 0; j < 4; j++) {
        double eb = 1 / (1 + exp(-bl[j])), eg = A[j] * log1p(exp(al[j] + dt[j]));
        CHECK(fabs(beta[j] - eb) < 1e-6, "beta %d: %g vs %g", j, beta[j], eb);
        CHECK(fabs(g[j] - eg) < 1e-5 * fmax(1, fabs(eg)) && g[j] < 0, "g %d: %g vs %g", j, g[j], eg);
    }
}

static void test_gated_rmsnorm(void)
{
    enum { H = 3, D = 16 };
    float o[H * D], z[H * D], w[D], orig[H * D];
    for (int i = 0; i < H * D; i++) {
        o[i] = orig[i] = frand() * 4;
        z[i] = frand() * 3;
    }
    for (int i = 0; i < D; i++)
        w[i] = frand();
    dn_gated_rmsnorm(o, z, w, H, D, 1e-6f);
    double worst = 0;
    for (int h = 0; h < H; h++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += (double)orig[h * D + i] * orig[h * D + i];
        for (int i = 0; i < D; i++) {
            double e = orig[h * D + i] / sqrt(ss / D + 1e-6) * w[i] * dsilu(z[h * D + i]);
            worst = fmax(worst, fabs(e - o[h * D + i]) / fmax(1, fabs(e)));
        }
    }
    CHECK(worst < 1e-5, "gated rmsnorm: %g", worst);
}

/* The whole DeltaNet core (conv .. gated norm) against the float64 reference; and the reference's
 * classic mistakes must all be far away (so this test can tell them apart). */
static void test_against_reference(const dn_shape *sh)
{
    enum { T = 40 };
    struct layer L;
    struct inputs in;
    REQUIRE_VOID(layer_init(&L, sh) && inputs_init(&in, sh, T));
    const size_t n_out = (size_t)T * sh->n_v_heads * sh->head_dim, n_s = dn_ssm_state_floats(sh);
    double *ref = malloc(n_out * sizeof(double)), *bad = malloc(n_out * sizeof(double));
    double *Sref = malloc(n_s * sizeof(double));
    float *out = malloc(n_out * sizeof(float)), *S = calloc(n_s, sizeof(float));
    float *conv = calloc(dn_conv_state_floats(sh), sizeof(float));
    REQUIRE_VOID(ref && bad && Sref && out && S && conv);

    reference(&L, &in, (struct ref_opts){0}, ref, Sref);
    for (int chunk = -1; chunk <= 16; chunk += chunk < 0 ? 1 : 16) {
        memset(S, 0, n_s * sizeof(float));
        memset(conv, 0, dn_conv_state_floats(sh) * sizeof(float));
        REQUIRE_VOID(pipeline(&L, &in, 0, T, chunk, conv, S, out));
        double eo = rel_err_fd(out, ref, n_out), es = rel_err_fd(S, Sref, n_s);
        CHECK(eo < 2e-5, "d %d chunk %d: output vs float64 reference: %g", sh->head_dim, chunk, eo);
        CHECK(es < 2e-5, "d %d chunk %d: state vs float64 reference: %g", sh->head_dim, chunk, es);
    }

    const struct ref_opts mistakes[] = {
        {.tiled_heads = true}, {.ba_split = true}, {.decay_positive = true},
        {.reset_per_token = true}, {.conv_reversed = true}, {.norm_plus_one = true},
    };
    /* with one k-head, tiling and the ba split are no mistakes at all */
    for (size_t m = sh->n_k_heads > 1 ? 0 : 2; m < sizeof(mistakes) / sizeof(mistakes[0]); m++) {
        reference(&L, &in, mistakes[m], bad, NULL);
        double e = rel_err_fd(out, bad, n_out);
        CHECK(e > 1e-2, "mistake %zu indistinguishable: %g", m, e);
    }
    free(ref);
    free(bad);
    free(Sref);
    free(out);
    free(S);
    free(conv);
    inputs_free(&in);
    layer_free(&L);
}

/* Random delta-rule inputs (q, k L2-normalised, decays of both strengths). */
struct delta_case {
    dn_shape sh;
    int T;
    float *qk, *v, *g, *beta; /* qk: T rows of [q heads | k heads] */
};

static bool delta_case_init(struct delta_case *c, const dn_shape *sh, int T)
{
    const int d = sh->head_dim, nk = sh->n_k_heads, nv = sh->n_v_heads;
    c->sh = *sh;
    c->T = T;
    c->qk = rand_floats((size_t)T * 2 * nk * d, 1.0f);
    c->v = rand_floats((size_t)T * nv * d, 2.0f);
    c->g = rand_floats((size_t)T * nv, 1.0f);
    c->beta = rand_floats((size_t)T * nv, 1.0f);
    if (!c->qk || !c->v || !c->g || !c->beta)
        return false;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < 2 * nk; h++)
            dn_l2_norm(c->qk + ((size_t)t * 2 * nk + h) * d, d, EPS);
    for (int i = 0; i < T * nv; i++) {
        /* mostly slow decays, some strong; beta in (0, 1) */
        float x = c->g[i];
        c->g[i] = (i % 7 == 3) ? -4.0f * fabsf(x) : -0.05f * fabsf(x) - 0.001f;
        c->beta[i] = 0.5f + 0.49f * c->beta[i];
    }
    return true;
}

static void delta_case_free(struct delta_case *c)
{
    free(c->qk);
    free(c->v);
    free(c->g);
    free(c->beta);
}

/* Tokens [t0, t0+n) of the case; chunk 0 = recurrent. */
static bool delta_run(const struct delta_case *c, int t0, int n, int chunk, float *S, float *out,
                      int h0, int h1)
{
    const int d = c->sh.head_dim, nk = c->sh.n_k_heads, nv = c->sh.n_v_heads;
    const size_t qs = (size_t)2 * nk * d;
    dn_delta_io io = {
        .q = c->qk + (size_t)t0 * qs, .k = c->qk + (size_t)t0 * qs + (size_t)nk * d,
        .v = c->v + (size_t)t0 * nv * d, .q_stride = qs, .k_stride = qs,
        .v_stride = (size_t)nv * d, .g = c->g + (size_t)t0 * nv, .beta = c->beta + (size_t)t0 * nv,
        .out = out + (size_t)t0 * nv * d, .out_stride = (size_t)nv * d,
    };
    if (!chunk) {
        dn_delta_recurrent(&c->sh, &io, n, S, h0, h1);
        return true;
    }
    float *scratch = malloc(dn_chunk_scratch_floats(&c->sh, chunk) * sizeof(float));
    if (!scratch)
        return false;
    dn_delta_chunked(&c->sh, &io, n, S, chunk, scratch, h0, h1);
    free(scratch);
    return true;
}

static void test_recurrent_vs_chunked(void)
{
    const int Ts[] = {1, 7, 63, 64, 65, 200};
    const int chunks[] = {1, 8, 16, 37, 64};
    const size_t n_s = dn_ssm_state_floats(&TINY);
    double worst_o = 0, worst_s = 0;
    for (size_t ti = 0; ti < sizeof(Ts) / sizeof(Ts[0]); ti++) {
        const int T = Ts[ti];
        struct delta_case c;
        REQUIRE_VOID(delta_case_init(&c, &TINY, T));
        const size_t n_out = (size_t)T * 256;
        float *S0 = rand_floats(n_s, 0.3f); /* a non-zero starting state */
        float *Sr = malloc(n_s * sizeof(float)), *Sc = malloc(n_s * sizeof(float));
        float *outr = malloc(n_out * sizeof(float)), *outc = malloc(n_out * sizeof(float));
        REQUIRE_VOID(S0 && Sr && Sc && outr && outc);
        memcpy(Sr, S0, n_s * sizeof(float));
        REQUIRE_VOID(delta_run(&c, 0, T, 0, Sr, outr, 0, 4));
        for (size_t ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
            memcpy(Sc, S0, n_s * sizeof(float));
            REQUIRE_VOID(delta_run(&c, 0, T, chunks[ci], Sc, outc, 0, 4));
            double eo = rel_err_ff(outc, outr, n_out), es = rel_err_ff(Sc, Sr, n_s);
            worst_o = fmax(worst_o, eo);
            worst_s = fmax(worst_s, es);
            CHECK(eo < 1e-5, "T %d chunk %d: outputs differ by %g", T, chunks[ci], eo);
            CHECK(es < 1e-5, "T %d chunk %d: states differ by %g", T, chunks[ci], es);
        }
        free(S0);
        free(Sr);
        free(Sc);
        free(outr);
        free(outc);
        delta_case_free(&c);
    }
    printf("recurrent vs chunked: worst relative difference %.2e (outputs), %.2e (states)\n",
           worst_o, worst_s);
}

/* Qwen3-Coder-Next's head shapes (16 k-heads, 32 v-heads of 128) on a range of heads only. */
static void test_real_shape_heads(void)
{
    const dn_shape real = {.n_k_heads = 16, .n_v_heads = 32, .head_dim = 128, .conv_kernel = 4};
    enum { T = 70, H0 = 5, H1 = 8 };
    struct delta_case c;
    REQUIRE_VOID(delta_case_init(&c, &real, T));
    const size_t n_s = dn_ssm_state_floats(&real), n_out = (size_t)T * 32 * 128;
    float *Sr = calloc(n_s, sizeof(float)), *Sc = calloc(n_s, sizeof(float));
    float *outr = calloc(n_out, sizeof(float)), *outc = calloc(n_out, sizeof(float));
    REQUIRE_VOID(Sr && Sc && outr && outc);
    REQUIRE_VOID(delta_run(&c, 0, T, 0, Sr, outr, H0, H1));
    REQUIRE_VOID(delta_run(&c, 0, T, 32, Sc, outc, H0, H1));
    CHECK(rel_err_ff(outc, outr, n_out) < 1e-5, "real shape outputs: %g", rel_err_ff(outc, outr, n_out));
    CHECK(rel_err_ff(Sc, Sr, n_s) < 1e-5, "real shape states: %g", rel_err_ff(Sc, Sr, n_s));
    /* heads outside the range untouched */
    bool untouched = true;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < 32; j++)
            if (j < H0 || j >= H1)
                for (int i = 0; i < 128; i++)
                    untouched = untouched && outc[((size_t)t * 32 + j) * 128 + i] == 0.0f;
    CHECK(untouched, "heads outside [%d, %d) written", H0, H1);
    bool nonzero = false;
    for (size_t i = 0; i < n_out; i++)
        nonzero = nonzero || outc[i] != 0.0f;
    CHECK(nonzero, "no output written");
    free(Sr);
    free(Sc);
    free(outr);
    free(outc);
    delta_case_free(&c);
}

/* The SSE2 and AVX2 builds of the hot loops against float64, on sizes with vector tails. */
static void test_isa_agree(void)
{
    const bool avx2 = q_cpu_features()->avx2 && q_cpu_features()->fma;
    printf("delta rule kernels in use: %s\n", dn_isa());
    enum { M = 7, N = 37, K = 13 };
    float A[M * K], B[K * N], C0[M * N], C[M * N];
    for (int i = 0; i < M * K; i++)
        A[i] = frand();
    for (int i = 0; i < K * N; i++)
        B[i] = frand();
    for (int i = 0; i < M * N; i++)
        C0[i] = frand();
    double ref[M * N];
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            double acc = C0[r * N + c];
            for (int p = 0; p < K; p++)
                acc += (double)A[r * K + p] * B[p * N + c];
            ref[r * N + c] = acc;
        }
    const dn_mm_fn mms[2] = {dn_mm_sse2, dn_mm_avx2};
    const dn_step_fn steps[2] = {dn_step_sse2, dn_step_avx2};
    for (int isa = 0; isa < (avx2 ? 2 : 1); isa++) {
        memcpy(C, C0, sizeof(C));
        mms[isa](M, N, K, A, K, B, N, C, N, true);
        CHECK(rel_err_fd(C, ref, M * N) < 1e-6, "mm isa %d accumulate: %g", isa, rel_err_fd(C, ref, M * N));
        mms[isa](M, N, K, A, K, B, N, C, N, false);
        for (int i = 0; i < M * N; i++)
            ref[i] -= C0[i];
        CHECK(rel_err_fd(C, ref, M * N) < 1e-6, "mm isa %d: %g", isa, rel_err_fd(C, ref, M * N));
        for (int i = 0; i < M * N; i++)
            ref[i] += C0[i];
    }
    const int dims[] = {20, 64, 72};
    for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
        const int d = dims[di];
        float *S0 = rand_floats((size_t)d * d, 0.3f), *vecs = rand_floats(3 * (size_t)d, 1.0f);
        float *S = malloc((size_t)d * d * sizeof(float)), *o = malloc((size_t)d * sizeof(float));
        double *Sd = malloc((size_t)d * d * sizeof(double)), *od = malloc((size_t)d * sizeof(double));
        REQUIRE_VOID(S0 && vecs && S && o && Sd && od);
        const float *q = vecs, *k = vecs + d, *v = vecs + 2 * d, g = -0.3f, beta = 0.7f;
        for (int c = 0; c < d; c++) { /* float64: decay, u = beta (v - S^T k), S += k u^T */
            double sk = 0;
            for (int i = 0; i < d; i++)
                sk += exp(g) * S0[i * d + c] * k[i];
            const double u = beta * (v[c] - sk);
            od[c] = 0;
            for (int i = 0; i < d; i++) {
                Sd[i * d + c] = exp(g) * S0[i * d + c] + k[i] * u;
                od[c] += Sd[i * d + c] * q[i] * 0.5;
            }
        }
        for (int isa = 0; isa < (avx2 ? 2 : 1); isa++) {
            memcpy(S, S0, (size_t)d * d * sizeof(float));
            steps[isa](d, S, q, k, v, g, beta, 0.5f, o);
            CHECK(rel_err_fd(S, Sd, (size_t)d * d) < 1e-6 && rel_err_fd(o, od, d) < 1e-6,
                  "step isa %d d %d: %g %g", isa, d, rel_err_fd(S, Sd, (size_t)d * d), rel_err_fd(o, od, d));
        }
        free(S0);
        free(vecs);
        free(S);
        free(o);
        free(Sd);
        free(od);
    }
}

/* One sequence in pieces (1 token at a time, pieces of 7, all at once; recurrent and chunked)
 * through the whole pipeline: same outputs and states. */
static void test_pieces(void)
{
    enum { T = 100 };
    struct layer L;
    struct inputs in;
    REQUIRE_VOID(layer_init(&L, &TINY) && inputs_init(&in, &TINY, T));
    const size_t n_out = (size_t)T * 256, n_s = dn_ssm_state_floats(&TINY);
    const size_t n_c = dn_conv_state_floats(&TINY);
    float *base = malloc(n_out * sizeof(float)), *out = malloc(n_out * sizeof(float));
    float *Sb = calloc(n_s, sizeof(float)), *S = malloc(n_s * sizeof(float));
    float *cb = calloc(n_c, sizeof(float)), *conv = malloc(n_c * sizeof(float));
    REQUIRE_VOID(base && out && Sb && S && cb && conv);
    REQUIRE_VOID(pipeline(&L, &in, 0, T, 0, cb, Sb, base)); /* all at once, recurrent */

    const struct { int piece, chunk; } ways[] = {{1, 0}, {7, 0}, {7, 64}, {7, 4}, {T, 64},
                                                 {T, 16}, {33, 8}};
    for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
        memset(S, 0, n_s * sizeof(float));
        memset(conv, 0, n_c * sizeof(float));
        for (int t0 = 0; t0 < T; t0 += ways[w].piece) {
            int n = T - t0 < ways[w].piece ? T - t0 : ways[w].piece;
            REQUIRE_VOID(pipeline(&L, &in, t0, n, ways[w].chunk, conv, S, out + (size_t)t0 * 256));
        }
        CHECK(memcmp(conv, cb, n_c * sizeof(float)) == 0, "piece %d: conv state differs",
              ways[w].piece);
        double eo = rel_err_ff(out, base, n_out), es = rel_err_ff(S, Sb, n_s);
        if (ways[w].chunk == 0) /* recurrent in pieces: the very same arithmetic */
            CHECK(eo == 0 && es == 0, "piece %d recurrent: %g %g", ways[w].piece, eo, es);
        else
            CHECK(eo < 1e-5 && es < 1e-5, "piece %d chunk %d: %g %g", ways[w].piece,
                  ways[w].chunk, eo, es);
    }
    free(base);
    free(out);
    free(Sb);
    free(S);
    free(cb);
    free(conv);
    inputs_free(&in);
    layer_free(&L);
}

static void test_ssm_state(void)
{
    char err[128];
    struct ssm_state st;
    const uint32_t LAYERS = 3;
    const size_t per_seq = LAYERS * (3 * 512 + 4 * 64 * 64) * sizeof(float);
    CHECK(ssm_state_seq_bytes(&TINY, LAYERS) == per_seq, "seq bytes %zu", ssm_state_seq_bytes(&TINY, LAYERS));
    CHECK(ssm_state_bytes(&TINY, LAYERS, 4, 2) == 6 * per_seq + 2 * sizeof(int64_t), "bytes");
    dn_shape bad = TINY;
    bad.n_v_heads = 0;
    CHECK(!ssm_state_init(&st, &bad, LAYERS, 2, 1, err, sizeof(err)), "bad shape accepted");
    CHECK(!ssm_state_init(&st, &TINY, 0, 2, 1, err, sizeof(err)), "no layers accepted");
    REQUIRE_VOID(ssm_state_init(&st, &TINY, LAYERS, 4, 2, err, sizeof(err)));

    /* layout: distinct, in range, zeroed */
    CHECK(ssm_conv(&st, 0, 0) != NULL && ssm_conv(&st, 4, 0) == NULL && ssm_conv(&st, 0, 3) == NULL,
          "conv accessor ranges");
    CHECK(ssm_matrices(&st, 3, 2) + 4 * 64 * 64 == st.data + 4 * st.block_floats, "last block end");
    CHECK(ssm_matrices(&st, 1, 0) == ssm_conv(&st, 1, 0) + 3 * 512, "matrices follow conv");
    CHECK(ssm_conv(&st, 1, 1) == ssm_matrices(&st, 1, 0) + 4 * 64 * 64, "layers back to back");
    CHECK(ssm_conv(&st, 2, 0)[7] == 0 && ssm_matrices(&st, 3, 2)[5] == 0, "not zeroed");
    CHECK(ssm_snapshot_pos(&st, 0) == -1 && ssm_snapshot_restore(&st, 0, 0) == -1, "empty slot");
    CHECK(!ssm_snapshot_save(&st, 2, 0, 5) && !ssm_snapshot_save(&st, 0, 4, 5), "out of range save");
    CHECK(!ssm_copy(&st, 0, 4) && !ssm_reset(&st, 4), "out of range copy/reset");

    /* a layer-2 sequence run: snapshot at 50, continue 30; restore elsewhere, continue again */
    enum { T = 80, CUT = 50 };
    struct layer L;
    struct inputs in;
    REQUIRE_VOID(layer_init(&L, &TINY) && inputs_init(&in, &TINY, T));
    float *outa = malloc((size_t)T * 256 * sizeof(float)), *outb = malloc((size_t)T * 256 * sizeof(float));
    REQUIRE_VOID(outa && outb);
    REQUIRE_VOID(pipeline(&L, &in, 0, CUT, 16, ssm_conv(&st, 1, 2), ssm_matrices(&st, 1, 2), outa));
    CHECK(ssm_snapshot_save(&st, 1, 1, CUT), "save");
    CHECK(ssm_snapshot_pos(&st, 1) == CUT, "pos");
    REQUIRE_VOID(pipeline(&L, &in, CUT, T - CUT, 0, ssm_conv(&st, 1, 2), ssm_matrices(&st, 1, 2),
                          outa + CUT * 256));
    /* seq 1 has moved on; restore into seq 3 and into seq 1 itself */
    CHECK(ssm_snapshot_restore(&st, 1, 3) == CUT, "restore into 3");
    REQUIRE_VOID(pipeline(&L, &in, CUT, T - CUT, 0, ssm_conv(&st, 3, 2), ssm_matrices(&st, 3, 2),
                          outb + CUT * 256));
    CHECK(memcmp(outa + CUT * 256, outb + CUT * 256, (T - CUT) * 256 * sizeof(float)) == 0,
          "continuation after restore differs");
    CHECK(memcmp(ssm_conv(&st, 1, 0), ssm_conv(&st, 3, 0), st.block_floats * sizeof(float)) == 0,
          "states after both continuations differ");
    /* copy seq 3 -> 0, reset 3 */
    CHECK(ssm_copy(&st, 0, 3), "copy");
    CHECK(memcmp(ssm_conv(&st, 0, 0), ssm_conv(&st, 3, 0), st.block_floats * sizeof(float)) == 0, "copy content");
    CHECK(ssm_reset(&st, 3), "reset");
    bool zero = true;
    for (size_t i = 0; i < st.block_floats; i++)
        zero = zero && ssm_conv(&st, 3, 0)[i] == 0.0f;
    CHECK(zero, "reset left data");
    CHECK(ssm_matrices(&st, 0, 2)[100] != 0.0f, "copy lost data");
    /* after reset, seq 3 restarts from position 0 like a fresh sequence */
    REQUIRE_VOID(pipeline(&L, &in, 0, CUT, 0, ssm_conv(&st, 3, 2), ssm_matrices(&st, 3, 2), outb));
    CHECK(rel_err_ff(outb, outa, (size_t)CUT * 256) < 1e-5, "fresh after reset");
    ssm_snapshot_drop(&st, 1);
    CHECK(ssm_snapshot_pos(&st, 1) == -1 && ssm_snapshot_restore(&st, 1, 0) == -1, "dropped slot");
    free(outa);
    free(outb);
    inputs_free(&in);
    layer_free(&L);
    ssm_state_free(&st);
    CHECK(st.data == NULL, "free");
}

/* ggml's order: the AVX2 step equals the scalar one bit for bit (head sizes with and without a
 * 64-value tail and an 8-column tail), and splitting a sequence changes no bit. */
static void test_ggml_order(void)
{
    const int sizes[] = {64, 128, 72, 20};
    const struct q_cpu *cpu = q_cpu_features();
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0] && cpu->avx2 && cpu->fma; si++) {
        const int d = sizes[si];
        float *S1 = rand_floats((size_t)d * d, 0.5f), *S2 = malloc((size_t)d * d * sizeof(float));
        float *q = rand_floats((size_t)d, 1.0f), *k = rand_floats((size_t)d, 1.0f), *v = rand_floats((size_t)d, 1.0f);
        float *o1 = malloc((size_t)d * sizeof(float)), *o2 = malloc((size_t)d * sizeof(float));
        float *scr = malloc((size_t)(DN_GGML_SLOTS + 1) * d * sizeof(float));
        REQUIRE_VOID(S1 && S2 && q && k && v && o1 && o2 && scr);
        memcpy(S2, S1, (size_t)d * d * sizeof(float));
        bool same = true;
        for (int t = 0; t < 5; t++) {
            dn_ggml_step_scalar(d, S1, q, k, v, -0.1f * (float)t, 0.7f, 0.125f, o1, scr);
            dn_ggml_step_avx2(d, S2, q, k, v, -0.1f * (float)t, 0.7f, 0.125f, o2, scr);
            same &= memcmp(S1, S2, (size_t)d * d * sizeof(float)) == 0 && memcmp(o1, o2, (size_t)d * sizeof(float)) == 0;
        }
        CHECK(same, "d %d: AVX2 ggml-order step differs from the scalar one", d);
        free(S1), free(S2), free(q), free(k), free(v), free(o1), free(o2), free(scr);
    }
    /* split invariance on the tiny layer: 40 tokens at once vs 1 + 6 + 33 */
    struct layer L;
    struct inputs in;
    REQUIRE_VOID(layer_init(&L, &TINY) && inputs_init(&in, &TINY, 40));
    const size_t n_out = (size_t)40 * TINY.n_v_heads * TINY.head_dim, n_s = dn_ssm_state_floats(&TINY);
    float *out1 = malloc(n_out * sizeof(float)), *out2 = malloc(n_out * sizeof(float));
    float *S1 = calloc(n_s, sizeof(float)), *S2 = calloc(n_s, sizeof(float));
    float *c1 = calloc(dn_conv_state_floats(&TINY), sizeof(float)), *c2 = calloc(dn_conv_state_floats(&TINY), sizeof(float));
    REQUIRE_VOID(out1 && out2 && S1 && S2 && c1 && c2);
    const size_t row = (size_t)TINY.n_v_heads * TINY.head_dim;
    bool ok = pipeline(&L, &in, 0, 40, -1, c1, S1, out1) && pipeline(&L, &in, 0, 1, -1, c2, S2, out2) &&
              pipeline(&L, &in, 1, 6, -1, c2, S2, out2 + row) && pipeline(&L, &in, 7, 33, -1, c2, S2, out2 + 7 * row);
    CHECK(ok && memcmp(out1, out2, n_out * sizeof(float)) == 0 && memcmp(S1, S2, n_s * sizeof(float)) == 0,
          "ggml order: a sequence in pieces gives the same bits as at once");
    free(out1), free(out2), free(S1), free(S2), free(c1), free(c2);
    inputs_free(&in);
    layer_free(&L);
}

int main(void)
{
    test_shapes();
    test_conv();
    test_l2_norm();
    test_beta_gate();
    test_gated_rmsnorm();
    test_against_reference(&TINY);
    /* an odd head size (vector tails) with 3 v-heads on one k-head and a kernel of 2 */
    test_against_reference(&(dn_shape){.n_k_heads = 1, .n_v_heads = 3, .head_dim = 20, .conv_kernel = 2});
    test_isa_agree();
    test_recurrent_vs_chunked();
    test_real_shape_heads();
    test_pieces();
    test_ssm_state();
    test_ggml_order();
    return test_finish();
}
