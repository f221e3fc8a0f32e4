/* train_encoder.c — the encoder forward that keeps its activations, and its backward.
 *
 * Same math as model/forward.c plus dropout where HF applies it in training mode: after
 * the embedding LayerNorm, on the attention probabilities, on the attention projection and
 * FFN outputs before each residual add. Dropout sites: 4*l + {0: probs, 1: attn proj,
 * 2: ffn out}, and 0xFFFF for the embeddings. The packed layout means no padding rows.
 *
 * Per layer l (x = x[l], all (N, ·) row-major):
 *   qkv = x Wqkv^T + bqkv;  per sequence & head: P = softmax(Q K^T / sqrt(HS)), O = drop(P) V
 *   s1 = x + drop(O Wo^T + bo);  a = LN1(s1);  hpre = a W1^T + b1
 *   s2 = a + drop(GELU(hpre) W2^T + b2);  x[l+1] = LN2(s2)
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/err.h"
#include "train/train.h"

#define SITE_EMB 0xFFFFu
#define SITE(l, k) ((uint32_t)(4 * (l) + (k)))

int train_acts_init(er_train_acts *a, const easyrec_config *c, size_t cap_tokens, int cap_seqs, int cap_len,
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
#define ALLOC(p, n) ok &= (p = er_mallocarray((n), sizeof(*p))) != NULL
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
        train_acts_free(a);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void train_acts_free(er_train_acts *a) {
    void *ps[] = {a->off, a->poff, a->ids, a->pos, a->emb, a->emb_mean, a->emb_rstd, a->x, a->qkv, a->probs,
                  a->atty, a->s1, a->ln1_mean, a->ln1_rstd, a->a, a->hpre, a->s2, a->ln2_mean, a->ln2_rstd,
                  a->t_nc, a->t_nc2, a->t_nf, a->dx, a->dqkv, a->dprob};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    memset(a, 0, sizeof(*a));
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* ---- attention of one (sequence, head) ---- */

/* P (T, T) = softmax(scale Q K^T) saved; out (T, HS) at stride C = drop(P) V.
 * q/k/v point at the head's columns of the sequence's qkv rows (stride 3C). */
static void attn_head_forward(float *out, float *P, float *Pd, const float *q, const float *k, const float *v,
                              int T, int HS, int C, const er_dropout *drop, uint32_t site, size_t pbase) {
    float scale = 1.0f / sqrtf((float)HS);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, scale, q, 3 * C, k, 3 * C, 0.0f, P, T);
    for (int t = 0; t < T; t++) {
        float *s = P + (size_t)t * T, mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < T; j++) mx = s[j] > mx ? s[j] : mx;
        for (int j = 0; j < T; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < T; j++) s[j] *= inv;
    }
    const float *pv = P;
    if (drop && drop->p > 0.0f) {
        float sc = 1.0f / (1.0f - drop->p);
        for (size_t i = 0; i < (size_t)T * T; i++) Pd[i] = dropout_keep(drop, site, pbase + i) ? P[i] * sc : 0.0f;
        pv = Pd;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, 1.0f, pv, T, v, 3 * C, 0.0f, out, C);
}

/* Backward of one (sequence, head) given dout (T, HS at stride C): dq, dk, dv (stride 3C).
 * dP' = dout V^T; dP = drop'(dP'); dS = P (dP - rowsum(dP P)); dQ = scale dS K;
 * dK = scale dS^T Q; dV = drop(P)^T dout. Pd: (T, T) scratch. */
