/* cmd_synth.c: `moeserve synth`: writes a random-weight qwen3moe or qwen3next GGUF of a chosen shape
 * and recipe. Defaults are the real Qwen3-30B-A3B (or Qwen3-Coder-Next) shapes; --tiny a demo model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/synth.h"
#include "server/commands.h"
#include "server/cli.h"

static void synth_usage(FILE *out)
{
    struct synth_spec d = synth_default_spec();
    fprintf(out,
            "usage: moeserve synth -o FILE [options]\n"
            "Writes a random-weight model (valid blocks in every type) as GGUF.\n\n"
            "  -o, --output FILE   file to write (required)\n"
            "  --arch NAME         qwen3moe (default: Qwen3-30B-A3B shapes) or qwen3next\n"
            "                      (Qwen3-Coder-Next: 48 layers, 512 experts, top-10, recipe mxfp4)\n"
            "  --tiny              small demo shapes (4 layers, 256 wide, 16 experts, vocab 2048)\n"
            "  --recipe NAME       quant recipe: %s (default asym: experts gate/up IQ2_S,\n"
            "                      down IQ3_S, attention Q4_K, token_embd/output Q6_K)\n"
            "  --layers N          layers (default %u)\n"
            "  --embd N            embedding size (default %u)\n"
            "  --heads N           attention heads (default %u)\n"
            "  --kv-heads N        KV heads (default %u)\n"
            "  --head-dim N        head size (default %u)\n"
            "  --experts N         routed experts (default %u)\n"
            "  --experts-used N    experts per token (default %u)\n"
            "  --ff N              expert FFN size (default %u)\n"
            "  --vocab N           vocabulary size (default %u)\n"
            "  --ctx N             context length (default %u)\n"
            "  --seed N            random seed (default 1)\n",
            synth_recipe_names(), d.n_layer, d.n_embd, d.n_head, d.n_head_kv, d.head_dim,
            d.n_expert, d.n_expert_used, d.n_ff_exp, d.n_vocab, d.n_ctx);
}

static void show_progress(uint64_t done, uint64_t total, void *ctx)
{
    if (*(bool *)ctx)
        fprintf(stderr, "\rsynth: %5.1f%% of %.2f GB", 100.0 * (double)done / (double)total,
                (double)total / 1e9);
}

/* The base shapes from --arch and --tiny, wherever they stand, so the other options refine them. */
static int base_spec(int argc, char **argv, struct synth_spec *s)
{
    bool next = false, tiny = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--tiny") == 0)
            tiny = true;
        else if (strcmp(argv[i], "--arch") == 0 && i + 1 < argc) {
            next = strcmp(argv[i + 1], "qwen3next") == 0;
            if (!next && strcmp(argv[i + 1], "qwen3moe") != 0) {
                fprintf(stderr, "moeserve synth: --arch '%s' is not qwen3moe or qwen3next\n", argv[i + 1]);
                return 2;
            }
        }
    }
    *s = next ? (tiny ? synth_next_tiny_spec() : synth_next_spec()) : (tiny ? synth_tiny_spec() : synth_default_spec());
    return 0;
}

int cmd_synth(int argc, char **argv)
{
    struct synth_spec s;
    const char *out = NULL;
    int rc = base_spec(argc, argv, &s);
    if (rc)
        return rc;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            synth_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--tiny") == 0)
            continue;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "moeserve synth: unknown or incomplete option '%s'\n", a);
            return 2;
        }
        i++;
        bool ok = true;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            out = v;
        else if (strcmp(a, "--arch") == 0)
            continue; /* read by base_spec */
        else if (strcmp(a, "--recipe") == 0) {
            const struct synth_recipe *r = synth_find_recipe(v);
            if (!r) {
                fprintf(stderr, "moeserve synth: --recipe '%s' is not one of %s\n", v, synth_recipe_names());
                return 2;
            }
            s.recipe = *r;
        } else if (strcmp(a, "--layers") == 0) ok = cli_parse_u32(v, 1, 1024, &s.n_layer);
        else if (strcmp(a, "--embd") == 0) ok = cli_parse_u32(v, 32, 65536, &s.n_embd);
        else if (strcmp(a, "--heads") == 0) ok = cli_parse_u32(v, 1, 1024, &s.n_head);
        else if (strcmp(a, "--kv-heads") == 0) ok = cli_parse_u32(v, 1, 1024, &s.n_head_kv);
        else if (strcmp(a, "--head-dim") == 0) ok = cli_parse_u32(v, 2, 1024, &s.head_dim);
        else if (strcmp(a, "--experts") == 0) ok = cli_parse_u32(v, 1, 4096, &s.n_expert);
        else if (strcmp(a, "--experts-used") == 0) ok = cli_parse_u32(v, 1, 4096, &s.n_expert_used);
        else if (strcmp(a, "--ff") == 0) ok = cli_parse_u32(v, 32, 1 << 20, &s.n_ff_exp);
        else if (strcmp(a, "--vocab") == 0) ok = cli_parse_u32(v, 512, 1 << 22, &s.n_vocab);
        else if (strcmp(a, "--ctx") == 0) ok = cli_parse_u32(v, 16, 1 << 24, &s.n_ctx);
        else if (strcmp(a, "--seed") == 0) ok = cli_parse_u64(v, &s.seed);
        else {
            fprintf(stderr, "moeserve synth: unknown option '%s'\n", a);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "moeserve synth: %s: invalid value '%s'\n", a, v);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "moeserve synth: -o FILE is required\n");
        return 2;
    }
    char err[512];
    bool tty = isatty(2);
    if (!synth_write(&s, out, show_progress, &tty, err, sizeof err)) {
        fprintf(stderr, "%smoeserve synth: %s\n", tty ? "\n" : "", err);
        return 1;
    }
    fprintf(stderr, "%ssynth: wrote %s (%u layers, %u experts, recipe %s)\n", tty ? "\n" : "", out,
            s.n_layer, s.n_expert, s.recipe.name);
    return 0;
}
