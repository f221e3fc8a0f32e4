/* test_tsne.c — t-SNE (src/viz/tsne*.c), trustworthiness and the plots:
 * trustworthiness equals scikit-learn's on a small tie-free case and is 1 for the identity;
 * exact and Barnes-Hut t-SNE of a clustered set reach trustworthiness(k=10) >= 0.9 (a random
 * embedding gets far less) and keep the clusters apart; 1 and 2 threads give the same bits;
 * `easyrec tsne` writes SVG and PNG files with the right headers and rejects bad input. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "core/rng.h"
#include "io/tensors.h"
#include "viz/plot.h"
#include "viz/tsne.h"

#define NC 4
#define PER 40
#define N (NC * PER)
#define D 20

static float X[N * D];
static void make_clusters(void) {
    er_rng r;
    er_rng_seed(&r, 7);
    float c[NC][D];
    for (int k = 0; k < NC; k++)
        for (int j = 0; j < D; j++) c[k][j] = (float)(4 * er_rng_normal(&r));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) X[i * D + j] = c[i / PER][j] + (float)er_rng_normal(&r);
}

TEST(test_trustworthiness_reference) {
    /* values from sklearn.manifold.trustworthiness on the same arrays */
    float x[10] = {0, 1.1f, 2.3f, 3.6f, 5.0f, 6.5f, 8.1f, 9.8f, 11.6f, 13.5f};
    float y[10] = {0, 5.2f, 2.1f, 9.3f, 4.4f, 1.05f, 6.6f, 7.7f, 3.35f, 8.45f};
    CHECK_NEAR(er_trustworthiness(x, 1, y, 1, 10, 2), 0.4769230769230769, 1e-12);
    CHECK_NEAR(er_trustworthiness(x, 1, y, 1, 10, 3), 0.4666666666666667, 1e-12);
    CHECK_NEAR(er_trustworthiness(x, 1, x, 1, 10, 3), 1.0, 1e-12);
    CHECK(er_trustworthiness(x, 1, y, 1, 10, 5) < 0); /* k must be < n/2 */
}

/* mean distance within clusters / mean distance between cluster centres of Y */
static double separation(const float *Y) {
    double cx[NC] = {0}, cy[NC] = {0}, within = 0, between = 0;
    for (int i = 0; i < N; i++) cx[i / PER] += Y[2 * i] / PER, cy[i / PER] += Y[2 * i + 1] / PER;
    for (int i = 0; i < N; i++) within += hypot(Y[2 * i] - cx[i / PER], Y[2 * i + 1] - cy[i / PER]) / N;
    for (int a = 0; a < NC; a++)
        for (int b = a + 1; b < NC; b++) between += hypot(cx[a] - cx[b], cy[a] - cy[b]) / (NC * (NC - 1) / 2);
    return within / between;
}

static void run(int exact, int threads, int iterations, float *Y, double *kl) {
    er_tsne_opts o;
    er_tsne_defaults(&o);
    o.iterations = iterations;
    o.threads = threads;
    o.exact_max = exact ? N : 10;
    REQUIRE(er_tsne(X, N, D, &o, Y, kl) == 0);
}

TEST(test_tsne_quality) {
    make_clusters();
    static float Y[2 * N], Y2[2 * N], R[2 * N];
    double kl;
    for (int exact = 1; exact >= 0; exact--) {
        run(exact, 0, 500, Y, &kl);
        double t = er_trustworthiness(X, D, Y, 2, N, 10);
        printf("    %s: trustworthiness %.4f, KL %.3f, within/between %.3f\n", exact ? "exact" : "Barnes-Hut", t, kl,
               separation(Y));
        CHECK(t >= 0.9);
        CHECK(separation(Y) < 0.25);
        CHECK(kl > 0 && kl < 3);
        run(exact, 1, 60, Y, NULL);
        run(exact, 2, 60, Y2, NULL);
        CHECK(!memcmp(Y, Y2, sizeof Y)); /* thread count does not change the bits */
    }
    er_rng r;
    er_rng_seed(&r, 3);
    for (int i = 0; i < 2 * N; i++) R[i] = (float)er_rng_normal(&r);
    CHECK(er_trustworthiness(X, D, R, 2, N, 10) < 0.7); /* the threshold means something */
    er_tsne_opts o;
    er_tsne_defaults(&o);
    CHECK(check_failed_with(er_tsne(X, 3, D, &o, Y, NULL), EASYREC_ERR_ARG, "at least 4"));
    X[5] = NAN;
    CHECK(check_failed_with(er_tsne(X, N, D, &o, Y, NULL), EASYREC_ERR_ARG, "non-finite"));
}

