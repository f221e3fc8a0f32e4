/* optim.c — AdamW exactly as torch.optim.AdamW (torch 1.13/2.x single-tensor path), in fp32:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * with HF's linear schedule after optional warmup and torch's global-norm clipping
 * (coef = max / (norm + 1e-6), applied when < 1). */
#include <math.h>

#include "train/optim.h"

void er_adamw_step(const er_adamw *h, float *p, const float *grad, float *m, float *v, size_t n, long t,
                const uint8_t *decay_mask, int threads) {
    float bc1 = (float)(1.0 - pow(h->beta1, (double)t));
    float bc2s = (float)sqrt(1.0 - pow(h->beta2, (double)t));
    float step = h->lr / bc1, decay = 1.0f - h->lr * h->weight_decay;
    float b1 = h->beta1, b2 = h->beta2, eps = h->eps;
#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (h->weight_decay != 0.0f && (!decay_mask || decay_mask[i])) p[i] *= decay;
        m[i] = m[i] * b1 + g * (1.0f - b1);
        v[i] = v[i] * b2 + g * g * (1.0f - b2);
        float denom = sqrtf(v[i]) / bc2s + eps;
        p[i] -= step * (m[i] / denom);
    }
}

double er_optim_lr(const er_optim *o, long step) {
    double lr = o->h.lr;
    if (o->warmup > 0 && step < o->warmup) return lr * (double)step / o->warmup;
    long rest = o->total - (o->warmup > 0 ? o->warmup : 0);
    double f = rest > 0 ? (double)(o->total - step) / rest : 0;
    return lr * (f > 0 ? f : 0);
}

void er_optim_update(const er_optim *o, float *params, float *grad, long step, double *grad_norm, double *lr) {
    size_t n = o->n;
    double ss = 0; /* in order: the same bits whatever the thread count */
    for (size_t i = 0; i < n; i++) ss += (double)grad[i] * grad[i];
    double gnorm = sqrt(ss);
    if (o->clip > 0 && gnorm > o->clip) {
        float coef = (float)(o->clip / (gnorm + 1e-6));
        for (size_t i = 0; i < n; i++) grad[i] *= coef;
    }
    er_adamw h = o->h;
    h.lr = (float)er_optim_lr(o, step);
    er_adamw_step(&h, params, grad, o->m, o->v, n, step + 1, o->mask, o->threads);
    if (grad_norm) *grad_norm = gnorm;
    if (lr) *lr = h.lr;
}
