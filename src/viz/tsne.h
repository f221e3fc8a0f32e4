/* tsne.h — t-SNE (van der Maaten 2008/2014) to two dimensions, exact or Barnes-Hut, and the
 * trustworthiness score used to check it (docs/demo.md).
 *
 * Follows scikit-learn's TSNE (the peer tools/tsne_compare.py measures against): squared
 * Euclidean input distances; per-point Gaussian bandwidth found by binary search to the
 * given perplexity; P symmetrised and normalised; PCA initialisation scaled to std 1e-4
 * (or seeded Gaussian); early exaggeration 12 for the first 250 iterations at momentum 0.5,
 * then 0.8; learning rate max(n / 12 / 4, 50); per-parameter gains (+0.2 / x0.8, min
 * 0.01). Exact: dense P and the O(n^2) gradient. Barnes-Hut: P on the 3*perplexity nearest
 * neighbours and a quadtree for the repulsive forces (theta 0.5).
 * Deterministic for any thread count (per-point work, sums in a fixed order).
 */
#ifndef ER_VIZ_TSNE_H
#define ER_VIZ_TSNE_H
#include <stdint.h>

typedef struct {
    double perplexity;  /* 30; must be < n (clamped to (n-1)/3 when larger) */
    int iterations;     /* total, early exaggeration included (1000) */
    double theta;       /* Barnes-Hut opening angle (0.5) */
    int exact_max;      /* exact t-SNE up to this many points (2000), Barnes-Hut above */
    int init_random;    /* 0: PCA initialisation, 1: Gaussian(0, 1e-4) from seed */
    uint64_t seed;      /* 2024 */
    int threads;        /* exact count; 0: one per 1000 points, at most the OpenMP default */
    /* optional progress callback every 50 iterations: KL divergence (exact: exact value,
     * Barnes-Hut: estimate) */
    void (*progress)(void *ud, int iter, double kl);
    void *ud;
} er_tsne_opts;

void er_tsne_defaults(er_tsne_opts *o);

/* X: (n, d) row-major; Y: (n, 2) out. n >= 4. *kl (may be NULL): final KL divergence. */
int er_tsne(const float *X, int n, int d, const er_tsne_opts *o, float *Y, double *kl);

/* Trustworthiness (Venna & Kaski; sklearn.manifold.trustworthiness) of embedding Y (n, dy)
 * of X (n, dx) with k neighbours, Euclidean in both spaces. In [0, 1], 1 = every embedding
 * neighbour is an input neighbour. Requires k < n / 2. Returns -1 on allocation failure. */
double er_trustworthiness(const float *X, int dx, const float *Y, int dy, int n, int k);

#endif
