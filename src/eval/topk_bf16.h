/* topk_bf16.h — exact top-K over an item matrix held in bf16 for the scan (half the memory
 * traffic of fp32), with the candidates rescored from the fp32 matrix (topk_bf16.c).
 *
 * Scores are dot products (cosines for L2-normalised embeddings). The answer is exactly the
 * top k of the EXACT scores: s_i = dot(q, v_i) accumulated in double and rounded to float,
 * ordered by score descending, equal scores by ascending item id (the rule of topk.c and
 * docs/eval.md). bf16 only decides which items are worth rescoring, using a bound on its
 * error that holds for every input (docs/eval.md, "bf16 item matrices"); near-ties within
 * bf16 resolution make the candidate set larger, never the answer different.
 */
#ifndef ER_EVAL_TOPK_BF16_H
#define ER_EVAL_TOPK_BF16_H

#include <stdint.h>

#include "kernels/lowp.h"

typedef struct {
    int32_t n;         /* items */
    int dim;           /* D */
    er_lowp_mat m;     /* items as bf16 panels */
    float *norm;       /* (n) ||v_i||, rounded up */
    const float *f32;  /* (n, D) the caller's fp32 items, for rescoring; not owned */
} er_bf16_items;

/* Pack items (n, D) (finite values; EASYREC_ERR_ARG names the first that is not); the fp32
 * matrix must outlive b. */
int er_bf16_items_init(er_bf16_items *b, const float *items, int32_t n, int dim);
void er_bf16_items_free(er_bf16_items *b);

typedef struct {
    int64_t candidates; /* items rescored in fp32, summed over queries */
} er_bf16_topk_stats;

/* out (nq, k): for each query row of Q (nq, D) the ids of its k best items (1 <= k <= n),
 * best first. isa: level of the bf16 scan (er_isa_clamp). stats may be NULL. Memory: a
 * score block of 32 x n floats plus O(n) per call. EASYREC_ERR_ARG for non-finite queries. */
int er_bf16_topk(const er_bf16_items *b, er_isa isa, const float *Q, int nq, int k, int32_t *out,
                 er_bf16_topk_stats *stats);

/* The exact score of the rule above: double accumulation, rounded to float. */
float er_exact_dot(const float *a, const float *b, int D);

#endif
