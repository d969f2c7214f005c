/* test_quants.c: every ggml type in testdata/quants.gguf against ggml's own results:
 * bit-exact dequantization, byte-exact activation quantization, dot products to 1e-5. */
#include <math.h>
#include <string.h>

#include "engine/gguf.h"
#include "kernels/quants.h"
#include "tests/test.h"

static const struct gguf_tensor *find(const struct gguf_file *f, const char *type, const char *what)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", type, what);
    return gguf_find_tensor(f, name);
}

/* T.q dequantized must equal T.ref bit for bit. */
static void check_dequant(const struct gguf_file *f, const char *tn, int t, const struct q_kernels *k)
{
    const struct gguf_tensor *q = find(f, tn, "q"), *ref = find(f, tn, "ref");
    CHECK(q && ref && ref->type == Q_F32, "%s: tensors q/ref present", tn);
    if (!q || !ref)
        return;
    CHECK(q->type == (uint32_t)t, "%s: stored type %u", tn, q->type);
    CHECK(k->dequant != NULL, "%s: has a dequantizer", tn);
    if (!k->dequant)
        return;
    int64_t n = gguf_tensor_nelements(q);
    float *out = malloc((size_t)n * sizeof *out);
    REQUIRE_VOID(out);
    k->dequant(q->data, out, n);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        float r;
        memcpy(&r, (const uint8_t *)ref->data + 4 * i, 4);
        if (memcmp(&r, &out[i], 4) != 0 && !(isnan(r) && isnan(out[i]))) {
            if (first < 0)
                first = i;
            bad++;
        }
    }
    CHECK(bad == 0, "%s: dequant differs in %lld of %lld values (first at %lld)", tn,
          (long long)bad, (long long)n, (long long)first);
    free(out);
}

/* Quantizing T.act_src to T's activation type must give T.act byte for byte. */
static void check_act_quant(const struct gguf_file *f, const char *tn, const struct q_kernels *k)
{
    const struct gguf_tensor *src = find(f, tn, "act_src"), *act = find(f, tn, "act");
    CHECK(src && act, "%s: act_src/act present", tn);
    if (!src || !act)
        return;
    CHECK(act->type == k->act_type, "%s: activation type %u, kernel says %u", tn, act->type,
          k->act_type);
    const struct q_kernels *ak = q_kernels_get(act->type);
    CHECK(ak && ak->quant, "%s: activation type %u has a quantizer", tn, act->type);
    if (!ak || !ak->quant)
        return;
    int64_t n = gguf_tensor_nelements(src);
    float *x = malloc((size_t)n * 4);
    uint8_t *out = calloc(1, act->nbytes);
    REQUIRE_VOID(x && out);
    memcpy(x, src->data, (size_t)n * 4);
    ak->quant(x, out, n);
    CHECK(memcmp(out, act->data, act->nbytes) == 0, "%s: activation quantization differs", tn);
    free(x);
    free(out);
}

/* dot(row r of T.q, T.act) against ggml's T.vec_dot[r]; every ISA against the scalar one. */
static void check_dot(const struct gguf_file *f, const char *tn, const struct q_kernels *k)
{
    const struct gguf_tensor *q = find(f, tn, "q"), *act = find(f, tn, "act");
    char key[96];
    snprintf(key, sizeof key, "%s.vec_dot", tn);
    const struct gguf_array *ref = gguf_get_arr(f, key, GGUF_F32);
    CHECK(q && act && ref && ref->count == (uint64_t)q->ne[1], "%s: vec_dot reference present", tn);
    CHECK(k->dot && k->dot_ref, "%s: has dot products", tn);
    if (!q || !act || !ref || !k->dot || !k->dot_ref)
        return;
    uint64_t row_bytes = q->nbytes / (uint64_t)q->ne[1];
    for (int64_t r = 0; r < q->ne[1]; r++) {
        const void *w = (const uint8_t *)q->data + (uint64_t)r * row_bytes;
        double want = gguf_arr_f64(ref, (uint64_t)r);
        float got_ref = k->dot_ref(q->ne[0], w, act->data);
        float got = k->dot(q->ne[0], w, act->data);
        double tol = 1e-5 * fmax(1.0, fabs(want));
        CHECK(fabs(got_ref - want) <= tol, "%s row %lld: scalar dot %.9g, ggml %.9g", tn,
              (long long)r, got_ref, want);
        CHECK(fabs(got - want) <= tol, "%s row %lld: %s dot %.9g, ggml %.9g", tn, (long long)r,
              k->dot_isa, got, want);
    }
}

/* Every half -> float against its definition: (-1)^s x 2^(e-15) x (1 + m/1024), subnormals
 * m x 2^-24, infinities and NaNs with their payload in the top mantissa bits; and back again. */
static void check_all_halves(void)
{
    int bad = 0, bad_back = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        const float got = q_f16_to_f32((uint16_t)h);
        uint32_t bits;
        memcpy(&bits, &got, 4);
        if (e == 0x1f) {
            bad += (bits & 0x7fffffffu) != (0x7f800000u | m << 13) || (bits >> 31) != (h >> 15);
        } else {
            const double mag = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp((double)m, -24);
            bad += (double)got != (h & 0x8000 ? -mag : mag) || (bits >> 31) != (h >> 15);
            bad_back += q_f32_to_f16(got) != h;
        }
    }
    CHECK(bad == 0, "%d halves converted wrongly", bad);
    CHECK(bad_back == 0, "%d finite halves did not round-trip", bad_back);
}

int main(void)
{
    check_all_halves();
    char path[512], err[512];
    struct gguf_file *f = gguf_open(testdata_path(path, sizeof path, "quants.gguf"), err, sizeof err);
    REQUIRE(f, "%s", err);
    const struct gguf_array *types = gguf_get_arr(f, "vectors.types", GGUF_STRING);
    REQUIRE(types && types->count >= 24, "vectors.types lists the types");
    for (uint64_t i = 0; i < types->count; i++) {
        char tn[64];
        snprintf(tn, sizeof tn, "%.*s", (int)types->strs[i].len, types->strs[i].ptr);
        int t = q_type_from_name(tn);
        CHECK(t >= 0, "type '%s' is in the type table", tn);
        if (t < 0)
            continue;
        const struct q_kernels *k = q_kernels_get((uint32_t)t);
        check_dequant(f, tn, t, k);
        check_act_quant(f, tn, k);
        check_dot(f, tn, k);
    }
    gguf_close(f);
    return test_finish();
}
