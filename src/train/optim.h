/* optim.h — the optimiser of a training run: AdamW (torch.optim.AdamW semantics), the
 * linear schedule with warmup (HF get_linear_schedule_with_warmup) and global-norm
 * clipping (torch clip_grad_norm_). Knows nothing of models or losses: a flat parameter
 * buffer, its gradient and a per-entry decay mask. */
#ifndef ER_OPTIM_H
#define ER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} er_adamw;

/* One AdamW step (decoupled decay p -= lr*wd*p, bias-corrected moments) over n params;
 * decay_mask (n) or NULL selects decayed entries; t >= 1. Elementwise: any thread count
 * gives the same bits. */
void er_adamw_step(const er_adamw *h, float *p, const float *grad, float *m, float *v, size_t n, long t,
                const uint8_t *decay_mask, int threads);

typedef struct {
    er_adamw h;          /* h.lr is the peak learning rate */
    long warmup, total;  /* schedule: linear warmup over `warmup` steps, then linear decay to 0 at total */
    float clip;          /* max global gradient norm (<= 0: no clipping) */
    float *m, *v;        /* (n) moments; owned by the caller */
    const uint8_t *mask; /* (n) 1 = weight decay applies; NULL: everywhere */
    size_t n;
    int threads;
} er_optim;

/* learning rate of 0-based step `step` */
double er_optim_lr(const er_optim *o, long step);
/* One AdamW update of params at 0-based step `step` with its scheduled rate, the gradient
 * clipped to o->clip by its global L2 norm (grad (n) itself is left as it is).
 * *grad_norm: the norm before clipping, *lr: the rate used (either may be NULL). */
void er_optim_update(const er_optim *o, float *params, float *grad, long step, double *grad_norm, double *lr);

#endif
