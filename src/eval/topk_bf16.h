/* topk_bf16.h — exact top-K over an item matrix held in bf16 for the scan (half the memory
 * traffic of fp32), with the candidates rescored from the fp32 matrix (topk_bf16.c).
 *
 * Scores are dot products (cosines for L2-normalised embeddings). The answer is exactly the
 * top k of the EXACT scores: s_i = dot(q, v_i) accumulated in double and rounded to float,
 * ordered by score descending, equal scores by ascending item id (the rule of topk.c and
 * docs/eval.md). bf16 only decides which items are worth rescoring, using a bound on its
 * error that holds for every input (docs/model.md, "bf16 item matrices"); near-ties within
 * bf16 resolution make the candidate set larger, never the answer different.
 *
 * The pieces: er_bf16_items (the packed copy, kept in step with a changing fp32 matrix),
 * er_bf16_scan (approximate scores of a range of panels: threads split the items this way),
 * er_bf16_refine (one query's exact top k from its approximate scores). er_recommend
 * (src/serve/recommender.c, used by `serve` and `recommend`) puts them together over threads.
 * Shapes: n items, D width, nq queries, k list length.
 */
#ifndef ER_EVAL_TOPK_BF16_H
#define ER_EVAL_TOPK_BF16_H

#include <stdint.h>

#include "eval/eval.h"
#include "kernels/lowp.h"

#define ER_BF16_MAX_NORM 0x1p60 /* larger item or query norms are refused (no overflow in any bound) */

typedef struct {
    int32_t n;         /* items */
    int32_t cap;       /* rows the packed panels hold (a multiple of ER_LOWP_NR) */
    int dim;           /* D */
    er_lowp_mat m;     /* items as bf16 panels: m.N = n, m.panels = ceil(n / 32); scanned at m.isa */
    float *norm;       /* (cap) ||v_i||, rounded up */
    const float *f32;  /* (n, D) the caller's fp32 items, for rescoring; not owned */
} er_bf16_items;

/* Pack items (n >= 0, D >= 1) (finite values, norms <= ER_BF16_MAX_NORM; EASYREC_ERR_ARG
 * names the first item that is not); the fp32 matrix must outlive b or be handed again
 * through er_bf16_items_resize when it moves. b is zeroed on failure. */
int er_bf16_items_init(er_bf16_items *b, const float *items, int32_t n, int dim);
void er_bf16_items_free(er_bf16_items *b);
/* The caller's matrix is now items (n, D) (it may have moved): rows below min(old n, n) are
 * kept as packed, rows past the old n are packed from items. EASYREC_ERR_ARG / _NOMEM leave b
 * as it was. */
int er_bf16_items_resize(er_bf16_items *b, const float *items, int32_t n);
/* Room for n rows, so that growing to n later needs no allocation. */
int er_bf16_items_reserve(er_bf16_items *b, int32_t n);
/* Row i (< n) changed in the caller's matrix: pack it again. EASYREC_ERR_ARG (non-finite or
 * too large) leaves the row as it was. */
int er_bf16_items_update(er_bf16_items *b, int32_t i);
/* Bytes of the packed copy and the norms. */
size_t er_bf16_items_bytes(const er_bf16_items *b);

/* S (nq, ldc): S[r * ldc + i] = approximate (bf16) score of query r against item i, for
 * the items of panels [p0, p1) (panel p = items 32p .. 32p + 31, the last one cut at n), at
 * level isa. Single-threaded in the caller; threads scanning disjoint panel ranges of one
 * S do not interfere. */
void er_bf16_scan(const er_bf16_items *b, er_isa isa, const float *Q, int nq, int p0, int p1, float *S, size_t ldc);

/* Per-call scratch of er_bf16_refine for up to n items and lists of k (grows; free with
 * er_bf16_refine_scratch_free). One per thread. */
typedef struct {
    float *lower, *cs;   /* (n) lower bounds; candidates' exact scores */
    int32_t *ci;         /* (n) candidates' item ids */
    uint8_t *skip;       /* (n) excluded items, all zero between calls */
    er_topk_entry *heap; /* (k) */
    int32_t *sel;        /* (k) */
    int32_t n_cap;
    int k_cap;
} er_bf16_refine_scratch;

void er_bf16_refine_scratch_free(er_bf16_refine_scratch *s);

/* The exact top k of query q (D) among the items of b not in excl[0..nexcl) (any order,
 * repeats and out-of-range ids ignored), given a (n), q's approximate scores from
 * er_bf16_scan: out_i (k) ids and out_s (k) their exact scores, best first; returns how
 * many (min(k, items left)) or a negative error: EASYREC_ERR_ARG for a query that is not
 * finite or whose norm passes ER_BF16_MAX_NORM, EASYREC_ERR_NOMEM. *n_candidates (may be
 * NULL): how many items were rescored. k >= 1. */
int er_bf16_refine(const er_bf16_items *b, const float *q, const float *a, int k, const int32_t *excl, int nexcl,
                   er_bf16_refine_scratch *s, int32_t *out_i, float *out_s, int32_t *n_candidates);

/* EASYREC_OK when v (D) can be an item or a query (finite, norm <= ER_BF16_MAX_NORM), else
 * EASYREC_ERR_ARG with a message that names it as `what` (what er_bf16_refine checks first). */
int er_bf16_check_vector(const float *v, int D, const char *what);

/* The exact score of the rule above: double accumulation, rounded to float. */
float er_exact_dot(const float *a, const float *b, int D);

#endif
