/* train_step.c — one EasyRec step: every sequence of the batch (users, positives, negatives
 * and the MLM copies) goes through ONE packed encoder pass; the first-token states of the
 * contrastive sequences feed mlp + tanh and the InfoNCE loss, the masked positions of the MLM
 * copies feed the LM head; both gradients flow back through one encoder backward.
 * Equal to the original's four separate padded passes (dropout aside, whose masks differ
 * by construction). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "train/train.h"

int step_init(er_step *s, const easyrec_config *c, int cap_n, size_t cap_tokens, int cap_len, int threads) {
    memset(s, 0, sizeof(*s));
    int rc = train_acts_init(&s->acts, c, cap_tokens, 6 * cap_n, cap_len, threads);
    if (rc) return rc;
    size_t C = (size_t)c->hidden, R = cap_tokens; /* masked rows <= tokens */
    s->cap_tokens = cap_tokens;
    s->cap_n = cap_n;
    s->threads = threads;
    int ok = 1;
#define ALLOC(p, n) ok &= (p = er_mallocarray((n), sizeof(*p))) != NULL
    ALLOC(s->e, 3 * (size_t)cap_n * C);
    ALLOC(s->de, 3 * (size_t)cap_n * C);
    ALLOC(s->z, 3 * (size_t)cap_n * C);
    ALLOC(s->dlast, R * C);
    ALLOC(s->mlm_hid, R * C);
    ALLOC(s->mlm_dhid, R * C);
    ALLOC(s->mlm_scratch, mlm_scratch_floats(c, (int)R));
    ALLOC(s->mlm_logits, R * (size_t)c->vocab_size);
    ALLOC(s->mlm_labels, R);
    ALLOC(s->mlm_rows, R);
#undef ALLOC
    if (!ok) {
        step_free(s);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void step_free(er_step *s) {
    train_acts_free(&s->acts);
    void *ps[] = {s->e, s->de, s->z, s->dlast, s->mlm_hid, s->mlm_dhid, s->mlm_scratch, s->mlm_logits, s->mlm_labels,
                  s->mlm_rows};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    memset(s, 0, sizeof(*s));
}

double train_step(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, float temp,
                  float mlm_weight, float grad_scale, const er_dropout *drop, double *l_cl, double *l_mlm) {
    const easyrec_config *c = &m->cfg;
    int n = b->n, C = c->hidden, S = 6 * n, th = s->threads;
    er_train_acts *a = &s->acts;
    int N = b->off[S];
    ER_ASSERT(n <= s->cap_n && (size_t)N <= s->cap_tokens && b->off[0] == 0);
    a->B = S;
    memcpy(a->off, b->off, (size_t)(S + 1) * sizeof(int));
    memcpy(a->ids, b->ids, (size_t)N * sizeof(int32_t));
    encoder_forward_train(m, a, drop);
    const float *hl = a->x + (size_t)c->n_layers * N * C;

    /* contrastive: e = tanh(h[first] Wm^T + bm) for the first 3n sequences */
    for (int i = 0; i < 3 * n; i++) memcpy(s->e + (size_t)i * C, hl + (size_t)b->off[i] * C, C * sizeof(float));
    gemm_mt(0, 1, 3 * n, C, C, s->e, C, m->w.mlpw, C, m->w.mlpb, s->z, C, 0, th);
    for (size_t i = 0; i < (size_t)3 * n * C; i++) s->z[i] = tanhf(s->z[i]);
    double lc = contrastive_loss(s->z, s->de, n, C, temp);
    /* tanh backward, scaled; then mlp backward: dWm += dz^T h0, dh0 = dz Wm */
    for (size_t i = 0; i < (size_t)3 * n * C; i++) s->de[i] *= grad_scale * (1.0f - s->z[i] * s->z[i]);
    bias_backward(g->mlpb, s->de, 3 * n, C, th);
    gemm_mt(1, 0, C, C, 3 * n, s->de, C, s->e, C, NULL, g->mlpw, C, 1, th);
    memset(s->dlast, 0, (size_t)N * C * sizeof(float));
    gemm_mt(0, 0, 3 * n, C, C, s->de, C, m->w.mlpw, C, NULL, s->e, C, 0, th); /* e now holds dh0 */
    for (int i = 0; i < 3 * n; i++) {
        float *d = s->dlast + (size_t)b->off[i] * C;
        for (int k = 0; k < C; k++) d[k] += s->e[(size_t)i * C + k];
    }

    /* MLM: the selected positions of the last 3n sequences */
    int R = 0, t0 = b->off[3 * n];
    for (int t = t0; t < N; t++) {
        int32_t lab = b->labels[t - t0];
        if (lab == -100) continue;
        ER_ASSERT(lab >= 0 && lab < c->vocab_size);
        s->mlm_rows[R] = t;
        s->mlm_labels[R] = lab;
        memcpy(s->mlm_hid + (size_t)R * C, hl + (size_t)t * C, C * sizeof(float));
        R++;
    }
    double lm = mlm_loss(m, g, s->mlm_hid, s->mlm_labels, R, mlm_weight * grad_scale, s->mlm_dhid, s->mlm_scratch,
                         s->mlm_logits, th);
    for (int r = 0; r < R; r++) {
        float *d = s->dlast + (size_t)s->mlm_rows[r] * C;
        for (int k = 0; k < C; k++) d[k] += s->mlm_dhid[(size_t)r * C + k];
    }
    encoder_backward(m, g, a, s->dlast, drop);
    if (l_cl) *l_cl = lc;
    if (l_mlm) *l_mlm = lm;
    return lc + mlm_weight * lm;
}
