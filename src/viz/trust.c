/* trust.c — trustworthiness of an embedding (Venna & Kaski 2001), as
 * sklearn.manifold.trustworthiness computes it:
 *   T(k) = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k^Y(i) \ N_k^X(i)} (r_X(i, j) - k)
 * with r_X(i, j) the rank of j among i's input-space neighbours (1 = nearest; ties by index). */
#include <stdlib.h>

#include "core/err.h"
#include "viz/tsne.h"

typedef struct {
    double d;
    int j;
} dj;
static int cmp(const void *a, const void *b) {
    const dj *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : x->j - y->j;
}

static void order(const float *A, int dim, int n, int i, dj *buf) {
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int k = 0; k < dim; k++) {
            double v = (double)A[(size_t)i * dim + k] - A[(size_t)j * dim + k];
            s += v * v;
        }
        buf[j].d = j == i ? -1 : s; /* self first, then excluded */
        buf[j].j = j;
    }
    qsort(buf, (size_t)n, sizeof(dj), cmp);
}

double er_trustworthiness(const float *X, int dx, const float *Y, int dy, int n, int k) {
    if (k < 1 || 2 * k >= n) return -1;
    dj *bx = er_mallocarray((size_t)n, sizeof(dj)), *by = er_mallocarray((size_t)n, sizeof(dj));
    int *rank = er_mallocarray((size_t)n, sizeof(int));
    if (!bx || !by || !rank) {
        free(bx);
        free(by);
        free(rank);
        return -1;
    }
    double t = 0;
    for (int i = 0; i < n; i++) {
        order(X, dx, n, i, bx);
        order(Y, dy, n, i, by);
        for (int r = 0; r < n; r++) rank[bx[r].j] = r; /* self at 0, nearest at 1 */
        for (int r = 1; r <= k; r++) {
            int rr = rank[by[r].j];
            if (rr > k) t += rr - k;
        }
    }
    free(bx);
    free(by);
    free(rank);
    return 1.0 - t * (2.0 / ((double)n * k * (2.0 * n - 3.0 * k - 1.0)));
}
