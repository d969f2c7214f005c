/* test_vk_ops.c: the GPU forward-pass operations (engine/vk_ops.h) against plain CPU references
 * computed here on random data (quantized weights from testdata/quants.gguf), validation layer on. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/gguf.h"
#include "engine/kvpool.h"
#include "engine/vk_ops.h"
#include "engine/vulkan.h"
#include "kernels/qtypes.h"
#include "kernels/quants.h"
#include "tests/test.h"
#include "tests/test_rand.h"
#include "tests/test_q8.h"

struct env {
    struct vk_ctx *ctx;
    struct vk_ops *ops;
    const struct gguf_file *f;
    bool timed;
    double gpu_ms;  /* timestamped GPU time of the last submission */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static struct test_rng rng = {0x2545F4914F6CDD1Dull};

static uint32_t rand_u32(void)
{
    const uint64_t v = test_rng_next(&rng);
    return (uint32_t)(v >> 32);
}

/* Uniform in [-1, 1). */
static float rand_unit(void)
{
    return (float)((double)rand_u32() / 4294967296.0 * 2.0 - 1.0);
}

static float *rand_floats(size_t n, float scale)
{
    float *p = malloc(4 * (n ? n : 1));
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = scale * rand_unit();
    return p;
}

/* F32 -> F16 bits rounded to nearest even (rint's mode), written independently of the shader's
 * bit manipulation: finite inputs only, as the test's data are. */
static uint16_t half_bits(float f)
{
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0)
        return sign | 0x7C00;
    if (a < 0x1p-14)
        return sign | (uint16_t)rint(a * 0x1p24);  /* subnormal (1024 = the smallest normal) */
    int ex;
    frexp(a, &ex);  /* a = m 2^ex, m in [0.5, 1) */
    int e = ex - 1;
    double mant = rint((a / ldexp(1.0, e) - 1.0) * 1024.0);  /* 1024: carries into the exponent */
    return sign | (uint16_t)(((e + 15) << 10) + (int)mant);
}

static float half_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)((h & 0x8000) ? -v : v);
}

/* ------------------------------------------------------------ GPU helpers --- */

/* A device-local buffer holding `bytes` of data (data NULL: zeros). */
static bool buf_with(struct env *e, struct vk_buffer *b, const void *data, size_t bytes)
{
    char err[512];
    bool ok = vk_buffer_create(e->ctx, b, bytes, VK_MEM_DEVICE, err, sizeof err);
    if (ok && data)
        ok = vk_buffer_upload(e->ctx, b, 0, data, bytes, err, sizeof err);
    if (ok && !data) {
        void *z = calloc(1, bytes);
        ok = z && vk_buffer_upload(e->ctx, b, 0, z, bytes, err, sizeof err);
        free(z);
    }
    CHECK(ok, "buffer of %zu bytes: %s", bytes, err);
    return ok;
}

static bool download(struct env *e, const struct vk_buffer *b, VkDeviceSize off, void *dst, size_t n)
{
    char err[512];
    bool ok = vk_buffer_download(e->ctx, b, off, dst, n, err, sizeof err);
    CHECK(ok, "download: %s", err);
    return ok;
}

static bool begin(struct env *e)
{
    char err[512];
    bool ok = vk_begin(e->ctx, err, sizeof err) && (!e->timed || vk_timestamp(e->ctx, 0, err, sizeof err));
    CHECK(ok, "begin: %s", err);
    return ok;
}

/* Submits what was recorded (when rec_ok; otherwise abandons it, failing with rec_err). */
static bool finish(struct env *e, bool rec_ok, const char *what, const char *rec_err)
{
    char err[512] = "";
    CHECK(rec_ok, "%s: record: %s", what, rec_err);
    if (!rec_ok) {
        vk_cancel(e->ctx);
        return false;
    }
    double ns = 0;
    bool ok = (!e->timed || vk_timestamp(e->ctx, 1, err, sizeof err)) && vk_submit_wait(e->ctx, err, sizeof err) &&
              (!e->timed || vk_timestamp_elapsed_ns(e->ctx, 0, 1, &ns, err, sizeof err));
    CHECK(ok, "%s: submit: %s", what, err);
    e->gpu_ms = ns / 1e6;
    return ok;
}

/* ------------------------------------------------------------- get_rows --- */

/* Rows of T.q looked up by ids (some repeated, out of order) equal rows of T.ref. The GPU
 * dequantizes with the same F32 operations as ggml except for their order inside a block, so a
 * value may differ by an F32 rounding or two: tolerance 1e-6 of the row's largest magnitude. */
static void check_get_rows_type(struct env *e, const char *tn, const struct gguf_tensor *q,
                                const struct gguf_tensor *ref, double *worst)
{
    uint32_t n_rows = (uint32_t)q->ne[1], ncols = (uint32_t)q->ne[0];
    enum { N_IDS = 7, YS = 1024 + 8 };
    uint32_t ids[N_IDS] = {3, 0, 2, 2, 1, 3, 0};
    for (int i = 0; i < N_IDS; i++)
        ids[i] %= n_rows;
    struct vk_buffer tb = {0}, ib = {0}, yb = {0};
    float *y = malloc(4ull * N_IDS * YS);
    REQUIRE_VOID(y && ncols <= 1024);
    if (buf_with(e, &tb, q->data, q->nbytes) && buf_with(e, &ib, ids, sizeof ids) &&
        buf_with(e, &yb, NULL, 4ull * (N_IDS * YS + 4)) && begin(e)) {
        char err[512] = "";
        struct vk_op_get_rows_args a = {
            .type = q->type, .n_rows = n_rows, .ncols = ncols, .table = &tb, .n_ids = N_IDS,
            .ids = {.b = &ib}, .y = {.b = &yb, .off = 16, .stride = YS},
        };
        bool ok = vk_op_get_rows(e->ops, &a, err, sizeof err);
        if (finish(e, ok, tn, err) && download(e, &yb, 16, y, 4ull * N_IDS * YS)) {
            const float *r = ref->data;
            double w = 0;
            for (int t = 0; t < N_IDS; t++) {
                double mx = 0, d = 0;
                for (uint32_t i = 0; i < ncols; i++)
                    mx = fmax(mx, fabs(r[(size_t)ids[t] * ncols + i]));
                for (uint32_t i = 0; i < ncols; i++) {
                    double diff = fabs(y[(size_t)t * YS + i] - r[(size_t)ids[t] * ncols + i]);
                    d = diff > d || isnan(diff) ? diff : d;
                }
                double q_err = d / (1e-6 * mx + 1e-30);
                w = q_err > w || isnan(q_err) ? q_err : w;
            }
            CHECK(w <= 1.0, "get_rows %s: error %.3g x tolerance", tn, w);
            *worst = fmax(*worst, w);
        }
    }
    free(y);
    vk_buffer_destroy(e->ctx, &tb);
    vk_buffer_destroy(e->ctx, &ib);
    vk_buffer_destroy(e->ctx, &yb);
}

/* A 300-row Q6_K table (rows of the test vector repeated, 840 bytes each) in a context whose
 * bindings cover 80 KiB: the lookup runs in 4 row ranges, and an id past the table leaves its
 * row alone. */
static void check_get_rows_split(struct env *e, const struct gguf_tensor *q, const struct gguf_tensor *ref)
{
    uint32_t src_rows = (uint32_t)q->ne[1], ncols = (uint32_t)q->ne[0];
    size_t row_bytes = q->nbytes / src_rows;
    enum { ROWS = 300, N_IDS = 6 };
    uint8_t *tab = malloc(ROWS * row_bytes);
    float *y = malloc(4ull * N_IDS * ncols);
    REQUIRE_VOID(tab && y);
    for (int r = 0; r < ROWS; r++)
        memcpy(tab + r * row_bytes, (const uint8_t *)q->data + (r % src_rows) * row_bytes, row_bytes);
    uint32_t ids[N_IDS] = {299, 0, 141, 1000, 258, 97};
    struct vk_buffer tb = {0}, ib = {0}, yb = {0};
    if (buf_with(e, &tb, tab, ROWS * row_bytes) && buf_with(e, &ib, ids, sizeof ids) &&
        buf_with(e, &yb, NULL, 4ull * N_IDS * ncols) && begin(e)) {
        char err[512] = "";
        struct vk_op_get_rows_args a = {
            .type = q->type, .n_rows = ROWS, .ncols = ncols, .table = &tb, .n_ids = N_IDS,
            .ids = {.b = &ib}, .y = {.b = &yb},
        };
        bool ok = vk_op_get_rows(e->ops, &a, err, sizeof err);
        if (finish(e, ok, "get_rows split", err) && download(e, &yb, 0, y, 4ull * N_IDS * ncols)) {
            const float *r = ref->data;
            int bad = 0;
            for (int t = 0; t < N_IDS; t++)
                for (uint32_t i = 0; i < ncols; i++) {
                    float want = ids[t] >= ROWS ? 0.0f : r[(size_t)(ids[t] % src_rows) * ncols + i];
                    bad += !(fabsf(y[(size_t)t * ncols + i] - want) <= 1e-6f * 64);
                }
            CHECK(bad == 0, "get_rows split: %d values wrong", bad);
        }
    }
    free(tab);
    free(y);
    vk_buffer_destroy(e->ctx, &tb);
    vk_buffer_destroy(e->ctx, &ib);
    vk_buffer_destroy(e->ctx, &yb);
}