static const char *tmp(void) { return check_tmpdir("tsne"); }

TEST(test_cli) {
    make_clusters();
    char p[256], *buf = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/a.npy", tmp());
    REQUIRE(er_npy_write_f32(p, X, 2, (int64_t[]){N / 2, D}) == 0);
    snprintf(p, sizeof p, "%s/b.npy", tmp());
    REQUIRE(er_npy_write_f32(p, X + N / 2 * D, 2, (int64_t[]){N / 2, D}) == 0);
    snprintf(p, sizeof p, "%s/labels.txt", tmp());
    FILE *f = fopen(p, "w");
    REQUIRE(f);
    for (int i = 0; i < N; i++) fprintf(f, "%s\n", i == 3 ? "" : (const char *[]){"a & b", "c", "d", "e"}[i / PER]);
    fclose(f);
    const char *t = tmp();
    CHECK_EQ_INT(check_sh("%s tsne --emb %s/a.npy,%s/b.npy --labels %s/labels.txt --highlight 0=before,159 "
                          "--arrows 0:159 --iterations 300 --output %s/p.svg --coords %s/y.npy --quiet",
                          check_bin(), t, t, t, t, t),
                 0);
    snprintf(p, sizeof p, "%s/p.svg", t);
    REQUIRE(er_read_file(p, &buf, &n) == 0);
    CHECK(!strncmp(buf, "<?xml", 5) && strstr(buf, "</svg>") && strstr(buf, "a &amp; b") && strstr(buf, ">before<") &&
          strstr(buf, "marker-end"));
    free(buf);
    float *Y;
    int nd;
    int64_t sh[ER_MAX_DIMS];
    snprintf(p, sizeof p, "%s/y.npy", t);
    REQUIRE(er_npy_read_f32(p, &Y, &nd, sh) == 0);
    CHECK(nd == 2 && sh[0] == N && sh[1] == 2);
    CHECK(er_trustworthiness(X, D, Y, 2, N, 10) >= 0.9);
    free(Y);
    CHECK_EQ_INT(check_sh("%s tsne --emb %s/a.npy --iterations 100 --output %s/p.png,%s/p2.svg --quiet", check_bin(),
                          t, t, t),
                 0);
    snprintf(p, sizeof p, "%s/p2.svg", t);
    CHECK(er_file_exists(p));
    snprintf(p, sizeof p, "%s/p.png", t);
    REQUIRE(er_read_file(p, &buf, &n) == 0);
    CHECK(n > 1000 && !memcmp(buf, "\x89PNG\r\n\x1a\n", 8));
    free(buf);
    /* errors: label count, bad rows, bad extension */
    CHECK_EQ_INT(check_sh("%s tsne --emb %s/a.npy --labels %s/labels.txt --output %s/q.svg --quiet 2>/dev/null",
                          check_bin(), t, t, t),
                 1);
    CHECK_EQ_INT(check_sh("%s tsne --emb %s/a.npy --arrows 0:500 --output %s/q.svg --quiet 2>/dev/null", check_bin(),
                          t, t),
                 1);
    CHECK_EQ_INT(check_sh("%s tsne --emb %s/a.npy --output %s/q.jpg --quiet 2>/dev/null", check_bin(), t, t), 2);
    check_sh("rm -rf %s", t);
}

CHECK_MAIN(CASE(test_trustworthiness_reference), CASE(test_tsne_quality), CASE(test_cli))
