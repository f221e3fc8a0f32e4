/* train.h — training: the encoder forward that keeps what backward needs (the inference
 * forward's own er_embed_forward / er_layer_forward, model/model.h), the encoder backward
 * (kernels of src/kernels/), the EasyRec losses and AdamW.
 *
 * Shapes as in model/model.h: a packed batch of B sequences, N real tokens, rows of
 * sequence b at [off[b], off[b+1]). Gradients live in one flat buffer laid out exactly like
 * the parameters (er_params_assign on it gives the er_params view `g`). Every kernel writes
 * disjoint outputs per thread and reduces in a fixed order, so a step gives bit-identical
 * results for any thread count.
 */
#ifndef ER_TRAIN_H
#define ER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "train/optim.h"

/* ---- activations kept by the training forward ---- */
typedef struct {
    int L, C, F, NH;
    size_t cap_tokens, cap_probs;
    int cap_seqs;
    int B, N;
    int *off;            /* (B+1) */
    int32_t *ids;        /* (N) */
    int *pos;            /* (N) */
    size_t *poff;        /* (B+1) offsets of each sequence's NH*T*T probabilities */
    float *emb;          /* (N, C) word+type+position sum, pre-LN */
    float *emb_mean, *emb_rstd; /* (N) */
    float *x;            /* (L+1, N, C) layer inputs; x[L] = last hidden states */
    float *qkv;          /* (L, N, 3C) */
    float *probs;        /* (L, cap_probs) softmax probabilities before dropout */
    float *atty;         /* (L, N, C) heads' (dropout(P) V) merged */
    float *s1;           /* (L, N, C) x + dropout(attention projection), pre-LN1 */
    float *ln1_mean, *ln1_rstd; /* (L, N) */
    float *a;            /* (L, N, C) LN1 output */
    float *hpre;         /* (L, N, F) FFN pre-activation */
    float *s2;           /* (L, N, C) a + dropout(FFN output), pre-LN2 */
    float *ln2_mean, *ln2_rstd; /* (L, N) */
    /* scratch */
    float *t_nc, *t_nc2, *t_nf; /* (N, C), (N, C), (N, F) */
    float *dx, *dqkv;           /* (N, C), (N, 3C) */
    float *dprob;               /* (max T * T) per thread: (threads, cap_len^2) */
    int cap_len, threads;
} er_train_acts;

int er_train_acts_init(er_train_acts *a, const easyrec_config *c, size_t cap_tokens, int cap_seqs, int cap_len,
                    int threads);
void er_train_acts_free(er_train_acts *a);

/* Forward over the packed batch (a->off, a->ids filled by the caller, a->B set): leaves the
 * last hidden states in x[L]. Dropout sites are numbered from the layer index. */
void er_encoder_forward_train(const easyrec_model *m, er_train_acts *a, const er_dropout *drop);
/* Backward from dlast (N, C) (gradient of the loss w.r.t. x[L]; overwritten) into g. */
void er_encoder_backward(const easyrec_model *m, er_params *g, er_train_acts *a, float *dlast,
                      const er_dropout *drop);

/* ---- heads and losses (train_loss.c) ---- */

/* EasyRec contrastive loss over n users, n positives, n negatives.
 * e (3n, C): rows [users; positives; negatives] = tanh(mlp(h[<s>])) embeddings.
 * logits[i, j] = cos(u_i, p_j)/temp for j < n, cos(u_i, n_{j-n})/temp after: (n, 2n).
 * Returns mean_i CE(logits_i, i); de (3n, C) = dL/de. Allocates nothing: the scratch w was
 * sized for n <= w->cap_n (ER_ASSERT) by er_contrastive_init. */
typedef struct {
    int cap_n, C;
    double *en, *r, *lg, *den; /* (3n, C) normalised rows, (3n) inverse norms, (n, 2n), (3n, C) */
} er_contrastive;

/* Scratch for losses over up to cap_n triples of width C: allocated once (EASYREC_ERR_NOMEM). */
int er_contrastive_init(er_contrastive *w, int cap_n, int C);
void er_contrastive_free(er_contrastive *w);
double er_contrastive_loss(er_contrastive *w, const float *e, float *de, int n, int C, float temp);