static void attn_head_backward(float *dq, float *dk, float *dv, const float *dout, const float *P, float *Pd,
                               const float *q, const float *k, const float *v, int T, int HS, int C,
                               const er_dropout *drop, uint32_t site, size_t pbase, float *dP) {
    float scale = 1.0f / sqrtf((float)HS);
    int dropping = drop && drop->p > 0.0f;
    float sc = dropping ? 1.0f / (1.0f - drop->p) : 1.0f;
    const float *pv = P;
    if (dropping) {
        for (size_t i = 0; i < (size_t)T * T; i++) Pd[i] = dropout_keep(drop, site, pbase + i) ? P[i] * sc : 0.0f;
        pv = Pd;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, 1.0f, pv, T, dout, C, 0.0f, dv, 3 * C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HS, 1.0f, dout, C, v, 3 * C, 0.0f, dP, T);
    for (int t = 0; t < T; t++) {
        float *d = dP + (size_t)t * T;
        const float *p = P + (size_t)t * T;
        if (dropping)
            for (int j = 0; j < T; j++) d[j] = dropout_keep(drop, site, pbase + (size_t)t * T + j) ? d[j] * sc : 0.0f;
        float dot = 0.0f;
        for (int j = 0; j < T; j++) dot += d[j] * p[j];
        for (int j = 0; j < T; j++) d[j] = p[j] * (d[j] - dot);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HS, T, scale, dP, T, k, 3 * C, 0.0f, dq, 3 * C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HS, T, scale, dP, T, q, 3 * C, 0.0f, dk, 3 * C);
}

/* ---- forward ---- */

void encoder_forward_train(const easyrec_model *m, er_train_acts *a, const er_dropout *drop) {
    const easyrec_config *c = &m->cfg;
    const er_params *w = &m->w;
    int B = a->B, N = a->off[B], C = c->hidden, F = c->ffn, NH = c->n_heads, HS = C / NH, L = c->n_layers;
    int th = a->threads;
    size_t NC = (size_t)N * C, CC = (size_t)C * C;
    ER_ASSERT(B <= a->cap_seqs && (size_t)N <= a->cap_tokens);
    a->N = N;
    a->poff[0] = 0;
    for (int b = 0; b < B; b++) {
        int T = a->off[b + 1] - a->off[b];
        ER_ASSERT(T >= 1 && T <= a->cap_len);
        a->poff[b + 1] = a->poff[b] + (size_t)NH * T * T;
    }
    ER_ASSERT(a->poff[B] <= a->cap_probs);
    /* embeddings */
    for (int b = 0; b < B; b++) {
        int p = c->is_roberta ? c->pad_id : 0;
        for (int t = a->off[b]; t < a->off[b + 1]; t++)
            a->pos[t] = c->is_roberta ? (a->ids[t] != c->pad_id ? ++p : c->pad_id) : p++;
    }
#pragma omp parallel for num_threads(th) schedule(static)
    for (int t = 0; t < N; t++) {
        const float *we = w->wte + (size_t)a->ids[t] * C, *pe = w->wpe + (size_t)a->pos[t] * C;
        float *e = a->emb + (size_t)t * C;
        for (int i = 0; i < C; i++) e[i] = we[i] + w->wtt[i] + pe[i];
    }
    layernorm_forward_train(a->x, a->emb_mean, a->emb_rstd, a->emb, w->emb_lnw, w->emb_lnb, N, C, c->layer_norm_eps,
                            th);
    dropout_apply(drop, SITE_EMB, a->x, NC);

    for (int l = 0; l < L; l++) {
        float *x = a->x + l * NC, *qkv = a->qkv + l * 3 * NC, *P = a->probs + l * a->cap_probs;
        float *atty = a->atty + l * NC, *s1 = a->s1 + l * NC, *al = a->a + l * NC;
        float *hpre = a->hpre + (size_t)l * N * F, *s2 = a->s2 + l * NC, *xn = a->x + (l + 1) * NC;
        gemm_mt(0, 1, N, 3 * C, C, x, C, w->qkvw + l * 3 * CC, C, w->qkvb + (size_t)l * 3 * C, qkv, 3 * C, 0, th);
#pragma omp parallel for num_threads(th) schedule(dynamic, 1) collapse(2)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int o = a->off[b], T = a->off[b + 1] - o;
                size_t pb = a->poff[b] + (size_t)h * T * T;
                const float *q = qkv + (size_t)o * 3 * C + h * HS;
                attn_head_forward(atty + (size_t)o * C + h * HS, P + pb, a->dprob + (size_t)thread_id() * a->cap_len * a->cap_len,
                                  q, q + C, q + 2 * C, T, HS, C, drop, SITE(l, 0), pb);
            }
        gemm_mt(0, 1, N, C, C, atty, C, w->attprojw + l * CC, C, w->attprojb + (size_t)l * C, a->t_nc, C, 0, th);
        dropout_apply(drop, SITE(l, 1), a->t_nc, NC);
#pragma omp parallel for simd num_threads(th) schedule(static)
        for (size_t i = 0; i < NC; i++) s1[i] = x[i] + a->t_nc[i];
        layernorm_forward_train(al, a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, s1,
                                w->ln1w + (size_t)l * C, w->ln1b + (size_t)l * C, N, C, c->layer_norm_eps, th);
        gemm_mt(0, 1, N, F, C, al, C, w->fcw + (size_t)l * F * C, C, w->fcb + (size_t)l * F, hpre, F, 0, th);
        memcpy(a->t_nf, hpre, (size_t)N * F * sizeof(float));
        gelu_forward(a->t_nf, (size_t)N * F);
        gemm_mt(0, 1, N, C, F, a->t_nf, F, w->fcprojw + (size_t)l * C * F, F, w->fcprojb + (size_t)l * C, a->t_nc, C,
                0, th);
        dropout_apply(drop, SITE(l, 2), a->t_nc, NC);
#pragma omp parallel for simd num_threads(th) schedule(static)
        for (size_t i = 0; i < NC; i++) s2[i] = al[i] + a->t_nc[i];
        layernorm_forward_train(xn, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, s2,
                                w->ln2w + (size_t)l * C, w->ln2b + (size_t)l * C, N, C, c->layer_norm_eps, th);
    }
}

