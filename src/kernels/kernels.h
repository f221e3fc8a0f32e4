/* kernels.h — the numeric kernels every forward and backward pass is built from, below the
 * model layer (core -> io -> tokenizer -> kernels -> model -> ...): no model structs here,
 * only pointers and shapes. Inference (model/forward.c) and training (train/) call the same
 * functions. Each forward has its backward next to it and a plain `_ref` twin (double
 * accumulation, no blocking, no threads) that tests/test_kernels.c compares against.
 *
 * Threads: `nthreads` 0 = run in the calling thread as one piece (inference: the caller
 * parallelises over batches); n >= 1 = OpenMP over n threads, outputs split in fixed chunks
 * whatever n is, so the result is bit-identical for any n >= 1 (training).
 * Shapes: N rows, C features, (rows, cols) row-major unless a stride says otherwise.
 */
#ifndef ER_KERNELS_H
#define ER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "io/tensors.h"

/* ---- GEMM (er_gemm.c): the one matrix-multiply entry of the project ---- */

/* er_gemm.c: C (M, N) = A (M, K) · B^T + bias (N), B (N, K), row strides lda/ldb/ldc; bias may
 * be NULL; accumulate: C += instead of =. Single-threaded in the calling thread. */
void er_gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias, float *C,
             int ldc, int accumulate);
/* General form: C (M, N) [+]= op(A) · op(B) + bias; ta: A stored (K, M) instead of (M, K);
 * tb: B stored (N, K) instead of (K, N) (so er_gemm_nt == er_gemm(0, 1, ...)). */
void er_gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias,
          float *C, int ldc, int accumulate);
/* er_gemm split over nthreads by column panels: bit-identical to nthreads = 1. */
void er_gemm_mt(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
             const float *bias, float *C, int ldc, int accumulate, int nthreads);
/* task(ctx, t) for t = 0 .. n − 1 on up to `threads` OpenMP threads, handed out one at a time
 * (dynamic); every worker runs its GEMMs on the calling thread's backend, as er_gemm_mt's do.
 * For loops of independent products (row chunks, similarity blocks): a task's bits do not
 * depend on the thread that runs it. */
void er_gemm_tasks(int n, int threads, void (*task)(void *ctx, int t), void *ctx);
/* Backend of the calling thread's GEMMs (er_gemm_mt passes it on to its workers): ER_GEMM_AUTO
 * (own AVX-512 kernel when the CPU has it, else CBLAS), ER_GEMM_OWN (the same: own kernel
 * where supported), ER_GEMM_BLAS (always CBLAS). Thread-local; nothing process-wide.
 * er_gemm_set_backend returns the previous value (to restore). */
enum { ER_GEMM_AUTO = 0, ER_GEMM_OWN = 1, ER_GEMM_BLAS = 2 };
int er_gemm_set_backend(int backend);
int er_gemm_get_backend(void);
const char *er_gemm_backend(void); /* the calling thread's: "easyrec-avx512" or "cblas" */
int er_gemm_has_own_kernel(void);  /* the CPU can run the AVX-512 kernel */
void er_gemm_force_backend(int own); /* tests: er_gemm_set_backend(own ? ER_GEMM_OWN : ER_GEMM_BLAS) */
/* Free the calling thread's packing buffers now (they are otherwise freed at thread exit). */
void er_gemm_thread_cleanup(void);

/* One B, many products A · B^T (the users of an evaluation block against item range after
 * item range): B's rows packed once into the own kernel's 32-column panels instead of once
 * per call. Only where the calling thread's GEMMs run the own kernel (er_gemm_packs();
 * elsewhere use er_gemm_nt). Single-threaded, no allocation. */
#define ER_GEMM_PANEL 32
int er_gemm_packs(void);
/* Floats of the packed form of N rows of K: ceil(N / 32) * 32 * K. */
size_t er_gemm_packed_floats(int N, int K);
/* Pack rows B[rows[0]], ..., B[rows[N-1]] (rows NULL: 0..N-1) of K floats, row stride ldb,
 * into buf (er_gemm_packed_floats(N, K) floats, caller-owned). */
void er_gemm_pack_rows(const float *B, const int32_t *rows, int N, int K, size_t ldb, float *buf);
/* Pack B (K, N) row-major (the B of er_gemm with tb = 0), row stride ldb, into the same panels
 * (er_gemm_packed_floats(N, K) floats): er_gemm_packed_nt with it is bit for bit
 * er_gemm(0, 0, M, N, K, A, lda, B, ldb, NULL, C, ldc, 0) with the own kernel. */
