/* cmd_tokenizer.c — `easyrec tokenizer train --input FILE... --vocab-size N --output DIR
 * [--min-frequency N]`: learn a byte-level BPE vocabulary (src/tokenizer/bpe_train.c) and
 * write vocab.json, merges.txt and tokenizer_config.json into DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "easyrec.h"
#include "tokenizer/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: easyrec tokenizer train --input FILE... --vocab-size N --output DIR [--min-frequency N]\n"
               "  learn a RoBERTa-style byte-level BPE vocabulary from text files (one text per line)\n"
               "  --input FILE...     one or more text files\n"
               "  --vocab-size N      total vocabulary size, >= 261 (4 specials + 256 bytes + <mask>)\n"
               "  --output DIR        where vocab.json, merges.txt, tokenizer_config.json go (created)\n"
               "  --min-frequency N   stop when the best pair occurs fewer than N times (default 2)\n");
}

static int parse_int(const char *s, const char *opt, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < 0 || v > (1 << 30)) {
        fprintf(stderr, "easyrec: %s needs a non-negative integer\n", opt);
        return 2;
    }
    *out = (int)v;
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "train")) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    const char **inputs = calloc((size_t)argc, sizeof(*inputs));
    if (!inputs) return cli_fail("out of memory");
    int n_inputs = 0, rc = 0;
    bpe_train_opts o = {0, 2};
    const char *out = NULL;
    for (int i = 2; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--input")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) inputs[n_inputs++] = argv[++i];
        } else if (!strcmp(argv[i], "--vocab-size") && i + 1 < argc) {
            rc = parse_int(argv[++i], "--vocab-size", &o.vocab_size);
        } else if (!strcmp(argv[i], "--min-frequency") && i + 1 < argc) {
            rc = parse_int(argv[++i], "--min-frequency", &o.min_frequency);
        } else if (!strcmp(argv[i], "--output") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            free(inputs);
            return 0;
        } else {
            fprintf(stderr, "easyrec: tokenizer train: unknown or incomplete option '%s'\n", argv[i]);
            rc = 2;
        }
    }
    if (!rc && (!n_inputs || !o.vocab_size || !out)) {
        usage(stderr);
        rc = 2;
    }
    if (!rc) {
        bpe_train_stats st;
        if (bpe_train(inputs, n_inputs, &o, out, &st)) {
            rc = cli_fail(NULL);
        } else {
            fprintf(stderr, "easyrec: %lld pieces (%lld distinct), %d merges, vocabulary of %d written to %s\n",
                    (long long)st.pieces, (long long)st.distinct_pieces, st.merges, st.vocab_size, out);
        }
    }
    free(inputs);
    return rc;
}
