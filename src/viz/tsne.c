/* tsne.c — t-SNE to 2-D: input affinities, initialisation and the gradient-descent loop;
 * the exact O(n^2) gradient here, the Barnes-Hut one in tsne_bh.c (tsne.h has the recipe). */
#include "viz/tsne.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "viz/tsne_impl.h"

#define EPS_DBL 2.220446049250313e-16

void er_tsne_defaults(er_tsne_opts *o) {
    memset(o, 0, sizeof(*o));
    o->perplexity = 30;
    o->iterations = 1000;
    o->theta = 0.5;
    o->exact_max = 2000;
    o->seed = 2024;
}

/* Squared distances of row i to the rows listed in idx (or all rows when idx is NULL). */
static void sqdist_row(const float *X, int n, int d, int i, const int *idx, int m, double *out) {
    const float *xi = X + (size_t)i * d;
    for (int t = 0; t < m; t++) {
        int j = idx ? idx[t] : t;
        const float *xj = X + (size_t)j * d;
        double s = 0;
        for (int k = 0; k < d; k++) {
            double v = (double)xi[k] - xj[k];
            s += v * v;
        }
        out[t] = s;
    }
    (void)n;
}

/* Conditional P of one point over m candidates with squared distances dist (self excluded
 * by the caller: skip < 0 or the position of i to zero), matching scikit-learn's
 * _binary_search_perplexity: beta searched until the entropy is log(perplexity) +- 1e-5. */
static void cond_p(const double *dist, int m, int skip, double perplexity, double *p) {
    double beta = 1, lo = -INFINITY, hi = INFINITY, target = log(perplexity);
    for (int it = 0; it < 100; it++) {
        double sum = 0;
        for (int j = 0; j < m; j++) {
            p[j] = j == skip ? 0 : exp(-dist[j] * beta);
            sum += p[j];
        }
        if (sum == 0) sum = 1e-8;
        double sd = 0;
        for (int j = 0; j < m; j++) {
            p[j] /= sum;
            sd += dist[j] * p[j];
        }
        double diff = log(sum) + beta * sd - target;
        if (fabs(diff) <= 1e-5) break;
        if (diff > 0) {
            lo = beta;
            beta = hi == INFINITY ? beta * 2 : (beta + hi) / 2;
        } else {
            hi = beta;
            beta = lo == -INFINITY ? beta / 2 : (beta + lo) / 2;
        }
    }
}

/* dense symmetric P (n, n), sum 1 */
static int exact_p(const float *X, int n, int d, double perp, int nt, double **out) {
    double *P = er_mallocarray((size_t)n * n, sizeof(double));
    if (!P) return er_error(EASYREC_ERR_NOMEM, "tsne: out of memory for %d x %d affinities", n, n);
    int fail = 0;
#pragma omp parallel num_threads(nt)
    {
        double *dist = malloc((size_t)n * sizeof(double));
        if (!dist) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            if (!dist) continue;
            sqdist_row(X, n, d, i, NULL, n, dist);
            cond_p(dist, n, i, perp, P + (size_t)i * n);
        }
        free(dist);
    }
    if (fail) {
        free(P);
        return er_error(EASYREC_ERR_NOMEM, "tsne: out of memory");
    }
    double sum = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double s = P[(size_t)i * n + j] + P[(size_t)j * n + i];
            P[(size_t)i * n + j] = P[(size_t)j * n + i] = s;
            sum += 2 * s;
        }
    if (sum < EPS_DBL) sum = EPS_DBL;
    for (size_t k = 0; k < (size_t)n * n; k++) P[k] = fmax(P[k] / sum, EPS_DBL);
    for (int i = 0; i < n; i++) P[(size_t)i * n + i] = 0;
    *out = P;
    return 0;
}

typedef struct {
    double d;
    int j;
} dj;
static int cmp_dj(const void *a, const void *b) {
    const dj *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : x->j - y->j;
}

