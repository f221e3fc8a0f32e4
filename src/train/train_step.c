/* er_train_step.c — one EasyRec step: every sequence of the batch (users, positives, negatives
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

int er_step_init(er_step *s, const easyrec_config *c, int cap_n, size_t cap_tokens, int cap_len, int threads) {
    memset(s, 0, sizeof(*s));
    int rc = er_train_acts_init(&s->acts, c, cap_tokens, 6 * cap_n, cap_len, threads);
    if (!rc && (rc = er_contrastive_init(&s->cl, cap_n, c->hidden))) er_train_acts_free(&s->acts);
    if (rc) return rc;
    size_t C = (size_t)c->hidden, R = cap_tokens; /* masked rows <= tokens */
    s->cap_tokens = cap_tokens;
    s->cap_n = cap_n;
    s->threads = threads;
    int ok = 1;
#define ALLOC(p, n) ok &= (p = er_malloc_big((n), sizeof(*p))) != NULL /* huge pages from 2 MiB on */
    ALLOC(s->e, 3 * (size_t)cap_n * C);
    ALLOC(s->de, 3 * (size_t)cap_n * C);
    ALLOC(s->z, 3 * (size_t)cap_n * C);
    ALLOC(s->dlast, R * C);
    ALLOC(s->mlm_hid, R * C);
    ALLOC(s->mlm_dhid, R * C);
    ALLOC(s->mlm_scratch, er_mlm_scratch_floats(c, (int)R));
    ALLOC(s->mlm_logits, R * (size_t)c->vocab_size);
    ALLOC(s->mlm_labels, R);
    ALLOC(s->mlm_rows, R);
#undef ALLOC
    if (!ok) {
        er_step_free(s);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void er_step_free(er_step *s) {
    er_train_acts_free(&s->acts);
    er_contrastive_free(&s->cl);
    void *ps[] = {s->e, s->de, s->z, s->dlast, s->mlm_hid, s->mlm_dhid, s->mlm_scratch, s->mlm_logits, s->mlm_labels,
                  s->mlm_rows};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    memset(s, 0, sizeof(*s));
}

/* forward of the first S sequences of b; returns the last hidden states (N, C) */
static const float *forward_prefix(const easyrec_model *m, er_step *s, const er_batch *b, int S,
                                   const er_dropout *drop) {
    er_train_acts *a = &s->acts;
    int N = b->off[S];
    ER_ASSERT(b->n <= s->cap_n && (size_t)N <= s->cap_tokens && b->off[0] == 0);
    a->B = S;
    memcpy(a->off, b->off, (size_t)(S + 1) * sizeof(int));
    memcpy(a->ids, b->ids, (size_t)N * sizeof(int32_t));
    er_encoder_forward_train(m, a, drop);
    return a->x + (size_t)m->cfg.n_layers * N * m->cfg.hidden;
}

/* s->e = first-token states of the 3n contrastive sequences, s->z = tanh(mlp(s->e)) */
static void embed_rows(const easyrec_model *m, er_step *s, const er_batch *b, const float *hl) {
    int n = b->n, C = m->cfg.hidden;
    for (int i = 0; i < 3 * n; i++) memcpy(s->e + (size_t)i * C, hl + (size_t)b->off[i] * C, C * sizeof(float));
    er_easyrec_head_forward(s->z, s->e, er_weight_f32(m->w.mlpw), m->w.mlpb, 3 * n, C, s->threads);
}

void er_train_embed(const easyrec_model *m, er_step *s, const er_batch *b, const er_dropout *drop, float *e) {
    const float *hl = forward_prefix(m, s, b, 3 * b->n, drop);
    embed_rows(m, s, b, hl);
    memcpy(e, s->z, (size_t)3 * b->n * m->cfg.hidden * sizeof(float));
}

/* Backward of the sequences forwarded last into s->acts (embed_rows done): backprop de (3n,
 * C; dL/d tanh output, already scaled) through tanh and mlp — or, with de == NULL, the batch's
 * own contrastive loss (temp, times cl_scale; its value in *l_cl) — add the MLM loss (weight
 * mlm_w), backward through the encoder. */
static double step_backward(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, const float *de,
                            float temp, float cl_scale, double *l_cl, float mlm_w, const er_dropout *drop) {
    const easyrec_config *c = &m->cfg;
    int n = b->n, C = c->hidden, S = b->n_seq, th = s->threads, N = b->off[S];
    ER_ASSERT(s->acts.B == S && s->acts.N == N);
    const float *hl = s->acts.x + (size_t)c->n_layers * N * C;
    /* head backward (tanh, then mlp: dWm += dz^T h0, dh0 = dz Wm into e) */
    if (!de) {
        *l_cl = er_contrastive_loss(&s->cl, s->z, s->de, n, C, temp);
        for (size_t i = 0; i < (size_t)3 * n * C; i++) s->de[i] *= cl_scale;
    } else {
        memcpy(s->de, de, (size_t)3 * n * C * sizeof(float));
    }
    er_easyrec_head_backward(s->e, g->mlpw, g->mlpb, s->de, s->z, s->e, m->w.mlpw, 3 * n, C, th);
    memset(s->dlast, 0, (size_t)N * C * sizeof(float));
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
    double lm = er_mlm_loss(m, g, s->mlm_hid, s->mlm_labels, R, mlm_w, s->mlm_dhid, s->mlm_scratch, s->mlm_logits, th);
    for (int r = 0; r < R; r++) {
        float *d = s->dlast + (size_t)s->mlm_rows[r] * C;
        for (int k = 0; k < C; k++) d[k] += s->mlm_dhid[(size_t)r * C + k];
    }
    er_encoder_backward(m, g, &s->acts, s->dlast, drop);
    return lm;
}

/* forward of all of b's sequences and the head: s->e, s->z of the 3n contrastive rows */
static void step_forward(const easyrec_model *m, er_step *s, const er_batch *b, const er_dropout *drop) {
    ER_ASSERT(b->n_seq == 3 * b->n || b->n_seq == 6 * b->n);
    embed_rows(m, s, b, forward_prefix(m, s, b, b->n_seq, drop));
}

void er_train_step_forward(const easyrec_model *m, er_step *s, const er_batch *b, const er_dropout *drop, float *e) {
    step_forward(m, s, b, drop);
    memcpy(e, s->z, (size_t)3 * b->n * m->cfg.hidden * sizeof(float));
}

double er_train_step_backward(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, const float *de,
                              float mlm_weight, float mlm_scale, const er_dropout *drop) {
    return step_backward(m, g, s, b, de, 0.0f, 0.0f, NULL, mlm_weight * mlm_scale, drop);
}

double er_train_step_cached(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, const float *de,
                         float mlm_weight, float mlm_scale, const er_dropout *drop) {
    step_forward(m, s, b, drop);
    return step_backward(m, g, s, b, de, 0.0f, 0.0f, NULL, mlm_weight * mlm_scale, drop);
}

double er_train_step(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, float temp,
                  float mlm_weight, float grad_scale, const er_dropout *drop, double *l_cl, double *l_mlm) {
    double lc = 0;
    step_forward(m, s, b, drop);
    double lm = step_backward(m, g, s, b, NULL, temp, grad_scale, &lc, mlm_weight * grad_scale, drop);
    if (l_cl) *l_cl = lc;
    if (l_mlm) *l_mlm = lm;
    return lc + mlm_weight * lm;
}
