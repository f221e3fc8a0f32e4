/* test_cf.c — `easyrec cf` (src/cf/): the normalised adjacency of a toy graph against hand
 * values, SpMM and propagation against dense products, finite-difference gradients of BPR,
 * the alignment InfoNCE, the reconstruction loss, the MLP and a whole step, the first steps
 * of every algorithm x alignment against the PyTorch reference (tools/cf_reference.py, fixture
 * tests/fixtures/cf/reference.json.in: same initial weights, triples, dropped edges and
 * masked nodes), thread-count determinism, --save/--resume, input errors, and end to end on
 * MovieLens-100K and a slice of a release dataset (skipped when ../shared is absent). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf/cf.h"
#include "check.h"
#include "core/err.h"
#include "io/tensors.h"
#include "kernels/kernels.h"

#define REF ER_FIXTURES "/cf/reference.json"
#define ML100K "../shared/data/movielens-100k/u.data"
#define MOVIES "../shared/data/easyrec/movies"

static const char *tmp(void) { return check_tmpdir("cf"); }

/* toy: 2 users, 3 items; u0 - i0, i1; u1 - i1, i2 */
static er_csr toy(void) {
    int32_t r[] = {0, 0, 1, 1}, c[] = {0, 1, 1, 2};
    er_csr m;
    REQUIRE(er_csr_from_pairs(2, 3, r, c, 4, &m) == 0);
    return m;
}

static double entry(const er_cf_graph *g, int i, int j) {
    for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++)
        if (g->indices[e] == j) return g->val[e];
    return 0.0;
}

TEST(adjacency_toy) {
    er_csr R = toy();
    er_cf_graph g;
    REQUIRE(er_cf_graph_build(&R, 0, &g) == 0);
    CHECK_EQ_INT(g.n, 5);
    CHECK_EQ_INT(g.nnz, 8);
    /* degrees: u0 2, u1 2, i0 1, i1 2, i2 1 (nodes 2, 3, 4) */
    CHECK_NEAR(entry(&g, 0, 2), 1 / sqrt(2.0), 1e-7);
    CHECK_NEAR(entry(&g, 0, 3), 0.5, 1e-7);
    CHECK_NEAR(entry(&g, 1, 3), 0.5, 1e-7);
    CHECK_NEAR(entry(&g, 1, 4), 1 / sqrt(2.0), 1e-7);
    CHECK_NEAR(entry(&g, 4, 1), 1 / sqrt(2.0), 1e-7);
    CHECK_NEAR(entry(&g, 0, 0), 0.0, 0);
    CHECK_NEAR(entry(&g, 0, 1), 0.0, 0);
    for (int i = 0; i < g.n; i++)
        for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; e++) {
            int64_t t = g.tpos[e];
            CHECK(g.indices[t] == i && g.val[t] == g.val[e]);
        }
    er_cf_graph_free(&g);
    /* with self-loops (plain GCCF): degrees +1 */
    REQUIRE(er_cf_graph_build(&R, 1, &g) == 0);
    CHECK_EQ_INT(g.nnz, 13);
    CHECK_NEAR(entry(&g, 0, 0), 1.0 / 3, 1e-7);
    CHECK_NEAR(entry(&g, 0, 2), 1 / sqrt(6.0), 1e-7);
    CHECK_NEAR(entry(&g, 0, 3), 1.0 / 3, 1e-7);
    CHECK_NEAR(entry(&g, 2, 2), 0.5, 1e-7);
    CHECK_NEAR(entry(&g, 3, 3), 1.0 / 3, 1e-7);
    er_cf_graph_free(&g);
    er_csr_free(&R);
}

static er_csr random_graph(er_rng *r, int N, int M, double p) {
    int32_t *rows = malloc(sizeof(int32_t) * N * M), *cols = malloc(sizeof(int32_t) * N * M);
    size_t n = 0;
    for (int u = 0; u < N; u++)
        for (int i = 0; i < M; i++)
            if (er_rng_uniform(r) < p) rows[n] = u, cols[n] = i, n++;
    er_csr m;
    REQUIRE(er_csr_from_pairs(N, M, rows, cols, n, &m) == 0);
    free(rows), free(cols);
    return m;
}

/* dense (n, n) copy of the graph with values val */
static double *dense_adj(const er_cf_graph *g, const float *val) {
    double *A = calloc((size_t)g->n * g->n, sizeof(double));
    for (int i = 0; i < g->n; i++)
        for (int64_t e = g->indptr[i]; e < g->indptr[i + 1]; e++) A[(size_t)i * g->n + g->indices[e]] = val[e];
    return A;
}

