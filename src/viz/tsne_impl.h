/* tsne_impl.h — internals shared by tsne.c and tsne_bh.c. */
#ifndef ER_VIZ_TSNE_IMPL_H
#define ER_VIZ_TSNE_IMPL_H
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int *row;    /* (n + 1) CSR offsets */
    int *col;    /* (nnz) */
    double *val; /* (nnz) symmetric P, sums to 1 */
} er_tsne_sparse;

typedef struct {
    double cx, cy, hw;     /* cell centre and half width */
    double mx, my;         /* centre of mass */
    int count;             /* points below */
    int child;             /* index of the first of 4 children, -1 for a leaf */
    int point;             /* a leaf's point (-1 when empty) */
} er_tsne_node;

typedef struct {
    er_tsne_node *nodes;
    int n, cap;
} er_tsne_tree;

void er_tsne_sparse_free(er_tsne_sparse *sp);
void er_tsne_tree_free(er_tsne_tree *t);
/* Barnes-Hut gradient into grad[0..2n) (grad has 3n doubles of scratch, zrow 2n); KL
 * (with exact q normalisation estimated by the tree's Z) into *kl when want_kl. */
int er_tsne_bh_grad(const er_tsne_sparse *P, double exag, const double *Y, int n, double theta, int nt,
                    er_tsne_tree *tree, double *grad, double *zrow, int want_kl, double *kl);
#endif
