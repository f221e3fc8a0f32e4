/* train_encoder.c — the encoder forward that keeps its activations, and its backward.
 *
 * The forward IS model/forward.c's (er_embed_forward, er_layer_forward) with dropout where
 * HF applies it in training mode — after the embedding LayerNorm, on the attention
 * probabilities, on the attention projection and FFN outputs before each residual add
 * (sites ER_SITE in model.h) — and every layer's tensors kept for the backward, which is
 * composed from the kernels' backward halves. The packed layout means no padding rows.
 *
 * Per layer l (x = x[l], all (N, ·) row-major):
 *   qkv = x Wqkv^T + bqkv;  per sequence & head: P = softmax(Q K^T / sqrt(HS)), O = drop(P) V
 *   s1 = x + drop(O Wo^T + bo);  a = LN1(s1);  hpre = a W1^T + b1
 *   s2 = a + drop(GELU(hpre) W2^T + b2);  x[l+1] = LN2(s2)
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "train/train.h"

int er_train_acts_init(er_train_acts *a, const easyrec_config *c, size_t cap_tokens, int cap_seqs, int cap_len,
                    int threads) {
    memset(a, 0, sizeof(*a));
    a->L = c->n_layers;
    a->C = c->hidden;
    a->F = c->ffn;
    a->NH = c->n_heads;
    a->cap_tokens = cap_tokens;
    a->cap_seqs = cap_seqs;
    a->cap_len = cap_len;
    a->threads = threads;
    size_t L = (size_t)a->L, C = (size_t)a->C, F = (size_t)a->F, N = cap_tokens;
    /* sum of T^2 over sequences is at most cap_len * cap_tokens */
    a->cap_probs = (size_t)a->NH * (size_t)cap_len * cap_tokens;
    int ok = 1;
#define ALLOC(p, n) ok &= (p = er_malloc_big((n), sizeof(*p))) != NULL /* huge pages from 2 MiB on */
    ALLOC(a->off, (size_t)cap_seqs + 1);
    ALLOC(a->poff, (size_t)cap_seqs + 1);
    ALLOC(a->ids, N);
    ALLOC(a->pos, N);
    ALLOC(a->emb, N * C);
    ALLOC(a->emb_mean, N);
    ALLOC(a->emb_rstd, N);
    ALLOC(a->x, (L + 1) * N * C);
    ALLOC(a->qkv, L * N * 3 * C);
    ALLOC(a->probs, L * a->cap_probs);
    ALLOC(a->atty, L * N * C);
    ALLOC(a->s1, L * N * C);
    ALLOC(a->ln1_mean, L * N);
    ALLOC(a->ln1_rstd, L * N);
    ALLOC(a->a, L * N * C);
    ALLOC(a->hpre, L * N * F);
    ALLOC(a->s2, L * N * C);
    ALLOC(a->ln2_mean, L * N);
    ALLOC(a->ln2_rstd, L * N);
    ALLOC(a->t_nc, N * C);
    ALLOC(a->t_nc2, N * C);
    ALLOC(a->t_nf, N * F);
    ALLOC(a->dx, N * C);
    ALLOC(a->dqkv, N * 3 * C);
    ALLOC(a->dprob, (size_t)threads * cap_len * cap_len);
