/* adamw.c — AdamW exactly as torch.optim.AdamW (torch 1.13/2.x single-tensor path), in fp32:
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * The decay mask excludes biases and LayerNorm weights (HF Trainer's grouping). Elementwise,
 * so any thread count gives the same result. */
#include <math.h>

#include "train/train.h"

void adamw_step(const er_adamw *h, float *p, const float *grad, float *m, float *v, size_t n, long t,
                const uint8_t *decay_mask, int threads) {
    float bc1 = (float)(1.0 - pow(h->beta1, (double)t));
    float bc2s = (float)sqrt(1.0 - pow(h->beta2, (double)t));
    float step = h->lr / bc1, decay = 1.0f - h->lr * h->weight_decay;
    float b1 = h->beta1, b2 = h->beta2, eps = h->eps;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (h->weight_decay != 0.0f && (!decay_mask || decay_mask[i])) p[i] *= decay;
        m[i] = m[i] * b1 + g * (1.0f - b1);
        v[i] = v[i] * b2 + g * g * (1.0f - b2);
        float denom = sqrtf(v[i]) / bc2s + eps;
        p[i] -= step * (m[i] / denom);
    }
}
