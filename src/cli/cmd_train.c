/* cmd_train.c — `easyrec train`: parse options into er_train_opts and run (train/trainer.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "easyrec.h"
#include "train/trainer.h"

static const char train_usage[] =
    "usage: easyrec train (--init DIR | --config tiny|small|base|large --vocab DIR) --data D1,D2,...\n"
    "                     --output DIR [options]\n"
    "  --init DIR         start from a Hugging Face checkpoint (EasyRec / RoBERTa / BERT layout);\n"
    "                     missing mlp.dense / lm_head are created N(0, 0.02)\n"
    "  --layers N         keep the bottom N layers of --init (EasyRec-small: 6 of roberta-base)\n"
    "  --config NAME      from scratch with that shape (tiny 2x128, small 6x768, base 12x768, large 24x1024)\n"
    "  --vocab DIR        tokenizer files (default: those of --init)\n"
    "  --data D1,D2       training datasets (EasyRec layout)\n"
    "  --val-data V1,..   validation datasets (default: the training ones; 'none' to skip)\n"
    "  --output DIR       best checkpoint (HF layout), checkpoint-last/ (resumable), train_log.jsonl\n"
    "  --epochs 25 --batch-size 32 --grad-accum 1 --lr 5e-5 --warmup-steps 0 --weight-decay 0\n"
    "  --clip 1.0 --max-length 64 --eval-max-length 512 --temp 0.05 --mlm-weight 0.1 --mlm-prob 0.15\n"
    "  --dropout 0.1 --diverse 3 --user-items 5 --eval-steps 1000 --seed 2024 --threads N\n"
    "  --max-steps N      stop after N steps (state saved; continue with --resume)\n"
    "  --resume           continue from OUTPUT/checkpoint-last, bit-exactly\n"
    "  --domain-batches   every step's examples from one dataset (in-batch negatives of the same\n"
    "                     domain; default: datasets mixed within batches, as the original)\n"
    "  --quiet            no progress on stderr\n"
    "The contrastive loss covers batch-size x grad-accum examples at once (gradient caching),\n"
    "like the original's global batch: --batch-size 32 --grad-accum 8 reproduces its 256.\n";

/* split a comma-separated list in place */
static int split_list(char *s, const char **out, int cap) {
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < cap; tok = strtok(NULL, ",")) out[n++] = tok;
    return n;
}

