/* main.c — the easyrec command line: dispatch to the subcommands in cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "easyrec.h"

int cli_fail(const char *msg) {
    fprintf(stderr, "easyrec: %s\n", msg ? msg : easyrec_last_error());
    return 1;
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"encode", cmd_encode, "encode profiles into an .npy matrix of embeddings"},
    {"similarity", cmd_similarity, "cosine of the first text with each other text"},
    {"tokenize", cmd_tokenize, "text lines on stdin -> JSON arrays of ids (--decode: reverse)"},
    {"tokenizer", cmd_tokenizer, "tokenizer train: learn a byte-level BPE vocabulary"},
    {"init", cmd_init, "create a randomly initialised model directory"},
    {"train", cmd_train, "train an EasyRec encoder (contrastive + MLM)"},
    {"recommend", cmd_recommend, "top-K items of a catalog for user profiles, a text or a dataset's users"},
    {"data", cmd_data, "data import: raw interactions -> a dataset in the release layout"},
    {"catalog", cmd_catalog, "generate the built-in synthetic catalog (datasets for the demo and tests)"},
    {"eval", cmd_eval, "zero-shot full-ranking Recall/NDCG of a model, embeddings or a baseline"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: easyrec <command> [options]   (easyrec <command> --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "easyrec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