void er_gemm_pack_kn(const float *B, int K, int N, size_t ldb, float *buf);
/* C (M, N) = A (M, K) · B^T with B packed in Bp: bit for bit what er_gemm_nt(M, N, K, A, lda,
 * B, ...) gives with the own kernel (the same K blocks summed in the same order). */
void er_gemm_packed_nt(int M, const float *A, int lda, const float *Bp, int N, int K, float *C, int ldc);
/* The general form: C (M, N) [+]= A (M, K) · B^T + bias (N) (may be NULL), B's panels `panel`
 * floats apart. A part of a packed operand of Kp rows (panel = 32 · Kp): columns from n0 (a
 * multiple of 32) at Bp + n0 · Kp, K rows from k0 at Bp + 32 · k0. Bit for bit er_gemm on that
 * part of B with the own kernel, bias and accumulate included. */
void er_gemm_packed(int M, const float *A, int lda, const float *Bp, size_t panel, int N, int K, const float *bias,
                    float *C, int ldc, int accumulate);

/* ---- weights: where low precision plugs in ---- */

/* A Linear weight (OUT, IN) as nn.Linear stores it, in memory as dtype (io/tensors.h's
 * er_dtype: ER_DT_F32 today; ER_DT_BF16 / ER_DT_I8 are where low precision plugs in: a GEMM
 * for them adds its case to er_linear_forward's switch (linear.c), and the parameter table's
 * dtype column (model/params.c) says which tensors are stored so); scale: per-row
 * dequantisation scales (OUT) for int8, else NULL. */
typedef struct {
    er_dtype dtype;
    const void *data; /* F32: the (OUT, IN) floats; BF16 / I8: a packed er_lowp_mat (lowp.h) */
    const float *scale;
} er_weight;

static inline er_weight er_weight_f32(const float *w) {
    er_weight r = {ER_DT_F32, w, NULL};
    return r;
}

/* ---- linear (linear.c) ---- */

/* out (N, OUT) = inp (N, IN) · W^T + bias (OUT) (bias may be NULL); the only Linear entry. */
void er_linear_forward(float *out, const float *inp, er_weight w, const float *bias, int N, int IN, int OUT,
                       int nthreads);
void er_linear_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N, int IN,
                           int OUT);
/* Backward of er_linear_forward (f32 W): db (OUT) += column sums of dout (N, OUT) (db may be
 * NULL); dw (OUT, IN) += dout^T inp; dinp (N, IN) = (or += with accumulate) dout W
 * (dinp may be NULL). In that order, so dinp may alias inp. */
void er_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int N, int IN, int OUT, int accumulate, int nthreads);
/* db (OUT) += column sums of dout (N, OUT) */
void er_bias_backward(float *db, const float *dout, int N, int OUT, int threads);

/* ---- LayerNorm (layernorm.c): biased variance, as torch.nn.LayerNorm ---- */

/* x = inp + resid (resid may be NULL) row by row; sum (N, C) receives x when not NULL;
 * out (N, C) = (x - mean) * rstd * w + b; mean, rstd (N) saved when not NULL. out may alias
 * inp or resid. */
void er_layernorm_forward(float *out, float *sum, float *mean, float *rstd, const float *inp, const float *resid,
                          const float *w, const float *b, int N, int C, float eps, int nthreads);
void er_layernorm_forward_ref(float *out, const float *inp, const float *resid, const float *w, const float *b,
                              int N, int C, float eps);
/* dinp (N, C) = (or +=, accumulate) LN backward of dout at input inp (the pre-LN sum);
 * dw, db (C) += */
void er_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *w, int N, int C, int accumulate, int threads);

/* ---- GELU (gelu.c): exact erf form 0.5 x (1 + erf(x / sqrt 2)) ---- */

void er_gelu_forward(float *x, size_t n, int nthreads); /* in place */
float er_gelu_ref(float x);
/* dx (n) = dout * GELU'(x)   (in place allowed: dx == dout) */
void er_gelu_backward(float *dx, const float *x, const float *dout, size_t n, int nthreads);

/* ---- dropout (dropout.c): a counter-based hash decides each element, so masks need no
 * storage and are the same whatever the thread count or evaluation order ---- */
typedef struct {
    float p;       /* drop probability (0: off) */
    uint64_t seed; /* per step */
} er_dropout;

/* keep element i of dropout site `site`? */
int er_dropout_keep(const er_dropout *d, uint32_t site, size_t i);
/* x (n) *= keep ? 1/(1-p) : 0  (forward and backward are the same operation); d may be NULL */
void er_dropout_apply(const er_dropout *d, uint32_t site, float *x, size_t n, int nthreads);

/* ---- softmax and cross-entropy (softmax.c) ---- */

