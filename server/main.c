/* main.c: the moeserve command line: finds the subcommand and runs it.
 * Usage errors are one line naming the flag at fault, exit status 2. */
#include <stdio.h>
#include <string.h>

#include "server/commands.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "serve a model over the OpenAI-compatible HTTP API"},
    {"run", cmd_run, "generate from a prompt on the command line"},
    {"perplexity", cmd_perplexity, "perplexity and KL divergence as llama-perplexity computes them"},
    {"inspect", cmd_inspect, "show a GGUF model's architecture, tokenizer and quant layout"},
    {"synth", cmd_synth, "write a random-weight model of any shape and quant recipe"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: moeserve COMMAND [options]   (moeserve COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "moeserve: unknown command '%s' (try moeserve --help)\n", argv[1]);
    return 2;
}