static int num(const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end != 0 || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

int cmd_train(int argc, char **argv) {
    enum { O_INIT = 1000, O_CONFIG, O_VOCAB, O_LAYERS, O_DATA, O_VAL, O_OUT, O_EPOCHS, O_BATCH, O_ACCUM, O_LR,
           O_WARM, O_WD, O_CLIP, O_MAXLEN, O_EVLEN, O_TEMP, O_MLMW, O_MLMP, O_DROP, O_DIV, O_UK, O_EVSTEPS, O_SEED,
           O_THREADS, O_MAXSTEPS, O_RESUME, O_QUIET, O_DOMB, O_HELP };
    static const struct option lo[] = {
        {"init", 1, 0, O_INIT},          {"config", 1, 0, O_CONFIG},      {"vocab", 1, 0, O_VOCAB},
        {"layers", 1, 0, O_LAYERS},      {"data", 1, 0, O_DATA},          {"val-data", 1, 0, O_VAL},
        {"output", 1, 0, O_OUT},         {"epochs", 1, 0, O_EPOCHS},      {"batch-size", 1, 0, O_BATCH},
        {"grad-accum", 1, 0, O_ACCUM},   {"lr", 1, 0, O_LR},              {"warmup-steps", 1, 0, O_WARM},
        {"weight-decay", 1, 0, O_WD},    {"clip", 1, 0, O_CLIP},          {"max-length", 1, 0, O_MAXLEN},
        {"eval-max-length", 1, 0, O_EVLEN}, {"temp", 1, 0, O_TEMP},       {"mlm-weight", 1, 0, O_MLMW},
        {"mlm-prob", 1, 0, O_MLMP},      {"dropout", 1, 0, O_DROP},       {"diverse", 1, 0, O_DIV},
        {"user-items", 1, 0, O_UK},      {"eval-steps", 1, 0, O_EVSTEPS}, {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS},    {"max-steps", 1, 0, O_MAXSTEPS}, {"resume", 0, 0, O_RESUME},
        {"quiet", 0, 0, O_QUIET},        {"domain-batches", 0, 0, O_DOMB}, {"help", 0, 0, O_HELP},
        {0, 0, 0, 0}};
    er_train_opts o;
    train_opts_init(&o);
    static const char *data[64], *val[64];
    o.threads = 0;
    int c;
    double v = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_INIT: o.init_dir = optarg; break;
        case O_CONFIG: o.config = optarg; break;
        case O_VOCAB: o.vocab_dir = optarg; break;
        case O_LAYERS: bad = num(optarg, 1, 1024, &v); o.layers = (int)v; break;
        case O_DATA: o.n_data = split_list(optarg, data, 64); o.data = data; break;
        case O_VAL:
            if (!strcmp(optarg, "none")) o.n_val = -1;
            else o.n_val = split_list(optarg, val, 64), o.val = val;
            break;
        case O_OUT: o.output = optarg; break;
        case O_EPOCHS: bad = num(optarg, 1, 1e6, &v); o.epochs = (int)v; break;
        case O_BATCH: bad = num(optarg, 1, 65536, &v); o.batch = (int)v; break;
        case O_ACCUM: bad = num(optarg, 1, 65536, &v); o.accum = (int)v; break;
        case O_LR: bad = num(optarg, 0, 10, &v); o.lr = (float)v; break;
        case O_WARM: bad = num(optarg, 0, 1e9, &v); o.warmup = (int)v; break;
        case O_WD: bad = num(optarg, 0, 10, &v); o.weight_decay = (float)v; break;
        case O_CLIP: bad = num(optarg, 0, 1e9, &v); o.clip = (float)v; break;
        case O_MAXLEN: bad = num(optarg, 3, 1 << 20, &v); o.max_length = (int)v; break;
        case O_EVLEN: bad = num(optarg, 3, 1 << 20, &v); o.eval_max_length = (int)v; break;
        case O_TEMP: bad = num(optarg, 1e-6, 1e6, &v); o.temp = (float)v; break;
        case O_MLMW: bad = num(optarg, 0, 1e6, &v); o.mlm_weight = (float)v; break;
        case O_MLMP: bad = num(optarg, 0, 1, &v); o.mlm_prob = (float)v; break;
        case O_DROP: bad = num(optarg, 0, 0.99, &v); o.dropout = (float)v; break;
        case O_DIV: bad = num(optarg, 0, 3, &v); o.diverse = (int)v; break;
        case O_UK: bad = num(optarg, 1, 1e6, &v); o.user_items_k = (int)v; break;
        case O_EVSTEPS: bad = num(optarg, 0, 1e12, &v); o.eval_steps = (long)v; break;
        case O_SEED: bad = num(optarg, 0, 1.8e19, &v); o.seed = strtoull(optarg, NULL, 10); break;
        case O_THREADS: bad = num(optarg, 1, 4096, &v); o.threads = (int)v; break;
        case O_MAXSTEPS: bad = num(optarg, 1, 1e15, &v); o.max_steps = (long)v; break;
        case O_RESUME: o.resume = 1; break;
        case O_QUIET: o.quiet = 1; break;
        case O_DOMB: o.domain_batches = 1; break;
        case O_HELP: fputs(train_usage, stdout); return 0;
        default: fputs(train_usage, stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "easyrec: invalid value '%s' for %s\n", optarg, argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc || !o.output || o.n_data <= 0 || (!o.init_dir == !o.config)) {
        fputs(train_usage, stderr);
        return 2;
    }
    if (o.threads <= 0) {
        long np = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = np > 0 ? (int)np : 1;
    }
    if (train_run(&o)) return cli_fail(NULL);
    return 0;
}