static void check_get_rows(struct env *e, struct env *split)
{
    const struct gguf_array *types = gguf_get_arr(e->f, "vectors.types", GGUF_STRING);
    REQUIRE_VOID(types);
    double t0 = now_ms(), worst = 0;
    int tested = 0;
    const struct gguf_tensor *src = gguf_find_tensor(e->f, "source");
    if (src) {
        check_get_rows_type(e, "f32", src, src, &worst);
        tested++;
    }
    for (uint64_t i = 0; i < types->count; i++) {
        char tn[64], name[96];
        snprintf(tn, sizeof tn, "%.*s", (int)types->strs[i].len, types->strs[i].ptr);
        int t = q_type_from_name(tn);
        if (t < 0 || !vk_ops_supports((uint32_t)t))
            continue;
        snprintf(name, sizeof name, "%s.q", tn);
        const struct gguf_tensor *q = gguf_find_tensor(e->f, name);
        snprintf(name, sizeof name, "%s.ref", tn);
        const struct gguf_tensor *ref = gguf_find_tensor(e->f, name);
        CHECK(q && ref && q->type == (uint32_t)t && ref->type == Q_F32, "%s: q/ref tensors", tn);
        if (q && ref && q->type == (uint32_t)t && ref->type == Q_F32) {
            check_get_rows_type(e, tn, q, ref, &worst);
            tested++;
        }
    }
    CHECK(tested == 26, "get_rows: all 26 shader types tested (%d)", tested);
    const struct gguf_tensor *q6 = gguf_find_tensor(e->f, "q6_K.q"), *r6 = gguf_find_tensor(e->f, "q6_K.ref");
    REQUIRE_VOID(q6 && r6);
    check_get_rows_split(split, q6, r6);
    printf("  get_rows: %d types, 7 ids of 1024, worst %.3f of tolerance (1e-6 of row max); %.0f ms\n", tested,
           worst, now_ms() - t0);
}

/* ---------------------------------------------------------------- rms_norm --- */

/* Double-precision reference; F32 on the GPU: sum of squares of up to 512 values, a square root
 * and two products, so 1e-5 relative (plus 1e-7 of the row's weight scale) holds easily. */
static void check_rms_norm(struct env *e)
{
    static const struct { uint32_t tokens, heads, n, xs; bool in_place; } cases[] = {
        {5, 1, 512, 520, false},   /* hidden state, strided rows */
        {3, 4, 128, 0, true},      /* per-head q norm, in place */
        {2, 2, 100, 0, false},     /* a row length that is no multiple of the workgroup */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t T = cases[c].tokens, H = cases[c].heads, n = cases[c].n, row = H * n;
        uint32_t xs = cases[c].xs ? cases[c].xs : row;
        size_t xcount = (size_t)T * xs;
        float *x = rand_floats(xcount, 3.0f), *w = rand_floats(n, 1.5f), *y = malloc(4 * xcount);
        REQUIRE_VOID(x && w && y);
        struct vk_buffer xb = {0}, wb = {0}, yb = {0};
        double worst = -1;
        if (buf_with(e, &xb, x, 4 * xcount) && buf_with(e, &wb, w, 4ull * n) &&
            (cases[c].in_place || buf_with(e, &yb, NULL, 4 * xcount)) && begin(e)) {
            const struct vk_buffer *out = cases[c].in_place ? &xb : &yb;
            char err[512] = "";
            struct vk_op_rms_norm_args a = {
                .n_tokens = T, .heads = H, .n = n, .eps = 1e-6f, .x = {.b = &xb, .stride = xs},
                .w = {.b = &wb}, .y = {.b = out, .stride = xs},
            };
            bool ok = vk_op_rms_norm(e->ops, &a, err, sizeof err);
            if (finish(e, ok, "rms_norm", err) && download(e, out, 0, y, 4 * xcount)) {
                worst = 0;
                for (uint32_t t = 0; t < T; t++)
                    for (uint32_t h = 0; h < H; h++) {
                        const float *xr = x + (size_t)t * xs + h * n;
                        double ss = 0;
                        for (uint32_t i = 0; i < n; i++)
                            ss += (double)xr[i] * xr[i];
                        double sc = 1.0 / sqrt(ss / n + 1e-6);
                        for (uint32_t i = 0; i < n; i++) {
                            double want = xr[i] * sc * w[i];
                            double q_err = fabs(y[(size_t)t * xs + h * n + i] - want) / (1e-5 * fabs(want) + 1e-7);
                            worst = q_err > worst || isnan(q_err) ? q_err : worst;
                        }
                    }
                CHECK(worst <= 1.0, "rms_norm case %zu: error %.3g x tolerance", c, worst);
            }
        }
        printf("  rms_norm %u tokens x %u heads x %u%s: worst %.3f of tolerance (1e-5 rel), GPU %.3f ms\n", T, H, n,
               cases[c].in_place ? " in place" : "", worst, e->gpu_ms);
        free(x);
        free(w);
        free(y);
        vk_buffer_destroy(e->ctx, &xb);
        vk_buffer_destroy(e->ctx, &wb);
        vk_buffer_destroy(e->ctx, &yb);
    }
}

/* -------------------------------------------------------------------- rope --- */

/* The reference follows ggml's rope cache: theta = pos, times powf(base, -2/n_rot) once per
 * pair, all in F32; then cos/sin in double of that F32 angle. The GPU reduces the angle modulo
 * 2 pi (exactly enough: ~1e-11 rad for positions up to 262143) and uses the device's sin/cos, which Vulkan only
 * bounds loosely; lavapipe's are accurate, so the tolerance is 1e-6 absolute on values in [-1, 1]
 * (a rotated value is off by about |x| times the angle error). */
static void check_rope(struct env *e)
{
    static const struct { uint32_t tokens, heads, head_dim, n_rot; float base; bool in_place; } cases[] = {
        {6, 4, 128, 128, 1000000.0f, false},  /* qwen3moe */
        {5, 3, 256, 64, 10000000.0f, true},   /* qwen3next: partial rotary (64 of 256), in place */
        {4, 2, 64, 32, 10000.0f, false},
    };
    static const int32_t positions[] = {0, 1, 17, 4095, 30001, 262143};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t T = cases[c].tokens, H = cases[c].heads, D = cases[c].head_dim, R = cases[c].n_rot;
        size_t count = (size_t)T * H * D;
        float *x = rand_floats(count, 1.0f), *y = malloc(4 * count);
        int32_t pos[8];
        for (uint32_t t = 0; t < T; t++)
            pos[t] = positions[(t + c) % 6];
        REQUIRE_VOID(x && y);
        struct vk_buffer xb = {0}, pb = {0}, yb = {0};
        double worst = -1;
        if (buf_with(e, &xb, x, 4 * count) && buf_with(e, &pb, pos, 4ull * T) &&
            (cases[c].in_place || buf_with(e, &yb, NULL, 4 * count)) && begin(e)) {
            const struct vk_buffer *out = cases[c].in_place ? &xb : &yb;
            char err[512] = "";
            struct vk_op_rope_args a = {
                .n_tokens = T, .heads = H, .head_dim = D, .n_rot = R, .freq_base = cases[c].base,
                .x = {.b = &xb}, .pos = {.b = &pb}, .y = {.b = out},
            };
            bool ok = vk_op_rope(e->ops, &a, err, sizeof err);
            if (finish(e, ok, "rope", err) && download(e, out, 0, y, 4 * count)) {
                worst = 0;
                float theta_scale = powf(cases[c].base, -2.0f / (float)R);
                for (uint32_t t = 0; t < T; t++)
                    for (uint32_t h = 0; h < H; h++) {
                        const float *xr = x + ((size_t)t * H + h) * D;
                        const float *yr = y + ((size_t)t * H + h) * D;
                        float theta = (float)pos[t];
                        for (uint32_t i = 0; i < R / 2; i++) {
                            double cs = cos((double)theta), sn = sin((double)theta);
                            double w0 = xr[i] * cs - xr[i + R / 2] * sn, w1 = xr[i] * sn + xr[i + R / 2] * cs;
                            double d = fmax(fabs(yr[i] - w0), fabs(yr[i + R / 2] - w1));
                            worst = d / 1e-6 > worst || isnan(d) ? d / 1e-6 : worst;
                            theta *= theta_scale;
                        }
                        for (uint32_t i = R; i < D; i++)
                            worst = yr[i] == xr[i] ? worst : INFINITY;  /* copied exactly */
                    }
                CHECK(worst <= 1.0, "rope case %zu: error %.3g x tolerance", c, worst);
            }
        }
        printf("  rope %u tokens x %u heads x %u (n_rot %u, base %g): worst %.3f of tolerance (1e-6 abs), "
               "GPU %.3f ms\n", T, H, D, R, cases[c].base, worst, e->gpu_ms);
        free(x);
        free(y);
        vk_buffer_destroy(e->ctx, &xb);
        vk_buffer_destroy(e->ctx, &pb);
        vk_buffer_destroy(e->ctx, &yb);
    }
}