/* MLM cross-entropy over R selected rows: hid (R, C) final states at the selected positions,
 * labels (R). Returns the mean CE; dhid (R, C) = d(mean CE)/dhid * scale; g: lm_head grads
 * (+= scale * ...). Scratch: z (R, C) x 3, logits (R, V). */
double er_mlm_loss(const easyrec_model *m, er_params *g, const float *hid, const int32_t *labels, int R, float scale,
                float *dhid, float *scratch, float *logits, int threads);
size_t er_mlm_scratch_floats(const easyrec_config *c, int R);

/* ---- one EasyRec training step (er_train_step.c) ---- */

/* A batch of n (user, positive, negative) triples, tokenized: 6n sequences packed in one
 * array, in this order: n users, n positives, n negatives (the contrastive passes), then the
 * 3n MLM copies interleaved u1 p1 n1 u2 ... (masked ids). labels: one per token of the MLM
 * part (off[3n] .. off[6n]), -100 where the token is not predicted. */
typedef struct {
    int n;
    int n_seq;       /* 6n: users, positives, negatives, then their MLM copies; 3n: no MLM */
    int32_t *ids;    /* (off[n_seq]) */
    int *off;        /* (n_seq + 1) */
    int32_t *labels; /* (off[n_seq] - off[3n]) */
} er_batch;

typedef struct {
    er_train_acts acts;
    float *e, *de, *z;    /* (3n, C) embeddings, their gradient, mlp pre-activation */
    er_contrastive cl;    /* the batch's own contrastive loss (er_train_step) */
    float *dlast;         /* (N, C) */
    float *mlm_hid, *mlm_dhid, *mlm_scratch, *mlm_logits; /* masked rows */
    int32_t *mlm_labels;
    int *mlm_rows;
    size_t cap_tokens;
    int cap_n, threads;
} er_step;

int er_step_init(er_step *s, const easyrec_config *c, int cap_n, size_t cap_tokens, int cap_len, int threads);
void er_step_free(er_step *s);

/* Loss = L_cl + mlm_weight * L_mlm of the batch; gradients ADDED into g (scaled by
 * grad_scale, e.g. 1/accumulation steps). Returns the total; *l_cl, *l_mlm the parts. */
double er_train_step(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, float temp,
                  float mlm_weight, float grad_scale, const er_dropout *drop, double *l_cl, double *l_mlm);

/* Large-batch contrastive loss in pieces (gradient caching, Gao et al. 2021), exact:
 * 1. train_embed on each micro-batch: forward of the 3n contrastive sequences only,
 *    e (3n, C) = their tanh(mlp(h[<s>])) embeddings (rows users, positives, negatives);
 * 2. er_contrastive_loss over all micro-batches' embeddings together -> de;
 * 3. train_step_cached on each micro-batch with its rows of de: forward again (same
 *    dropout seed, hence the same masks: the contrastive rows are a prefix of the packed
 *    batch), inject de, add mlm_weight * mlm_scale * L_mlm, backward.
 * The gradients equal one step on the concatenated batch (MLM averaged per micro-batch,
 * the original's per-device mean). Returns L_mlm of the micro-batch. */
void er_train_embed(const easyrec_model *m, er_step *s, const er_batch *b, const er_dropout *drop, float *e);
/* The same step without the second forward, for a micro-batch that is the only one of its
 * rank (data-parallel training, one micro-batch per rank): train_step_forward runs the
 * forward of all 6n sequences once and gives e (3n, C); after the loss over every rank's
 * embeddings, train_step_backward (same s and b, nothing forwarded in between) injects de
 * and back-propagates. The contrastive rows are a prefix of the packed batch, so e equals
 * train_embed's bit for bit; the gradients equal train_step_cached's. */
void er_train_step_forward(const easyrec_model *m, er_step *s, const er_batch *b, const er_dropout *drop, float *e);
double er_train_step_backward(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, const float *de,
                              float mlm_weight, float mlm_scale, const er_dropout *drop);
double er_train_step_cached(const easyrec_model *m, er_params *g, er_step *s, const er_batch *b, const float *de,
                         float mlm_weight, float mlm_scale, const er_dropout *drop);

#endif
