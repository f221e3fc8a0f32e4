/* train_state.h — save / load the resumable training state (train_state.c). */
#ifndef ER_TRAIN_STATE_H
#define ER_TRAIN_STATE_H
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

typedef struct {
    long step;          /* optimizer steps completed */
    double best;        /* best validation metric so far (-1: none) */
    long best_step;
    uint64_t seed;
    int batch, accum;   /* must match on resume: they fix the data order */
    int domain_batches; /* so does this (absent in a state file: 0) */
    size_t n_examples;
    long total_steps;
} er_train_state;

/* Write OUTPUT/checkpoint-last (weights, moments mom/vel of n floats, st, and the tokenizer
 * files of tok_dir unless NULL, so the state is also a model directory), atomically. */
int er_train_state_save(const char *output, const easyrec_model *m, const float *mom, const float *vel, size_t n,
                     const er_train_state *st, const char *tok_dir);
/* Tokenizer files of tok_dir copied into out; tokenizer_config.json written when absent. */
int er_checkpoint_write_tokenizer(const easyrec_model *m, const char *tok_dir, const char *out);
/* Read it back: *m, *mom, *vel owned by the caller. */
int er_train_state_load(const char *output, easyrec_model **m, float **mom, float **vel, er_train_state *st);
#endif
