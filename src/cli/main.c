/* main.c — the easyrec command line: dispatch to the subcommands in cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "cli/opt.h"
#include "core/err.h"
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
    {"serve", cmd_serve, "HTTP service: embeddings (OpenAI, TEI routes) and live recommendations"},
    {"recommend", cmd_recommend, "top-K items of a catalog for user profiles, a text or a dataset's users"},
    {"data", cmd_data, "data import: raw interactions -> a dataset in the release layout"},
    {"catalog", cmd_catalog, "generate the built-in synthetic catalog (datasets for the demo and tests)"},
    {"pull", cmd_pull, "download a model from the Hugging Face Hub into its cache"},
    {"profile", cmd_profile, "profile items|users|diversify: LLM-written profiles via an OpenAI-compatible API"},
    {"tsne", cmd_tsne, "t-SNE of embeddings as a labelled scatter plot (SVG or PNG)"},
    {"eval", cmd_eval, "zero-shot full-ranking Recall/NDCG of a model, embeddings or a baseline"},
    {"version", cmd_version, "print the version of easyrec (also: easyrec --version)"},
    {"cf", cmd_cf, "graph CF (LightGCN, GCCF), plain or aligned to text embeddings"},
};

int cmd_version(int argc, char **argv) {
    cli_cmd cmd = {"version", "", "Print the version of the easyrec library this program runs on.", (cli_opt[]){{0}},
                   0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    printf("easyrec %s\n", easyrec_version());
    /* the instruction set of the bf16/int8 kernels (EASYREC_ISA may cap it) and the fp32 GEMM */
    er_isa best = er_cpu_isa(), isa = best;
    const char *env = getenv("EASYREC_ISA");
    if (env && *env && er_isa_parse(env, &isa) == EASYREC_OK) isa = er_isa_clamp(isa);
    printf("isa: %s", er_isa_name(isa));
    if (isa != best) printf(" (EASYREC_ISA; this CPU: %s)", er_isa_name(best));
    printf(", fp32 GEMM: %s\n", er_gemm_backend());
    /* the precision commands run at without --precision (EASYREC_PRECISION, else fp32) */
    const char *pe = getenv("EASYREC_PRECISION");
    if (!pe || !*pe) printf("precision: fp32 (default; --precision or EASYREC_PRECISION: fp32|bf16|int8)\n");
    else if (!strcmp(pe, "fp32") || !strcmp(pe, "bf16") || !strcmp(pe, "int8"))
        printf("precision: %s (EASYREC_PRECISION)\n", pe);
    else printf("precision: EASYREC_PRECISION=%.32s is not fp32|bf16|int8; commands that encode refuse it\n", pe);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: easyrec <command> [options]   (easyrec <command> --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n  --version    print the version\n");
}

int main(int argc, char **argv) {
    /* the program's one runtime setup: easyrec parallelises over batches itself, so OpenBLAS
     * runs single-threaded inside its workers (the library never changes this itself) */
    easyrec_runtime_init();
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) return cmd_version(1, argv + 1);
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            int rc = commands[i].fn(argc - 1, argv + 1);
            cli_comm_close(); /* finalises MPI when the command used it */
            return rc;
        }
    char name[256];
    er_sanitize_text(argv[1], name, sizeof name);
    fprintf(stderr, "easyrec: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
