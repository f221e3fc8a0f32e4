/* forward.c — the encoder forward over a packed batch, poolers and the MLM head.
 *
 * The layer and embedding forwards here are THE forward: training (train/train_encoder.c)
 * runs the same er_embed_forward / er_layer_forward with dropout and its kept tensors.
 * Matches HF RobertaModel / BertModel (no pooler layer) in fp32 inference mode:
 *   x = LN(wte[id] + wtt[0] + wpe[pos]);  per layer (post-LN):
 *   a = LN(x + (softmax(QK^T/sqrt(HS) + mask) V) Wo^T + bo);  x = LN(a + GELU(a W1^T + b1) W2^T + b2)
 * RoBERTa positions count non-pad ids from padding_idx+1 (a pad id inside a sequence gets
 * position padding_idx and does not advance the count); BERT positions are 0..T-1.
 * Packing means no FLOP is spent on padding and no mask is needed: each sequence attends
 * only to its own rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "model/model.h"

int er_acts_init(er_acts *a, const easyrec_config *c, size_t cap_tokens, int cap_seqs, int cap_len) {
    memset(a, 0, sizeof(*a));
    size_t C = (size_t)c->hidden, F = (size_t)c->ffn;
    a->cap_tokens = cap_tokens;
    a->cap_seqs = cap_seqs;
    a->cap_len = cap_len;
    a->x = er_malloc_big(cap_tokens, C * sizeof(float));
    a->qkv = er_malloc_big(cap_tokens, 3 * C * sizeof(float));
    a->atty = er_malloc_big(cap_tokens, C * sizeof(float));
    a->a = er_malloc_big(cap_tokens, C * sizeof(float));
    a->h = er_malloc_big(cap_tokens, F * sizeof(float));
    a->scores = er_malloc_big((size_t)cap_len, (size_t)cap_len * sizeof(float));
    a->ids = er_mallocarray(cap_tokens, sizeof(int32_t));
    a->pos = er_mallocarray(cap_tokens, sizeof(int));
    a->off = er_mallocarray((size_t)cap_seqs + 1, sizeof(int));
    if (!a->x || !a->qkv || !a->atty || !a->a || !a->h || !a->scores || !a->ids || !a->pos || !a->off) {
        er_acts_free(a);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void er_acts_free(er_acts *a) {
    free(a->x);
    free(a->qkv);
    free(a->atty);
    free(a->a);
    free(a->h);
    free(a->scores);
    free(a->ids);
    free(a->pos);
    free(a->off);
    memset(a, 0, sizeof(*a));
}

void er_embed_forward(const easyrec_model *m, const int32_t *ids, const int *off, int B, int *pos, float *emb,
                      float *x, float *mean, float *rstd, const er_dropout *drop, int nthreads) {
    const easyrec_config *c = &m->cfg;
    int C = c->hidden, N = off[B];
    float *sum = emb ? emb : x;
    er_positions(pos, ids, off, B, c->is_roberta, c->pad_id);
    er_embedding_forward(sum, m->w.wte, m->w.wpe, m->w.wtt, ids, pos, N, C, nthreads);
    er_layernorm_forward(x, NULL, mean, rstd, sum, NULL, m->w.emb_lnw, m->w.emb_lnb, N, C, c->layer_norm_eps,
                         nthreads);
    er_dropout_apply(drop, ER_SITE_EMB, x, (size_t)N * C, nthreads);
}

void er_layer_forward(const easyrec_model *m, int l, const er_layer_io *io, const er_attn_shape *as, int first_only,
                      const er_dropout *drop, int nthreads) {
    const easyrec_config *c = &m->cfg;
    const er_params *w = &m->w;
    int C = c->hidden, F = c->ffn, B = as->B, N = as->off[B];
    float eps = c->layer_norm_eps;
    er_linear_forward(io->qkv, io->x, er_model_weight(m, ER_LIN_QKV, l), w->qkvb + (size_t)l * 3 * C, N, C, 3 * C,
                      nthreads);
    er_attn_shape at = *as;
    at.C = C;
    at.NH = c->n_heads;
    at.first_only = first_only;
    at.drop = drop;
    at.site = ER_SITE(l, 0);
    er_attention_forward(io->atty, io->qkv, io->probs, &at, nthreads);
    int R = N;
    if (first_only) {
        /* keep only each sequence's first row: compact rows off[b] -> b (off[b] >= b) */
        for (int b = 0; b < B; b++) {
            memmove(io->atty + (size_t)b * C, io->atty + (size_t)as->off[b] * C, C * sizeof(float));
            memmove(io->x + (size_t)b * C, io->x + (size_t)as->off[b] * C, C * sizeof(float));
        }
        R = B;
    }
    size_t RC = (size_t)R * C;
    er_linear_forward(io->t, io->atty, er_model_weight(m, ER_LIN_ATTPROJ, l), w->attprojb + (size_t)l * C, R, C, C,
                      nthreads);
    er_dropout_apply(drop, ER_SITE(l, 1), io->t, RC, nthreads);
    er_layernorm_forward(io->a, io->s1, io->mean1, io->rstd1, io->t, io->x, w->ln1w + (size_t)l * C,
                         w->ln1b + (size_t)l * C, R, C, eps, nthreads);
    float *hpre = io->hpre ? io->hpre : io->h;
    er_linear_forward(hpre, io->a, er_model_weight(m, ER_LIN_FC, l), w->fcb + (size_t)l * F, R, C, F,
                      nthreads);
    if (io->hpre) memcpy(io->h, io->hpre, (size_t)R * F * sizeof(float));
    er_gelu_forward(io->h, (size_t)R * F, nthreads);
    er_linear_forward(io->t2, io->h, er_model_weight(m, ER_LIN_FCPROJ, l), w->fcprojb + (size_t)l * C, R, F,
                      C, nthreads);
    er_dropout_apply(drop, ER_SITE(l, 2), io->t2, RC, nthreads);
    er_layernorm_forward(io->out, io->s2, io->mean2, io->rstd2, io->t2, io->a, w->ln2w + (size_t)l * C,
                         w->ln2b + (size_t)l * C, R, C, eps, nthreads);
}

