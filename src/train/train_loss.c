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

int er_contrastive_init(er_contrastive *w, int cap_n, int C) {
    memset(w, 0, sizeof(*w));
    size_t R = 3 * (size_t)cap_n;
    w->en = er_mallocarray(R * C, sizeof(double));
    w->r = er_mallocarray(R, sizeof(double));
    w->lg = er_mallocarray((size_t)cap_n * 2 * cap_n, sizeof(double));
    w->den = er_mallocarray(R * C, sizeof(double));
    if (!w->en || !w->r || !w->lg || !w->den) {
        er_contrastive_free(w);
        return EASYREC_ERR_NOMEM;
    }
    w->cap_n = cap_n;
    w->C = C;
    return EASYREC_OK;
}

void er_contrastive_free(er_contrastive *w) {
    free(w->en), free(w->r), free(w->lg), free(w->den);
    memset(w, 0, sizeof(*w));
}

double er_contrastive_loss(er_contrastive *w, const float *e, float *de, int n, int C, float temp) {
    ER_ASSERT(n <= w->cap_n && C == w->C);
    int R = 3 * n;
    double *en = w->en, *r = w->r, *lg = w->lg, *den = w->den;
    memset(den, 0, sizeof(double) * (size_t)R * C);
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
    return loss / n;
}

size_t er_mlm_scratch_floats(const easyrec_config *c, int R) { return (size_t)R * c->hidden * 5 + (size_t)R * 3; }

double er_mlm_loss(const easyrec_model *m, er_params *g, const float *hid, const int32_t *labels, int R, float scale,
                float *dhid, float *scratch, float *logits, int threads) {
    int C = m->cfg.hidden, V = m->cfg.vocab_size;
    if (R == 0) return 0.0;
    size_t RC = (size_t)R * C;
    float *zpre = scratch, *u = zpre + RC, *v = u + RC, *dv = v + RC, *du = dv + RC, *mean = du + RC, *rstd = mean + R;
    float *rowloss = rstd + R;
    er_lm_head h = er_model_lm_head(m);
    er_lm_head_forward(&h, hid, R, zpre, u, mean, rstd, v, logits, threads);
    /* logits -> dlogits = (softmax - onehot) scale / R: the mean over the selected rows */
    er_xent_forward_backward(logits, labels, rowloss, R, V, scale / (float)R, threads);
    double loss = 0;
    for (int i = 0; i < R; i++) loss += rowloss[i]; /* fixed order: thread-count independent */
    er_lm_head_backward(&h, g->lmdw, g->lmdb, g->lmlnw, g->lmlnb, g->lmdecw, g->lmbias, logits, hid, zpre, u, mean,
                        rstd, v, dv, du, dhid, R, threads);
    return loss / R;
}