/* Both widths: the generic loop (5) and the register rows of the original's 32. */
TEST(spmm_vs_dense) {
    er_rng r;
    er_rng_seed(&r, 3);
    er_csr R = random_graph(&r, 13, 11, 0.3);
    er_cf_graph g;
    REQUIRE(er_cf_graph_build(&R, 0, &g) == 0);
    int n = g.n;
    float *val = malloc(sizeof(float) * g.nnz);
    for (int64_t e = 0; e < g.nnz; e++) val[e] = er_rng_uniform(&r) < 0.8 ? g.val[e] : 0.0f; /* dropped: asymmetric */
    double *A = dense_adj(&g, val);
    for (int d = 5; d <= 32; d += 27) {
        int ld = d + 3; /* strided rows, as GCCF's concatenated layers */
        float *X = malloc(sizeof(float) * n * ld), *Y = malloc(sizeof(float) * n * ld), *add = malloc(sizeof(float) * n * ld);
        for (int k = 0; k < n * ld; k++) X[k] = (float)er_rng_normal(&r), add[k] = (float)er_rng_normal(&r);
        for (int tr = 0; tr < 2; tr++)
            for (int with_add = 0; with_add < 2; with_add++) {
                er_cf_spmm(&g, val, tr, X, ld, Y, ld, with_add ? add : NULL, ld, d, 2);
                double worst = 0;
                for (int i = 0; i < n; i++)
                    for (int k = 0; k < d; k++) {
                        double s = with_add ? add[i * ld + k] : 0.0;
                        for (int j = 0; j < n; j++) s += (tr ? A[(size_t)j * n + i] : A[(size_t)i * n + j]) * X[j * ld + k];
                        worst = fmax(worst, fabs(s - Y[i * ld + k]));
                    }
                if (!(worst < 1e-5)) CHECK_FAILMSG("d %d transpose %d add %d: off by %g", d, tr, with_add, worst);
            }
        free(X), free(Y), free(add);
    }
    free(val), free(A);
    er_cf_graph_free(&g);
    er_csr_free(&R);
}

TEST(propagation_vs_dense) {
    er_rng r;
    er_rng_seed(&r, 5);
    er_csr R = random_graph(&r, 9, 7, 0.35);
    for (int algo = 0; algo < 2; algo++) {
        er_cf_config c;
        er_cf_config_defaults(&c, (er_cf_algo)algo, ER_CF_ALIGN_NONE);
        c.layers = 3, c.dim = 4;
        er_cf_model *m;
        REQUIRE(er_cf_model_new(&c, &R, NULL, NULL, 0, &r, &m) == 0);
        const er_cf_graph *g = er_cf_model_graph(m);
        int n = g->n, d = 4, L = 3, D = er_cf_out_dim(m);
        CHECK_EQ_INT(D, algo ? (L + 1) * d : d);
        double *A = dense_adj(g, g->val);
        float *p = er_cf_params(m, NULL);
        double *E = malloc(sizeof(double) * n * d), *E2 = malloc(sizeof(double) * n * d);
        double *Fd = calloc((size_t)n * D, sizeof(double));
        for (int k = 0; k < n * d; k++) E[k] = p[k]; /* user then item tables = E⁰ */
        for (int l = 0; l <= L; l++) {
            for (int i = 0; i < n; i++)
                for (int k = 0; k < d; k++) {
                    if (algo) Fd[(size_t)i * D + l * d + k] = E[i * d + k];
                    else Fd[(size_t)i * D + k] += E[i * d + k];
                }
            for (int i = 0; i < n; i++)
                for (int k = 0; k < d; k++) {
                    double s = 0;
                    for (int j = 0; j < n; j++) s += A[(size_t)i * n + j] * E[j * d + k];
                    E2[i * d + k] = s;
                }
            memcpy(E, E2, sizeof(double) * n * d);
        }
        const float *F = er_cf_embeddings(m);
        double worst = 0;
        for (int k = 0; k < n * D; k++) worst = fmax(worst, fabs(F[k] - Fd[k]));
        CHECK(worst < 1e-5);
        free(A), free(E), free(E2), free(Fd);
        er_cf_model_free(m);
    }
    er_csr_free(&R);
}

/* ---- finite differences --------------------------------------------------------------- */

static int fd_ok(double fd, double an) { return fabs(fd - an) <= 2e-3 + 2e-2 * fabs(an); }

static void fill(er_rng *r, float *x, int n, double s) {
    for (int k = 0; k < n; k++) x[k] = (float)(s * er_rng_normal(r));
}