/* sparse symmetric P on the k nearest neighbours (CSR), sum 1 */
static int knn_p(const float *X, int n, int d, double perp, int nt, er_tsne_sparse *sp) {
    int k = (int)(3 * perp + 1);
    if (k > n - 1) k = n - 1;
    int *nb = er_mallocarray((size_t)n * k, sizeof(int));
    double *cp = er_mallocarray((size_t)n * k, sizeof(double));
    int fail = !nb || !cp;
    if (!fail) {
#pragma omp parallel num_threads(nt)
        {
            dj *all = malloc((size_t)n * sizeof(dj));
            double *dist = malloc((size_t)n * sizeof(double)), *kd = malloc((size_t)k * sizeof(double));
            if (!all || !dist || !kd) {
#pragma omp atomic write
                fail = 1;
            }
#pragma omp for schedule(dynamic, 16)
            for (int i = 0; i < n; i++) {
                if (!all || !dist || !kd) continue;
                sqdist_row(X, n, d, i, NULL, n, dist);
                int m = 0;
                for (int j = 0; j < n; j++)
                    if (j != i) all[m].d = dist[j], all[m++].j = j;
                qsort(all, (size_t)m, sizeof(dj), cmp_dj);
                for (int t = 0; t < k; t++) nb[(size_t)i * k + t] = all[t].j, kd[t] = all[t].d;
                cond_p(kd, k, -1, perp, cp + (size_t)i * k);
            }
            free(all);
            free(dist);
            free(kd);
        }
    }
    /* symmetrise: P_ij = c_ij + c_ji, built as CSR from both directions */
    int *cnt = fail ? NULL : er_calloc((size_t)n + 1, sizeof(int));
    if (!cnt) fail = 1;
    if (!fail) {
        for (size_t t = 0; t < (size_t)n * k; t++) cnt[nb[t] + 1]++, cnt[t / k + 1]++;
        for (int i = 0; i < n; i++) cnt[i + 1] += cnt[i];
        sp->row = cnt;
        sp->col = er_mallocarray((size_t)cnt[n] + 1, sizeof(int));
        sp->val = er_mallocarray((size_t)cnt[n] + 1, sizeof(double));
        int *fill = er_calloc((size_t)n, sizeof(int));
        if (!sp->col || !sp->val || !fill) fail = 1;
        for (int i = 0; i < n && !fail; i++)
            for (int t = 0; t < k; t++) {
                int j = nb[(size_t)i * k + t];
                double v = cp[(size_t)i * k + t];
                sp->col[cnt[i] + fill[i]] = j, sp->val[cnt[i] + fill[i]++] = v;
                sp->col[cnt[j] + fill[j]] = i, sp->val[cnt[j] + fill[j]++] = v;
            }
        /* merge duplicate columns within each row (sorted) */
        for (int i = 0; i < n && !fail; i++) {
            int a = cnt[i], b = cnt[i] + fill[i];
            for (int x = a + 1; x < b; x++) { /* insertion sort: rows are short */
                int c = sp->col[x];
                double v = sp->val[x];
                int y = x - 1;
                while (y >= a && sp->col[y] > c) sp->col[y + 1] = sp->col[y], sp->val[y + 1] = sp->val[y], y--;
                sp->col[y + 1] = c, sp->val[y + 1] = v;
            }
        }
        if (!fail) { /* compact */
            int w = 0;
            double sum = 0;
            for (int i = 0; i < n; i++) {
                int a = cnt[i], b = cnt[i] + fill[i], start = w;
                for (int x = a; x < b; x++) {
                    if (w > start && sp->col[w - 1] == sp->col[x]) sp->val[w - 1] += sp->val[x];
                    else sp->col[w] = sp->col[x], sp->val[w++] = sp->val[x];
                    sum += sp->val[x];
                }
                cnt[i] = start;
            }
            cnt[n] = w;
            if (sum < EPS_DBL) sum = EPS_DBL;
            for (int x = 0; x < w; x++) sp->val[x] /= sum;
        }
        free(fill);
    }
    free(nb);
    free(cp);
    if (fail) {
        er_tsne_sparse_free(sp);
        return er_error(EASYREC_ERR_NOMEM, "tsne: out of memory for the neighbour affinities");
    }
    return 0;
}

void er_tsne_sparse_free(er_tsne_sparse *sp) {
    free(sp->row);
    free(sp->col);
    free(sp->val);
    memset(sp, 0, sizeof(*sp));
}

