/* graph.c — the normalised bipartite adjacency of the original's data handler
 * (../shared/docs/easyrec-spec.md §6.1): A = [[0, R], [Rᵀ, 0]] (+ I for plain GCCF), R the
 * binarised training matrix; Â = D^-1/2 A D^-1/2 with D the row sums and 0^-1/2 = 0.
 * Stored as CSR over n = N + M nodes (users first), with each entry's transposed position
 * so that Âᵀ products of edge-dropped copies (whose (u,i) and (i,u) entries differ) need no
 * second matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cf/cf.h"
#include "core/err.h"

void er_cf_graph_free(er_cf_graph *g) {
    free(g->indptr);
    free(g->indices);
    free(g->val);
    free(g->tpos);
    memset(g, 0, sizeof(*g));
}

static int64_t find_entry(const er_cf_graph *g, int32_t row, int32_t col) {
    int64_t lo = g->indptr[row], hi = g->indptr[row + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (g->indices[mid] < col) lo = mid + 1;
        else hi = mid;
    }
    ER_ASSERT(lo < g->indptr[row + 1] && g->indices[lo] == col);
    return lo;
}

int er_cf_graph_build(const er_csr *trn, int self_loop, er_cf_graph *g) {
    memset(g, 0, sizeof(*g));
    int32_t N = trn->nrows, M = trn->ncols;
    if ((int64_t)N + M > INT32_MAX) return er_error(EASYREC_ERR_UNSUPPORTED, "cf: %d users + %d items is too many", N, M);
    int32_t n = N + M;
    int64_t nnz = 2 * (int64_t)trn->nnz + (self_loop ? n : 0);
    g->n = n;
    g->n_users = N;
    g->nnz = nnz;
    g->indptr = er_calloc((size_t)n + 1, sizeof(int64_t));
    g->indices = er_mallocarray(nnz ? (size_t)nnz : 1, sizeof(int32_t));
    g->val = er_mallocarray(nnz ? (size_t)nnz : 1, sizeof(float));
    g->tpos = er_mallocarray(nnz ? (size_t)nnz : 1, sizeof(int64_t));
    float *dinv = er_mallocarray((size_t)n + 1, sizeof(float));
    int64_t *fill = er_calloc((size_t)n + 1, sizeof(int64_t));
    if (!g->indptr || !g->indices || !g->val || !g->tpos || !dinv || !fill) {
        free(dinv);
        free(fill);
        er_cf_graph_free(g);
        return EASYREC_ERR_NOMEM;
    }
    /* row lengths: user u has its items (+ itself); item i its users (+ itself) */
    for (int32_t u = 0; u < N; u++) g->indptr[u + 1] = csr_row_len(trn, u) + (self_loop ? 1 : 0);
    for (size_t k = 0; k < trn->nnz; k++) g->indptr[N + trn->indices[k] + 1]++;
    if (self_loop)
        for (int32_t i = 0; i < M; i++) g->indptr[N + i + 1]++;
    for (int32_t r = 0; r < n; r++) g->indptr[r + 1] += g->indptr[r];
    ER_ASSERT(g->indptr[n] == nnz);
    /* user rows: [self] then N + items (ascending, since trn rows are) */
    for (int32_t u = 0; u < N; u++) {
        int64_t o = g->indptr[u];
        if (self_loop) g->indices[o++] = u;
        for (int64_t k = trn->indptr[u]; k < trn->indptr[u + 1]; k++) g->indices[o++] = N + trn->indices[k];
    }
    /* item rows: users in ascending order (scan users in order), then self */
    for (int32_t u = 0; u < N; u++)
        for (int64_t k = trn->indptr[u]; k < trn->indptr[u + 1]; k++) {
            int32_t r = N + trn->indices[k];
            g->indices[g->indptr[r] + fill[r]++] = u;
        }
    if (self_loop)
        for (int32_t i = 0; i < M; i++) g->indices[g->indptr[N + i] + fill[N + i]++] = N + i;
    /* binarised degrees (every stored entry is 1), D^-1/2 with 0 for isolated nodes */
    for (int32_t r = 0; r < n; r++) {
        int64_t deg = g->indptr[r + 1] - g->indptr[r];
        dinv[r] = deg > 0 ? (float)(1.0 / sqrt((double)deg)) : 0.0f;
    }
    for (int32_t r = 0; r < n; r++)
        for (int64_t e = g->indptr[r]; e < g->indptr[r + 1]; e++) g->val[e] = dinv[r] * dinv[g->indices[e]];
    for (int32_t r = 0; r < n; r++)
        for (int64_t e = g->indptr[r]; e < g->indptr[r + 1]; e++) g->tpos[e] = find_entry(g, g->indices[e], r);
    free(dinv);
    free(fill);
    return EASYREC_OK;
}
