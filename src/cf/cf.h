/* cf.h — text-enhanced collaborative filtering (../shared/docs/easyrec-spec.md §6, the
 * original's cf_rec/ = RLMRec's encoder/): LightGCN and GCCF on the user-item graph, plain or
 * aligned to text embeddings (RLMRec-Con: InfoNCE between the CF view and an MLP of the text
 * view; RLMRec-Gen: masked nodes' CF embeddings reconstruct their text embeddings).
 *
 * Pieces, one file each:
 *   graph.c   symmetric-normalised bipartite adjacency Â = D^-1/2 A D^-1/2 in CSR
 *   spmm.c    Y = Â X and Y = Âᵀ X (CSR, row-parallel: identical for any thread count)
 *   mlp.c     Linear -> LeakyReLU(0.01) -> Linear, forward and backward
 *   loss.c    BPR, the alignment InfoNCE, the reconstruction loss, L2 over all parameters
 *   model.c   parameters, propagation forward/backward, one training step (+ Adam)
 *   fit.c     epochs: negatives, shuffling, validation, early stopping, test
 *   state.c   --save / --resume (model + optimiser + sampler state, atomic)
 * Shapes: N users, M items, n = N + M nodes, d embedding width, L layers,
 * D = d (LightGCN) or (L+1)·d (GCCF: concatenated layers), H text width, B batch.
 * Node ids: users 0..N-1, items N..N+M-1.
 */
#ifndef ER_CF_H
#define ER_CF_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "data/dataset.h"
#include "data/interactions.h"

typedef enum { ER_CF_LIGHTGCN = 0, ER_CF_GCCF = 1 } er_cf_algo;
typedef enum { ER_CF_ALIGN_NONE = 0, ER_CF_ALIGN_CON = 1, ER_CF_ALIGN_GEN = 2 } er_cf_align;

typedef struct {
    er_cf_algo algo;
    er_cf_align align;
    int layers, dim;     /* L, d */
    double keep_rate;    /* LightGCN edge dropout in training (1: none) */
    double reg;          /* L2 weight over all parameters */
    double kd_weight;    /* con: kd_weight; gen: recon_weight */
    double kd_temp;      /* con: kd_temperature; gen: re_temperature */
    double mask_ratio;   /* gen: fraction of nodes masked each step */
    double lr;           /* Adam (weight decay 0) */
    int threads;         /* OpenMP threads (<= 0: 1) */
} er_cf_config;

/* The original's defaults for algo/align (top-level YAML blocks; EasyRec cf_rec for plain and
 * con, RLMRec for gen, which cf_rec lacks): see docs/cf.md. */
void er_cf_config_defaults(er_cf_config *c, er_cf_algo algo, er_cf_align align);

/* ---- graph.c ------------------------------------------------------------------------- */

typedef struct {
    int32_t n;        /* N + M */
    int32_t n_users;  /* N */
    int64_t nnz;
    int64_t *indptr;  /* (n + 1) */
    int32_t *indices; /* (nnz) ascending within each row */
    float *val;       /* (nnz) Â entries */
    int64_t *tpos;    /* (nnz) position of the entry (j, i) for the entry (i, j) */
} er_cf_graph;

/* Â of A = [[S, R], [Rᵀ, S']] with R the binarised training matrix (N, M), S = S' = 0, or the
 * identity when self_loop (plain GCCF only, as the original); D = row sums of A, a zero degree
 * gives factor 0. */
int er_cf_graph_build(const er_csr *trn, int self_loop, er_cf_graph *g);
void er_cf_graph_free(er_cf_graph *g);

/* ---- spmm.c -------------------------------------------------------------------------- */

/* Y[i, 0:d] = add[i, 0:d] (add may be NULL: 0) + Σ_e op(Â)[i, j] X[j, 0:d], with the graph's
 * pattern and the values val (nnz; e.g. edge-dropped copies of g->val); op = identity or,
 * with transpose, Âᵀ (Âᵀ[i, j] = val[tpos[e]]). X, Y, add have row strides ldx, ldy, ldadd;
 * Y must not overlap X. Rows run in parallel, each summed in a fixed order. */
void er_cf_spmm(const er_cf_graph *g, const float *val, int transpose, const float *X, int ldx, float *Y, int ldy,
                const float *add, int ldadd, int d, int threads);

/* ---- mlp.c --------------------------------------------------------------------------- */

/* Linear(in -> hid) -> LeakyReLU(0.01) -> Linear(hid -> out), PyTorch layouts: w1 (hid, in),
 * b1 (hid), w2 (out, hid), b2 (out). */