/* PCA to 2-D by power iteration (two components, deflation), scaled as scikit-learn:
 * Y / std(Y[:, 0]) * 1e-4. Signs fixed so the largest |loading| is positive. */
static void pca_init(const float *X, int n, int d, double *Y, double *work) {
    double *mean = work, *v = work + d, *w = work + 2 * d, *comp = work + 3 * d; /* comp: 2 x d */
    memset(mean, 0, (size_t)d * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) mean[k] += X[(size_t)i * d + k];
    for (int k = 0; k < d; k++) mean[k] /= n;
    for (int c = 0; c < 2; c++) {
        for (int k = 0; k < d; k++) v[k] = 1.0 + 0.01 * ((k * 7919 + c * 104729) % 97);
        for (int it = 0; it < 300; it++) {
            memset(w, 0, (size_t)d * sizeof(double));
            for (int i = 0; i < n; i++) {
                const float *x = X + (size_t)i * d;
                double s = 0;
                for (int k = 0; k < d; k++) s += (x[k] - mean[k]) * v[k];
                for (int k = 0; k < d; k++) w[k] += s * (x[k] - mean[k]);
            }
            if (c == 1) { /* deflate: remove the first component */
                double s = 0;
                for (int k = 0; k < d; k++) s += w[k] * comp[k];
                for (int k = 0; k < d; k++) w[k] -= s * comp[k];
            }
            double norm = 0, diff = 0;
            for (int k = 0; k < d; k++) norm += w[k] * w[k];
            norm = sqrt(norm);
            if (norm == 0) break;
            for (int k = 0; k < d; k++) {
                double nv = w[k] / norm;
                diff += fabs(nv - v[k]);
                v[k] = nv;
            }
            if (diff < 1e-10) break;
        }
        int big = 0;
        for (int k = 1; k < d; k++)
            if (fabs(v[k]) > fabs(v[big])) big = k;
        double sign = v[big] < 0 ? -1 : 1;
        for (int k = 0; k < d; k++) comp[c * d + k] = sign * v[k];
    }
    double m0 = 0, s0 = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += (X[(size_t)i * d + k] - mean[k]) * comp[c * d + k];
            Y[2 * i + c] = s;
        }
    for (int i = 0; i < n; i++) m0 += Y[2 * i];
    m0 /= n;
    for (int i = 0; i < n; i++) s0 += (Y[2 * i] - m0) * (Y[2 * i] - m0);
    s0 = sqrt(s0 / n);
    if (s0 <= 0) s0 = 1;
    for (int i = 0; i < 2 * n; i++) Y[i] = Y[i] / s0 * 1e-4;
}

/* exact gradient: grad_i = 4 (sum_j p_ij q_ij (y_i - y_j) - sum_j q_ij^2 (y_i - y_j) / Z) */
static double exact_grad(const double *P, double exag, const double *Y, int n, int nt, double *grad, double *zrow,
                         int want_kl) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < n; i++) {
        double ax = 0, ay = 0, bx = 0, by = 0, z = 0, yx = Y[2 * i], yy = Y[2 * i + 1];
        const double *p = P + (size_t)i * n;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double dx = yx - Y[2 * j], dy = yy - Y[2 * j + 1], q = 1.0 / (1.0 + dx * dx + dy * dy);
            double pq = exag * p[j] * q, qq = q * q;
            ax += pq * dx, ay += pq * dy, bx += qq * dx, by += qq * dy, z += q;
        }
        grad[2 * i] = ax, grad[2 * i + 1] = ay, zrow[2 * i] = bx, zrow[2 * i + 1] = by;
        grad[2 * n + i] = z; /* scratch: row sums of q */
    }
    double Z = 0;
    for (int i = 0; i < n; i++) Z += grad[2 * n + i];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) grad[2 * i + c] = 4 * (grad[2 * i + c] - zrow[2 * i + c] / Z);
    if (!want_kl) return 0;
    double kl = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
            double q = fmax(1.0 / (1.0 + dx * dx + dy * dy) / Z, EPS_DBL), p = exag * P[(size_t)i * n + j];
            kl += p * log(fmax(p, EPS_DBL) / q);
        }
    return kl;
}

