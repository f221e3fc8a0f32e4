/* trainer.h — `easyrec train`: the whole EasyRec training run (spec §3): data, steps with
 * gradient accumulation, AdamW + linear schedule + clipping, validation-selected best
 * checkpoint, resumable state, progress and a JSON-lines log. */
#ifndef ER_TRAINER_H
#define ER_TRAINER_H

#include <stdint.h>

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
} er_train_opts;

void train_opts_init(er_train_opts *o);
int train_run(const er_train_opts *o);

#endif
