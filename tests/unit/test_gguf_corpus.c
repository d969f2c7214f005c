/* test_gguf_corpus.c: the GGUF reader against a corpus of broken files made here: every
 * truncation, byte flips, and targeted mutations that must each be rejected with the right message. */
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/validate.h"
#include "kernels/qtypes.h"
#include "tests/test.h"

/* ------------------------------------------------------------ the corpus --- */

struct bytes {
    uint8_t *p;
    size_t n;
};

/* A small valid file from the writer: every scalar kind, arrays, four tensors. The last
 * tensor's size is a multiple of the alignment, so no prefix of the file is itself valid. */
static struct bytes writer_file(void)
{
    struct bytes b = {0};
    struct gguf_writer *w = gguf_w_new();
    if (!w)
        return b;
    static const char *const strs[] = {"alpha", "", "γ"};
    static const int32_t ints[] = {-7, 0, 9};
    static const float floats[] = {0.25f, -3.0f};
    static float f32a[16], f32b[8];
    static uint8_t q8[2 * 34];
    const int64_t ne_a[2] = {8, 2}, ne_q[1] = {64}, ne_b[1] = {8};
    bool ok = gguf_w_u32(w, "general.alignment", 32) && gguf_w_u32(w, "k.u32", 42) &&
              gguf_w_i32(w, "k.i32", -5) && gguf_w_u64(w, "k.u64", 1ULL << 40) &&
              gguf_w_f32(w, "k.f32", 1.5f) && gguf_w_bool(w, "k.bool", true) &&
              gguf_w_str(w, "k.str", "text") && gguf_w_arr_str(w, "k.astr", strs, 3) &&
              gguf_w_arr_i32(w, "k.ai32", ints, 3) && gguf_w_arr_f32(w, "k.af32", floats, 2) &&
              gguf_w_tensor(w, "t.aaa", Q_F32, 2, ne_a, f32a) && gguf_w_tensor(w, "t.q8", Q_Q8_0, 1, ne_q, q8) &&
              gguf_w_tensor(w, "t.bbb", Q_F32, 1, ne_b, f32b) && gguf_w_tensor(w, "t.ccc", Q_F32, 1, ne_b, f32b);
    char path[] = "/tmp/moeserve-corpus-XXXXXX", err[256];
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    ok = ok && fd >= 0 && gguf_w_write_file(w, path, err, sizeof err);
    gguf_w_free(w);
    FILE *in = ok ? fopen(path, "rb") : NULL;
    if (in) {
        fseek(in, 0, SEEK_END);
        long size = ftell(in);
        fseek(in, 0, SEEK_SET);
        b.p = size > 0 ? malloc((size_t)size) : NULL;
        if (b.p && fread(b.p, 1, (size_t)size, in) == (size_t)size)
            b.n = (size_t)size;
        fclose(in);
    }
    if (fd >= 0)
        unlink(path);
    return b;
}

/* Hand-built bytes, for what the writer cannot produce (nested arrays). */
struct builder {
    uint8_t p[4096];
    size_t n;
};

static void put_le(struct builder *b, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes && b->n < sizeof b->p; i++)
        b->p[b->n++] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct builder *b, const char *s)
{
    put_le(b, strlen(s), 8);
    for (; *s && b->n < sizeof b->p; s++)
        b->p[b->n++] = (uint8_t)*s;
}

/* A file with one tensor and a key holding arrays nested `depth` levels deep (depth >= 1:
 * an array of i32 is depth 1), plus an array of arrays of strings. */
static struct bytes nested_file(int depth)
{
    struct builder b = {0};
    put_le(&b, 0x46554747, 4);   /* "GGUF" */
    put_le(&b, 3, 4);
    put_le(&b, 1, 8);            /* tensors */
    put_le(&b, 2, 8);            /* metadata */
    put_str(&b, "k.nested");
    put_le(&b, GGUF_ARRAY, 4);
    for (int d = 1; d < depth; d++) {
        put_le(&b, GGUF_ARRAY, 4);
        put_le(&b, 1, 8);
    }
    put_le(&b, GGUF_I32, 4);
    put_le(&b, 2, 8);
    put_le(&b, 5, 4);
    put_le(&b, 6, 4);
    put_str(&b, "k.strs");
    put_le(&b, GGUF_ARRAY, 4);
    put_le(&b, GGUF_ARRAY, 4);
    put_le(&b, 2, 8);
    for (int i = 0; i < 2; i++) {
        put_le(&b, GGUF_STRING, 4);
        put_le(&b, 2, 8);
        put_str(&b, "ab");
        put_str(&b, i ? "x" : "");
    }
    put_str(&b, "t");
    put_le(&b, 1, 4);
    put_le(&b, 8, 8);
    put_le(&b, Q_F32, 4);
    put_le(&b, 0, 8);
    while (b.n % 32)
        put_le(&b, 0, 1);
    for (int i = 0; i < 8; i++)
        put_le(&b, 0x3f800000, 4);
    struct bytes out = {malloc(b.n), b.n};
    if (out.p)
        memcpy(out.p, b.p, b.n);
    else
        out.n = 0;
    return out;
}

