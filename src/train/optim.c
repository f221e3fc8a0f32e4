/* optim.c — AdamW exactly as torch.optim.AdamW (torch 1.13/2.x single-tensor path), in fp32:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with HF's linear schedule after optional warmup and torch's global-norm clipping
 * (coef = max / (norm + 1e-6), applied when < 1).
 *
 * The update is one pass over the flat buffers written so that the compiler vectorises it
 * (no branch in the loop; built with -fno-math-errno so sqrtf needs no errno check: the
 * Makefile's line for this file). Per element it is the same float arithmetic, hence the same
 * bits, as the plain loop; the clip factor is applied to g inside that pass (g * coef, as
 * the separate scaling pass computed it). The squared norm is summed in double in 8 fixed
 * lanes (element i into lane i % 8, lanes added in order): the same bits for any thread or
 * rank count, without one 13-million-long chain of dependent additions. Measured on the tiny
 * model (13.4 M parameters): update + norm 65-75 ms of CPU before, see docs/distributed.md. */
#include <math.h>

#include "train/optim.h"

/* one entry: p *= keep (the decay factor or 1), moments, step */
#define ADAMW_ENTRY(i, keep)                                                       \
    do {                                                                           \
        float g = grad[i] * gscale;                                                \
        float mi = m[i] * b1 + g * (1.0f - b1), vi = v[i] * b2 + g * g * (1.0f - b2); \
        m[i] = mi;                                                                 \
        v[i] = vi;                                                                 \
        p[i] = p[i] * (keep) - step * (mi / (sqrtf(vi) / bc2s + eps));             \
    } while (0)

/* one AdamW update of n entries with the gradient scaled by gscale (1: unscaled) */
static void adamw_pass(const er_adamw *h, float *p, const float *grad, float gscale, float *m, float *v, size_t n,
                       long t, const uint8_t *decay_mask, int threads) {
    float bc1 = (float)(1.0 - pow(h->beta1, (double)t));
    float bc2s = (float)sqrt(1.0 - pow(h->beta2, (double)t));
    float step = h->lr / bc1, decay = h->weight_decay != 0.0f ? 1.0f - h->lr * h->weight_decay : 1.0f;
    float b1 = h->beta1, b2 = h->beta2, eps = h->eps, nodecay = 1.0f - decay;
    int th = threads < 1 ? 1 : threads;
    if (decay_mask) {
        /* the factor is decay or exactly 1: 1 - 1*(1-d) == d for d in [0.5, 1] (Sterbenz) */
#pragma omp parallel for simd num_threads(th) schedule(static)
        for (size_t i = 0; i < n; i++) ADAMW_ENTRY(i, 1.0f - (float)(decay_mask[i] != 0) * nodecay);
    } else {
#pragma omp parallel for simd num_threads(th) schedule(static)
        for (size_t i = 0; i < n; i++) ADAMW_ENTRY(i, decay);
    }
}
#undef ADAMW_ENTRY

void er_adamw_step(const er_adamw *h, float *p, const float *grad, float *m, float *v, size_t n, long t,
                   const uint8_t *decay_mask, int threads) {
    adamw_pass(h, p, grad, 1.0f, m, v, n, t, decay_mask, threads);
}

/* sum of squares in double, element i into lane i % 8, lanes added in order */
static double sum_squares(const float *x, size_t n) {
    double lane[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) lane[k] += (double)x[i + k] * x[i + k];
    for (; i < n; i++) lane[i % 8] += (double)x[i] * x[i];
    double s = 0;
    for (int k = 0; k < 8; k++) s += lane[k];
    return s;
}

double er_optim_lr(const er_optim *o, long step) {
    double lr = o->h.lr;
    if (o->warmup > 0 && step < o->warmup) return lr * (double)step / o->warmup;
    long rest = o->total - (o->warmup > 0 ? o->warmup : 0);
    double f = rest > 0 ? (double)(o->total - step) / rest : 0;
    return lr * (f > 0 ? f : 0);
}

void er_optim_update(const er_optim *o, float *params, float *grad, long step, double *grad_norm, double *lr) {
    double gnorm = sqrt(sum_squares(grad, o->n));
    float coef = 1.0f;
    if (o->clip > 0 && gnorm > o->clip) coef = (float)(o->clip / (gnorm + 1e-6));
    er_adamw h = o->h;
    h.lr = (float)er_optim_lr(o, step);
    adamw_pass(&h, params, grad, coef, o->m, o->v, o->n, step + 1, o->mask, o->threads);
    if (grad_norm) *grad_norm = gnorm;
    if (lr) *lr = h.lr;
}
