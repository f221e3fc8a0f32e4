/* tsne_bh.c — the Barnes-Hut t-SNE gradient: attractive forces from the sparse
 * neighbour P, repulsive forces from a quadtree over the current embedding, a cell taken as
 * one body when its width / distance < theta (van der Maaten 2014). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "viz/tsne_impl.h"

#define MAX_DEPTH 48

void er_tsne_tree_free(er_tsne_tree *t) {
    free(t->nodes);
    memset(t, 0, sizeof(*t));
}

static int new_nodes(er_tsne_tree *t, int k) {
    if (t->n + k > t->cap) {
        int cap = t->cap ? t->cap : 1024;
        while (cap < t->n + k) cap *= 2;
        er_tsne_node *nn = realloc(t->nodes, (size_t)cap * sizeof(er_tsne_node));
        if (!nn) return -1;
        t->nodes = nn;
        t->cap = cap;
    }
    int first = t->n;
    t->n += k;
    return first;
}

static void leaf(er_tsne_node *nd, double cx, double cy, double hw) {
    nd->cx = cx, nd->cy = cy, nd->hw = hw;
    nd->mx = nd->my = 0;
    nd->count = 0;
    nd->child = -1;
    nd->point = -1;
}

static int quadrant(const er_tsne_node *nd, double x, double y) { return (x >= nd->cx) + 2 * (y >= nd->cy); }

static int insert(er_tsne_tree *t, const double *Y, int i) {
    double x = Y[2 * i], y = Y[2 * i + 1];
    int at = 0;
    for (int depth = 0;; depth++) {
        er_tsne_node *nd = &t->nodes[at];
        nd->mx = (nd->mx * nd->count + x) / (nd->count + 1);
        nd->my = (nd->my * nd->count + y) / (nd->count + 1);
        nd->count++;
        if (nd->child >= 0) {
            at = nd->child + quadrant(nd, x, y);
            continue;
        }
        if (nd->count == 1) {
            nd->point = i;
            return 0;
        }
        if (depth >= MAX_DEPTH) return 0; /* (near-)duplicates share a leaf */
        /* split: push the old point down, then continue with i */
        int old = nd->point;
        int c = new_nodes(t, 4);
        if (c < 0) return -1;
        nd = &t->nodes[at];
        double h = nd->hw / 2;
        for (int q = 0; q < 4; q++) leaf(&t->nodes[c + q], nd->cx + (q & 1 ? h : -h), nd->cy + (q & 2 ? h : -h), h);
        nd->child = c;
        nd->point = -1;
        int oq = c + quadrant(nd, Y[2 * old], Y[2 * old + 1]);
        er_tsne_node *o = &t->nodes[oq];
        o->mx = Y[2 * old], o->my = Y[2 * old + 1], o->count = nd->count - 1, o->point = old;
        if (o->count > 1) { /* old leaf carried duplicates: they stay together */
            o->mx = Y[2 * old], o->my = Y[2 * old + 1];
        }
        at = c + quadrant(nd, x, y);
    }
}

static int build(er_tsne_tree *t, const double *Y, int n) {
    double x0 = Y[0], x1 = Y[0], y0 = Y[1], y1 = Y[1];
    for (int i = 1; i < n; i++) {
        x0 = fmin(x0, Y[2 * i]), x1 = fmax(x1, Y[2 * i]);
        y0 = fmin(y0, Y[2 * i + 1]), y1 = fmax(y1, Y[2 * i + 1]);
    }
    t->n = 0;
    if (new_nodes(t, 1) < 0) return -1;
    double hw = fmax(x1 - x0, y1 - y0) / 2 * (1 + 1e-6) + 1e-12;
    leaf(&t->nodes[0], (x0 + x1) / 2, (y0 + y1) / 2, hw);
    for (int i = 0; i < n; i++)
        if (insert(t, Y, i)) return -1;
    return 0;
}

/* repulsion on point i: sum over bodies of q^2 (y_i - y_b) * count, and sum of q * count */
static void repulse(const er_tsne_tree *t, const double *Y, int i, double theta, double *fx, double *fy, double *z) {
    int stack[4 * MAX_DEPTH + 8], sp = 0;
    double x = Y[2 * i], y = Y[2 * i + 1], ax = 0, ay = 0, az = 0;
    stack[sp++] = 0;
    while (sp) {
        const er_tsne_node *nd = &t->nodes[stack[--sp]];
        if (!nd->count) continue;
        double dx = x - nd->mx, dy = y - nd->my, d2 = dx * dx + dy * dy;
        if (nd->child < 0 || (2 * nd->hw) * (2 * nd->hw) < theta * theta * d2) {
            double cnt = nd->count;
            if (nd->child < 0 && (nd->point == i || d2 == 0)) cnt -= 1; /* not itself */
            if (cnt <= 0) continue;
            double q = 1.0 / (1.0 + d2);
            az += cnt * q;
            ax += cnt * q * q * dx;
            ay += cnt * q * q * dy;
        } else {
            for (int c = 0; c < 4; c++) stack[sp++] = nd->child + c;
        }
    }
    *fx = ax, *fy = ay, *z = az;
}

int er_tsne_bh_grad(const er_tsne_sparse *P, double exag, const double *Y, int n, double theta, int nt,
                    er_tsne_tree *tree, double *grad, double *zrow, int want_kl, double *kl) {
    if (build(tree, Y, n)) return er_error(EASYREC_ERR_NOMEM, "tsne: out of memory for the quadtree");
#pragma omp parallel for num_threads(nt) schedule(dynamic, 64)
    for (int i = 0; i < n; i++) {
        double ax = 0, ay = 0, yx = Y[2 * i], yy = Y[2 * i + 1];
        for (int k = P->row[i]; k < P->row[i + 1]; k++) {
            int j = P->col[k];
            double dx = yx - Y[2 * j], dy = yy - Y[2 * j + 1], q = 1.0 / (1.0 + dx * dx + dy * dy);
            double pq = exag * P->val[k] * q;
            ax += pq * dx, ay += pq * dy;
        }
        grad[2 * i] = ax, grad[2 * i + 1] = ay;
        repulse(tree, Y, i, theta, &zrow[2 * i], &zrow[2 * i + 1], &grad[2 * n + i]);
    }
    double Z = 0;
    for (int i = 0; i < n; i++) Z += grad[2 * n + i];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) grad[2 * i + c] = 4 * (grad[2 * i + c] - zrow[2 * i + c] / Z);
    if (want_kl) { /* KL over the neighbour pairs (P is zero elsewhere), q normalised by the tree's Z */
        double s = 0;
        for (int i = 0; i < n; i++)
            for (int k = P->row[i]; k < P->row[i + 1]; k++) {
                int j = P->col[k];
                double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
                double p = exag * P->val[k], q = 1.0 / (1.0 + dx * dx + dy * dy) / Z;
                if (p > 0) s += p * log(p / fmax(q, 1e-300));
            }
        *kl = s;
    }
    return 0;
}