/* Parses an exact-size heap copy (so ASan sees any over-read); on success also validates. */
static bool parse_copy(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        return false;
    memcpy(copy, p, n);
    err[0] = 0;
    struct gguf_file *f = gguf_parse(copy, n, "corpus", err, errlen);
    bool ok = f != NULL;
    if (f) {
        struct val_report r;
        val_check(f, NULL, NULL, &r);
        val_report_free(&r);
        gguf_close(f);
    }
    free(copy);
    return ok;
}

/* ----------------------------------------------------------------- tests --- */

static void check_truncations(const char *what, struct bytes b)
{
    char err[512];
    CHECK(parse_copy(b.p, b.n, err, sizeof err), "%s: the whole file parses: %s", what, err);
    size_t rejected = 0, with_msg = 0;
    for (size_t n = 0; n < b.n; n++) {
        if (!parse_copy(b.p, n, err, sizeof err)) {
            rejected++;
            with_msg += strncmp(err, "corpus", 6) == 0 && strlen(err) > 20;
        }
    }
    CHECK(rejected == b.n, "%s: every one of %zu prefixes rejected (%zu were)", what, b.n, rejected);
    CHECK(with_msg == b.n, "%s: every rejection has a message (%zu had)", what, with_msg);
}

static void check_flips(struct bytes b)
{
    char err[512];
    size_t accepted = 0, rejected = 0;
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    for (size_t i = 0; i < b.n; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            b.p[i] ^= masks[m];
            if (parse_copy(b.p, b.n, err, sizeof err))
                accepted++;
            else
                rejected++;
            b.p[i] ^= masks[m];
        }
    }
    /* the point is no crash or sanitizer report; both outcomes must occur */
    CHECK(accepted > 0 && rejected > 0, "flips: %zu accepted, %zu rejected", accepted, rejected);
}

/* Offsets of fields in the writer file, found through the parser. */
struct layout {
    uint64_t kv_off[16], kv_type_at[16], tensor_info[8], tensor_type_at[8], tensor_offset_at[8],
        tensor_dims_at[8];
    uint64_t n_kv, n_tensors, ai32_count_at;
};

static bool find_layout(struct bytes b, struct layout *l)
{
    char err[256];
    struct gguf_file *f = gguf_parse(b.p, b.n, "corpus", err, sizeof err);
    if (!f)
        return false;
    memset(l, 0, sizeof *l);
    l->n_kv = f->n_kv;
    l->n_tensors = f->n_tensors;
    for (uint64_t i = 0; i < f->n_kv && i < 16; i++) {
        l->kv_off[i] = f->kv[i].offset;
        l->kv_type_at[i] = f->kv[i].offset + 8 + strlen(f->kv[i].key);
        if (strcmp(f->kv[i].key, "k.ai32") == 0)
            l->ai32_count_at = l->kv_type_at[i] + 4 + 4;
    }
    for (uint64_t i = 0; i < f->n_tensors && i < 8; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        l->tensor_info[i] = t->info_offset;
        l->tensor_dims_at[i] = t->info_offset + 8 + strlen(t->name);
        l->tensor_type_at[i] = l->tensor_dims_at[i] + 4 + 8 * t->n_dims;
        l->tensor_offset_at[i] = l->tensor_type_at[i] + 4;
    }
    gguf_close(f);
    return true;
}

static void set_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Applies one edit (value of `bytes` bytes at `at`) to a copy and expects a rejection whose
 * message contains `want`. */
static void expect_reject(struct bytes b, const char *what, uint64_t at, uint64_t v, int bytes,
                          const char *want)
{
    uint8_t *copy = malloc(b.n);
    REQUIRE_VOID(copy && at + (uint64_t)bytes <= b.n);
    memcpy(copy, b.p, b.n);
    set_le(copy + at, v, bytes);
    char err[512];
    bool ok = parse_copy(copy, b.n, err, sizeof err);
    CHECK(!ok && strstr(err, want), "%s: expected rejection with '%s', got %s", what, want,
          ok ? "acceptance" : err);
    free(copy);
}