TEST(fd_bpr) {
    er_rng r;
    er_rng_seed(&r, 11);
    int n = 6, D = 3, B = 4;
    float F[18], dF[18] = {0};
    fill(&r, F, n * D, 1.0);
    int32_t a[] = {0, 1, 0, 2}, p[] = {3, 4, 5, 3}, q[] = {4, 5, 3, 5};
    er_cf_bpr(F, D, a, p, q, B, 1.0, dF);
    int bad = 0;
    for (int k = 0; k < n * D; k++) {
        float s = F[k];
        double h = 1e-2;
        F[k] = s + (float)h;
        double lp = er_cf_bpr(F, D, a, p, q, B, 1.0, NULL);
        F[k] = s - (float)h;
        double lm = er_cf_bpr(F, D, a, p, q, B, 1.0, NULL);
        F[k] = s;
        if (!fd_ok((lp - lm) / (2 * h), dF[k])) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(fd_nce) {
    er_rng r;
    er_rng_seed(&r, 12);
    int na = 5, nc = 7, D = 4;
    float A[20], Bm[20], C[28], dA[20] = {0}, dB[20] = {0}, dC[28] = {0};
    fill(&r, A, na * D, 1), fill(&r, Bm, na * D, 1), fill(&r, C, nc * D, 1);
    size_t nsc = er_cf_nce_scratch(na, nc, D, 2);
    float *sc = malloc(sizeof(float) * nsc);
    double tau = 0.3, scale = 0.7;
    er_cf_nce(A, Bm, na, NULL, C, nc, NULL, D, tau, scale, dA, dB, dC, sc, nsc, 2);
    float *xs[3] = {A, Bm, C}, *gs[3] = {dA, dB, dC};
    int ns[3] = {na * D, na * D, nc * D}, bad = 0;
    for (int t = 0; t < 3; t++)
        for (int k = 0; k < ns[t]; k++) {
            float s = xs[t][k];
            double h = 1e-2;
            xs[t][k] = s + (float)h;
            double lp = scale * er_cf_nce(A, Bm, na, NULL, C, nc, NULL, D, tau, scale, NULL, NULL, NULL, sc, nsc, 1);
            xs[t][k] = s - (float)h;
            double lm = scale * er_cf_nce(A, Bm, na, NULL, C, nc, NULL, D, tau, scale, NULL, NULL, NULL, sc, nsc, 1);
            xs[t][k] = s;
            if (!fd_ok((lp - lm) / (2 * h), gs[t][k])) bad++, printf("    nce t%d k%d fd %g an %g\n", t, k, (lp - lm) / (2 * h), gs[t][k]);
        }
    CHECK_EQ_INT(bad, 0);
    free(sc);
}

/* A node given once with multiplicity k (er_cf_nce's wa / wc) = the same node k times: loss
 * and summed gradients, with candidates past one pass-2 chunk (TC = 256) and pass-1 block, and
 * for the batch form where the positives are the candidates (B = C, dB aliasing dC). */
TEST(nce_multiplicity) {
    er_rng r;
    er_rng_seed(&r, 21);
    int nu = 150, ncu = 300, D = 40;
    float *A = malloc(sizeof(float) * nu * D), *Bm = malloc(sizeof(float) * nu * D), *C = malloc(sizeof(float) * ncu * D);
    fill(&r, A, nu * D, 1), fill(&r, Bm, nu * D, 1), fill(&r, C, ncu * D, 1);
    float wa[150], wc[300];
    int na = 0, nc = 0;
    for (int u = 0; u < nu; u++) na += (int)(wa[u] = (float)(1 + u % 3));
    for (int c = 0; c < ncu; c++) nc += (int)(wc[c] = (float)(1 + (c * 7) % 4));
    /* the own kernel's packed products, then CBLAS (the calling thread's choice, which its
     * workers follow); each with the exponentials held for the gradient pass (scratch
     * er_cf_nce_scratch), then recomputed (er_cf_nce_scratch_min, for each call's sizes) */
    for (int run = 0; run < 8; run++) {
    int form = run % 2, th = 2, hold = run < 4;
    er_gemm_force_backend(run % 4 < 2);
        /* expanded copies, each unique row k times, the most repeated first: a row's largest
         * similarity then comes in a later chunk of candidates than its first (rescaled sums) */
        int n1 = form ? na : na, n2 = form ? na : nc;
        float *EA = malloc(sizeof(float) * n1 * D), *EB = malloc(sizeof(float) * n1 * D), *EC = malloc(sizeof(float) * n2 * D);
        int *ra = malloc(sizeof(int) * n1), *rc = malloc(sizeof(int) * n2), k = 0;
        for (int rep = 3; rep >= 0; rep--)
            for (int u = 0; u < nu; u++)
                if (rep < wa[u]) ra[k++] = u;
        k = 0;
        const float *wcu = form ? wa : wc;
        int ncc = form ? nu : ncu;
        for (int rep = 3; rep >= 0; rep--)
            for (int c = 0; c < ncc; c++)
                if (rep < wcu[c]) rc[k++] = c;
        const float *Csrc = form ? Bm : C;
        for (int i = 0; i < n1; i++) {
            memcpy(EA + (size_t)i * D, A + (size_t)ra[i] * D, sizeof(float) * D);
            memcpy(EB + (size_t)i * D, Bm + (size_t)ra[i] * D, sizeof(float) * D);
        }
        for (int i = 0; i < n2; i++) memcpy(EC + (size_t)i * D, Csrc + (size_t)rc[i] * D, sizeof(float) * D);
        float *dEA = calloc((size_t)n1 * D, sizeof(float)), *dEB = calloc((size_t)n1 * D, sizeof(float));
        float *dEC = form ? dEB : calloc((size_t)n2 * D, sizeof(float));
        size_t nsc = (hold ? er_cf_nce_scratch : er_cf_nce_scratch_min)(n1, n2 > n1 ? n2 : n1, D, th);
        float *sc = malloc(sizeof(float) * nsc);
        double want = er_cf_nce(EA, EB, n1, NULL, EC, n2, NULL, D, 0.2, 0.3, dEA, dEB, dEC, sc, nsc, th);
        float *dA = calloc((size_t)nu * D, sizeof(float)), *dB = calloc((size_t)nu * D, sizeof(float));
        float *dC = form ? dB : calloc((size_t)ncu * D, sizeof(float));
        size_t nsc2 = hold ? nsc : er_cf_nce_scratch_min(nu, ncc, D, th);
        double got = er_cf_nce(A, Bm, nu, wa, form ? Bm : C, ncc, form ? wa : wc, D, 0.2, 0.3, dA, dB, dC, sc, nsc2, th);
        CHECK_NEAR(got / want, 1.0, 1e-6);
        /* sum the copies' gradients per unique row */
        float *sA = calloc((size_t)nu * D, sizeof(float)), *sB = calloc((size_t)nu * D, sizeof(float));
        float *sC = form ? sB : calloc((size_t)ncu * D, sizeof(float));
        for (int i = 0; i < n1; i++)
            for (int d = 0; d < D; d++) sA[(size_t)ra[i] * D + d] += dEA[(size_t)i * D + d];
        if (form) { /* dEB holds both the numerator's and the candidates' gradient, per copy */
            for (int i = 0; i < n1; i++)
                for (int d = 0; d < D; d++) sB[(size_t)ra[i] * D + d] += dEB[(size_t)i * D + d];
        } else {
            for (int i = 0; i < n1; i++)
                for (int d = 0; d < D; d++) sB[(size_t)ra[i] * D + d] += dEB[(size_t)i * D + d];
            for (int i = 0; i < n2; i++)
                for (int d = 0; d < D; d++) sC[(size_t)rc[i] * D + d] += dEC[(size_t)i * D + d];
        }
        double worst = 0, big = 0;
        for (int t = 0; t < (form ? 2 : 3); t++) {
            float *g = t == 0 ? dA : t == 1 ? dB : dC, *w = t == 0 ? sA : t == 1 ? sB : sC;
            size_t n = (size_t)(t == 2 ? ncu : nu) * D;
            for (size_t q = 0; q < n; q++) {
                double e = fabs(g[q] - w[q]);
                worst = e > worst ? e : worst;
                big = fabs(w[q]) > big ? fabs(w[q]) : big;
            }
        }
        if (!(big > 0 && worst < 1e-5 * big)) CHECK_FAILMSG("run %d: gradients off by %g (largest %g)", run, worst, big);
        free(EA), free(EB), free(EC), free(ra), free(rc), free(dEA), free(dEB), free(sc), free(dA), free(dB), free(sA), free(sB);
        if (!form) free(dEC), free(dC), free(sC);
    }
    er_gemm_set_backend(ER_GEMM_AUTO);
    free(A), free(Bm), free(C);
}

TEST(fd_recon) {
    er_rng r;
    er_rng_seed(&r, 13);
    int m = 6, H = 5;
    float X[30], Y[30], dX[30] = {0};
    fill(&r, X, m * H, 1), fill(&r, Y, m * H, 1);
    float *sc = malloc(sizeof(float) * er_cf_recon_scratch(m, H));
    double tau = 0.4, scale = 1.3;
    er_cf_recon(X, Y, m, H, tau, scale, dX, sc, 2);
    int bad = 0;
    for (int k = 0; k < m * H; k++) {
        float s = X[k];
        double h = 1e-2;
        X[k] = s + (float)h;
        double lp = scale * er_cf_recon(X, Y, m, H, tau, scale, NULL, sc, 1);
        X[k] = s - (float)h;
        double lm = scale * er_cf_recon(X, Y, m, H, tau, scale, NULL, sc, 1);
        X[k] = s;
        if (!fd_ok((lp - lm) / (2 * h), dX[k])) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(sc);
}

/* loss = Σ W ⊙ MLP(X) */
static double mlp_loss(const er_cf_mlp *w, const float *X, int n, const float *Wt, float *hp, float *ha, float *Y) {
    er_cf_mlp_forward(w, X, n, hp, ha, Y, 1);
    double s = 0;
    for (int k = 0; k < n * w->out; k++) s += (double)Wt[k] * Y[k];
    return s;
}

TEST(fd_mlp) {
    er_rng r;
    er_rng_seed(&r, 14);
    int n = 5, in = 6, hid = 4, out = 3;
    float P[4 * 6 + 4 + 3 * 4 + 3], G[4 * 6 + 4 + 3 * 4 + 3] = {0};
    int np = (int)(sizeof P / sizeof P[0]);
    fill(&r, P, np, 0.7);
    er_cf_mlp w = {in, hid, out, P, P + 24, P + 28, P + 40}, g = {in, hid, out, G, G + 24, G + 28, G + 40};
    float X[30], dX[30], Wt[15], hp[20], ha[20], Y[15], dh[20];
    fill(&r, X, n * in, 1), fill(&r, Wt, n * out, 1);
    mlp_loss(&w, X, n, Wt, hp, ha, Y);
    er_cf_mlp_backward(&w, &g, X, n, hp, ha, Wt, dh, dX, 2);
    int bad = 0;
    for (int t = 0; t < 2; t++) {
        float *x = t ? X : P, *gr = t ? dX : G;
        int cnt = t ? n * in : np;
        for (int k = 0; k < cnt; k++) {
            float s = x[k];
            double h = 1e-2;
            x[k] = s + (float)h;
            double lp = mlp_loss(&w, X, n, Wt, hp, ha, Y);
            x[k] = s - (float)h;
            double lm = mlp_loss(&w, X, n, Wt, hp, ha, Y);
            x[k] = s;
            if (!fd_ok((lp - lm) / (2 * h), gr[k])) bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
}

/* The whole loss of a model step (propagation, BPR, alignment, L2) against finite differences
 * of every parameter, for each algorithm x alignment, with dropped edges and masked nodes. */
TEST(fd_whole_step) {
    er_rng r;
    er_rng_seed(&r, 21);
    int N = 5, M = 6, H = 4, B = 4;
    er_csr R = random_graph(&r, N, M, 0.4);
    float tu[20], ti[24];
    fill(&r, tu, N * H, 1), fill(&r, ti, M * H, 1);
    int32_t us[4], ps[4], qs[4];
    for (int b = 0, u = 0; b < B; u = (u + 1) % N) {
        if (csr_row_len(&R, u) == 0 || csr_row_len(&R, u) == M) continue;
        us[b] = u, ps[b] = R.indices[R.indptr[u]];
        int j = 0;
        while (er_csr_has(&R, u, j)) j++;
        qs[b++] = j;
    }
    for (int algo = 0; algo < 2; algo++)
        for (int al = 0; al < 3; al++) {
            er_cf_config c;
            er_cf_config_defaults(&c, (er_cf_algo)algo, (er_cf_align)al);
            c.layers = 2, c.dim = 3, c.reg = 1e-2, c.kd_weight = 0.5, c.kd_temp = 0.5, c.mask_ratio = 0.3;
            er_cf_model *m;
            REQUIRE(er_cf_model_new(&c, &R, tu, ti, H, &r, &m) == 0);
            size_t np;
            float *p = er_cf_params(m, &np);
            for (size_t k = 0; k < np; k++) p[k] += (float)(0.3 * er_rng_normal(&r));
            er_cf_draw dr;
            er_cf_draw_random(m, &r, &dr);
            er_cf_losses l;
            REQUIRE(er_cf_loss_grad(m, us, ps, qs, B, &dr, &l) == 0);
            float *g = malloc(np * sizeof(float));
            memcpy(g, er_cf_grads(m), np * sizeof(float));
            int bad = 0;
            for (size_t k = 0; k < np; k++) {
                float s = p[k];
                double h = 1e-3; /* 5e-3 crosses LeakyReLU kinks */
                p[k] = s + (float)h;
                er_cf_loss_grad(m, us, ps, qs, B, &dr, &l);
                double lp = l.total;
                p[k] = s - (float)h;
                er_cf_loss_grad(m, us, ps, qs, B, &dr, &l);
                double lm = l.total;
                p[k] = s;
                double fd = (lp - lm) / (2 * h);
                if (!fd_ok(fd, g[k])) {
                    if (bad < 3) printf("    algo %d align %d param %zu: fd %g analytic %g\n", algo, al, k, fd, g[k]);
                    bad++;
                }
            }
            CHECK_EQ_INT(bad, 0);
            free(g);
            er_cf_model_free(m);
        }
    er_csr_free(&R);
}

/* ---- the PyTorch reference ------------------------------------------------------------ */

static float *json_floats(json_t *a, size_t *n) {
    *n = json_array_size(a);
    float *x = malloc(sizeof(float) * (*n + 1));
    for (size_t k = 0; k < *n; k++) x[k] = (float)json_number_value(json_array_get(a, k));
    return x;
}
static int32_t *json_ints(json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *x = malloc(sizeof(int32_t) * (*n + 1));
    for (size_t k = 0; k < *n; k++) x[k] = (int32_t)json_integer_value(json_array_get(a, k));
    return x;
}

TEST(reference_first_steps) {
    json_error_t je;
    json_t *root = json_load_file(REF, 0, &je);
    REQUIRE(root);
    json_t *cases = json_object_get(root, "cases");
    REQUIRE(json_array_size(cases) == 6);
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        json_t *cs = json_array_get(cases, ci), *cj = json_object_get(cs, "config");
        const char *algo = json_string_value(json_object_get(cj, "algo"));
        const char *align = json_string_value(json_object_get(cj, "align"));
        er_cf_config c;
        er_cf_config_defaults(&c, !strcmp(algo, "gccf") ? ER_CF_GCCF : ER_CF_LIGHTGCN,
                              !strcmp(align, "con") ? ER_CF_ALIGN_CON : !strcmp(align, "gen") ? ER_CF_ALIGN_GEN
                                                                                              : ER_CF_ALIGN_NONE);
        c.layers = (int)json_integer_value(json_object_get(cj, "layers"));
        c.dim = (int)json_integer_value(json_object_get(cj, "dim"));
        c.keep_rate = json_number_value(json_object_get(cj, "keep_rate"));
        c.reg = json_number_value(json_object_get(cj, "reg"));
        c.kd_weight = json_number_value(json_object_get(cj, "kd_weight"));
        c.kd_temp = json_number_value(json_object_get(cj, "kd_temp"));
        c.mask_ratio = json_number_value(json_object_get(cj, "mask_ratio"));
        c.lr = json_number_value(json_object_get(cj, "lr"));
        c.threads = 2;
        int N = (int)json_integer_value(json_object_get(cs, "n_users"));
        int M = (int)json_integer_value(json_object_get(cs, "n_items"));
        int H = (int)json_integer_value(json_object_get(cs, "text_dim"));
        json_t *tr = json_object_get(cs, "train");
        size_t nt = json_array_size(tr);
        int32_t *rr = malloc(sizeof(int32_t) * nt), *cc = malloc(sizeof(int32_t) * nt);
        for (size_t k = 0; k < nt; k++) {
            rr[k] = (int32_t)json_integer_value(json_array_get(json_array_get(tr, k), 0));
            cc[k] = (int32_t)json_integer_value(json_array_get(json_array_get(tr, k), 1));
        }
        er_csr R;
        REQUIRE(er_csr_from_pairs(N, M, rr, cc, nt, &R) == 0);
        size_t n;
        float *text = json_object_get(cs, "text") != json_null() ? json_floats(json_object_get(cs, "text"), &n) : NULL;
        er_rng rng;
        er_rng_seed(&rng, 1);
        er_cf_model *m;
        REQUIRE(er_cf_model_new(&c, &R, text, text ? text + (size_t)N * H : NULL, H, &rng, &m) == 0);
        size_t np;
        float *p = er_cf_params(m, &np), *init = json_floats(json_object_get(cs, "init"), &n);
        REQUIRE(n == np);
        memcpy(p, init, np * sizeof(float));
        json_t *steps = json_object_get(cs, "steps");
        double worst = 0;
        for (size_t s = 0; s < json_array_size(steps); s++) {
            json_t *st = json_array_get(steps, s);
            size_t B, nk, ns;
            int32_t *us = json_ints(json_object_get(st, "users"), &B), *ps = json_ints(json_object_get(st, "pos"), &B);
            int32_t *qs = json_ints(json_object_get(st, "neg"), &B);
            er_cf_draw dr = {0};
            uint8_t *keep = NULL;
            int32_t *seeds = NULL;
            if (json_object_get(st, "keep") != json_null()) {
                int32_t *k32 = json_ints(json_object_get(st, "keep"), &nk);
                REQUIRE((int64_t)nk == er_cf_model_graph(m)->nnz);
                keep = malloc(nk);
                for (size_t k = 0; k < nk; k++) keep[k] = (uint8_t)k32[k];
                free(k32);
                dr.keep = keep;
            }
            if (json_object_get(st, "seeds") != json_null()) {
                seeds = json_ints(json_object_get(st, "seeds"), &ns);
                dr.seeds = seeds, dr.ns = (int)ns;
            }
            er_cf_losses l;
            REQUIRE(er_cf_step(m, us, ps, qs, (int)B, &dr, &l) == 0);
            const char *names[4] = {"bpr", "reg", "align", "total"};
            double got[4] = {l.bpr, l.reg, l.align, l.total};
            for (int k = 0; k < 4; k++) {
                double want = json_number_value(json_object_get(st, names[k]));
                double err = fabs(got[k] - want) / (1e-3 + fabs(want));
                if (err > 1e-5) CHECK_FAILMSG("%s/%s step %zu %s: %.8g, reference %.8g", algo, align, s, names[k], got[k], want);
                worst = fmax(worst, err);
            }
            free(us), free(ps), free(qs), free(keep), free(seeds);
        }
        float *fin = json_floats(json_object_get(cs, "final"), &n);
        REQUIRE(n == np);
        double wp = 0;
        for (size_t k = 0; k < np; k++) wp = fmax(wp, fabs(p[k] - fin[k]));
        if (wp > 1e-5) CHECK_FAILMSG("%s/%s: weights after 3 steps differ by %g", algo, align, wp);
        printf("    %s/%s: losses within %.1e (rel), weights within %.1e\n", algo, align, worst, wp);
        free(fin), free(init), free(text), free(rr), free(cc);
        er_cf_model_free(m);
        er_csr_free(&R);
    }
    json_decref(root);
}

/* Same steps with 1 and 2 threads: identical bits. */
TEST(threads_deterministic) {
    er_rng r;
    er_rng_seed(&r, 31);
    int N = 300, M = 200, H = 16;
    er_csr R = random_graph(&r, N, M, 0.05);
    float *tu = malloc(sizeof(float) * N * H), *ti = malloc(sizeof(float) * M * H);
    fill(&r, tu, N * H, 1), fill(&r, ti, M * H, 1);
    for (int al = 0; al < 3; al++) {
        float *res[2];
        size_t np = 0;
        for (int t = 0; t < 2; t++) {
            er_cf_config c;
            er_cf_config_defaults(&c, ER_CF_LIGHTGCN, (er_cf_align)al);
            c.threads = t + 1;
            er_rng a;
            er_rng_seed(&a, 9);
            er_cf_model *m;
            REQUIRE(er_cf_model_new(&c, &R, tu, ti, H, &a, &m) == 0);
            int32_t us[64], ps[64], qs[64];
            int B = 0;
            for (int u = 0; u < N && B < 64; u++)
                if (csr_row_len(&R, u) > 0) {
                    us[B] = u, ps[B] = R.indices[R.indptr[u]];
                    int j = (int)er_rng_below(&a, M);
                    while (er_csr_has(&R, u, j)) j = (j + 1) % M;
                    qs[B++] = j;
                }
            for (int s = 0; s < 3; s++) {
                er_cf_draw dr;
                er_cf_draw_random(m, &a, &dr);
                er_cf_losses l;
                REQUIRE(er_cf_step(m, us, ps, qs, B, &dr, &l) == 0);
            }
            float *p = er_cf_params(m, &np);
            res[t] = malloc(np * sizeof(float));
            memcpy(res[t], p, np * sizeof(float));
            er_cf_model_free(m);
        }
        CHECK(memcmp(res[0], res[1], np * sizeof(float)) == 0);
        free(res[0]), free(res[1]);
    }
    free(tu), free(ti);
    er_csr_free(&R);
}

/* ---- command line ----------------------------------------------------------------------- */

/* a small synthetic dataset as TSV files: 40 users, 30 items, block structure */
static void synth_tsv(void) {
    char p[3][256];
    const char *nm[3] = {"trn.tsv", "val.tsv", "tst.tsv"};
    FILE *f[3];
    for (int s = 0; s < 3; s++) {
        snprintf(p[s], sizeof p[s], "%s/%s", tmp(), nm[s]);
        f[s] = fopen(p[s], "wb");
        REQUIRE(f[s]);
    }
    er_rng r;
    er_rng_seed(&r, 77);
    for (int u = 0; u < 40; u++)
        for (int i = 0; i < 30; i++) {
            int same = (u % 3) == (i % 3);
            if (er_rng_uniform(&r) < (same ? 0.45 : 0.03)) {
                double x = er_rng_uniform(&r);
                fprintf(f[x < 0.7 ? 0 : x < 0.85 ? 1 : 2], "%d\t%d\n", u, i);
            }
        }
    for (int s = 0; s < 3; s++) fclose(f[s]);
}

static json_t *cf_json(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s cf %s --json --quiet > %s/out.json 2> %s/err.txt", check_bin(), args, tmp(), tmp());
    int rc = check_sh("%s", cmd);
    if (rc) {
        char ep[256], *e = NULL;
        size_t n;
        snprintf(ep, sizeof ep, "%s/err.txt", tmp());
        if (er_read_file(ep, &e, &n) == 0) printf("    stderr: %s", e);
        free(e);
        CHECK_FAILMSG("easyrec cf %s: exit %d", args, rc);
        return NULL;
    }
    char op[256];
    snprintf(op, sizeof op, "%s/out.json", tmp());
    json_error_t je;
    json_t *j = json_load_file(op, 0, &je);
    if (!j) CHECK_FAILMSG("output is not JSON: %s", je.text);
    return j;
}

static double metric(json_t *j, const char *split, const char *key) {
    return json_number_value(json_object_get(json_object_get(j, split), key));
}

TEST(cli_resume_equals_uninterrupted) {
    synth_tsv();
    char data[1024], a1[2048], a2[2048];
    snprintf(data, sizeof data, "--train %s/trn.tsv --val %s/val.tsv --test %s/tst.tsv --threads 2 --batch-size 64 "
             "--test-step 2 --seed 5", tmp(), tmp(), tmp());
    snprintf(a1, sizeof a1, "--algo lightgcn %s --max-epochs 6 --save %s/full", data, tmp());
    json_t *full = cf_json(a1);
    REQUIRE(full);
    snprintf(a2, sizeof a2, "--algo lightgcn %s --max-epochs 3 --save %s/part", data, tmp());
    json_t *part = cf_json(a2);
    REQUIRE(part);
    snprintf(a2, sizeof a2, "--algo lightgcn %s --max-epochs 6 --save %s/part --resume", data, tmp());
    json_t *res = cf_json(a2);
    REQUIRE(res);
    CHECK_NEAR(metric(res, "test", "recall@20"), metric(full, "test", "recall@20"), 0);
    CHECK_NEAR(metric(res, "test", "ndcg@10"), metric(full, "test", "ndcg@10"), 0);
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/full/user_emb.npy", tmp());
    snprintf(p2, sizeof p2, "%s/part/user_emb.npy", tmp());
    char *b1, *b2;
    size_t n1, n2;
    REQUIRE(er_read_file(p1, &b1, &n1) == 0 && er_read_file(p2, &b2, &n2) == 0);
    CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0);
    /* exported embeddings: (users, D) */
    float *e;
    int nd;
    int64_t sh[ER_MAX_DIMS];
    REQUIRE(er_npy_read_f32(p1, &e, &nd, sh) == 0);
    CHECK(nd == 2 && sh[0] == json_integer_value(json_object_get(full, "users")) && sh[1] == 32);
    free(e), free(b1), free(b2);
    json_decref(full), json_decref(part), json_decref(res);
}

TEST(cli_text_emb_errors) {
    synth_tsv();
    char u[256], i[256];
    snprintf(u, sizeof u, "%s/u.npy", tmp());
    snprintf(i, sizeof i, "%s/i.npy", tmp());
    float z[41 * 8] = {0};
    int64_t su[2] = {40, 8}, si[2] = {7, 8};
    REQUIRE(er_npy_write_f32(u, z, 2, su) == 0 && er_npy_write_f32(i, z, 2, si) == 0);
    int rc = check_sh("%s cf --algo lightgcn --train %s/trn.tsv --test %s/tst.tsv --align con --text-emb %s,%s "
                      "--max-epochs 1 --quiet 2> %s/err.txt", check_bin(), tmp(), tmp(), u, i, tmp());
    CHECK_EQ_INT(rc, 1);
    char ep[256], *e = NULL;
    size_t n;
    snprintf(ep, sizeof ep, "%s/err.txt", tmp());
    REQUIRE(er_read_file(ep, &e, &n) == 0);
    CHECK(strstr(e, "i.npy: 7 rows") && strstr(e, "items"));
    free(e);
    rc = check_sh("%s cf --algo lightgcn --train %s/trn.tsv --test %s/tst.tsv --align con 2>/dev/null", check_bin(),
                  tmp(), tmp());
    CHECK_EQ_INT(rc, 2);
    rc = check_sh("%s cf --algo lightgcn --train %s/trn.tsv --test %s/tst.tsv --align con --text-emb %s 2>/dev/null",
                  check_bin(), tmp(), tmp(), u);
    CHECK_EQ_INT(rc, 1);
}

/* MovieLens-100K: u.data split 80/10/10 by line; LightGCN, a few epochs. */
TEST(e2e_movielens) {
    FILE *in = fopen(ML100K, "rb");
    if (!in) SKIP("%s absent", ML100K);
    char p[3][256];
    FILE *f[3];
    const char *nm[3] = {"ml_trn.tsv", "ml_val.tsv", "ml_tst.tsv"};
    for (int s = 0; s < 3; s++) {
        snprintf(p[s], sizeof p[s], "%s/%s", tmp(), nm[s]);
        f[s] = fopen(p[s], "wb");
        REQUIRE(f[s]);
    }
    char line[256];
    long k = 0;
    while (fgets(line, sizeof line, in)) {
        int s = k % 10 == 8 ? 1 : k % 10 == 9 ? 2 : 0;
        fputs(line, f[s]);
        k++;
    }
    fclose(in);
    for (int s = 0; s < 3; s++) fclose(f[s]);
    char a[1024];
    snprintf(a, sizeof a, "--algo lightgcn --train %s --val %s --test %s --max-epochs 6 --test-step 3 --threads 2",
             p[0], p[1], p[2]);
    json_t *j = cf_json(a);
    REQUIRE(j);
    double r20 = metric(j, "test", "recall@20");
    printf("    MovieLens-100K LightGCN 6 epochs: test Recall@20 %.4f NDCG@20 %.4f\n", r20,
           metric(j, "test", "ndcg@20"));
    /* random ranking gives ~ 20 / 1682 = 0.012 */
    CHECK(r20 > 0.08);
    json_decref(j);
}

/* A release dataset, users 0..999 of movies: LightGCN aligned (con) to random text vectors
 * (the control of the quality table: it must still learn from the interactions). */
TEST(e2e_release_slice) {
    er_dataset ds;
    struct stat st;
    if (stat(MOVIES "/trn_mat.pkl", &st) != 0) SKIP("%s absent", MOVIES);
    REQUIRE(er_dataset_open_dir(MOVIES, &ds) == 0);
    const char *nm[3] = {"mv_trn.tsv", "mv_val.tsv", "mv_tst.tsv"};
    char p[3][256];
    int32_t maxi = 0, U = 1000;
    for (int s = 0; s < 3; s++) {
        snprintf(p[s], sizeof p[s], "%s/%s", tmp(), nm[s]);
        FILE *f = fopen(p[s], "wb");
        REQUIRE(f);
        const er_csr *m = &ds.split[s];
        for (int32_t u = 0; u < U && u < m->nrows; u++)
            for (int64_t e = m->indptr[u]; e < m->indptr[u + 1]; e++) {
                fprintf(f, "%d\t%d\n", u, m->indices[e]);
                if (m->indices[e] > maxi) maxi = m->indices[e];
            }
        fclose(f);
    }
    er_dataset_free(&ds);
    int H = 24, M = maxi + 1;
    er_rng r;
    er_rng_seed(&r, 8);
    float *tu = malloc(sizeof(float) * U * H), *ti = malloc(sizeof(float) * M * H);
    fill(&r, tu, U * H, 1), fill(&r, ti, M * H, 1);
    char u[256], i[256];
    snprintf(u, sizeof u, "%s/mv_u.npy", tmp());
    snprintf(i, sizeof i, "%s/mv_i.npy", tmp());
    int64_t su[2] = {U, H}, si[2] = {M, H};
    REQUIRE(er_npy_write_f32(u, tu, 2, su) == 0 && er_npy_write_f32(i, ti, 2, si) == 0);
    free(tu), free(ti);
    char a[2048];
    snprintf(a, sizeof a, "--algo lightgcn --align con --text-emb %s,%s --train %s --val %s --test %s --max-epochs 3 "
             "--threads 2 --batch-size 1024 --lr 0.01", u, i, p[0], p[1], p[2]);
    json_t *j = cf_json(a);
    REQUIRE(j);
    double r20 = metric(j, "test", "recall@20");
    printf("    movies users 0..999, LightGCN+con (random text), lr 0.01, 3 epochs: test Recall@20 %.4f\n", r20);
    CHECK(r20 > 0.02 && r20 <= 1.0); /* random ranking: ~ 20 / 9370 */
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "users")), U);
    json_decref(j);
}

TEST(cleanup) {
    if (check_tmpdir_path[0]) CHECK(check_sh("rm -rf %s", check_tmpdir_path) == 0);
}

CHECK_MAIN(CASE(adjacency_toy), CASE(spmm_vs_dense), CASE(propagation_vs_dense), CASE(fd_bpr), CASE(fd_nce), CASE(nce_multiplicity),
           CASE(fd_recon), CASE(fd_mlp), CASE(fd_whole_step), CASE(reference_first_steps),
           CASE(threads_deterministic), CASE(cli_resume_equals_uninterrupted), CASE(cli_text_emb_errors),
           CASE(e2e_movielens), CASE(e2e_release_slice), CASE(cleanup))