typedef struct {
    int in, hid, out;
    float *w1, *b1, *w2, *b2;
} er_cf_mlp;

/* X (n, in) -> hpre (n, hid) pre-activation, hact (n, hid), Y (n, out). */
void er_cf_mlp_forward(const er_cf_mlp *w, const float *X, int n, float *hpre, float *hact, float *Y, int threads);
/* Gradients from dY (n, out): accumulated into g's tensors (same layout as w); dX (n, in)
 * written when not NULL; dh (n, hid) scratch. */
void er_cf_mlp_backward(const er_cf_mlp *w, const er_cf_mlp *g, const float *X, int n, const float *hpre,
                        const float *hact, const float *dY, float *dh, float *dX, int threads);

/* ---- loss.c -------------------------------------------------------------------------- */

/* BPR over B triples of rows of F (n, D): (1/B) Σ softplus(F_u·F_j − F_u·F_i), u = anc[b],
 * i = pos[b], j = neg[b] (node ids). Adds scale · its gradient into dF. Returns the loss. */
double er_cf_bpr(const float *F, int D, const int32_t *anc, const int32_t *pos, const int32_t *neg, int B,
                 double scale, float *dF);

/* The alignment InfoNCE (sum over rows r of A (na, D)):
 *   Σ_r wa_r [ −cos(a_r, b_r)/τ + log Σ_c wc_c exp(cos(a_r, c_c)/τ) ],   c over the rows of C (nc, D),
 * with x̂ = x / sqrt(1e-8 + |x|²). wa (na) and wc (nc) are multiplicities (NULL: all 1): a batch
 * that holds a node k times is given once with weight k, which is the same sum with k times
 * less work. Adds scale · gradients into dA, dB (na, D), dC (nc, D) (each may be NULL; dB may
 * alias dC). scratch: nscratch floats, at least er_cf_nce_scratch_min(na, nc, D, threads);
 * given er_cf_nce_scratch(...) (larger where the na × nc exponentials fit its budget, 640 MiB)
 * the gradient pass reads them back instead of recomputing them. */
size_t er_cf_nce_scratch(int na, int nc, int D, int threads);
size_t er_cf_nce_scratch_min(int na, int nc, int D, int threads);
double er_cf_nce(const float *A, const float *Bm, int na, const float *wa, const float *C, int nc, const float *wc,
                 int D, double tau, double scale, float *dA, float *dB, float *dC, float *scratch, size_t nscratch,
                 int threads);

/* The reconstruction loss (mean over rows r of X, Y (m, H)):
 *   −log( exp(x̂_r·ŷ_r/τ) / (Σ_c exp(x̂_r·ŷ_c/τ) + 1e-8) + 1e-8 ),  x̂ = x / max(|x|, 1e-12).
 * Adds scale · dloss/dX into dX. scratch: er_cf_recon_scratch(m, H) floats. */
size_t er_cf_recon_scratch(int m, int H);
double er_cf_recon(const float *X, const float *Y, int m, int H, double tau, double scale, float *dX,
                   float *scratch, int threads);

/* reg · Σ p² over p[0..n); adds 2·reg·p into g. */
double er_cf_l2(const float *p, size_t n, double reg, float *g);

/* ---- model.c ------------------------------------------------------------------------- */

typedef struct {
    double bpr, reg, align, total; /* align: kd (con) or recon (gen) loss, weighted */
} er_cf_losses;

typedef struct er_cf_model er_cf_model;

/* A model for the training matrix trn (N, M) and, for con/gen, text embeddings tu (N, H) and
 * ti (M, H) (copied). Weights initialised as the original (Xavier-uniform tables and
 * weights, PyTorch-default biases, zero mask token) from rng. */
int er_cf_model_new(const er_cf_config *c, const er_csr *trn, const float *tu, const float *ti, int H, er_rng *rng,
                    er_cf_model **out);
void er_cf_model_free(er_cf_model *m);

/* Parameters: one flat array, in this order (absent ones have length 0):
 *   user (N, d), item (M, d), gccf W (L, d, d, unused as in the original), mlp w1, b1, w2, b2,
 *   mask token (d). */
enum { ER_CF_P_USER, ER_CF_P_ITEM, ER_CF_P_GCCFW, ER_CF_P_W1, ER_CF_P_B1, ER_CF_P_W2, ER_CF_P_B2, ER_CF_P_MASK,
       ER_CF_NP };