/* Inference: every activation overwritten layer after layer in one thread's er_acts. */
void er_encoder_forward(const easyrec_model *m, er_acts *a, const int32_t *ids, int B, int first_only) {
    ER_ASSERT(B <= a->cap_seqs && (size_t)a->off[B] <= a->cap_tokens);
    er_embed_forward(m, ids, a->off, B, a->pos, NULL, a->x, NULL, NULL, NULL, 0);
    er_layer_io io = {.x = a->x, .qkv = a->qkv, .probs = a->scores, .atty = a->atty, .t = a->a, .a = a->a,
                      .h = a->h, .t2 = a->atty, .out = a->x};
    er_attn_shape as = {.off = a->off, .B = B};
    int L = m->cfg.n_layers;
    for (int l = 0; l < L; l++) er_layer_forward(m, l, &io, &as, first_only && l == L - 1, NULL, 0);
}

void er_pool_forward(const easyrec_model *m, const er_acts *a, int B, easyrec_pooling pool, float *out) {
    int C = m->cfg.hidden;
    if (pool == EASYREC_POOL_MEAN) {
        for (int b = 0; b < B; b++) {
            int o = a->off[b], T = a->off[b + 1] - o;
            float *y = out + (size_t)b * C;
            for (int i = 0; i < C; i++) y[i] = 0.0f;
            for (int t = 0; t < T; t++)
                for (int i = 0; i < C; i++) y[i] += a->x[(size_t)(o + t) * C + i];
            for (int i = 0; i < C; i++) y[i] /= (float)T;
        }
        return;
    }
    /* first-token states are rows 0..B-1 (first_only forward) */
    if (pool == EASYREC_POOL_CLS) {
        memcpy(out, a->x, (size_t)B * C * sizeof(float));
        return;
    }
    ER_ASSERT(pool == EASYREC_POOL_EASYREC && m->cfg.has_mlp);
    er_easyrec_head_forward(out, a->x, er_model_weight(m, ER_LIN_MLP, 0), m->w.mlpb, B, C, 0);
}

er_lm_head er_model_lm_head(const easyrec_model *m) {
    ER_ASSERT(m->w.lmdw);
    er_lm_head h = {er_weight_f32(m->w.lmdw), m->w.lmdb, m->w.lmlnw, m->w.lmlnb, er_weight_f32(m->w.lmdecw),
                    m->w.lmbias, m->cfg.hidden, m->cfg.vocab_size, m->cfg.layer_norm_eps};
    return h;
}

void er_model_lm_head_forward(const easyrec_model *m, const er_acts *a, int row0, int T, float *z, float *logits) {
    er_lm_head h = er_model_lm_head(m);
    er_lm_head_forward(&h, a->x + (size_t)row0 * m->cfg.hidden, T, NULL, NULL, NULL, NULL, z, logits, 0);
}
