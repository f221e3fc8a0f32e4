/* cmd_train.c — `easyrec train`: parse options into er_train_opts and run (train/trainer.c);
 * the progress lines on stderr and the SIGINT/SIGTERM handlers (they raise the run's cancel
 * flag: the step in progress finishes and the state is saved) live here, not in the library. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/comm.h"
#include "cli/opt.h"
#include "easyrec.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "train/trainer.h"

/* split a comma-separated list (the option layer joins repeated options with ',') into a
 * malloc'd array of pointers into s; NULL on allocation failure */
static const char **split_list(char *s, int *n) {
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    const char **out = calloc((size_t)cap, sizeof(*out));
    *n = 0;
    if (!out) return NULL;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) out[(*n)++] = t;
    return out;
}

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

typedef struct {
    int tty, mid_line; /* stderr is a terminal; a \r progress line is open */
} progress_state;

static void print_progress(void *user, const er_train_event *ev) {
    progress_state *p = user;
    switch (ev->kind) {
    case ER_TRAIN_RESUMED: fprintf(stderr, "easyrec: resuming at step %ld of %ld\n", ev->step, ev->total); break;
    case ER_TRAIN_STEP:
        if (p->tty || ev->step % 10 == 0 || ev->step == ev->total) {
            fprintf(stderr, "%sstep %ld/%ld  epoch %.2f  loss %.4f (cl %.4f mlm %.4f)  lr %.2e  %.1f ex/s  ETA %.0fm%s",
                    p->tty ? "\r" : "", ev->step, ev->total, ev->epoch, ev->loss, ev->loss_cl, ev->loss_mlm, ev->lr,
                    ev->examples_per_s, ev->eta_s / 60, p->tty ? "  " : "\n");
            p->mid_line = p->tty;
        }
        break;
    case ER_TRAIN_EVAL:
        if (p->mid_line) fputc('\n', stderr), p->mid_line = 0;
        fprintf(stderr, "easyrec: step %ld validation Recall@20 %.4f%s\n", ev->step, ev->metric,
                ev->best ? " (best: saved)" : "");
        break;
    case ER_TRAIN_STOPPED:
        if (p->mid_line) fputc('\n', stderr), p->mid_line = 0;
        fprintf(stderr, "easyrec: stopped at step %ld; state saved, continue with --resume\n", ev->step);
        break;
    }
}

