/* trainer.h — `easyrec train`: the whole EasyRec training run (spec §3): data, the loop
 * (loop.h) over EasyRec's step (easyrec_task.h) with AdamW + linear schedule + clipping
 * (optim.h), validation through eval's runner, the validation-selected best checkpoint,
 * resumable state, progress through a callback and a JSON-lines log. */
#ifndef ER_TRAINER_H
#define ER_TRAINER_H

#include <signal.h>
#include <stdint.h>

/* What a run reports while it works; the library prints nothing, the caller's progress
 * callback decides (the CLI writes these lines on stderr). */
typedef enum {
    ER_TRAIN_RESUMED = 1, /* step: where it continues, total */
    ER_TRAIN_STEP = 2,    /* after each optimiser step: step, total, epoch, losses, lr, grad_norm, rate, eta */
    ER_TRAIN_EVAL = 3,    /* after a validation: step, metric (mean Recall@20), best (1: saved) */
    ER_TRAIN_STOPPED = 4, /* stopped before the end (--max-steps or cancel) with the state saved at step */
} er_train_event_kind;

typedef struct {
    er_train_event_kind kind;
    long step, total;
    double epoch, loss, loss_cl, loss_mlm, lr, grad_norm;
    double examples_per_s, eta_s;
    double metric;
    int best;
} er_train_event;

typedef void (*er_train_progress_fn)(void *user, const er_train_event *ev);

typedef struct {
    const char *init_dir;     /* HF checkpoint to start from, or NULL with config */
    const char *config;       /* tiny | small | base | large: from scratch, with vocab_dir */
    const char *vocab_dir;    /* tokenizer files for config (default: init_dir's) */
    int layers;               /* keep the bottom N layers of init_dir (0: all) */
    const char *const *data;  /* training dataset directories */
    int n_data;
    const char *const *val;   /* validation dataset directories (NULL: the training ones) */
    int n_val;                /* -1: no validation */
    const char *output;
    int epochs, batch, accum;
    float lr, weight_decay, clip;
    int warmup;
    int max_length, eval_max_length;
    float temp, mlm_weight, mlm_prob, dropout;
    int diverse, user_items_k;
    int domain_batches;       /* 1: each step's examples from one dataset (default: mixed) */
    long eval_steps, max_steps; /* max_steps > 0: stop (saving state) after that many steps */
    uint64_t seed;
    int threads, resume, quiet;
    int overwrite;            /* 1: start again in an output that holds training state */
    er_train_progress_fn progress; /* optional */
    void *progress_user;
    struct er_comm *comm;     /* NULL: one process; else data-parallel over its ranks (a step is
                               * batch x accum x ranks examples; rank 0 logs, validates, writes) */
    const volatile sig_atomic_t *cancel; /* optional: when it becomes nonzero the run stops after
                                           * the current step, saving the resumable state */
} er_train_opts;

void er_train_opts_init(er_train_opts *o);
/* The whole run. Refused (EASYREC_ERR_ARG, before anything is written) when OUTPUT already
 * holds training state (checkpoint-last/ or train_log.jsonl) and neither resume nor
 * overwrite is set, or when max_length exceeds the model's position table. */
int er_train_run(const er_train_opts *o);

#endif
