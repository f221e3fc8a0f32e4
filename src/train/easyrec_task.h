/* easyrec_task.h — EasyRec's training step as a loop step function (loop.h): a step takes
 * batch * accum examples in the epoch's order (the last step of an epoch fewer); the
 * contrastive loss is over ALL of them, exactly as the original's all-gathered global
 * batch, by gradient caching when accum > 1 (train.h); plus mlm_weight times the mean of
 * the micro-batches' MLM losses (the original's per-device mean). Buffers are sized once. */
#ifndef ER_EASYREC_TASK_H
#define ER_EASYREC_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "train/loop.h"
#include "train/train.h"
#include "train/train_data.h"

typedef struct {
    int batch, accum, domain_batches, threads, max_length;
    float temp, mlm_weight, dropout;
    uint64_t seed;
    er_comm *comm; /* NULL: one process. With R ranks a step is batch * accum * R examples:
                    * rank r embeds its contiguous share of the micro-batches, the embeddings
                    * are all-gathered, every rank computes the global contrastive loss and
                    * back-propagates its own micro-batches (the loop all-reduces the sum) */
} er_easyrec_task_opts;

typedef struct {
    const easyrec_model *m;
    er_train_data *td;
    er_easyrec_task_opts o;
    size_t per_step;
    long steps_per_epoch, cur_epoch;
    size_t *perm;          /* (n_ex) the current epoch's order */
    er_batch *mb;          /* (accum) micro-batches */
    er_step st;
    float *e_all, *de_all; /* (3 per_step, C) embeddings of the whole step and their gradient */
    er_contrastive cl;     /* the loss over the whole step */
    size_t *counts;        /* (ranks) floats each rank contributes to the all-gather */
} er_easyrec_task;

/* Buffers for o's batch shape over td's examples (EASYREC_ERR_NOMEM). */
int er_easyrec_task_init(er_easyrec_task *t, const easyrec_model *m, er_train_data *td,
                         const er_easyrec_task_opts *o);
void er_easyrec_task_free(er_easyrec_task *t);
/* er_step_fn: ctx is an er_easyrec_task */
int er_easyrec_step(void *ctx, long step, float *grad, er_step_stats *st);

#endif
