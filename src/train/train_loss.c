/* train_loss.c — EasyRec's two losses with their gradients.
 *
 * Contrastive (Easyrec.forward): cosine similarities of user embeddings with every positive
 * and every hard negative of the batch, divided by the temperature; cross-entropy with
 * target = the user's own positive (logits (n, 2n)). Cosine as torch: x·y over the product
 * of norms, each norm clamped below at 1e-8.
 * MLM (RobertaLMHead): dense -> GELU -> LayerNorm -> decoder (+ bias), cross-entropy
 * averaged over the masked positions only — we score only those rows (the original scores
 * every position and ignores the rest: same loss, same gradients, a fraction of the work).
 * With no masked position the MLM loss is 0 (torch would return NaN).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "train/train.h"

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float expf(float); /* libmvec, as in model/kernels.c */
#endif

double contrastive_loss(const float *e, float *de, int n, int C, float temp) {
    int R = 3 * n;
    double *en = malloc(sizeof(double) * (size_t)R * C), *r = malloc(sizeof(double) * R);
    double *lg = malloc(sizeof(double) * (size_t)n * 2 * n), *den = calloc((size_t)R * C, sizeof(double));
    ER_ASSERT(en && r && lg && den);
    for (int i = 0; i < R; i++) {
        double ss = 0;
        for (int k = 0; k < C; k++) ss += (double)e[(size_t)i * C + k] * e[(size_t)i * C + k];
        r[i] = 1.0 / fmax(sqrt(ss), 1e-8);
        for (int k = 0; k < C; k++) en[(size_t)i * C + k] = e[(size_t)i * C + k] * r[i];
    }
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const double *u = en + (size_t)i * C;
        double mx = -INFINITY;
        for (int j = 0; j < 2 * n; j++) {
            const double *y = en + (size_t)(n + j) * C;
            double d = 0;
            for (int k = 0; k < C; k++) d += u[k] * y[k];
            lg[(size_t)i * 2 * n + j] = d / temp;
            mx = fmax(mx, d / temp);
        }
        double s = 0;
        for (int j = 0; j < 2 * n; j++) s += exp(lg[(size_t)i * 2 * n + j] - mx);
        double lse = mx + log(s);
        loss += lse - lg[(size_t)i * 2 * n + i];
        /* dlogits = (softmax - onehot) / n, then through the dot products */
        for (int j = 0; j < 2 * n; j++) {
            double dl = (exp(lg[(size_t)i * 2 * n + j] - lse) - (j == i)) / n / temp;
            const double *y = en + (size_t)(n + j) * C;
            double *du = den + (size_t)i * C, *dy = den + (size_t)(n + j) * C;
            for (int k = 0; k < C; k++) {
                du[k] += dl * y[k];
                dy[k] += dl * u[k];
            }
        }
    }
    /* through the normalisation: de = r (den - en (en·den)) */
    for (int i = 0; i < R; i++) {
        const double *x = en + (size_t)i * C, *d = den + (size_t)i * C;
        double dot = 0;
        for (int k = 0; k < C; k++) dot += x[k] * d[k];
        for (int k = 0; k < C; k++) de[(size_t)i * C + k] = (float)(r[i] * (d[k] - x[k] * dot));
    }
    free(en), free(r), free(lg), free(den);
    return loss / n;
}

size_t mlm_scratch_floats(const easyrec_config *c, int R) { return (size_t)R * c->hidden * 5 + (size_t)R * 3; }

double mlm_loss(const easyrec_model *m, er_params *g, const float *hid, const int32_t *labels, int R, float scale,
                float *dhid, float *scratch, float *logits, int threads) {
    const easyrec_config *c = &m->cfg;
    const er_params *w = &m->w;
    int C = c->hidden, V = c->vocab_size;
    if (R == 0) return 0.0;
    size_t RC = (size_t)R * C;
    float *zpre = scratch, *u = zpre + RC, *v = u + RC, *dv = v + RC, *du = dv + RC, *mean = du + RC, *rstd = mean + R;
    float *rowloss = rstd + R;
    gemm_mt(0, 1, R, C, C, hid, C, w->lmdw, C, w->lmdb, zpre, C, 0, threads);
    memcpy(u, zpre, RC * sizeof(float));
    gelu_forward(u, RC);
    layernorm_forward_train(v, mean, rstd, u, w->lmlnw, w->lmlnb, R, C, c->layer_norm_eps, threads);
    gemm_mt(0, 1, R, V, C, v, C, w->lmdecw, C, w->lmbias, logits, V, 0, threads);
    scale /= (float)R; /* mean over the selected rows */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < R; i++) {
        float *l = logits + (size_t)i * V;
        float mx = -INFINITY;
        for (int j = 0; j < V; j++) mx = l[j] > mx ? l[j] : mx;
        float target = l[labels[i]], s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < V; j++) {
            l[j] = expf(l[j] - mx); /* in (0, 1]: the float sum is exact enough */
            s += l[j];
        }
        double lse = mx + log((double)s);
        rowloss[i] = (float)(lse - target);
        float k = scale / s;
#pragma omp simd
        for (int j = 0; j < V; j++) l[j] *= k; /* logits -> dlogits = (softmax - onehot) scale / R */
        l[labels[i]] -= scale;
    }
    double loss = 0;
    for (int i = 0; i < R; i++) loss += rowloss[i]; /* fixed order: thread-count independent */
    /* backward */
    bias_backward(g->lmbias, logits, R, V, threads);
    gemm_mt(1, 0, V, C, R, logits, V, v, C, NULL, g->lmdecw, C, 1, threads);
    gemm_mt(0, 0, R, C, V, logits, V, w->lmdecw, C, NULL, dv, C, 0, threads);
    layernorm_backward(du, g->lmlnw, g->lmlnb, dv, u, mean, rstd, w->lmlnw, R, C, 0, threads);
    gelu_backward(du, zpre, du, RC);
    bias_backward(g->lmdb, du, R, C, threads);
    gemm_mt(1, 0, C, C, R, du, C, hid, C, NULL, g->lmdw, C, 1, threads);
    gemm_mt(0, 0, R, C, C, du, C, w->lmdw, C, NULL, dhid, C, 0, threads);
    return loss / R;
}