int cmd_train(int argc, char **argv) {
    er_train_opts o;
    er_train_opts_init(&o);
    const char *data = NULL, *val = NULL;
    int config = -1, threads = cli_default_threads(), er_gemm = 0;
    double lr = o.lr, wd = o.weight_decay, clip = o.clip, temp = o.temp, mlmw = o.mlm_weight, mlmp = o.mlm_prob,
           drop = o.dropout;
    int64_t eval_steps = o.eval_steps, max_steps = 0, seed = (int64_t)o.seed;
    cli_opt opts[] = {
        OPT_S("init", &o.init_dir, "DIR",
              "start from a Hugging Face checkpoint (EasyRec / RoBERTa / BERT layout); missing mlp.dense / lm_head "
              "are created N(0, 0.02)"),
        OPT_C("config", &config, CLI_PRESET_CHOICES,
              "from scratch with that shape (tiny 2x128, small 6x768, base 12x768, large 24x1024), with --vocab "
              "(default none)"),
        OPT_S("vocab", &o.vocab_dir, "DIR", "tokenizer files (default: those of --init)"),
        OPT_I("layers", &o.layers, "N", "keep the bottom N layers of --init, EasyRec-small: 6 of roberta-base (default: all)",
              1, 1024),
        OPT_LIST_("data", &data, "D1,D2", "training datasets (EasyRec layout); repeat or comma-separate", .required = 1),
        OPT_LIST_("val-data", &val, "V1,V2", "validation datasets, 'none' to skip (default: the training ones)"),
        OPT_S("output", &o.output, "DIR", "best checkpoint (HF layout), checkpoint-last/ (resumable), train_log.jsonl",
              .required = 1),
        OPT_I("epochs", &o.epochs, "N", "passes over the training data", 1, 1000000),
        OPT_I("batch-size", &o.batch, "N", "examples per micro-batch", 1, 65536),
        OPT_I("grad-accum", &o.accum, "N", "micro-batches per step (the loss covers batch-size x grad-accum)", 1, 65536),
        OPT_D("lr", &lr, "X", "peak learning rate", 0, 10),
        OPT_I("warmup-steps", &o.warmup, "N", "linear warmup steps", 0, 1000000000),
        OPT_D("weight-decay", &wd, "X", "AdamW weight decay", 0, 10),
        OPT_D("clip", &clip, "X", "gradient-norm clip (0: none)", 0, 1e9),
        OPT_I("max-length", &o.max_length, "N", "training truncation incl. specials", 3, CLI_MAX_LENGTH),
        OPT_I("eval-max-length", &o.eval_max_length, "N", "validation truncation incl. specials", 3, CLI_MAX_LENGTH),
        OPT_D("temp", &temp, "X", "contrastive temperature", 1e-6, 1e6),
        OPT_D("mlm-weight", &mlmw, "X", "weight of the MLM loss (0: no MLM work at all)", 0, 1e6),
        OPT_D("mlm-prob", &mlmp, "X", "masking probability", 0, 1),
        OPT_D("dropout", &drop, "X", "dropout probability (0 for training from scratch)", 0, 0.99),
        OPT_I("diverse", &o.diverse, "N", "diverse profile sets used besides the original", 0, 3),
        OPT_I("user-items", &o.user_items_k, "N", "training items describing a user without a profile", 1, 1000000),
        OPT_L("eval-steps", &eval_steps, "N", "validate every N steps (0: only at the end)", 0, 1e15),
        OPT_L("seed", &seed, "N", "seed of data order, masking, dropout and new heads", 0, 9007199254740992.0),
        OPT_I("threads", &threads, "N", "threads (default: all cores)", 1, CLI_MAX_THREADS, .env = "EASYREC_THREADS"),
        OPT_L("max-steps", &max_steps, "N", "stop after N steps, state saved; continue with --resume (default: no limit)",
              1, 1e15),
        OPT_F("resume", &o.resume, "continue from OUTPUT/checkpoint-last, bit-exactly"),
        OPT_F("overwrite", &o.overwrite, "start again in an OUTPUT that holds training state (default: refused)"),
        OPT_F("domain-batches", &o.domain_batches,
              "every step's examples from one dataset (default: datasets mixed within batches, as the original)"),
        OPT_F("quiet", &o.quiet, "no progress on stderr"),
        CLI_GEMM_OPT(&er_gemm),
        {0}};
    cli_cmd cmd = {"train", "(--init DIR | --config NAME --vocab DIR) --data D1,D2,... --output DIR [options]",
                   "Train an EasyRec encoder (contrastive + MLM, docs/train.md). The contrastive loss covers\n"
                   "batch-size x grad-accum examples at once (gradient caching), like the original's global batch:\n"
                   "--batch-size 32 --grad-accum 8 reproduces its 256.",
                   opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    const char **dl = NULL, **vl = NULL;
    char *dcopy = NULL, *vcopy = NULL;
    if (rc) {
        rc = rc == OPT_HELP ? 0 : rc;
        goto out;
    }
    if (!o.init_dir == (config < 0)) {
        rc = opt_usage_error(&cmd, "give exactly one of --init DIR and --config NAME");
        goto out;
    }
    if (config >= 0) o.config = er_model_presets[config].name;
    if (!(dcopy = strdup(data)) || !(dl = split_list(dcopy, &o.n_data))) {
        rc = cli_fail("out of memory");
        goto out;
    }
    o.data = dl;
    if (val && !strcmp(val, "none")) {
        o.n_val = -1;
    } else if (val) {
        if (!(vcopy = strdup(val)) || !(vl = split_list(vcopy, &o.n_val))) {
            rc = cli_fail("out of memory");
            goto out;
        }
        o.val = vl;
    }
    if (o.n_data <= 0) {
        rc = opt_usage_error(&cmd, "--data names no dataset");
        goto out;
    }
    o.lr = (float)lr, o.weight_decay = (float)wd, o.clip = (float)clip, o.temp = (float)temp;
    o.mlm_weight = (float)mlmw, o.mlm_prob = (float)mlmp, o.dropout = (float)drop;
    o.eval_steps = (long)eval_steps, o.max_steps = (long)max_steps, o.seed = (uint64_t)seed;
    o.threads = threads;
    if (o.resume && o.overwrite) {
        rc = opt_usage_error(&cmd, "--resume and --overwrite exclude each other");
        goto out;
    }
    er_comm *comm = NULL; /* under mpirun: data-parallel over the ranks (docs/distributed.md) */
    if (cli_comm(&comm)) {
        rc = cli_fail(NULL);
        goto out;
    }
    if (comm->size > 1) o.comm = comm;
    if (comm->rank) o.quiet = 1; /* rank 0 reports */
    progress_state ps = {isatty(2), 0};
    if (!o.quiet) o.progress = print_progress, o.progress_user = &ps;
    stop_requested = 0;
    o.cancel = &stop_requested;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    er_gemm_set_backend(er_gemm); /* this thread's choice; er_gemm_mt hands it to its workers */
    rc = er_train_run(&o);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ps.mid_line) fputc('\n', stderr);
    rc = rc ? cli_fail(NULL) : 0;
out:
    free(dl);
    free(vl);
    free(dcopy);
    free(vcopy);
    opt_free(&cmd);
    return rc;
}