float *er_cf_params(er_cf_model *m, size_t *n);
float *er_cf_grads(er_cf_model *m);
/* Offset and length of parameter tensor k within the flat array. */
void er_cf_param_span(const er_cf_model *m, int k, size_t *off, size_t *len);
/* Adam moments and step count (for checkpoints). */
void er_cf_adam_state(er_cf_model *m, float **mom1, float **mom2, long **t);
int er_cf_out_dim(const er_cf_model *m); /* D */

/* The randomness of one step, drawn by the caller (fit.c from its generator; tests from a
 * fixture): keep (g->nnz) 1 = edge kept (LightGCN only; NULL = no dropout); seeds (ns) the
 * masked nodes (gen only). */
typedef struct {
    const uint8_t *keep;
    const int32_t *seeds;
    int ns;
} er_cf_draw;

/* Loss and gradients (into er_cf_grads, overwritten) of one batch: B triples (user id, item
 * id, item id). */
int er_cf_loss_grad(er_cf_model *m, const int32_t *users, const int32_t *pos, const int32_t *neg, int B,
                    const er_cf_draw *dr, er_cf_losses *out);
/* er_cf_loss_grad followed by one Adam step. */
int er_cf_step(er_cf_model *m, const int32_t *users, const int32_t *pos, const int32_t *neg, int B,
               const er_cf_draw *dr, er_cf_losses *out);
/* Draw a step's randomness from rng into buffers the model owns (valid until the next call). */
void er_cf_draw_random(er_cf_model *m, er_rng *rng, er_cf_draw *dr);

/* Final embeddings without dropout or masking: users (N, D) then items (M, D), owned by the
 * model, valid until the next step. */
const float *er_cf_embeddings(er_cf_model *m);
int32_t er_cf_n_users(const er_cf_model *m);
int32_t er_cf_n_items(const er_cf_model *m);
const er_cf_graph *er_cf_model_graph(const er_cf_model *m);
const er_cf_config *er_cf_model_config(const er_cf_model *m);
int er_cf_text_dim(const er_cf_model *m);

/* ---- fit.c --------------------------------------------------------------------------- */

#define ER_CF_NK 3 /* Recall/NDCG at 5, 10, 20 */

typedef struct {
    int batch;         /* training batch (4096) */
    int test_step;     /* validate every test_step epochs (3) */
    int patience;      /* stop after this many validations without improvement (5) */
    int max_epochs;    /* (3000) */
    uint64_t seed;     /* sampler, dropout and masks (2024) */
    const char *save_dir; /* NULL: no checkpoints */
    int resume;        /* continue from save_dir's checkpoint when present */
    /* progress: called after each epoch (recall20 < 0 when not validated) */
    void (*on_epoch)(void *user, int epoch, const er_cf_losses *mean, double recall20, double seconds);
    void *user;
} er_cf_fit_opts;

typedef struct {
    int epochs_run, best_epoch, resumed_from; /* resumed_from: -1 when not resumed */
    double val_recall[ER_CF_NK], val_ndcg[ER_CF_NK];
    double tst_recall[ER_CF_NK], tst_ndcg[ER_CF_NK];
    int has_val, has_tst;
    double seconds_train; /* training time, validation excluded */
} er_cf_result;

extern const int er_cf_ks[ER_CF_NK];

/* Train on ds's training split with early stopping on ds's validation split (when present;
 * otherwise max_epochs), restore the best state, then evaluate val and tst. */
int er_cf_fit(er_cf_model *m, const er_dataset *ds, const er_cf_fit_opts *o, er_cf_result *res);
/* Recall/NDCG@{5,10,20} of the current embeddings on a split (training items masked). */
int er_cf_evaluate(er_cf_model *m, const er_dataset *ds, int split, double *recall, double *ndcg);

/* ---- state.c ------------------------------------------------------------------------- */

typedef struct {
    int epoch;        /* next epoch to run */
    int best_epoch, bad_checks;
    double best;      /* best validation Recall@20 (-1: none yet) */
    er_rng rng;
    float *best_params; /* (n params) or NULL */
} er_cf_progress;

/* DIR/cf_state.bin: config, shapes, parameters, Adam state, progress; written atomically. */
int er_cf_state_save(const char *dir, er_cf_model *m, const er_cf_progress *p);
/* Load into m (same config and shapes, else EASYREC_ERR_FORMAT naming the difference);
 * p->best_params allocated when the file has one. EASYREC_ERR_IO when there is no file. */
int er_cf_state_load(const char *dir, er_cf_model *m, er_cf_progress *p);

#endif