/* rows (rows, T) in place: softmax(scale * s) over each row */
void er_softmax_forward(float *s, int rows, int T, float scale);
/* d (rows, T) in place: dS = scale * p * (d - rowsum(d * p)), p the softmax output */
void er_softmax_backward(float *d, const float *p, int rows, int T, float scale);
/* Cross-entropy of logits (R, V) against labels (R): rowloss (R) = lse - logit[label];
 * logits replaced by dlogits = (softmax - onehot) * scale. */
void er_xent_forward_backward(float *logits, const int32_t *labels, float *rowloss, int R, int V, float scale,
                              int nthreads);

/* ---- self-attention over a packed batch (attention.c) ---- */

/* B sequences, rows [off[b], off[b+1]); qkv (N, 3C) rows [q | k | v], head h at columns
 * h*HS of each part; out (N, C) the heads' softmax(Q K^T / sqrt(HS)) V concatenated.
 * probs: with poff (B+1 offsets into probs of each sequence's NH*T*T block) every
 * probability is kept (training); poff NULL: probs is one (T, T) scratch reused per head
 * (inference). scratch: per thread (stride `scratch_stride` floats, >= T*T) for the dropped
 * probabilities. first_only: query row 0 of each sequence only (out row off[b]).
 * Dropout on the probabilities: site `site`, element index = its offset in probs. */
typedef struct {
    const int *off;
    const size_t *poff;
    int B, C, NH, first_only;
    const er_dropout *drop;
    uint32_t site;
    float *scratch;
    size_t scratch_stride;
} er_attn_shape;

void er_attention_forward(float *out, const float *qkv, float *probs, const er_attn_shape *s, int nthreads);
void er_attention_forward_ref(float *out, const float *qkv, const int *off, int B, int C, int NH);
/* dqkv (N, 3C) = backward of dout (N, C) given the kept probs (poff required). */
void er_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                           const er_attn_shape *s, int nthreads);

/* ---- embeddings (embedding.c) ---- */

/* Position ids of B packed sequences: RoBERTa (roberta != 0) counts non-pad ids from
 * pad_id + 1 (a pad id keeps position pad_id and does not advance), BERT 0..T-1. */
void er_positions(int *pos, const int32_t *ids, const int *off, int B, int roberta, int pad_id);
/* out (N, C) = wte[ids] + wtt[0] + wpe[pos] */
void er_embedding_forward(float *out, const float *wte, const float *wpe, const float *wtt, const int32_t *ids,
                          const int *pos, int N, int C, int nthreads);
/* dwte[ids] += dout, dwpe[pos] += dout, dwtt[0] += column sums (columns over threads) */
void er_embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                           const int *pos, int N, int C, int nthreads);

/* ---- heads (heads.c) ---- */

/* EasyRec head: out (B, C) = tanh(h (B, C) · W^T + b) (the L2 norm follows in encode.c for
 * embeddings, inside the cosine of train/train_loss.c for training). */
void er_easyrec_head_forward(float *out, const float *h, er_weight w, const float *b, int B, int C, int nthreads);
void er_easyrec_head_forward_ref(float *out, const float *h, const float *w, const float *b, int B, int C);
/* dout (B, C) (overwritten with d pre-activation) -> dh (B, C) (may alias h), dw, db +=;
 * out: the forward's output. */
void er_easyrec_head_backward(float *dh, float *dw, float *db, float *dout, const float *out, const float *h,
                              const float *w, int B, int C, int nthreads);

/* RoBERTa LM head: logits (R, V) = LN(GELU(h W1^T + b1)) Wdec^T + bias.
 * Saved for backward when not NULL: zpre (R, C) pre-GELU, u (R, C) post-GELU, mean, rstd (R);
 * v (R, C) is the LN output (always written). */
typedef struct {
    er_weight dense;
    const float *dense_b, *ln_w, *ln_b;
    er_weight dec;
    const float *dec_b;
    int C, V;
    float eps;
} er_lm_head;

void er_lm_head_forward(const er_lm_head *h, const float *hid, int R, float *zpre, float *u, float *mean, float *rstd,
                        float *v, float *logits, int nthreads);
void er_lm_head_forward_ref(const er_lm_head *h, const float *hid, int R, float *logits);
/* dlogits (R, V) -> dhid (R, C); gradients of the head's tensors added into the g* pointers
 * (same layout); du (R, C) scratch. */
void er_lm_head_backward(const er_lm_head *h, float *g_dense_w, float *g_dense_b, float *g_ln_w, float *g_ln_b,
                         float *g_dec_w, float *g_dec_b, const float *dlogits, const float *hid, const float *zpre,
                         const float *u, const float *mean, const float *rstd, const float *v, float *dv, float *du,
                         float *dhid, int R, int nthreads);

#endif
