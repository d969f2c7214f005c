/* cmd_perplexity.c: `moeserve perplexity`: perplexity over a text file scored like llama.cpp's
 * llama-perplexity, and KL divergence against a base file in its format (engine/perplexity.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/perplexity.h"
#include "server/cli.h"
#include "server/commands.h"

struct eval_ctx {
    struct engine *e;
    int32_t *pos_buf;
};

/* One chunk from an empty cache, in batches the engine accepts, logits from `first` on. */
static bool eval_chunk(void *ctx, const int32_t *tokens, uint32_t n, uint32_t first, float *logits, char *err,
                       size_t errlen)
{
    struct eval_ctx *c = ctx;
    engine_seq_keep(c->e, 0, 0);
    uint32_t *pos = malloc(n * sizeof *pos), *seq = calloc(n, sizeof *seq);
    bool *want = malloc(n * sizeof *want);
    bool ok = pos && seq && want;
    for (uint32_t i = 0; ok && i < n; i++) {
        pos[i] = i;
        want[i] = i >= first;
    }
    ok = ok && engine_decode(c->e, n, tokens, pos, seq, want, logits, err, errlen);
    free(pos);
    free(seq);
    free(want);
    return ok;
}

static char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "-f %s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    *len = s ? fread(s, 1, (size_t)n, f) : 0;
    if (s)
        s[*len] = 0;
    fclose(f);
    if (!s)
        snprintf(err, errlen, "-f %s: cannot read", path);
    return s;
}

int cmd_perplexity(int argc, char **argv)
{
    const char *model = NULL, *text_path = NULL, *base = NULL;
    uint32_t ctx = 512;
    int32_t chunks = -1;
    enum ppl_mode mode = PPL_PLAIN;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: moeserve perplexity -m MODEL -f TEXT [--ctx N] [--chunks N]\n"
                   "         [--kl-divergence-base FILE | --kl-divergence FILE]\n"
                   "Scores like llama-perplexity: chunks of --ctx tokens, the second half of each scored.\n"
                   "--kl-divergence-base writes the model's log-probabilities (llama-perplexity's format);\n"
                   "--kl-divergence compares against such a file.\n");
            return 0;
        }
        if (!v) {
            fprintf(stderr, "moeserve perplexity: unknown or incomplete option '%s'\n", a);
            return 2;
        }
        i++;
        uint32_t u;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file"))
            text_path = v;
        else if (!strcmp(a, "--ctx") || !strcmp(a, "-c")) {
            if (!cli_parse_u32(v, 16, 1u << 20, &ctx)) {
                fprintf(stderr, "moeserve perplexity: --ctx '%s' is not a number from 16 up\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--chunks")) {
            if (!cli_parse_u32(v, 1, 1u << 30, &u)) {
                fprintf(stderr, "moeserve perplexity: --chunks '%s' is not a positive number\n", v);
                return 2;
            }
            chunks = (int32_t)u;
        } else if (!strcmp(a, "--kl-divergence-base")) {
            base = v;
            mode = PPL_WRITE_BASE;
        } else if (!strcmp(a, "--kl-divergence")) {
            base = v;
            mode = PPL_COMPARE_BASE;
        } else {
            fprintf(stderr, "moeserve perplexity: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (!model || (!text_path && mode != PPL_COMPARE_BASE)) {
        fprintf(stderr, "moeserve perplexity: -m MODEL and -f TEXT are required\n");
        return 2;
    }
    char err[4096];
    struct engine_params p = {.path = model, .slots = 1, .ctx_size = ctx < 256 ? 256 : ctx, .max_ctx = ctx,
                              .batch_tokens = ctx, .kv_type = "f16", .device = "cpu"};
    struct engine *e = engine_open(&p, err, sizeof err);
    if (!e) {
        fprintf(stderr, "moeserve perplexity: %s\n", err);
        return 1;
    }
    size_t len = 0, n_tok = 0;
    char *text = text_path ? read_text(text_path, &len, err, sizeof err) : NULL;
    int32_t *tokens = text ? engine_tokenize(e, text, len, false, &n_tok) : NULL;
    int rc = 0;
    if (text_path && !tokens) {
        fprintf(stderr, "moeserve perplexity: %s\n", text ? "out of memory" : err);
        rc = 1;
    } else {
        struct eval_ctx ec = {.e = e};
        struct ppl_params pp = {.n_ctx = ctx, .n_chunks = chunks, .n_vocab = engine_info(e)->n_vocab, .mode = mode,
                                .base_path = base, .eval = eval_chunk, .eval_ctx = &ec, .out = stdout};
        struct ppl_result res;
        if (!ppl_run(&pp, tokens, n_tok, &res, err, sizeof err)) {
            fprintf(stderr, "moeserve perplexity: %s\n", err);
            rc = 1;
        }
    }
    free(tokens);
    free(text);
    engine_close(e);
    return rc;
}