static void check_mutations(struct bytes b)
{
    struct layout l;
    REQUIRE_VOID(find_layout(b, &l));
    REQUIRE_VOID(l.n_kv == 10 && l.n_tensors == 4 && l.ai32_count_at);
    expect_reject(b, "bad magic", 0, 'X', 1, "bad magic");
    expect_reject(b, "version 1", 4, 1, 4, "unsupported GGUF version 1");
    expect_reject(b, "version 4", 4, 4, 4, "unsupported GGUF version 4");
    expect_reject(b, "huge tensor count", 8, 1ULL << 40, 8, "tensor count");
    expect_reject(b, "huge kv count", 16, 1ULL << 40, 8, "metadata count");
    expect_reject(b, "key length past the end", l.kv_off[1], 1ULL << 40, 8, "runs past the end");
    expect_reject(b, "array count past the end", l.ai32_count_at, 1ULL << 40, 8,
                  "array of 1099511627776 i32 elements runs past the end");
    expect_reject(b, "unknown value type", l.kv_type_at[2], 99, 4, "unknown value type 99");
    expect_reject(b, "unknown array element type", l.ai32_count_at - 4, 77, 4, "unknown array element type 77");
    expect_reject(b, "unknown tensor type", l.tensor_type_at[0], 99, 4, "unknown tensor type 99");
    expect_reject(b, "row not a multiple of the block", l.tensor_dims_at[1] + 4, 48, 8, "block size 32");
    expect_reject(b, "dims overflowing", l.tensor_dims_at[0] + 4, 1ULL << 62, 8, "overflows");
    expect_reject(b, "dim too large", l.tensor_dims_at[0] + 4, 1ULL << 63, 8, "too large");
    expect_reject(b, "n_dims 0", l.tensor_dims_at[0], 0, 4, "0 dimensions (1 to 4 allowed)");
    expect_reject(b, "n_dims 5", l.tensor_dims_at[0], 5, 4, "5 dimensions (1 to 4 allowed)");
    uint64_t off1 = get_le(b.p + l.tensor_offset_at[1], 8);
    expect_reject(b, "misaligned data offset", l.tensor_offset_at[1], off1 + 4, 8, "not a multiple of the alignment");
    expect_reject(b, "data out of bounds", l.tensor_offset_at[3], 1ULL << 20, 8, "outside the file's data section");
    expect_reject(b, "overlapping tensors", l.tensor_offset_at[1], 0, 8, "overlaps");
    /* "k.i32" -> "k.u32": same length, duplicates the key before it */
    expect_reject(b, "duplicate key", l.kv_off[2] + 8 + 2, 'u', 1, "duplicate metadata key 'k.u32'");
    /* "t.bbb" -> "t.aaa" */
    expect_reject(b, "duplicate tensor name", l.tensor_info[2] + 8 + 2, 0x616161, 3,
                  "duplicate tensor name 't.aaa'");
    /* general.alignment is the first key: 8 + 17 key bytes, 4 type bytes, then the u32 */
    expect_reject(b, "alignment not a power of two", l.kv_type_at[0] + 4, 48, 4, "not a power of two");
    expect_reject(b, "alignment zero", l.kv_type_at[0] + 4, 0, 4, "not a power of two");
    expect_reject(b, "alignment wrong type", l.kv_type_at[0], GGUF_I32, 4, "has type i32, expected u32");
    expect_reject(b, "nul in a key", l.kv_off[3] + 8, 0, 1, "NUL byte");
}

static void check_nesting(void)
{
    char err[512];
    struct bytes ok8 = nested_file(9), bad9 = nested_file(10), small = nested_file(2);
    REQUIRE_VOID(ok8.p && bad9.p && small.p);
    CHECK(parse_copy(ok8.p, ok8.n, err, sizeof err), "9 array levels (8 nestings) accepted: %s", err);
    CHECK(!parse_copy(bad9.p, bad9.n, err, sizeof err) && strstr(err, "nested deeper"),
          "10 array levels rejected: %s", err);
    struct gguf_file *f = gguf_parse(small.p, small.n, "nested", err, sizeof err);
    CHECK(f != NULL, "nested arrays parse: %s", err);
    if (f) {
        const struct gguf_kv *kv = gguf_find_kv(f, "k.nested");
        CHECK(kv && kv->val.a.elem_type == GGUF_ARRAY && kv->val.a.count == 1 &&
                  kv->val.a.items[0].a.count == 2 && gguf_arr_i64(&kv->val.a.items[0].a, 1) == 6,
              "nested i32 values");
        const struct gguf_kv *s = gguf_find_kv(f, "k.strs");
        CHECK(s && s->val.a.count == 2 && s->val.a.items[1].a.strs[1].len == 1, "nested strings");
        gguf_close(f);
    }
    check_truncations("nested", small);
    check_flips(small);
    free(ok8.p);
    free(bad9.p);
    free(small.p);
}

int main(void)
{
    struct bytes b = writer_file();
    REQUIRE(b.p && b.n > 0 && b.n < 4096, "writer file built (%zu bytes)", b.n);
    check_truncations("writer", b);
    check_flips(b);
    check_mutations(b);
    check_nesting();
    free(b.p);
    return test_finish();
}
