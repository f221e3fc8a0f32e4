/* cmd_tokenizer.c — `easyrec tokenizer train --input FILE... --vocab-size N --output DIR
 * [--min-frequency N]`: learn a byte-level BPE vocabulary (src/tokenizer/er_bpe_train.c) and
 * write vocab.json, merges.txt and tokenizer_config.json into DIR. Input files: every
 * --input value and every positional argument ("--input a b c" as before). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "easyrec.h"
#include "tokenizer/tokenizer.h"

static const char tokenizer_usage[] = "usage: easyrec tokenizer train --input FILE... --vocab-size N --output DIR "
                                      "[--min-frequency N]\n(see easyrec tokenizer train --help)\n";

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "train")) {
        int help = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
        if (!help) fprintf(stderr, "easyrec tokenizer: %s\n", argc < 2 ? "missing the action (train)" : "unknown action; the one action is train");
        fputs(tokenizer_usage, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *input = NULL, *out = NULL;
    bpe_train_opts o = {0, 2};
    cli_opt opts[] = {
        OPT_LIST_("input", &input, "FILE", "text file, one text per line (repeat, or list more files after it)"),
        OPT_I("vocab-size", &o.vocab_size, "N", "total vocabulary size (4 specials + 256 bytes + <mask> + merges)", 261,
              1 << 24, .required = 1),
        OPT_S("output", &out, "DIR", "where vocab.json, merges.txt, tokenizer_config.json go (created)", .required = 1),
        OPT_I("min-frequency", &o.min_frequency, "N", "stop when the best pair occurs fewer than N times", 0, 1 << 30),
        {0}};
    cli_cmd cmd = {"tokenizer train", "--input FILE... --vocab-size N --output DIR [--min-frequency N]",
                   "Learn a RoBERTa-style byte-level BPE vocabulary from text files (one text per line).", opts, 0, -1,
                   "FILE..."};
    char **pos;
    int npos, rc = opt_parse(&cmd, argc - 1, argv + 1, &pos, &npos);
    if (rc) {
        opt_free(&cmd);
        return rc == OPT_HELP ? 0 : rc;
    }
    /* --input a,b (joined by the option layer) and positional files */
    char *list = input ? strdup(input) : NULL;
    const char **inputs = calloc((size_t)argc + 1, sizeof(*inputs));
    int n_inputs = 0;
    if (!inputs || (input && !list)) {
        rc = cli_fail("out of memory");
        goto out_free;
    }
    for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
        inputs[n_inputs++] = t;
    for (int i = 0; i < npos; i++) inputs[n_inputs++] = pos[i];
    if (!n_inputs) {
        rc = opt_usage_error(&cmd, "missing --input FILE");
        goto out_free;
    }
    bpe_train_stats st;
    if (er_bpe_train(inputs, n_inputs, &o, out, &st)) {
        rc = cli_fail(NULL);
    } else {
        fprintf(stderr, "easyrec: %lld pieces (%lld distinct), %d merges, vocabulary of %d written to %s\n",
                (long long)st.pieces, (long long)st.distinct_pieces, st.merges, st.vocab_size, out);
    }
out_free:
    free(inputs);
    free(list);
    opt_free(&cmd);
    return rc;
}