#undef ALLOC
    if (!ok) {
        er_train_acts_free(a);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void er_train_acts_free(er_train_acts *a) {
    void *ps[] = {a->off, a->poff, a->ids, a->pos, a->emb, a->emb_mean, a->emb_rstd, a->x, a->qkv, a->probs,
                  a->atty, a->s1, a->ln1_mean, a->ln1_rstd, a->a, a->hpre, a->s2, a->ln2_mean, a->ln2_rstd,
                  a->t_nc, a->t_nc2, a->t_nf, a->dx, a->dqkv, a->dprob};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    memset(a, 0, sizeof(*a));
}

/* the layer's tensors inside the kept activations */
static er_layer_io layer_io(er_train_acts *a, int l) {
    size_t N = (size_t)a->N, NC = N * a->C, NF = N * a->F;
    er_layer_io io = {.x = a->x + l * NC, .qkv = a->qkv + l * 3 * NC, .probs = a->probs + l * a->cap_probs,
                      .atty = a->atty + l * NC, .t = a->t_nc, .s1 = a->s1 + l * NC, .mean1 = a->ln1_mean + l * N,
                      .rstd1 = a->ln1_rstd + l * N, .a = a->a + l * NC, .hpre = a->hpre + l * NF, .h = a->t_nf,
                      .t2 = a->t_nc, .s2 = a->s2 + l * NC, .mean2 = a->ln2_mean + l * N,
                      .rstd2 = a->ln2_rstd + l * N, .out = a->x + (l + 1) * NC};
    return io;
}

static er_attn_shape attn_shape(const easyrec_config *c, er_train_acts *a, const er_dropout *drop, int l) {
    er_attn_shape as = {.off = a->off, .poff = a->poff, .B = a->B, .C = c->hidden, .NH = c->n_heads,
                        .drop = drop, .site = ER_SITE(l, 0), .scratch = a->dprob,
                        .scratch_stride = (size_t)a->cap_len * a->cap_len};
    return as;
}

/* ---- forward: the inference forward's pieces, keeping what backward needs ---- */

void er_encoder_forward_train(const easyrec_model *m, er_train_acts *a, const er_dropout *drop) {
    const easyrec_config *c = &m->cfg;
    int B = a->B, N = a->off[B], NH = c->n_heads;
    ER_ASSERT(B <= a->cap_seqs && (size_t)N <= a->cap_tokens);
    a->N = N;
    a->poff[0] = 0;
    for (int b = 0; b < B; b++) {
        int T = a->off[b + 1] - a->off[b];
        ER_ASSERT(T >= 1 && T <= a->cap_len);
        a->poff[b + 1] = a->poff[b] + (size_t)NH * T * T;
    }
    ER_ASSERT(a->poff[B] <= a->cap_probs);
    er_embed_forward(m, a->ids, a->off, B, a->pos, a->emb, a->x, a->emb_mean, a->emb_rstd, drop, a->threads);
    for (int l = 0; l < c->n_layers; l++) {
        er_layer_io io = layer_io(a, l);
        er_attn_shape as = attn_shape(c, a, drop, l);
        er_layer_forward(m, l, &io, &as, 0, drop, a->threads);
    }
}

/* ---- backward ---- */

void er_encoder_backward(const easyrec_model *m, er_params *g, er_train_acts *a, float *dlast,
                      const er_dropout *drop) {
    const easyrec_config *c = &m->cfg;
    const er_params *w = &m->w;
    int N = a->N, C = c->hidden, F = c->ffn, L = c->n_layers, th = a->threads;
    size_t NC = (size_t)N * C, CC = (size_t)C * C;
    float *dx = dlast; /* gradient w.r.t. the current layer's output, (N, C) */
    float *ds = a->dx; /* second (N, C) gradient buffer */
    for (int l = L - 1; l >= 0; l--) {
        er_layer_io io = layer_io(a, l);
        er_attn_shape as = attn_shape(c, a, drop, l);
        /* out = LN2(s2): ds2 into ds */
        er_layernorm_backward(ds, g->ln2w + (size_t)l * C, g->ln2b + (size_t)l * C, dx, io.s2, io.mean2, io.rstd2,
                           w->ln2w + (size_t)l * C, N, C, 0, th);
        /* s2 = a + drop(y2): da = ds2 (kept in ds), dy2 into t_nc */
        memcpy(a->t_nc, ds, NC * sizeof(float));
        er_dropout_apply(drop, ER_SITE(l, 2), a->t_nc, NC, th);
        memcpy(a->t_nf, io.hpre, (size_t)N * F * sizeof(float));
        er_gelu_forward(a->t_nf, (size_t)N * F, th); /* recompute h = GELU(hpre) */
        /* y2 = h W2^T + b2: dh into t_nf (after dW2 has read h) */
        er_linear_backward(a->t_nf, g->fcprojw + (size_t)l * C * F, g->fcprojb + (size_t)l * C, a->t_nc, a->t_nf,
                           w->fcprojw + (size_t)l * C * F, N, F, C, 0, th);
        er_gelu_backward(a->t_nf, io.hpre, a->t_nf, (size_t)N * F, th);
        er_linear_backward(ds, g->fcw + (size_t)l * F * C, g->fcb + (size_t)l * F, a->t_nf, io.a,
                           w->fcw + (size_t)l * F * C, N, C, F, 1, th); /* da += */
        /* a = LN1(s1): ds1 into dx (dx of the layer output is no longer needed) */
        er_layernorm_backward(dx, g->ln1w + (size_t)l * C, g->ln1b + (size_t)l * C, ds, io.s1, io.mean1, io.rstd1,
                           w->ln1w + (size_t)l * C, N, C, 0, th);
        /* s1 = x + drop(y1): dx_in = ds1 (kept in dx), dy1 into t_nc */
        memcpy(a->t_nc, dx, NC * sizeof(float));
        er_dropout_apply(drop, ER_SITE(l, 1), a->t_nc, NC, th);
        er_linear_backward(a->t_nc2, g->attprojw + l * CC, g->attprojb + (size_t)l * C, a->t_nc, io.atty,
                           w->attprojw + l * CC, N, C, C, 0, th); /* datty */
        er_attention_backward(a->dqkv, a->t_nc2, io.qkv, io.probs, &as, th);
        er_linear_backward(dx, g->qkvw + l * 3 * CC, g->qkvb + (size_t)l * 3 * C, a->dqkv, io.x,
                           w->qkvw + l * 3 * CC, N, C, 3 * C, 1, th); /* dx_in += */
    }
    /* x[0] = drop(LN(emb)) */
    er_dropout_apply(drop, ER_SITE_EMB, dx, NC, th);
    er_layernorm_backward(ds, g->emb_lnw, g->emb_lnb, dx, a->emb, a->emb_mean, a->emb_rstd, w->emb_lnw, N, C, 0, th);
    er_embedding_backward(g->wte, g->wpe, g->wtt, ds, a->ids, a->pos, N, C, th);
}