/* ---- backward ---- */

void encoder_backward(const easyrec_model *m, er_params *g, er_train_acts *a, float *dlast,
                      const er_dropout *drop) {
    const easyrec_config *c = &m->cfg;
    const er_params *w = &m->w;
    int B = a->B, N = a->N, C = c->hidden, F = c->ffn, NH = c->n_heads, HS = C / NH, L = c->n_layers;
    int th = a->threads;
    size_t NC = (size_t)N * C, CC = (size_t)C * C;
    float *dx = dlast; /* gradient w.r.t. the current layer's output, (N, C) */
    float *ds = a->dx; /* second (N, C) gradient buffer */
    for (int l = L - 1; l >= 0; l--) {
        float *x = a->x + l * NC, *qkv = a->qkv + l * 3 * NC, *P = a->probs + l * a->cap_probs;
        float *atty = a->atty + l * NC, *s1 = a->s1 + l * NC, *al = a->a + l * NC;
        float *hpre = a->hpre + (size_t)l * N * F, *s2 = a->s2 + l * NC;
        /* x[l+1] = LN2(s2): ds2 into ds */
        layernorm_backward(ds, g->ln2w + (size_t)l * C, g->ln2b + (size_t)l * C, dx, s2, a->ln2_mean + (size_t)l * N,
                           a->ln2_rstd + (size_t)l * N, w->ln2w + (size_t)l * C, N, C, 0, th);
        /* s2 = a + drop(y2): da = ds2 (kept in ds), dy2 into t_nc */
        memcpy(a->t_nc, ds, NC * sizeof(float));
        dropout_apply(drop, SITE(l, 2), a->t_nc, NC);
        bias_backward(g->fcprojb + (size_t)l * C, a->t_nc, N, C, th);
        memcpy(a->t_nf, hpre, (size_t)N * F * sizeof(float));
        gelu_forward(a->t_nf, (size_t)N * F); /* recompute GELU(hpre) */
        gemm_mt(1, 0, C, F, N, a->t_nc, C, a->t_nf, F, NULL, g->fcprojw + (size_t)l * C * F, F, 1, th);
        gemm_mt(0, 0, N, F, C, a->t_nc, C, w->fcprojw + (size_t)l * C * F, F, NULL, a->t_nf, F, 0, th);
        gelu_backward(a->t_nf, hpre, a->t_nf, (size_t)N * F);
        bias_backward(g->fcb + (size_t)l * F, a->t_nf, N, F, th);
        gemm_mt(1, 0, F, C, N, a->t_nf, F, al, C, NULL, g->fcw + (size_t)l * F * C, C, 1, th);
        gemm_mt(0, 0, N, C, F, a->t_nf, F, w->fcw + (size_t)l * F * C, C, NULL, ds, C, 1, th); /* da += */
        /* a = LN1(s1): ds1 into dx (dx of the layer output is no longer needed) */
        layernorm_backward(dx, g->ln1w + (size_t)l * C, g->ln1b + (size_t)l * C, ds, s1, a->ln1_mean + (size_t)l * N,
                           a->ln1_rstd + (size_t)l * N, w->ln1w + (size_t)l * C, N, C, 0, th);
        /* s1 = x + drop(y1): dx_in = ds1 (kept in dx), dy1 into t_nc */
        memcpy(a->t_nc, dx, NC * sizeof(float));
        dropout_apply(drop, SITE(l, 1), a->t_nc, NC);
        bias_backward(g->attprojb + (size_t)l * C, a->t_nc, N, C, th);
        gemm_mt(1, 0, C, C, N, a->t_nc, C, atty, C, NULL, g->attprojw + l * CC, C, 1, th);
        gemm_mt(0, 0, N, C, C, a->t_nc, C, w->attprojw + l * CC, C, NULL, a->t_nc2, C, 0, th); /* datty */
#pragma omp parallel for num_threads(th) schedule(dynamic, 1) collapse(2)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                int o = a->off[b], T = a->off[b + 1] - o;
                size_t pb = a->poff[b] + (size_t)h * T * T;
                const float *q = qkv + (size_t)o * 3 * C + h * HS;
                float *dq = a->dqkv + (size_t)o * 3 * C + h * HS;
                float *scratch = a->dprob + (size_t)thread_id() * a->cap_len * a->cap_len;
                /* dP and drop(P) share the per-thread scratch: drop(P) is consumed before dP is formed */
                attn_head_backward(dq, dq + C, dq + 2 * C, a->t_nc2 + (size_t)o * C + h * HS, P + pb, scratch, q, q + C,
                                   q + 2 * C, T, HS, C, drop, SITE(l, 0), pb, scratch);
            }
        bias_backward(g->qkvb + (size_t)l * 3 * C, a->dqkv, N, 3 * C, th);
        gemm_mt(1, 0, 3 * C, C, N, a->dqkv, 3 * C, x, C, NULL, g->qkvw + l * 3 * CC, C, 1, th);
        gemm_mt(0, 0, N, C, 3 * C, a->dqkv, 3 * C, w->qkvw + l * 3 * CC, C, NULL, dx, C, 1, th); /* dx_in += */
    }
    /* x[0] = drop(LN(emb)) */
    dropout_apply(drop, SITE_EMB, dx, NC);
    layernorm_backward(ds, g->emb_lnw, g->emb_lnb, dx, a->emb, a->emb_mean, a->emb_rstd, w->emb_lnw, N, C, 0, th);
    /* scatter into the tables: columns split over threads, rows in order */
#pragma omp parallel for num_threads(th) schedule(static)
    for (int i = 0; i < C; i++) {
        for (int t = 0; t < N; t++) {
            float d = ds[(size_t)t * C + i];
            g->wte[(size_t)a->ids[t] * C + i] += d;
            g->wpe[(size_t)a->pos[t] * C + i] += d;
            g->wtt[i] += d;
        }
    }
}