int er_tsne(const float *X, int n, int d, const er_tsne_opts *o, float *Yout, double *kl_out) {
    if (n < 4 || d < 1) return er_error(EASYREC_ERR_ARG, "tsne: need at least 4 points of dimension >= 1, got %d x %d", n, d);
    if (!(o->perplexity > 0) || o->iterations < 1 || !(o->theta >= 0))
        return er_error(EASYREC_ERR_ARG, "tsne: perplexity > 0, iterations >= 1 and theta >= 0 required");
    for (size_t k = 0; k < (size_t)n * d; k++)
        if (!isfinite(X[k])) return er_error(EASYREC_ERR_ARG, "tsne: input row %zu holds a non-finite value", k / d);
    /* threads <= 0: one per 1000 points up to the cores — an iteration of a small set is
     * shorter than the cost of waking threads for it (and of their spinning on a busy machine) */
    int nt = o->threads > 0 ? o->threads : 1;
#ifdef _OPENMP
    if (o->threads <= 0) nt = omp_get_max_threads();
#endif
    if (o->threads <= 0 && nt > 1 + n / 1000) nt = 1 + n / 1000;
    double perp = o->perplexity;
    if (3 * perp > n - 1) perp = (n - 1) / 3.0;
    int exact = n <= o->exact_max;
    double *P = NULL;
    er_tsne_sparse sp = {0};
    int rc = exact ? exact_p(X, n, d, perp, nt, &P) : knn_p(X, n, d, perp, nt, &sp);
    if (rc) return rc;
    double *Y = er_mallocarray((size_t)n * 2, sizeof(double)), *upd = er_calloc((size_t)n * 2, sizeof(double));
    double *gains = er_mallocarray((size_t)n * 2, sizeof(double)), *grad = er_mallocarray((size_t)n * 3, sizeof(double));
    double *zrow = er_mallocarray((size_t)n * 2, sizeof(double));
    double *work = er_mallocarray((size_t)d * 5 + 8, sizeof(double));
    er_tsne_tree tree = {0};
    if (!Y || !upd || !gains || !grad || !zrow || !work) rc = er_error(EASYREC_ERR_NOMEM, "tsne: out of memory");
    double kl = 0;
    if (!rc) {
        if (o->init_random) {
            er_rng r;
            er_rng_seed(&r, o->seed);
            for (int i = 0; i < 2 * n; i++) Y[i] = 1e-4 * er_rng_normal(&r);
        } else {
            pca_init(X, n, d, Y, work);
        }
        for (int i = 0; i < 2 * n; i++) gains[i] = 1;
        const double early = 12.0;
        double lr = fmax(n / early / 4, 50);
        for (int it = 0; it < o->iterations && !rc; it++) {
            int stage1 = it < 250;
            double exag = stage1 ? early : 1, mom = stage1 ? 0.5 : 0.8;
            int report = o->progress && ((it + 1) % 50 == 0 || it + 1 == o->iterations);
            int want_kl = report || (kl_out && it + 1 == o->iterations);
            if (exact) kl = exact_grad(P, exag, Y, n, nt, grad, zrow, want_kl);
            else rc = er_tsne_bh_grad(&sp, exag, Y, n, o->theta, nt, &tree, grad, zrow, want_kl, &kl);
            if (rc) break;
            for (int k = 0; k < 2 * n; k++) {
                if (upd[k] * grad[k] < 0) gains[k] += 0.2;
                else gains[k] *= 0.8;
                if (gains[k] < 0.01) gains[k] = 0.01;
                upd[k] = mom * upd[k] - lr * gains[k] * grad[k];
                Y[k] += upd[k];
            }
            if (report) o->progress(o->ud, it + 1, kl);
        }
    }
    if (!rc) {
        for (int i = 0; i < 2 * n; i++) Yout[i] = (float)Y[i];
        if (kl_out) *kl_out = kl;
    }
    free(P);
    er_tsne_sparse_free(&sp);
    er_tsne_tree_free(&tree);
    free(Y);
    free(upd);
    free(gains);
    free(grad);
    free(zrow);
    free(work);
    return rc;
}
