/* cmd_init.c — `easyrec init`: a randomly initialised model directory (for training from
 * scratch, tests and the demo): config.json, model.safetensors and the tokenizer files
 * copied from --vocab. A failed init leaves no directory or file behind that it created. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/err.h"
#include "easyrec.h"
#include "model/model.h"

static int copy_file(const char *src, const char *dst) {
    char *buf;
    size_t len;
    int rc = er_read_file(src, &buf, &len);
    if (rc) return rc;
    rc = er_write_file_atomic(dst, buf, len);
    free(buf);
    return rc;
}

static const char *const model_files[] = {"config.json",     "model.safetensors",     "vocab.json",
                                          "merges.txt",      "vocab.txt",             "tokenizer.json",
                                          "tokenizer_config.json", "special_tokens_map.json"};
#define N_MODEL_FILES (sizeof model_files / sizeof model_files[0])

/* undo a failed init: the files this run wrote (existed[k] == 0), and the directory if it
 * created it */
static void clean_up(const char *dir, int created, const int *existed) {
    for (size_t k = 0; k < N_MODEL_FILES; k++) {
        if (existed[k]) continue;
        char *p = er_path_join(dir, model_files[k]);
        if (p) unlink(p);
        free(p);
    }
    if (created) rmdir(dir);
}

int cmd_init(int argc, char **argv) {
    const char *vocab = NULL, *output = NULL;
    int type = 0, preset = 1, layers = 0, hidden = 0, heads = 0, ffn = 0, maxpos = 0, no_mlp = 0, no_lm = 0;
    int64_t seed = 2024;
    cli_opt opts[] = {
        OPT_S("vocab", &vocab, "DIR", "tokenizer files (vocab.json + merges.txt, or vocab.txt for bert)", .required = 1),
        OPT_S("output", &output, "DIR", "model directory to create (or an existing one to write into)", .required = 1),
        OPT_C("type", &type, "roberta|bert", "architecture"),
        OPT_C("preset", &preset, CLI_PRESET_CHOICES,
              "shape: tiny 2x128, small 6x768 (EasyRec-small), base 12x768, large 24x1024"),
        OPT_I("layers", &layers, "N", "layers (default: the preset's)", 1, 1024),
        OPT_I("hidden", &hidden, "N", "hidden size (default: the preset's)", 1, 1 << 16),
        OPT_I("heads", &heads, "N", "attention heads, dividing --hidden (default: the preset's)", 1, 1 << 12),
        OPT_I("ffn", &ffn, "N", "feed-forward width (default: the preset's)", 1, 1 << 20),
        OPT_I("max-positions", &maxpos, "N", "position table size (default 514 for roberta, 512 for bert)", 3, 1 << 20),
        OPT_F("no-mlp", &no_mlp, "without the EasyRec head mlp.dense"),
        OPT_F("no-lm-head", &no_lm, "without the MLM head"),
        OPT_L("seed", &seed, "N", "initialisation seed", 0, 9007199254740992.0),
        {0}};
    cli_cmd cmd = {"init", "--vocab DIR --output DIR [options]",
                   "Create a randomly initialised model directory (HF initialisation, deterministic seed).", opts, 0, 0,
                   NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    const er_model_preset *ps = &er_model_presets[preset];
    if (!layers) layers = ps->layers;
    if (!hidden) hidden = ps->hidden;
    if (!heads) heads = ps->heads;
    if (!ffn) ffn = ps->ffn;
    if (hidden % heads) return opt_usage_error(&cmd, "--hidden %d is not divisible by --heads %d", hidden, heads);
    int roberta = type == 0;
    easyrec_tokenizer *tok = NULL;
    if (easyrec_tokenizer_load(vocab, &tok)) return cli_fail(NULL);
    easyrec_config cfg = {0};
    cfg.n_layers = layers;
    cfg.hidden = hidden;
    cfg.n_heads = heads;
    cfg.ffn = ffn;
    cfg.vocab_size = easyrec_tokenizer_vocab_size(tok);
    cfg.pad_id = easyrec_tokenizer_pad_id(tok);
    cfg.is_roberta = roberta;
    cfg.max_positions = maxpos > 0 ? maxpos : roberta ? 514 : 512;
    cfg.type_vocab_size = roberta ? 1 : 2;
    cfg.layer_norm_eps = roberta ? 1e-5f : 1e-12f;
    cfg.has_mlp = !no_mlp;
    cfg.has_lm_head = !no_lm;
    easyrec_tokenizer_free(tok);
    if (roberta && cfg.max_positions <= cfg.pad_id + 2)
        return opt_usage_error(&cmd, "--max-positions %d leaves no room after the padding offset (needs > %d)",
                               cfg.max_positions, cfg.pad_id + 2);
    int existed[N_MODEL_FILES] = {0}, created = 0;
    if (mkdir(output, 0755) == 0) {
        created = 1;
    } else if (errno != EEXIST) {
        er_error(EASYREC_ERR_IO, "%s: %s", output, strerror(errno));
        return cli_fail(NULL);
    }
    for (size_t k = 0; k < N_MODEL_FILES; k++) {
        char *p = er_path_join(output, model_files[k]);
        existed[k] = !p || er_file_exists(p);
        free(p);
    }
    easyrec_model *m = NULL;
    if (easyrec_model_init(&cfg, (uint64_t)seed, &m) || easyrec_model_save(m, output)) {
        easyrec_model_free(m);
        rc = cli_fail(NULL);
        clean_up(output, created, existed);
        return rc;
    }
    easyrec_model_free(m);
    for (size_t i = 2; i < N_MODEL_FILES; i++) {
        char *src = er_path_join(vocab, model_files[i]), *dst = er_path_join(output, model_files[i]);
        rc = src && dst && er_file_exists(src) ? copy_file(src, dst) : 0;
        free(src);
        free(dst);
        if (rc) {
            rc = cli_fail(NULL);
            clean_up(output, created, existed);
            return rc;
        }
    }
    fprintf(stderr, "easyrec: initialised a %d-layer %s model (hidden %d, vocab %d) in %s\n", layers,
            roberta ? "roberta" : "bert", hidden, cfg.vocab_size, output);
    return 0;
}
