/* cmd_init.c — `easyrec init`: a randomly initialised model directory (for training from
 * scratch, tests and the demo): config.json, model.safetensors and the tokenizer files
 * copied from --vocab. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/err.h"
#include "easyrec.h"

static const char init_usage[] =
    "usage: easyrec init --vocab DIR --output DIR [options]\n"
    "  --vocab DIR          tokenizer files (vocab.json + merges.txt, or vocab.txt for bert)\n"
    "  --output DIR         model directory to create\n"
    "  --type T             roberta (default) or bert\n"
    "  --layers N --hidden N --heads N --ffn N   sizes (default 6, 768, 12, 3072: EasyRec-small)\n"
    "  --max-positions N    position table size (default 514 for roberta, 512 for bert)\n"
    "  --no-mlp             without the EasyRec head mlp.dense\n"
    "  --no-lm-head         without the MLM head\n"
    "  --seed N             initialisation seed (default 2024)\n";

static int copy_file(const char *src, const char *dst) {
    char *buf;
    size_t len;
    int rc = er_read_file(src, &buf, &len);
    if (rc) return rc;
    rc = er_write_file_atomic(dst, buf, len);
    free(buf);
    return rc;
}

int cmd_init(int argc, char **argv) {
    static const struct option lo[] = {
        {"vocab", required_argument, 0, 'v'},  {"output", required_argument, 0, 'o'},
        {"type", required_argument, 0, 't'},   {"layers", required_argument, 0, 'l'},
        {"hidden", required_argument, 0, 'H'}, {"heads", required_argument, 0, 'a'},
        {"ffn", required_argument, 0, 'f'},    {"max-positions", required_argument, 0, 'p'},
        {"seed", required_argument, 0, 's'},   {"no-mlp", no_argument, 0, 'M'},
        {"no-lm-head", no_argument, 0, 'N'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *vocab = NULL, *output = NULL, *type = "roberta";
    long layers = 6, hidden = 768, heads = 12, ffn = 3072, maxpos = -1;
    unsigned long long seed = 2024;
    int mlp = 1, lm = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        int bad = optarg && (*optarg == 0 || *end != 0 || v < 1 || v > (1 << 24));
        switch (c) {
        case 'v': vocab = optarg; bad = 0; break;
        case 'o': output = optarg; bad = 0; break;
        case 't': type = optarg; bad = 0; break;
        case 'l': layers = v; break;
        case 'H': hidden = v; break;
        case 'a': heads = v; break;
        case 'f': ffn = v; break;
        case 'p': maxpos = v; break;
        case 's': seed = strtoull(optarg, &end, 10); bad = *optarg == 0 || *end != 0; break;
        case 'M': mlp = 0; break;
        case 'N': lm = 0; break;
        case 'h': fputs(init_usage, stdout); return 0;
        default: fputs(init_usage, stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "easyrec: invalid value '%s' for --%s\n", optarg, lo[0].name ? argv[optind - 1] + 2 : "");
            return 2;
        }
    }
    int roberta = !strcmp(type, "roberta");
    if (!vocab || !output || optind != argc || (!roberta && strcmp(type, "bert"))) {
        fputs(init_usage, stderr);
        return 2;
    }
    if (hidden % heads) {
        fprintf(stderr, "easyrec: --hidden %ld is not divisible by --heads %ld\n", hidden, heads);
        return 2;
    }
    easyrec_tokenizer *tok = NULL;
    if (easyrec_tokenizer_load(vocab, &tok)) return cli_fail(NULL);
    easyrec_config cfg = {0};
    cfg.n_layers = (int)layers;
    cfg.hidden = (int)hidden;
    cfg.n_heads = (int)heads;
    cfg.ffn = (int)ffn;
    cfg.vocab_size = easyrec_tokenizer_vocab_size(tok);
    cfg.pad_id = easyrec_tokenizer_pad_id(tok);
    cfg.is_roberta = roberta;
    cfg.max_positions = maxpos > 0 ? (int)maxpos : roberta ? 514 : 512;
    cfg.type_vocab_size = roberta ? 1 : 2;
    cfg.layer_norm_eps = roberta ? 1e-5f : 1e-12f;
    cfg.has_mlp = mlp;
    cfg.has_lm_head = lm;
    easyrec_tokenizer_free(tok);
    if (mkdir(output, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "easyrec: %s: %s\n", output, strerror(errno));
        return 1;
    }
    easyrec_model *m = NULL;
    if (easyrec_model_init(&cfg, seed, &m) || easyrec_model_save(m, output)) {
        easyrec_model_free(m);
        return cli_fail(NULL);
    }
    easyrec_model_free(m);
    static const char *files[] = {"vocab.json", "merges.txt", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                                  "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = er_path_join(vocab, files[i]), *dst = er_path_join(output, files[i]);
        int rc = src && dst && er_file_exists(src) ? copy_file(src, dst) : 0;
        free(src);
        free(dst);
        if (rc) return cli_fail(NULL);
    }
    fprintf(stderr, "easyrec: initialised a %ld-layer %s model (hidden %ld, vocab %d) in %s\n", layers, type, hidden,
            cfg.vocab_size, output);
    return 0;
}
