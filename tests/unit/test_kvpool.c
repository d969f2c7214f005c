/* test_kvpool.c: the paged KV pool: pages taken and returned, rows addressed by position,
 * prefix copies, and exhaustion refused without side effects. */
#include <string.h>

#include "engine/kvpool.h"
#include "tests/test.h"

/* kvpool_check_batch: what every forward pass refuses before it touches the cache. */
static void test_check_batch(void)
{
    struct kvpool p;
    char err[160];
    REQUIRE_VOID(kvpool_init(&p, 1, 8, 8, 16, 2, 2, 64, err, sizeof err));
    const struct kvpool_batch_limits lim = {.max_batch = 8, .n_vocab = 100, .max_seq_tokens = 64};
    const int32_t tok[4] = {1, 2, 3, 4};
    const uint32_t pos[4] = {0, 1, 0, 2}, seq[4] = {0, 0, 1, 0};
    CHECK(kvpool_check_batch(&p, &lim, 4, tok, pos, seq, err, sizeof err) && p.seqs[0].n_pages == 1 &&
              p.seqs[1].n_pages == 1,
          "two interleaved sequences accepted, pages reserved: %s", err);
    const uint32_t gap[1] = {5}, s0[1] = {0};
    CHECK(!kvpool_check_batch(&p, &lim, 1, tok, gap, s0, err, sizeof err) && strstr(err, "expected 0"),
          "a gap in positions refused: %s", err);
    const int32_t bad_tok[1] = {100};
    const uint32_t p0[1] = {0};
    CHECK(!kvpool_check_batch(&p, &lim, 1, bad_tok, p0, s0, err, sizeof err) && strstr(err, "token 100"),
          "a token outside the vocabulary refused: %s", err);
    CHECK(!kvpool_check_batch(&p, &lim, 0, tok, p0, s0, err, sizeof err) && strstr(err, "1 to 8"), "empty batch: %s",
          err);
    /* two pages in all, both taken: a third page cannot be had */
    int32_t many[8] = {0};
    uint32_t pp[8], ss[8] = {0};
    p.seqs[0].n_tokens = 16;
    for (uint32_t i = 0; i < 8; i++)
        pp[i] = 16 + i;
    CHECK(!kvpool_check_batch(&p, &lim, 8, many, pp, ss, err, sizeof err) && strstr(err, "full"), "a full pool: %s", err);
    kvpool_free(&p);
}

int main(void)
{
    test_check_batch();
    struct kvpool p;
    char err[128];
    REQUIRE(kvpool_init(&p, 2, 8, 4, 16, 10, 3, 100, err, sizeof err), "%s", err);
    CHECK(kvpool_free_tokens(&p) == 160 && kvpool_bytes(&p) == 2u * 10 * 16 * 12, "capacity");
    CHECK(kvpool_reserve(&p, 0, 40) && p.seqs[0].n_pages == 3, "40 tokens take 3 pages");
    CHECK(kvpool_reserve(&p, 1, 100) && p.seqs[1].n_pages == 7, "100 tokens take 7 pages");
    CHECK(!kvpool_reserve(&p, 2, 1) && p.seqs[2].n_pages == 0, "pool exhausted: refused, nothing taken");
    CHECK(!kvpool_reserve(&p, 0, 101), "longer than a sequence may be: refused");
    for (uint32_t l = 0; l < 2; l++)
        for (uint32_t pos = 0; pos < 40; pos++) {
            memset(kvpool_k(&p, l, 0, pos), (int)(l * 64 + pos), 8);
            memset(kvpool_v(&p, l, 0, pos), (int)(200 - pos), 4);
        }
    p.seqs[0].n_tokens = 40;
    /* rows of different positions, layers and sequences never alias */
    CHECK(kvpool_k(&p, 0, 0, 17) != kvpool_k(&p, 0, 0, 18) && kvpool_k(&p, 1, 0, 17) != kvpool_k(&p, 0, 0, 17) &&
              kvpool_k(&p, 0, 1, 0) != kvpool_k(&p, 0, 0, 0),
          "distinct rows");
    kvpool_truncate(&p, 1, 30);
    CHECK(p.seqs[1].n_pages == 2 && p.n_free == 5, "truncation returns whole pages");
    CHECK(kvpool_copy_prefix(&p, 0, 2, 33), "copy a prefix");
    CHECK(p.seqs[2].n_tokens == 33 && kvpool_k(&p, 1, 2, 32)[0] == 64 + 32 && kvpool_v(&p, 0, 2, 5)[3] == 195,
          "copied rows match");
    kvpool_truncate(&p, 0, 0);
    kvpool_truncate(&p, 1, 0);
    kvpool_truncate(&p, 2, 0);
    CHECK(p.n_free == 10 && kvpool_free_tokens(&p) == 160, "everything returned");
    kvpool_free(&p);
    CHECK(!kvpool_init(&p, 0, 8, 4, 16, 10, 3, 100, err, sizeof err), "zero sizes refused: %s", err);
    return test_finish();
}
