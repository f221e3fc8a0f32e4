/* loop.h — the training loop, model- and loss-agnostic: for each step the task's step
 * function adds its local gradient, the communicator sums it over ranks, the optimiser
 * updates, and the task's after-step hook logs / validates / checkpoints and may stop.
 * EasyRec's step is easyrec_task.c; a CF trainer or an MPI run reuses this loop as is. */
#ifndef ER_LOOP_H
#define ER_LOOP_H

#include <stddef.h>

#include "core/clock.h"
#include "core/comm.h"
#include "train/optim.h"

typedef struct {
    long step;                     /* number of the step just finished (1-based) */
    double loss, loss_cl, loss_mlm; /* set by the step function */
    double examples;               /* examples the step consumed (all ranks) */
    double t_comm;                 /* seconds the step function spent in collectives (all-gathers) */
    double grad_norm, lr;          /* set by the loop */
    double t_step, t_allreduce, t_update; /* wall seconds, set by the loop: the step function
                                             (t_comm included), the gradient all-reduce, the optimiser */
} er_step_stats;

/* Add the gradient of 0-based step `step` into grad (opt->n floats, zeroed by the loop);
 * fill the losses and examples of st. EASYREC_OK or an error code. */
typedef int (*er_step_fn)(void *ctx, long step, float *grad, er_step_stats *st);
/* After the update of step st->step: set *stop to end the loop after this step. */
typedef int (*er_after_step_fn)(void *ctx, const er_step_stats *st, int *stop);

typedef struct {
    er_comm *comm;          /* er_comm_serial() for one process */
    const er_optim *opt;
    float *params, *grad;   /* (opt->n) */
    long end;               /* steps run while *step < end */
    er_step_fn step;
    void *step_ctx;
    er_after_step_fn after; /* may be NULL; with several ranks only rank 0's decides (stop, error) */
    void *after_ctx;
} er_loop;

/* Run steps *step, *step + 1, ... until end or a stop; *step counts the finished steps. */
int er_loop_run(const er_loop *L, long *step);

#endif
