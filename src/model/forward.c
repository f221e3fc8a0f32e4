/* forward.c — the encoder forward over a packed batch, poolers and the MLM head.
 *
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

int acts_init(er_acts *a, const easyrec_config *c, size_t cap_tokens, int cap_seqs, int cap_len) {
    memset(a, 0, sizeof(*a));
    size_t C = (size_t)c->hidden, F = (size_t)c->ffn;
    a->cap_tokens = cap_tokens;
    a->cap_seqs = cap_seqs;
    a->cap_len = cap_len;
    a->x = er_mallocarray(cap_tokens, C * sizeof(float));
    a->qkv = er_mallocarray(cap_tokens, 3 * C * sizeof(float));
    a->atty = er_mallocarray(cap_tokens, C * sizeof(float));
    a->a = er_mallocarray(cap_tokens, C * sizeof(float));
    a->h = er_mallocarray(cap_tokens, F * sizeof(float));
    a->scores = er_mallocarray((size_t)cap_len, (size_t)cap_len * sizeof(float));
    a->ids = er_mallocarray(cap_tokens, sizeof(int32_t));
    a->pos = er_mallocarray(cap_tokens, sizeof(int));
    a->off = er_mallocarray((size_t)cap_seqs + 1, sizeof(int));
    if (!a->x || !a->qkv || !a->atty || !a->a || !a->h || !a->scores || !a->ids || !a->pos || !a->off) {
        acts_free(a);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void acts_free(er_acts *a) {
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

/* x (N, C) = LN(wte[ids] + wtt[0] + wpe[pos]) */
static void embedding_forward(const easyrec_model *m, er_acts *a, const int32_t *ids, int B) {
    const easyrec_config *c = &m->cfg;
    int C = c->hidden;
    for (int b = 0; b < B; b++) {
        int p = c->is_roberta ? c->pad_id : 0;
        for (int t = a->off[b]; t < a->off[b + 1]; t++) {
            if (c->is_roberta)
                a->pos[t] = ids[t] != c->pad_id ? ++p : c->pad_id;
            else
                a->pos[t] = p++;
        }
    }
    int N = a->off[B];
    for (int t = 0; t < N; t++) {
        const float *we = m->w.wte + (size_t)ids[t] * C;
        const float *pe = m->w.wpe + (size_t)a->pos[t] * C;
        float *x = a->x + (size_t)t * C;
        for (int i = 0; i < C; i++) x[i] = we[i] + m->w.wtt[i] + pe[i];
    }
    layernorm_forward(a->x, a->x, NULL, m->w.emb_lnw, m->w.emb_lnb, N, C, c->layer_norm_eps);
}

/* One post-LN layer over R rows of x; the attention reads qkv of all sequence rows. */
static void layer_forward(const easyrec_model *m, er_acts *a, int l, int B, int first_only) {
    const easyrec_config *c = &m->cfg;
    const er_params *w = &m->w;
    int C = c->hidden, F = c->ffn, NH = c->n_heads, N = a->off[B];
    size_t CC = (size_t)C * C;
    matmul_forward(a->qkv, a->x, w->qkvw + l * 3 * CC, w->qkvb + (size_t)l * 3 * C, N, C, 3 * C);
    for (int b = 0; b < B; b++) {
        int o = a->off[b], T = a->off[b + 1] - o;
        attention_forward(a->atty + (size_t)o * C, a->qkv + (size_t)o * 3 * C, a->scores, T, C, NH,
                          first_only);
    }
    int R = N;
    if (first_only) {
        /* keep only each sequence's first row: compact rows off[b] -> b (off[b] >= b) */
        for (int b = 0; b < B; b++) {
            memmove(a->atty + (size_t)b * C, a->atty + (size_t)a->off[b] * C, C * sizeof(float));
            memmove(a->x + (size_t)b * C, a->x + (size_t)a->off[b] * C, C * sizeof(float));
        }
        R = B;
    }
    matmul_forward(a->a, a->atty, w->attprojw + l * CC, w->attprojb + (size_t)l * C, R, C, C);
    layernorm_forward(a->a, a->a, a->x, w->ln1w + (size_t)l * C, w->ln1b + (size_t)l * C, R, C,
                      c->layer_norm_eps);
    matmul_forward(a->h, a->a, w->fcw + (size_t)l * F * C, w->fcb + (size_t)l * F, R, C, F);
    gelu_forward(a->h, (size_t)R * F);
    matmul_forward(a->atty, a->h, w->fcprojw + (size_t)l * C * F, w->fcprojb + (size_t)l * C, R, F,
                   C);
    layernorm_forward(a->x, a->atty, a->a, w->ln2w + (size_t)l * C, w->ln2b + (size_t)l * C, R, C,
                      c->layer_norm_eps);
}

void encoder_forward(const easyrec_model *m, er_acts *a, const int32_t *ids, int B, int first_only) {
    ER_ASSERT(B <= a->cap_seqs && (size_t)a->off[B] <= a->cap_tokens);
    embedding_forward(m, a, ids, B);
    int L = m->cfg.n_layers;
    for (int l = 0; l < L; l++) layer_forward(m, a, l, B, first_only && l == L - 1);
}

void pool_forward(const easyrec_model *m, const er_acts *a, int B, easyrec_pooling pool, float *out) {
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
    ER_ASSERT(pool == EASYREC_POOL_EASYREC && m->w.mlpw);
    matmul_forward(out, a->x, m->w.mlpw, m->w.mlpb, B, C, C);
    for (size_t i = 0; i < (size_t)B * C; i++) out[i] = tanhf(out[i]);
}

void lm_head_forward(const easyrec_model *m, const er_acts *a, int row0, int T, float *z,
                     float *logits) {
    int C = m->cfg.hidden, V = m->cfg.vocab_size;
    ER_ASSERT(m->w.lmdw);
    matmul_forward(z, a->x + (size_t)row0 * C, m->w.lmdw, m->w.lmdb, T, C, C);
    gelu_forward(z, (size_t)T * C);
    layernorm_forward(z, z, NULL, m->w.lmlnw, m->w.lmlnb, T, C, m->cfg.layer_norm_eps);
    matmul_forward(logits, z, m->w.lmdecw, m->w.lmbias, T, C, V);
}