/* ------------------------------------------------------ KV cache, attention --- */

/* Sequences grow in turns so that their pages interleave in the pool; the GPU page table is
 * kv_seq.pages of each sequence, padded to max_seq_pages. */
struct attn_case {
    uint32_t n_head, n_head_kv, head_dim, page_tokens;
    uint32_t len[3];    /* final length of each sequence */
    uint32_t split[3];  /* positions stored by the first batch; the second stores the rest */
    uint32_t n_split;   /* the second batch's attention in this many position ranges */
    bool q_f16;         /* q rounded to F16 (the reference rounds it too) */
};

/* Reference: double-precision softmax(scale q.k) v over the F16-rounded K and V the cache holds
 * (and the F16-rounded q with q_f16). The GPU computes the same in F32 (dot products over
 * head_dim, exp, an online rescaled sum, the merge of split ranges), so outputs (weighted means of
 * values in [-1, 1]) agree to about 1e-6: tolerance 1e-5 absolute. */
static void check_attention_case(struct env *e, const struct attn_case *ac)
{
    const uint32_t NS = 3, H = ac->n_head, HKV = ac->n_head_kv, D = ac->head_dim, PT = ac->page_tokens;
    const uint32_t row = HKV * D, qrow = H * D;
    uint32_t total = 0, max_len = 0;
    for (uint32_t s = 0; s < NS; s++) {
        total += ac->len[s];
        max_len = ac->len[s] > max_len ? ac->len[s] : max_len;
    }
    uint32_t max_seq_pages = (max_len + PT - 1) / PT, n_pages = NS * max_seq_pages + 2;
    struct kvpool pool;
    char err[512] = "";
    REQUIRE_VOID(kvpool_init(&pool, 1, 2 * row, 2 * row, PT, n_pages, NS, max_len, err, sizeof err));
    /* grow by one page per sequence per turn */
    for (uint32_t got = 0; got < max_len;) {
        got += PT;
        for (uint32_t s = 0; s < NS; s++)
            REQUIRE_VOID(kvpool_reserve(&pool, s, got < ac->len[s] ? got : ac->len[s]));
    }
    uint32_t *pages = calloc((size_t)NS * max_seq_pages, 4);
    /* tokens of both batches: batch 0 = positions [0, split), batch 1 = [split, len), sequences
     * interleaved; K, V (F32 in [-1, 1]) and q per token */
    uint32_t *tok = malloc(8ull * total);
    float *k = rand_floats((size_t)total * row, 1.0f), *v = rand_floats((size_t)total * row, 1.0f);
    float *q = rand_floats((size_t)total * qrow, 1.0f), *out = malloc(4ull * total * qrow);
    REQUIRE_VOID(pages && tok && k && v && q && out);
    for (uint32_t s = 0; s < NS; s++)
        memcpy(pages + s * max_seq_pages, pool.seqs[s].pages, 4ull * pool.seqs[s].n_pages);
    uint32_t n_batch[2] = {0, 0};
    for (int b = 0; b < 2; b++)
        for (uint32_t i = 0; i < max_len; i++)
            for (uint32_t s = 0; s < NS; s++) {
                uint32_t p0 = b == 0 ? 0 : ac->split[s], p1 = b == 0 ? ac->split[s] : ac->len[s];
                if (p0 + i < p1) {
                    uint32_t t = n_batch[0] + n_batch[1];
                    tok[2 * t] = s;
                    tok[2 * t + 1] = p0 + i;
                    n_batch[b]++;
                }
            }
    REQUIRE_VOID(n_batch[0] + n_batch[1] == total);
    /* the cache as the reference sees it: F16-rounded rows by (sequence, position) */
    float *kr = malloc(4ull * NS * max_len * row), *vr = malloc(4ull * NS * max_len * row);
    REQUIRE_VOID(kr && vr);
    for (uint32_t t = 0; t < total; t++)
        for (uint32_t i = 0; i < row; i++) {
            size_t at = ((size_t)tok[2 * t] * max_len + tok[2 * t + 1]) * row + i;
            kr[at] = half_value(half_bits(k[(size_t)t * row + i]));
            vr[at] = half_value(half_bits(v[(size_t)t * row + i]));
        }

    size_t cache_bytes = 2ull * row * PT * n_pages;
    struct vk_buffer kb = {0}, vb = {0}, qb = {0}, tb = {0}, pb = {0}, kc = {0}, vc = {0}, ob = {0}, sb = {0};
    uint32_t n_split = ac->n_split ? ac->n_split : 1;
    double worst = -1, ms[2] = {0, 0};
    int bad_bits = -1;
    bool ok = buf_with(e, &kb, k, 4ull * total * row) && buf_with(e, &vb, v, 4ull * total * row) &&
              buf_with(e, &qb, q, 4ull * total * qrow) && buf_with(e, &tb, tok, 8ull * total) &&
              buf_with(e, &pb, pages, 4ull * NS * max_seq_pages) && buf_with(e, &kc, NULL, cache_bytes + 64) &&
              buf_with(e, &vc, NULL, cache_bytes + 64) && buf_with(e, &ob, NULL, 4ull * total * qrow) &&
              buf_with(e, &sb, NULL, 4ull * total * H * n_split * (D + 2) + 32);
    struct vk_kv_layer kv = {
        .k = &kc, .v = &vc, .k_off = 64, .v_off = 0, .n_pages = n_pages, .page_tokens = PT, .n_head_kv = HKV,
        .head_dim = D, .pages = &pb, .n_seqs = NS, .max_seq_pages = max_seq_pages,
    };
    /* two submissions: each stores its batch's rows, then attends for its tokens */
    for (int b = 0; b < 2 && ok; b++) {
        uint32_t t0 = b == 0 ? 0 : n_batch[0], n = n_batch[b];
        struct vk_op_kv_store_args st = {
            .kv = &kv, .n_tokens = n, .k = {.b = &kb, .off = 4ull * t0 * row}, .v = {.b = &vb, .off = 4ull * t0 * row},
            .tokens = {.b = &tb, .off = 8ull * t0},
        };
        struct vk_op_attention_args at = {
            .kv = &kv, .n_tokens = n, .n_head = H, .q_f16 = ac->q_f16, .q = {.b = &qb, .off = 4ull * t0 * qrow},
            .tokens = {.b = &tb, .off = 8ull * t0}, .out = {.b = &ob, .off = 4ull * t0 * qrow},
            .n_split = b == 1 ? n_split : 1, .max_len = max_len, .scratch = {.b = &sb, .off = 32},
        };
        ok = begin(e);
        if (ok) {
            bool rec = vk_op_kv_store(e->ops, &st, err, sizeof err);
            if (rec)
                vk_barrier(e->ctx);
            rec = rec && vk_op_attention(e->ops, &at, err, sizeof err);
            ok = finish(e, rec, "kv_store + attention", err);
            ms[b] = e->gpu_ms;
        }
    }
    uint16_t *kc_host = malloc(cache_bytes), *vc_host = malloc(cache_bytes);
    REQUIRE_VOID(kc_host && vc_host);
    if (ok && download(e, &ob, 0, out, 4ull * total * qrow) && download(e, &kc, 64, kc_host, cache_bytes) &&
        download(e, &vc, 0, vc_host, cache_bytes)) {
        /* the stored rows: bit-exact F16 (round to nearest even) where kvpool puts them */
        bad_bits = 0;
        for (uint32_t t = 0; t < total; t++) {
            const uint16_t *kr16 = (const uint16_t *)(void *)((uint8_t *)kc_host +
                                                              (kvpool_k(&pool, 0, tok[2 * t], tok[2 * t + 1]) - pool.k));
            const uint16_t *vr16 = (const uint16_t *)(void *)((uint8_t *)vc_host +
                                                              (kvpool_v(&pool, 0, tok[2 * t], tok[2 * t + 1]) - pool.v));
            for (uint32_t i = 0; i < row; i++)
                bad_bits += (kr16[i] != half_bits(k[(size_t)t * row + i])) +
                            (vr16[i] != half_bits(v[(size_t)t * row + i]));
        }
        CHECK(bad_bits == 0, "kv_store: %d F16 values differ from round-to-nearest-even", bad_bits);

        worst = 0;
        double scale = 1.0 / sqrt((double)D), *sc = malloc(8ull * max_len);
        REQUIRE_VOID(sc);
        for (uint32_t t = 0; t < total; t++) {
            uint32_t s = tok[2 * t], p = tok[2 * t + 1];
            for (uint32_t h = 0; h < H; h++) {
                uint32_t kvh = h / (H / HKV);
                const float *qh = q + (size_t)t * qrow + h * D;
                double mx = -INFINITY, sum = 0;
                for (uint32_t j = 0; j <= p; j++) {
                    const float *kj = kr + ((size_t)s * max_len + j) * row + kvh * D;
                    double d = 0;
                    for (uint32_t i = 0; i < D; i++)
                        d += (double)(ac->q_f16 ? half_value(half_bits(qh[i])) : qh[i]) * kj[i];
                    sc[j] = d * scale;
                    mx = fmax(mx, sc[j]);
                }
                for (uint32_t j = 0; j <= p; j++)
                    sum += (sc[j] = exp(sc[j] - mx));
                for (uint32_t i = 0; i < D; i++) {
                    double o = 0;
                    for (uint32_t j = 0; j <= p; j++)
                        o += sc[j] * vr[((size_t)s * max_len + j) * row + kvh * D + i];
                    double d = fabs(out[(size_t)t * qrow + h * D + i] - o / sum) / 1e-5;
                    worst = d > worst || isnan(d) ? d : worst;
                }
            }
        }
        free(sc);
        CHECK(worst <= 1.0, "attention %u heads / %u KV heads x %u: error %.3g x tolerance", H, HKV, D, worst);
    }
    printf("  attention %u/%u heads x %u%s, pages of %u, sequences %u/%u/%u in 2 batches (%u + %u tokens%s): worst "
           "%.3f of tolerance (1e-5 abs); K/V F16 mismatches %d; GPU %.2f + %.2f ms\n", H, HKV, D,
           ac->q_f16 ? " (q F16)" : "", PT, ac->len[0], ac->len[1], ac->len[2], n_batch[0], n_batch[1],
           n_split > 1 ? ", split" : "", worst, bad_bits, ms[0], ms[1]);
    free(kc_host);
    free(vc_host);
    free(pages);
    free(tok);
    free(k);
    free(v);
    free(q);
    free(out);
    free(kr);
    free(vr);
    kvpool_free(&pool);
    struct vk_buffer *bufs[] = {&kb, &vb, &qb, &tb, &pb, &kc, &vc, &ob, &sb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        vk_buffer_destroy(e->ctx, bufs[i]);
}

/* kv_store with tokens outside the layout: a sequence past n_seqs, a position past the page
 * table, a page id past n_pages. Only the one valid token's rows change; the bytes after the
 * cache (a sentinel) stay. */
static void check_kv_guard(struct env *e)
{
    enum { PT = 4, NP = 2, ROW = 8, CACHE = 2 * ROW * PT * NP, SENT = 64 };
    uint32_t pages[4] = {1, 0, 0, 77};  /* sequence 0: pages 1, 0; sequence 1: 0, then a bad id */
    uint32_t tok[8] = {0, 5, 3, 0, 0, 9, 1, 4};
    float kv_src[4 * ROW];
    for (int i = 0; i < 4 * ROW; i++)
        kv_src[i] = (float)(i + 1);
    uint8_t *cache = malloc(CACHE + SENT);
    REQUIRE_VOID(cache);
    memset(cache, 0xA5, CACHE + SENT);
    struct vk_buffer pb = {0}, tb = {0}, sb = {0}, kc = {0};
    if (buf_with(e, &pb, pages, sizeof pages) && buf_with(e, &tb, tok, sizeof tok) &&
        buf_with(e, &sb, kv_src, sizeof kv_src) && buf_with(e, &kc, cache, CACHE + SENT) && begin(e)) {
        struct vk_kv_layer kv = {
            .k = &kc, .v = &kc, .k_off = 0, .v_off = 0, .n_pages = NP, .page_tokens = PT, .n_head_kv = 1,
            .head_dim = ROW, .pages = &pb, .n_seqs = 2, .max_seq_pages = 2,
        };
        struct vk_op_kv_store_args st = {.kv = &kv, .n_tokens = 4, .k = {.b = &sb}, .v = {.b = &sb},
                                         .tokens = {.b = &tb}};
        char err[512] = "";
        bool ok = vk_op_kv_store(e->ops, &st, err, sizeof err);
        uint8_t *got = malloc(CACHE + SENT);
        REQUIRE_VOID(got);
        if (finish(e, ok, "kv_store guard", err) && download(e, &kc, 0, got, CACHE + SENT)) {
            /* token 0 = (0, 5): the sequence's second page, id 0, slot 1 */
            size_t at = (0 * PT + 1) * 2 * ROW;
            int changed_elsewhere = 0, wrong = 0;
            for (size_t i = 0; i < CACHE + SENT; i++) {
                if (i >= at && i < at + 2 * ROW) {
                    uint16_t h;
                    memcpy(&h, got + (i & ~(size_t)1), 2);
                    wrong += h != half_bits(kv_src[(i - at) / 2]);
                } else {
                    changed_elsewhere += got[i] != 0xA5;
                }
            }
            CHECK(wrong == 0 && changed_elsewhere == 0, "kv_store guard: %d wrong, %d bytes changed elsewhere", wrong,
                  changed_elsewhere);
        }
        free(got);
    }
    free(cache);
    vk_buffer_destroy(e->ctx, &pb);
    vk_buffer_destroy(e->ctx, &tb);
    vk_buffer_destroy(e->ctx, &sb);
    vk_buffer_destroy(e->ctx, &kc);
}

static void check_attention(struct env *e)
{
    static const struct attn_case cases[] = {
        /* qwen3moe's shape (32 heads over 4 KV heads of 128) made small: 8 over 2 */
        {8, 2, 128, 16, {37, 90, 5}, {30, 60, 0}, 0, false},
        /* qwen3next's attention layers: 16 over 2 KV heads of 256 (short tile of 16); the
         * second batch in 3 ranges */
        {16, 2, 256, 8, {20, 3, 12}, {19, 1, 12}, 3, true},
        /* no grouping, a small head, long-ish context over many tiles */
        {2, 2, 64, 32, {300, 2, 1}, {296, 0, 1}, 0, false},
        /* decoding: one token per sequence over up to 200 positions in 5 ranges of 64, some of
         * them empty for the shorter sequences */
        {8, 2, 128, 16, {200, 150, 3}, {199, 149, 2}, 5, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_attention_case(e, &cases[i]);
    check_kv_guard(e);
}

/* ------------------------------------------------------------------ router --- */

/* Logits on a grid of 1/4 so that ties are common and near-ties are not: the ids must be exactly
 * the reference's (sorted by probability, then index); weights within 1e-5 relative (F32 exp and
 * sums over up to 512 experts against double). */
static void check_router(struct env *e)
{
    static const struct { uint32_t tokens, n_expert, k; bool norm; } cases[] = {
        {7, 128, 8, true},   /* qwen3moe */
        {5, 512, 10, true},  /* qwen3next */
        {3, 60, 4, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t T = cases[c].tokens, E = cases[c].n_expert, K = cases[c].k, LS = E + 3;
        float *l = malloc(4ull * T * LS), *w = malloc(4ull * T * K);
        uint32_t *ids = malloc(4ull * T * K);
        REQUIRE_VOID(l && w && ids);
        for (size_t i = 0; i < (size_t)T * LS; i++)
            l[i] = (float)((int)(rand_u32() % 33) - 16) * 0.25f;
        struct vk_buffer lb = {0}, ib = {0}, wb = {0};
        int bad_ids = -1;
        double worst = -1;
        if (buf_with(e, &lb, l, 4ull * T * LS) && buf_with(e, &ib, NULL, 4ull * T * K) &&
            buf_with(e, &wb, NULL, 4ull * T * K + 8) && begin(e)) {
            char err[512] = "";
            struct vk_op_router_args a = {
                .n_tokens = T, .n_expert = E, .k = K, .norm = cases[c].norm, .logits = {.b = &lb, .stride = LS},
                .ids = {.b = &ib}, .weights = {.b = &wb, .off = 8},
            };
            bool ok = vk_op_router(e->ops, &a, err, sizeof err);
            if (finish(e, ok, "router", err) && download(e, &ib, 0, ids, 4ull * T * K) &&
                download(e, &wb, 8, w, 4ull * T * K)) {
                bad_ids = 0;
                worst = 0;
                double *p = malloc(8ull * E);
                bool *taken = calloc(E, 1);
                REQUIRE_VOID(p && taken);
                for (uint32_t t = 0; t < T; t++) {
                    const float *lr = l + (size_t)t * LS;
                    double mx = -INFINITY, sum = 0, sel = 0;
                    for (uint32_t i = 0; i < E; i++)
                        mx = fmax(mx, lr[i]);
                    for (uint32_t i = 0; i < E; i++)
                        sum += (p[i] = exp(lr[i] - mx));
                    memset(taken, 0, E);
                    uint32_t want[16];
                    for (uint32_t j = 0; j < K; j++) {
                        uint32_t b = UINT32_MAX;
                        for (uint32_t i = 0; i < E; i++)
                            if (!taken[i] && (b == UINT32_MAX || p[i] > p[b]))
                                b = i;
                        taken[b] = true;
                        want[j] = b;
                        sel += p[b];
                    }
                    for (uint32_t j = 0; j < K; j++) {
                        bad_ids += ids[t * K + j] != want[j];
                        double ww = p[want[j]] / (cases[c].norm ? sel : sum);
                        double d = fabs(w[t * K + j] - ww) / (1e-5 * ww);
                        worst = d > worst || isnan(d) ? d : worst;
                    }
                }
                free(p);
                free(taken);
                CHECK(bad_ids == 0, "router case %zu: %d ids differ", c, bad_ids);
                CHECK(worst <= 1.0, "router case %zu: weights off by %.3g x tolerance", c, worst);
            }
        }
        printf("  router %u tokens, top-%u of %u%s: ids wrong %d, weights worst %.3f of tolerance (1e-5 rel), "
               "GPU %.3f ms\n", T, K, E, cases[c].norm ? " renormalised" : "", bad_ids, worst, e->gpu_ms);
        free(l);
        free(w);
        free(ids);
        vk_buffer_destroy(e->ctx, &lb);
        vk_buffer_destroy(e->ctx, &ib);
        vk_buffer_destroy(e->ctx, &wb);
    }
}

/* --------------------------------------------------------------------- MoE --- */

/* n_expert matrices of nrows x ncols built from the test vector's blocks of one type in a
 * scrambled order; ref gets the same scramble of the F32 dequantization. */
struct experts {
    uint32_t type, nrows, ncols, n_expert;
    uint8_t *q;
    size_t bytes;
    float *ref;
};

static bool make_experts(struct env *e, const char *tn, uint32_t nrows, uint32_t ncols, uint32_t n_expert,
                         uint32_t salt, struct experts *x)
{
    char name[64];
    snprintf(name, sizeof name, "%s.q", tn);
    const struct gguf_tensor *q = gguf_find_tensor(e->f, name);
    snprintf(name, sizeof name, "%s.ref", tn);
    const struct gguf_tensor *ref = gguf_find_tensor(e->f, name);
    CHECK(q && ref, "%s: test vectors present", tn);
    if (!q || !ref)
        return false;
    const struct q_traits *tr = q_type_traits(q->type);
    uint32_t qk = tr->block_size, bb = tr->block_bytes;
    size_t nsrc = (size_t)gguf_tensor_nelements(q) / qk, nblk = (size_t)n_expert * nrows * ncols / qk;
    *x = (struct experts){.type = q->type, .nrows = nrows, .ncols = ncols, .n_expert = n_expert, .bytes = nblk * bb};
    x->q = malloc(x->bytes);
    x->ref = malloc(4 * nblk * qk);
    if (!x->q || !x->ref)
        return false;
    for (size_t b = 0; b < nblk; b++) {
        size_t s = (b * 7 + salt + b / 5) % nsrc;
        memcpy(x->q + b * bb, (const uint8_t *)q->data + s * bb, bb);
        memcpy(x->ref + b * qk, (const float *)ref->data + s * qk, 4ull * qk);
    }
    return true;
}

static void free_experts(struct experts *x)
{
    free(x->q);
    free(x->ref);
}

/* Double-precision W[e] x: out[r] and the magnitude sum sum_k |w x| per row. */
static void ref_matvec(const struct experts *w, uint32_t ex, const double *x, double *out, double *mag)
{
    for (uint32_t r = 0; r < w->nrows; r++) {
        const float *wr = w->ref + ((size_t)ex * w->nrows + r) * w->ncols;
        double s = 0, m = 0;
        for (uint32_t i = 0; i < w->ncols; i++) {
            s += wr[i] * x[i];
            m += fabs(wr[i] * x[i]);
        }
        out[r] = s;
        if (mag)
            mag[r] = m;
    }
}

/* The routed FFN of one type (gate, up and down all of it) on the GPU, against a plain per-token
 * loop in double: y[t] = sum_j w_j down[e_j](silu(gate[e_j] x) * up[e_j] x). As in test_vulkan,
 * the expert products are compared as |gpu - ref| <= 1e-4 |ref| + 1e-6 sum |w x| (F32 dots of
 * exactly dequantized weights); the whole FFN, whose rounding errors pass through SwiGLU and the
 * down product, as |gpu - ref| <= 1e-4 |ref| + 1e-5 sum_j |w_j| sum |down act|. */
static void check_moe_type(struct env *e, const char *tn, uint32_t n_expert, uint32_t T, bool grouped)
{
    enum { MAX_T = 40, K = 3, N_EMBD = 256, N_FF = 256 };
    REQUIRE_VOID(T <= MAX_T);
    struct experts gate = {0}, up = {0}, down = {0};
    bool made = make_experts(e, tn, N_FF, N_EMBD, n_expert, 1, &gate) &&
                make_experts(e, tn, N_FF, N_EMBD, n_expert, 2, &up) &&
                make_experts(e, tn, N_EMBD, N_FF, n_expert, 3, &down);
    float *x = rand_floats((size_t)T * N_EMBD, 1.0f), *y = malloc(4ull * T * N_EMBD);
    float *gout = malloc(4ull * T * K * N_FF);
    uint32_t ids[MAX_T * K];
    float wts[MAX_T * K];
    uint32_t route_words = vk_op_moe_route_words(T * K, n_expert);
    for (uint32_t t = 0; t < T; t++) {
        float s = 0;
        for (uint32_t j = 0; j < K; j++) {
            /* distinct experts per token, in no particular order */
            uint32_t ex;
            bool dup;
            do {
                ex = rand_u32() % n_expert;
                dup = false;
                for (uint32_t i = 0; i < j; i++)
                    dup |= ids[t * K + i] == ex;
            } while (dup);
            ids[t * K + j] = ex;
            s += (wts[t * K + j] = 0.1f + (rand_unit() + 1.0f));
        }
        for (uint32_t j = 0; j < K; j++)
            wts[t * K + j] /= s;
    }
    struct vk_buffer gb = {0}, ub = {0}, db = {0}, xb = {0}, ib = {0}, wb = {0}, yb = {0}, s1 = {0}, s2 = {0}, s3 = {0},
                     rb = {0};
    struct vk_view route = {.b = grouped ? &rb : NULL};
    double worst_mv = -1, worst = -1, ms_mv = 0, ms_ffn = 0;
    bool ok = made && x && y && gout;
    CHECK(ok, "%s: experts built", tn);
    ok = ok && buf_with(e, &gb, gate.q, gate.bytes) && buf_with(e, &ub, up.q, up.bytes) &&
         buf_with(e, &db, down.q, down.bytes) && buf_with(e, &xb, x, 4ull * T * N_EMBD) &&
         buf_with(e, &ib, ids, 4ull * T * K) && buf_with(e, &wb, wts, 4ull * T * K) &&
         buf_with(e, &rb, NULL, 4ull * route_words) &&
         buf_with(e, &yb, NULL, 4ull * T * N_EMBD) && buf_with(e, &s1, NULL, 4ull * T * K * N_FF) &&
         buf_with(e, &s2, NULL, 4ull * T * K * N_FF) && buf_with(e, &s3, NULL, 4ull * T * K * N_EMBD);
    char err[512] = "";
    /* 1: the gate products alone */
    if (ok && begin(e)) {
        struct vk_op_moe_matvec_args mv = {
            .type = gate.type, .nrows = N_FF, .ncols = N_EMBD, .n_expert = n_expert, .w = &gb, .n_tokens = T, .k = K,
            .ids = {.b = &ib}, .x = {.b = &xb}, .y = {.b = &s1},
        };
        mv.route = route;
        bool rec = true;
        if (grouped) {
            struct vk_op_moe_group_args ga = {.n_tokens = T, .k = K, .n_expert = n_expert, .ids = {.b = &ib},
                                              .route = route};
            rec = vk_op_moe_group(e->ops, &ga, err, sizeof err);
            vk_barrier(e->ctx);
        }
        rec = rec && vk_op_moe_matvec(e->ops, &mv, err, sizeof err);
        ok = finish(e, rec, "moe_matvec", err) && download(e, &s1, 0, gout, 4ull * T * K * N_FF);
        ms_mv = e->gpu_ms;
    }
    double xd[N_EMBD], g[N_FF], u[N_FF], act[N_FF], dn[N_EMBD], mg[N_FF], md[N_EMBD];
    if (ok) {
        worst_mv = 0;
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t j = 0; j < K; j++) {
                for (uint32_t i = 0; i < N_EMBD; i++)
                    xd[i] = x[t * N_EMBD + i];
                ref_matvec(&gate, ids[t * K + j], xd, g, mg);
                for (uint32_t r = 0; r < N_FF; r++) {
                    double d = fabs(gout[((size_t)t * K + j) * N_FF + r] - g[r]) / (1e-4 * fabs(g[r]) + 1e-6 * mg[r]);
                    worst_mv = d > worst_mv || isnan(d) ? d : worst_mv;
                }
            }
        CHECK(worst_mv <= 1.0, "moe_matvec %s: error %.3g x tolerance", tn, worst_mv);
    }
    /* 2: the whole FFN */
    if (ok && begin(e)) {
        struct vk_op_moe_ffn_args f = {
            .n_tokens = T, .k = K, .n_expert = n_expert, .n_embd = N_EMBD, .n_ff = N_FF, .gate_type = gate.type,
            .up_type = up.type, .down_type = down.type, .gate = &gb, .up = &ub, .down = &db, .ids = {.b = &ib},
            .weights = {.b = &wb}, .x = {.b = &xb}, .y = {.b = &yb}, .gate_out = {.b = &s1}, .up_out = {.b = &s2},
            .down_out = {.b = &s3}, .route = route,
        };
        bool rec = vk_op_moe_ffn(e->ops, &f, err, sizeof err);
        ok = finish(e, rec, "moe_ffn", err) && download(e, &yb, 0, y, 4ull * T * N_EMBD);
        ms_ffn = e->gpu_ms;
    }
    if (ok) {
        worst = 0;
        for (uint32_t t = 0; t < T; t++) {
            double acc[N_EMBD] = {0}, mag[N_EMBD] = {0};
            for (uint32_t i = 0; i < N_EMBD; i++)
                xd[i] = x[t * N_EMBD + i];
            for (uint32_t j = 0; j < K; j++) {
                uint32_t ex = ids[t * K + j];
                ref_matvec(&gate, ex, xd, g, NULL);
                ref_matvec(&up, ex, xd, u, NULL);
                for (uint32_t r = 0; r < N_FF; r++)
                    act[r] = g[r] / (1 + exp(-g[r])) * u[r];
                ref_matvec(&down, ex, act, dn, md);
                for (uint32_t r = 0; r < N_EMBD; r++) {
                    acc[r] += wts[t * K + j] * dn[r];
                    mag[r] += fabs(wts[t * K + j]) * md[r];
                }
            }
            for (uint32_t r = 0; r < N_EMBD; r++) {
                double d = fabs(y[t * N_EMBD + r] - acc[r]) / (1e-4 * fabs(acc[r]) + 1e-5 * mag[r]);
                worst = d > worst || isnan(d) ? d : worst;
            }
        }
        CHECK(worst <= 1.0, "moe_ffn %s: error %.3g x tolerance", tn, worst);
    }
    printf("  moe %-6s %u experts, %u tokens x top-%u, %ux%u%s: expert products worst %.3f, FFN worst %.3f of "
           "tolerance; GPU %.2f ms (gate products), %.2f ms (FFN)\n", tn, n_expert, T, K, N_EMBD, N_FF,
           grouped ? " grouped" : "", worst_mv, worst, ms_mv, ms_ffn);
    free(x);
    free(y);
    free(gout);
    free_experts(&gate);
    free_experts(&up);
    free_experts(&down);
    struct vk_buffer *bufs[] = {&gb, &ub, &db, &xb, &ib, &wb, &yb, &s1, &s2, &s3, &rb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        vk_buffer_destroy(e->ctx, bufs[i]);
}

/* Expert products on activations rounded as the CPU rounds them, with their block scales given (as
 * the forward pass gives act_round's): each product the CPU's dot bit for bit, on rows of four
 * blocks (the lane path of the eight-lane types, whole-row sums of Q8_0 and MXFP4). */
static void check_moe_exact(struct env *e, const char *tn)
{
    enum { T = 3, K = 2, NROWS = 16, NCOLS = 1024, NEX = 4 };
    struct experts w = {0};
    const uint32_t type = (uint32_t)q_type_from_name(tn), act = q_kernels_get(type)->act_type;
    const struct q_traits *at = q_type_traits(act);
    const uint32_t bs = at->block_size, nb = NCOLS / bs;
    uint64_t qrow = 0;
    REQUIRE_VOID(make_experts(e, tn, NROWS, NCOLS, NEX, 5, &w) && q_row_bytes(act, NCOLS, &qrow));
    float *x = rand_floats((size_t)T * NCOLS, 2.0f), *xr = malloc(4ull * T * NCOLS), *sc = malloc(4ull * T * nb);
    float *y = malloc(4ull * T * K * NROWS);
    uint8_t *qx = malloc(qrow * T);
    REQUIRE_VOID(x && xr && sc && y && qx);
    for (uint32_t t = 0; t < T; t++) {
        const struct q_kernels *ak = q_kernels_get(act);
        ak->quant(x + (size_t)t * NCOLS, qx + t * qrow, NCOLS);
        ak->dequant(qx + t * qrow, xr + (size_t)t * NCOLS, NCOLS);
        for (uint32_t b = 0; b < nb; b++)
            sc[t * nb + b] = q8_block_scale(act, qx + t * qrow + (size_t)b * at->block_bytes);
    }
    uint32_t ids[T * K] = {3, 1, 0, 2, 1, 3};
    struct vk_buffer wb = {0}, xb = {0}, sb = {0}, ib = {0}, yb = {0};
    char err[512] = "";
    bool ok = buf_with(e, &wb, w.q, w.bytes) && buf_with(e, &xb, xr, 4ull * T * NCOLS) &&
              buf_with(e, &sb, sc, 4ull * T * nb) && buf_with(e, &ib, ids, sizeof ids) &&
              buf_with(e, &yb, NULL, 4ull * T * K * NROWS) && begin(e);
    if (ok) {
        struct vk_op_moe_matvec_args mv = {.type = type, .nrows = NROWS, .ncols = NCOLS, .n_expert = NEX, .w = &wb,
                                           .n_tokens = T, .k = K, .ids = {.b = &ib}, .x = {.b = &xb},
                                           .y = {.b = &yb}, .xs = {.b = &sb}};
        bool rec = vk_op_moe_matvec(e->ops, &mv, err, sizeof err);
        ok = finish(e, rec, "moe_matvec with scales", err) && download(e, &yb, 0, y, 4ull * T * K * NROWS);
    }
    if (ok) {
        uint32_t differ = 0;
        const size_t row_bytes = w.bytes / ((size_t)NEX * NROWS);
        for (uint32_t q = 0; q < T * K; q++)
            for (uint32_t r = 0; r < NROWS; r++) {
                const uint8_t *wr = w.q + ((size_t)ids[q] * NROWS + r) * row_bytes;
                const struct q_kernels *k = q_kernels_get(type);
                const bool packed = k->batched_rows && NROWS % k->batched_rows == 0;
                float want = packed ? k->batched.by_kind[Q_ROW_ALONE](NCOLS, wr, qx + (q / K) * qrow)
                                    : k->dot(NCOLS, wr, qx + (q / K) * qrow);
                differ += memcmp(&want, &y[q * NROWS + r], 4) != 0;
            }
        CHECK(differ == 0, "moe_matvec %s, %u values a row, given scales: %u of %u products differ from the CPU's",
              tn, NCOLS, differ, T * K * NROWS);
        printf("  moe %-6s %u x %u, rounded activations and their scales: %u of %u products differ from the CPU's\n",
               tn, NROWS, NCOLS, differ, T * K * NROWS);
    }
    struct vk_buffer *bufs[] = {&wb, &xb, &sb, &ib, &yb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        vk_buffer_destroy(e->ctx, bufs[i]);
    free_experts(&w);
    free(x);
    free(xr);
    free(sc);
    free(y);
    free(qx);
}

static void check_moe(struct env *e, struct env *split)
{
    static const char *exact[] = {"iq2_s", "iq3_s", "q6_K", "q8_0", "mxfp4", "q4_K"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        check_moe_exact(e, exact[i]);
    static const char *types[] = {"iq2_s", "iq3_s", "q8_0", "mxfp4", "q4_K"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_moe_type(e, types[i], 8, 4, false);
    /* bindings of 80 KiB: 16 IQ2_S experts of 21 KB run in 6 dispatches of 3 experts */
    check_moe_type(split, "iq2_s", 16, 4, false);
    /* the pairs grouped by expert, tiles of up to 32 pairs; 24 tokens in 6 expert ranges (the
     * activations must fit 80 KiB too) */
    check_moe_type(e, "q4_K", 8, 40, true);
    check_moe_type(e, "iq3_s", 8, 40, true);
    check_moe_type(split, "iq2_s", 16, 24, true);
}

/* ------------------------------------------------------------- elementwise --- */

/* add, SwiGLU, sigmoid gate (per element and per row) and scale against double; F32 with one exp:
 * 1e-6 relative plus 1e-7 absolute (SwiGLU's silu(a) b near a = 0). y aliases a in two cases. */
/* The block scales act_round writes beside Q8 values (for the products, shaders/intdot.glsl):
 * each the d the CPU's quantizer stores for that block, bit for bit; rows of rows x n read at
 * stride xs, written contiguously. A row stride that is not whole blocks is refused. */
static void check_act_scales(struct env *e, uint32_t wtype, uint32_t act, const float *x, uint32_t rows,
                             uint32_t xs, uint32_t n)
{
    const struct q_traits *at = q_type_traits(act);
    const uint32_t B = at->block_size, nb = rows * n / B;
    float *got = malloc(4ull * nb);
    uint8_t *q = malloc(at->block_bytes * (size_t)(n / B));
    REQUIRE_VOID(got && q);
    struct vk_buffer xb = {0}, yb = {0}, sb = {0};
    char err[512] = "";
    const char *tn = q_type_traits(wtype)->name;
    if (buf_with(e, &xb, x, 4ull * rows * xs) && buf_with(e, &yb, NULL, 4ull * rows * n) &&
        buf_with(e, &sb, NULL, 4ull * nb) && begin(e)) {
        struct vk_op_act_round_args a = {.wtype = wtype, .rows = rows, .n = n, .x = {.b = &xb, .stride = xs},
                                         .y = {.b = &yb}, .scales = {.b = &sb}};
        bool ok = vk_op_act_round(e->ops, &a, err, sizeof err);
        if (finish(e, ok, tn, err) && download(e, &sb, 0, got, 4ull * nb)) {
            uint32_t differ = 0;
            for (uint32_t r = 0; r < rows; r++) {
                q_kernels_get(act)->quant(x + (size_t)r * xs, q, n);
                for (uint32_t b = 0; b < n / B; b++) {
                    const float d = q8_block_scale(act, q + (size_t)b * at->block_bytes);
                    differ += memcmp(&d, &got[r * (n / B) + b], 4) != 0;
                }
            }
            CHECK(differ == 0, "act_round scales for %s (%s): %u of %u differ from the CPU quantizer's", tn, at->name,
                  differ, nb);
        }
        /* rows xs apart in y: not whole blocks, so no scale layout */
        if (begin(e)) {
            a.y = (struct vk_view){.b = &xb, .stride = xs};
            CHECK(xs % B == 0 || !vk_op_act_round(e->ops, &a, err, sizeof err), "act_round scales with a row "
                  "stride of %u refused for blocks of %u", xs, B);
            finish(e, true, "act_round scale refusal", "");
        }
    }
    vk_buffer_destroy(e->ctx, &xb);
    vk_buffer_destroy(e->ctx, &yb);
    vk_buffer_destroy(e->ctx, &sb);
    free(got);
    free(q);
}

/* act_round against the CPU's own activation quantizer and dequantizer (kernels/quants.h) for
 * each activation type, through a weight type that pairs with it. Rows with an all-zero block
 * and one with a single outlier. The GPU's 127/amax may differ from the CPU's by an ulp (Vulkan
 * allows 2.5 ulp for division), which can move a value sitting on a rounding boundary by one
 * step; the shader corrects its quotients to round to nearest, so the results should be identical:
 * at most 1 in 1000 values may differ, each by at most one quantization step. */
static void check_act_round(struct env *e)
{
    enum { ROWS = 3, N = 512, XS = 516 };
    static const uint32_t wtypes[] = {Q_F32, Q_F16, Q_BF16, Q_Q4_0, Q_Q4_1, Q_Q4_K, Q_IQ2_S, Q_MXFP4};
    for (size_t c = 0; c < sizeof wtypes / sizeof wtypes[0]; c++) {
        const uint32_t act = q_kernels_get(wtypes[c])->act_type;
        const struct q_kernels *k = q_kernels_get(act);
        float *x = rand_floats((size_t)ROWS * XS, 3.0f), *y = malloc(4ull * ROWS * XS), *want = malloc(4ull * N);
        uint64_t qbytes = 0;
        REQUIRE_VOID(q_row_bytes(act, N, &qbytes));
        uint8_t *q = malloc(qbytes);
        REQUIRE_VOID(x && y && want && q);
        memset(x + 256, 0, 4 * 256);   /* row 0: an all-zero second half */
        x[XS + 7] = 200.0f;            /* row 1: one outlier */
        struct vk_buffer xb = {0};
        char err[512] = "";
        const char *tn = q_type_traits(wtypes[c])->name;
        if (buf_with(e, &xb, x, 4ull * ROWS * XS) && begin(e)) {
            struct vk_op_act_round_args a = {.wtype = wtypes[c], .rows = ROWS, .n = N, .x = {.b = &xb, .stride = XS},
                                             .y = {.b = &xb, .stride = XS}};  /* in place */
            bool ok = vk_op_act_round(e->ops, &a, err, sizeof err);
            if (finish(e, ok, tn, err) && download(e, &xb, 0, y, 4ull * ROWS * XS)) {
                uint32_t differ = 0, worse = 0;
                for (uint32_t r = 0; r < ROWS; r++) {
                    k->quant(x + r * XS, q, N);
                    k->dequant(q, want, N);
                    float amax = 0;
                    for (uint32_t i = 0; i < N; i++)
                        amax = fmaxf(amax, fabsf(x[r * XS + i]));
                    for (uint32_t i = 0; i < N; i++)
                        if (y[r * XS + i] != want[i]) {
                            differ++;
                            worse += fabsf(y[r * XS + i] - want[i]) > 1.01f * amax / 127.0f;
                        }
                }
                CHECK(differ * 1000 <= ROWS * N && worse == 0, "act_round for %s (%s): %u of %u values differ, %u "
                      "by more than a step", tn, q_type_traits(act)->name, differ, ROWS * N, worse);
                printf("  act_round %-6s -> %-5s: %u of %u values differ from the CPU's round trip\n", tn,
                       q_type_traits(act)->name, differ, ROWS * N);
            }
        }
        if (act == Q_Q8_0 || act == Q_Q8_1 || act == Q_Q8_K)
            check_act_scales(e, wtypes[c], act, x, ROWS, XS, N);
        vk_buffer_destroy(e->ctx, &xb);
        free(x);
        free(y);
        free(want);
        free(q);
    }
    char err[512] = "";
    struct vk_buffer b = {0};
    if (buf_with(e, &b, NULL, 4096) && begin(e)) {
        struct vk_op_act_round_args a = {.wtype = Q_Q4_K, .rows = 1, .n = 128, .x = {.b = &b}, .y = {.b = &b}};
        CHECK(!vk_op_act_round(e->ops, &a, err, sizeof err) && strstr(err, "blocks of 256"), "partial Q8_K block "
              "refused: %s", err);
        finish(e, true, "act_round refusal", "");
    }
    vk_buffer_destroy(e->ctx, &b);
}

static void check_elementwise(struct env *e)
{
    enum { ROWS = 5, N = 300, AS = 304, BS = 301 };
    static const struct { enum vk_op_ew op; bool per_row, in_place; const char *name; } cases[] = {
        {VK_EW_ADD, false, true, "add (in place)"},
        {VK_EW_SWIGLU, false, false, "swiglu"},
        {VK_EW_SIGMOID_MUL, false, false, "sigmoid_mul"},
        {VK_EW_SIGMOID_MUL, true, true, "sigmoid_mul per row (in place)"},
        {VK_EW_SCALE, false, false, "scale"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float *a = rand_floats((size_t)ROWS * AS, 6.0f), *b = rand_floats((size_t)ROWS * BS, 6.0f);
        float *y = malloc(4ull * ROWS * AS);
        REQUIRE_VOID(a && b && y);
        struct vk_buffer ab = {0}, bb = {0}, yb = {0};
        double worst = -1;
        if (buf_with(e, &ab, a, 4ull * ROWS * AS) && buf_with(e, &bb, b, 4ull * ROWS * BS) &&
            (cases[c].in_place || buf_with(e, &yb, NULL, 4ull * ROWS * AS)) && begin(e)) {
            const struct vk_buffer *out = cases[c].in_place ? &ab : &yb;
            char err[512] = "";
            struct vk_op_ew_args args = {
                .op = cases[c].op, .rows = ROWS, .n = N, .a = {.b = &ab, .stride = AS}, .b = {.b = &bb, .stride = BS},
                .y = {.b = out, .stride = AS}, .b_per_row = cases[c].per_row, .s = 0.37f,
            };
            bool ok = vk_op_elementwise(e->ops, &args, err, sizeof err);
            if (finish(e, ok, cases[c].name, err) && download(e, out, 0, y, 4ull * ROWS * AS)) {
                worst = 0;
                for (uint32_t r = 0; r < ROWS; r++)
                    for (uint32_t i = 0; i < N; i++) {
                        double av = a[r * AS + i], bv = b[r * BS + (cases[c].per_row ? 0 : i)], want;
                        switch (cases[c].op) {
                        case VK_EW_ADD: want = av + bv; break;
                        case VK_EW_SWIGLU: want = av / (1 + exp(-av)) * bv; break;
                        case VK_EW_SIGMOID_MUL: want = av / (1 + exp(-bv)); break;
                        default: want = av * (double)0.37f; break;
                        }
                        double d = fabs(y[r * AS + i] - want) / (1e-6 * fabs(want) + 1e-7);
                        worst = d > worst || isnan(d) ? d : worst;
                    }
                CHECK(worst <= 1.0, "%s: error %.3g x tolerance", cases[c].name, worst);
            }
        }
        printf("  %-32s %u x %u: worst %.3f of tolerance (1e-6 rel), GPU %.3f ms\n", cases[c].name, ROWS, N, worst,
               e->gpu_ms);
        free(a);
        free(b);
        free(y);
        vk_buffer_destroy(e->ctx, &ab);
        vk_buffer_destroy(e->ctx, &bb);
        vk_buffer_destroy(e->ctx, &yb);
    }
}

/* ------------------------------------------------------------------ errors --- */

/* Bad arguments are refused with a message, not recorded. */
static void check_errors(struct env *e)
{
    char err[512] = "";
    struct vk_buffer b = {0};
    REQUIRE_VOID(vk_buffer_create(e->ctx, &b, 4096, VK_MEM_HOST, err, sizeof err));
    REQUIRE_VOID(vk_begin(e->ctx, err, sizeof err));
    struct vk_op_get_rows_args gr = {.type = Q_Q4_K, .n_rows = 4, .ncols = 100, .table = &b, .n_ids = 1,
                                     .ids = {.b = &b}, .y = {.b = &b}};
    CHECK(!vk_op_get_rows(e->ops, &gr, err, sizeof err) && strstr(err, "shape"), "get_rows bad shape: %s", err);
    gr.ncols = 256;
    gr.n_rows = 64;
    CHECK(!vk_op_get_rows(e->ops, &gr, err, sizeof err) && strstr(err, "outside"), "get_rows overrun: %s", err);
    gr.type = Q_Q8_K;
    CHECK(!vk_op_get_rows(e->ops, &gr, err, sizeof err) && strstr(err, "no shader"), "get_rows type: %s", err);
    struct vk_op_rms_norm_args rn = {.n_tokens = 3, .heads = 1, .n = 400, .x = {.b = &b}, .w = {.b = &b},
                                     .y = {.b = &b}};
    CHECK(!vk_op_rms_norm(e->ops, &rn, err, sizeof err) && strstr(err, "outside"), "rms_norm overrun: %s", err);
    rn.n_tokens = 1;
    rn.x.off = 2;
    CHECK(!vk_op_rms_norm(e->ops, &rn, err, sizeof err) && strstr(err, "multiple of 4"), "rms_norm offset: %s", err);
    struct vk_op_rope_args ro = {.n_tokens = 1, .heads = 1, .head_dim = 64, .n_rot = 66, .freq_base = 1e4f,
                                 .x = {.b = &b}, .pos = {.b = &b}, .y = {.b = &b}};
    CHECK(!vk_op_rope(e->ops, &ro, err, sizeof err) && strstr(err, "n_rot"), "rope n_rot > head_dim: %s", err);
    struct vk_op_router_args rt = {.n_tokens = 1, .n_expert = 8, .k = 9, .logits = {.b = &b}, .ids = {.b = &b},
                                   .weights = {.b = &b}};
    CHECK(!vk_op_router(e->ops, &rt, err, sizeof err) && strstr(err, "top-9"), "router k > n_expert: %s", err);
    struct vk_kv_layer kv = {.k = &b, .v = &b, .n_pages = 4, .page_tokens = 16, .n_head_kv = 2, .head_dim = 64,
                             .pages = &b, .n_seqs = 1, .max_seq_pages = 4};
    struct vk_op_attention_args at = {.kv = &kv, .n_tokens = 1, .n_head = 3, .q = {.b = &b}, .tokens = {.b = &b},
                                      .out = {.b = &b}};
    CHECK(!vk_op_attention(e->ops, &at, err, sizeof err) && strstr(err, "outside"), "KV cache overrun: %s", err);
    kv.n_pages = 1;
    CHECK(!vk_op_attention(e->ops, &at, err, sizeof err) && strstr(err, "3 query heads"), "3 heads over 2: %s", err);
    struct vk_op_moe_matvec_args mv = {.type = Q_Q8_0, .nrows = 8, .ncols = 32, .n_expert = 4, .w = &b,
                                       .n_tokens = 1, .k = 2, .ids = {.b = &b}, .x = {.b = &b, .off = 4},
                                       .y = {.b = &b}};
    CHECK(!vk_op_moe_matvec(e->ops, &mv, err, sizeof err) && strstr(err, "16 bytes"), "moe x alignment: %s", err);
    struct vk_op_ew_args ew = {.op = (enum vk_op_ew)7, .rows = 1, .n = 4, .a = {.b = &b}, .b = {.b = &b},
                               .y = {.b = &b}};
    CHECK(!vk_op_elementwise(e->ops, &ew, err, sizeof err) && strstr(err, "bad op"), "unknown op: %s", err);
    CHECK(vk_submit_wait(e->ctx, err, sizeof err), "empty submit after refusals: %s", err);
    vk_buffer_destroy(e->ctx, &b);
}

/* Every check on one pair of contexts built from cfg (the second caps bindings at 80 KiB, so
 * large tensors run in row or expert ranges there). */
static void run_checks(const struct vk_config *cfg, const struct gguf_file *f)
{
    char err[1024];
    struct env e = {.f = f}, split = {.f = f};
    e.ctx = vk_ctx_create(cfg, err, sizeof err);
    CHECK(e.ctx, "no Vulkan device (set MOESERVE_NO_VULKAN=1 to skip on purpose): %s", err);
    if (!e.ctx)
        return;
    const struct vk_device_info *info = vk_ctx_info(e.ctx);
    e.timed = info->timestamp_period_ns > 0;
    printf("device: %s, subgroup %u, validation %s, reductions: %s%s\n", info->name, info->subgroup_size,
           cfg->validation ? "on" : "not installed", info->subgroups ? "subgroup operations" : "shared memory, ",
           info->subgroups ? "" : info->no_subgroups_why);
    CHECK(!cfg->force_no_subgroups || !info->subgroups, "force_no_subgroups selects the shared-memory variants");
    struct vk_config split_cfg = *cfg;
    split_cfg.max_binding = 80 * 1024;
    split.ctx = vk_ctx_create(&split_cfg, err, sizeof err);
    CHECK(split.ctx, "second context: %s", err);
    e.ops = vk_ops_create(e.ctx, err, sizeof err);
    CHECK(e.ops, "%s", err);
    split.ops = split.ctx ? vk_ops_create(split.ctx, err, sizeof err) : NULL;
    CHECK(split.ops, "second context: %s", err);
    if (e.ops && split.ops) {
        split.timed = vk_ctx_info(split.ctx)->timestamp_period_ns > 0;
        check_get_rows(&e, &split);
        check_rms_norm(&e);
        check_rope(&e);
        check_attention(&e);
        check_router(&e);
        check_moe(&e, &split);
        check_elementwise(&e);
        check_act_round(&e);
        check_errors(&e);
    }
    char first[512];
    uint32_t n_msg = vk_validation_messages(e.ctx, first, sizeof first);
    CHECK(n_msg == 0, "validation layer reported %u messages; first: %s", n_msg, first);
    n_msg = split.ctx ? vk_validation_messages(split.ctx, first, sizeof first) : 0;
    CHECK(n_msg == 0, "validation layer reported %u messages (split context); first: %s", n_msg, first);
    vk_ops_destroy(split.ops);
    vk_ctx_destroy(split.ctx);
    vk_ops_destroy(e.ops);
    vk_ctx_destroy(e.ctx);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *no_vk = getenv("MOESERVE_NO_VULKAN");
    if (no_vk && strcmp(no_vk, "1") == 0) {
        printf("MOESERVE_NO_VULKAN=1: Vulkan tests not run\n");
        return test_finish();
    }
    /* See test_vulkan.c: keeps the ICD and the layer loaded so LeakSanitizer can attribute them. */
    dlopen("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
    dlopen("libVkLayer_khronos_validation.so", RTLD_NOW | RTLD_NODELETE);

    char path[512], err[1024];
    double t0 = now_ms();
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    REQUIRE(f, "%s", err);
    struct vk_config cfg = VK_CONFIG_DEFAULT;
    cfg.validation = vk_validation_available();
    run_checks(&cfg, f);
    /* again with the shared-memory variants of the reducing shaders (rms_norm, router, the MoE
     * matrix-vector products), which devices without subgroup arithmetic run */
    cfg.force_no_subgroups = true;
    run_checks(&cfg, f);
    gguf_close(f);
    printf("total %.0f ms\n", now_ms() - t0);
    return test_finish();
}
