/* test_kernels.c — every kernel of src/kernels/ against its plain `_ref` twin (double
 * accumulation, no blocking, no threads), its thread-count invariance (1 vs 3 threads, bit
 * for bit), and every backward against central finite differences of the `_ref` forward
 * (loss = sum(coef * out) accumulated in double). Also: inference and training run the same
 * layer code (model/forward.c er_layer_forward), checked by er_encoder_forward against the
 * training forward on one batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "train/train.h"

static void fill(float *x, size_t n, float a, float b) {
    for (size_t i = 0; i < n; i++) x[i] = a * sinf((float)i * 0.731f + b);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double maxdiff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* central difference of loss() w.r.t. x[i] */
#define FD(loss, x, i, h, out)                                                                                        \
    do {                                                                                                              \
        float s_ = (x)[i];                                                                                            \
        (x)[i] = s_ + (h);                                                                                            \
        double p_ = (loss);                                                                                           \
        (x)[i] = s_ - (h);                                                                                            \
        double m_ = (loss);                                                                                           \
        (x)[i] = s_;                                                                                                  \
        (out) = (p_ - m_) / (2.0 * (h));                                                                              \
    } while (0)

/* ---- linear ---- */

enum { LN_ = 5, LIN = 37, LOUT = 300 };
static float lx[LN_ * LIN], lw[LOUT * LIN], lb[LOUT], lcoef[LN_ * LOUT];

static double linear_loss(void) {
    float y[LN_ * LOUT];
    er_linear_forward_ref(y, lx, lw, lb, LN_, LIN, LOUT);
    return dot(y, lcoef, LN_ * LOUT);
}

TEST(linear_forward_backward) {
    fill(lx, LN_ * LIN, 1.0f, 0.1f), fill(lw, LOUT * LIN, 0.3f, 0.7f), fill(lb, LOUT, 0.5f, 1.1f);
    fill(lcoef, LN_ * LOUT, 1.0f, 2.0f);
    float y[LN_ * LOUT], yr[LN_ * LOUT], y3[LN_ * LOUT];
    er_linear_forward(y, lx, er_weight_f32(lw), lb, LN_, LIN, LOUT, 0);
    er_linear_forward(y3, lx, er_weight_f32(lw), lb, LN_, LIN, LOUT, 3);
    er_linear_forward_ref(yr, lx, lw, lb, LN_, LIN, LOUT);
    CHECK(maxdiff(y, yr, LN_ * LOUT) <= 1e-5);
    CHECK(maxdiff(y3, yr, LN_ * LOUT) <= 1e-5);
    static float dx1[LN_ * LIN], dw1[LOUT * LIN], db1[LOUT], dx3[LN_ * LIN], dw3[LOUT * LIN], db3[LOUT];
    memset(dw1, 0, sizeof dw1), memset(db1, 0, sizeof db1), memset(dw3, 0, sizeof dw3), memset(db3, 0, sizeof db3);
    er_linear_backward(dx1, dw1, db1, lcoef, lx, lw, LN_, LIN, LOUT, 0, 1);
    er_linear_backward(dx3, dw3, db3, lcoef, lx, lw, LN_, LIN, LOUT, 0, 3);
    CHECK(!memcmp(dx1, dx3, sizeof dx1) && !memcmp(dw1, dw3, sizeof dw1) && !memcmp(db1, db3, sizeof db1));
    double fd;
    for (int i = 0; i < LN_ * LIN; i += 7) {
        FD(linear_loss(), lx, i, 1e-2f, fd);
        CHECK_NEAR(dx1[i], fd, 2e-3 * fabs(fd) + 2e-3);
    }
    for (int i = 0; i < LOUT * LIN; i += 97) {
        FD(linear_loss(), lw, i, 1e-2f, fd);
        CHECK_NEAR(dw1[i], fd, 2e-3 * fabs(fd) + 2e-3);
    }
    for (int i = 0; i < LOUT; i += 11) {
        FD(linear_loss(), lb, i, 1e-2f, fd);
        CHECK_NEAR(db1[i], fd, 2e-3 * fabs(fd) + 2e-3);
    }
}

/* ---- LayerNorm with the residual add ---- */

enum { NN = 4, NC = 24 };
static float nx[NN * NC], nr[NN * NC], nw[NC], nb[NC], ncoef[NN * NC];

static double ln_loss(void) {
    float y[NN * NC];
    er_layernorm_forward_ref(y, nx, nr, nw, nb, NN, NC, 1e-5f);
    return dot(y, ncoef, NN * NC);
}

TEST(layernorm_forward_backward) {
    fill(nx, NN * NC, 2.0f, 0.3f), fill(nr, NN * NC, 1.0f, 0.9f), fill(ncoef, NN * NC, 1.0f, 0.4f);
    for (int i = 0; i < NC; i++) nw[i] = 1 + 0.05f * i, nb[i] = 0.02f * i;
    float y[NN * NC], yr[NN * NC], y3[NN * NC], s[NN * NC], mean[NN], rstd[NN];
    er_layernorm_forward(y, s, mean, rstd, nx, nr, nw, nb, NN, NC, 1e-5f, 0);
    er_layernorm_forward(y3, NULL, NULL, NULL, nx, nr, nw, nb, NN, NC, 1e-5f, 3);
    er_layernorm_forward_ref(yr, nx, nr, nw, nb, NN, NC, 1e-5f);
    CHECK(maxdiff(y, yr, NN * NC) <= 2e-6);
    CHECK(!memcmp(y, y3, sizeof y));
    for (int i = 0; i < NN * NC; i++) CHECK(s[i] == nx[i] + nr[i]);
    float dx[NN * NC], dw[NC] = {0}, db[NC] = {0}, dx3[NN * NC], dw3[NC] = {0}, db3[NC] = {0};
    er_layernorm_backward(dx, dw, db, ncoef, s, mean, rstd, nw, NN, NC, 0, 1);
    er_layernorm_backward(dx3, dw3, db3, ncoef, s, mean, rstd, nw, NN, NC, 0, 3);
    CHECK(!memcmp(dx, dx3, sizeof dx) && !memcmp(dw, dw3, sizeof dw) && !memcmp(db, db3, sizeof db));
    double fd;
    for (int i = 0; i < NN * NC; i++) { /* d/dinp = d/dresid = d/dsum */
        FD(ln_loss(), nx, i, 1e-2f, fd);
        CHECK_NEAR(dx[i], fd, 2e-3 * fabs(fd) + 1e-3);
    }
    for (int i = 0; i < NC; i++) {
        FD(ln_loss(), nw, i, 1e-2f, fd);
        CHECK_NEAR(dw[i], fd, 2e-3 * fabs(fd) + 1e-3);
        FD(ln_loss(), nb, i, 1e-2f, fd);
        CHECK_NEAR(db[i], fd, 2e-3 * fabs(fd) + 1e-3);
    }
}

/* ---- GELU: vector spans vs scalar, threads ---- */

TEST(gelu_forward_backward_threads) {
    enum { n = 10000 };
    static float x[n], y1[n], y3[n], d1[n], d3[n], one[n];
    fill(x, n, 5.0f, 0.2f);
    for (int i = 0; i < n; i++) one[i] = 1.0f;
    memcpy(y1, x, sizeof x), memcpy(y3, x, sizeof x);
    er_gelu_forward(y1, n, 1), er_gelu_forward(y3, n, 3);
    CHECK(!memcmp(y1, y3, sizeof y1));
    for (int i = 0; i < n; i += 13) CHECK_NEAR(y1[i], er_gelu_ref(x[i]), 1e-6 + 1e-6 * fabs(y1[i]));
    er_gelu_backward(d1, x, one, n, 1), er_gelu_backward(d3, x, one, n, 3);
    CHECK(!memcmp(d1, d3, sizeof d1));
    for (int i = 0; i < n; i += 101) {
        double h = 1e-3, v = x[i];
        double fd = ((v + h) * 0.5 * (1 + erf((v + h) / sqrt(2.0))) - (v - h) * 0.5 * (1 + erf((v - h) / sqrt(2.0)))) /
                    (2 * h);
        CHECK_NEAR(d1[i], fd, 1e-5);
    }
}

/* ---- softmax and the cross-entropy ---- */

enum { SR = 3, ST = 9 };
static float sx[SR * ST], scoef[SR * ST];

static double softmax_loss(void) {
    double l = 0;
    for (int r = 0; r < SR; r++) {
        double mx = -INFINITY, s = 0, e[ST];
        for (int j = 0; j < ST; j++) mx = fmax(mx, 0.7 * sx[r * ST + j]);
        for (int j = 0; j < ST; j++) s += e[j] = exp(0.7 * sx[r * ST + j] - mx);
        for (int j = 0; j < ST; j++) l += e[j] / s * scoef[r * ST + j];
    }
    return l;
}

TEST(softmax_and_xent_backward) {
    fill(sx, SR * ST, 3.0f, 0.5f), fill(scoef, SR * ST, 1.0f, 1.5f);
    float p[SR * ST], d[SR * ST];
    memcpy(p, sx, sizeof p);
    er_softmax_forward(p, SR, ST, 0.7f);
    memcpy(d, scoef, sizeof d);
    er_softmax_backward(d, p, SR, ST, 0.7f);
    double fd;
    for (int i = 0; i < SR * ST; i++) {
        FD(softmax_loss(), sx, i, 1e-3f, fd);
        CHECK_NEAR(d[i], fd, 1e-3 * fabs(fd) + 1e-4);
    }
    /* cross-entropy: mean over rows of lse - logit[label] */
    int32_t lab[SR] = {2, 0, 8};
    float lg[SR * ST], loss[SR];
    memcpy(lg, sx, sizeof lg);
    er_xent_forward_backward(lg, lab, loss, SR, ST, 1.0f / SR, 1);
    for (int i = 0; i < SR * ST; i++) {
        int r = i / ST;
        float s0 = sx[i];
        double l[2];
        for (int k = 0; k < 2; k++) {
            sx[i] = s0 + (k ? -1e-3f : 1e-3f);
            double mx = -INFINITY, s = 0;
            for (int j = 0; j < ST; j++) mx = fmax(mx, sx[r * ST + j]);
            for (int j = 0; j < ST; j++) s += exp(sx[r * ST + j] - mx);
            l[k] = (mx + log(s) - sx[r * ST + lab[r]]) / SR;
        }
        sx[i] = s0;
        CHECK_NEAR(lg[i], (l[0] - l[1]) / 2e-3, 1e-3);
    }
}

/* ---- attention ---- */

enum { AB = 3, AC = 16, ANH = 2 };
static const int aoff[AB + 1] = {0, 5, 6, 13};
static float aqkv[13 * 3 * AC], acoef[13 * AC];

static double attn_loss(void) {
    float y[13 * AC];
    er_attention_forward_ref(y, aqkv, aoff, AB, AC, ANH);
    return dot(y, acoef, 13 * AC);
}

static void attn_run(float *out, float *dqkv, const er_dropout *drop, int th) {
    static float probs[ANH * (25 + 1 + 49)], scratch[3 * 49];
    size_t poff[AB + 1] = {0};
    for (int b = 0; b < AB; b++) poff[b + 1] = poff[b] + (size_t)ANH * (aoff[b + 1] - aoff[b]) * (aoff[b + 1] - aoff[b]);
    er_attn_shape s = {aoff, poff, AB, AC, ANH, 0, drop, 7, scratch, 49};
    er_attention_forward(out, aqkv, probs, &s, th);
    er_attention_backward(dqkv, acoef, aqkv, probs, &s, th);
}

TEST(attention_forward_backward) {
    fill(aqkv, 13 * 3 * AC, 1.5f, 0.25f), fill(acoef, 13 * AC, 1.0f, 0.8f);
    float y[13 * AC], yr[13 * AC], y3[13 * AC], d1[13 * 3 * AC], d3[13 * 3 * AC];
    er_dropout off = {0.0f, 0}, on = {0.2f, 99};
    attn_run(y, d1, &off, 1);
    er_attention_forward_ref(yr, aqkv, aoff, AB, AC, ANH);
    CHECK(maxdiff(y, yr, 13 * AC) <= 2e-6);
    /* inference form: one reused (T, T) block, no threads, query row 0 only */
    float yi[13 * AC], blk[49];
    er_attn_shape si = {aoff, NULL, AB, AC, ANH, 1, NULL, 0, NULL, 0};
    er_attention_forward(yi, aqkv, blk, &si, 0);
    for (int b = 0; b < AB; b++) CHECK(maxdiff(yi + aoff[b] * AC, yr + aoff[b] * AC, AC) <= 2e-6);
    attn_run(y3, d3, &off, 3);
    CHECK(!memcmp(y, y3, sizeof y) && !memcmp(d1, d3, sizeof d1));
    double fd;
    for (int i = 0; i < 13 * 3 * AC; i += 3) {
        FD(attn_loss(), aqkv, i, 1e-2f, fd);
        CHECK_NEAR(d1[i], fd, 3e-3 * fabs(fd) + 2e-3);
    }
    /* dropout on: still thread-count invariant, and different */
    attn_run(y, d1, &on, 1);
    attn_run(y3, d3, &on, 3);
    CHECK(!memcmp(y, y3, sizeof y) && !memcmp(d1, d3, sizeof d1));
    CHECK(maxdiff(y, yr, 13 * AC) > 1e-3);
    /* the caller's CBLAS choice reaches the worker threads: still the same bits */
    int old = er_gemm_set_backend(ER_GEMM_BLAS);
    attn_run(y, d1, &off, 1);
    attn_run(y3, d3, &off, 3);
    er_gemm_set_backend(old);
    CHECK(!memcmp(y, y3, sizeof y) && !memcmp(d1, d3, sizeof d1));
    CHECK(maxdiff(y, yr, 13 * AC) <= 2e-6);
}

/* ---- embeddings ---- */

TEST(embedding_positions_and_backward) {
    int32_t ids[7] = {0, 5, 1, 7, 0, 9, 2};
    int off[3] = {0, 4, 7}, pos[7];
    er_positions(pos, ids, off, 2, 1, 1); /* RoBERTa, pad 1: the pad keeps position 1 */
    int want[7] = {2, 3, 1, 4, 2, 3, 4};
    for (int i = 0; i < 7; i++) CHECK_EQ_INT(pos[i], want[i]);
    er_positions(pos, ids, off, 2, 0, 0);
    int wantb[7] = {0, 1, 2, 3, 0, 1, 2};
    for (int i = 0; i < 7; i++) CHECK_EQ_INT(pos[i], wantb[i]);
    enum { C = 6, V = 10, P = 8 };
    float wte[V * C], wpe[P * C], wtt[C], out[7 * C], d[7 * C];
    fill(wte, V * C, 1, 0), fill(wpe, P * C, 1, 1), fill(wtt, C, 1, 2), fill(d, 7 * C, 1, 3);
    er_embedding_forward(out, wte, wpe, wtt, ids, pos, 7, C, 2);
    CHECK(out[2 * C + 1] == wte[1 * C + 1] + wtt[1] + wpe[2 * C + 1]);
    float gte[V * C] = {0}, gpe[P * C] = {0}, gtt[C] = {0};
    er_embedding_backward(gte, gpe, gtt, d, ids, pos, 7, C, 3);
    /* id 0 at rows 0 and 4, both position 0 */
    CHECK(gte[0 * C + 2] == d[0 * C + 2] + d[4 * C + 2]);
    CHECK(gpe[0 * C + 2] == d[0 * C + 2] + d[4 * C + 2]);
    double s = 0;
    for (int t = 0; t < 7; t++) s += d[t * C + 5];
    CHECK_NEAR(gtt[5], s, 1e-5);
}

/* ---- heads ---- */

enum { HB = 3, HC = 20, HV = 50 };
static float hh[HB * HC], hw[HC * HC], hb[HC], hcoef[HB * HV], hw2[HC * HC], hb2[HC], hlw[HC], hlb[HC],
    hdec[HV * HC], hdb[HV];

static double easyrec_head_loss(void) {
    float y[HB * HC];
    er_easyrec_head_forward_ref(y, hh, hw, hb, HB, HC);
    return dot(y, hcoef, HB * HC);
}

static er_lm_head lm(void) {
    er_lm_head h = {er_weight_f32(hw2), hb2, hlw, hlb, er_weight_f32(hdec), hdb, HC, HV, 1e-5f};
    return h;
}

static double lm_head_loss(void) {
    float y[HB * HV];
    er_lm_head h = lm();
    er_lm_head_forward_ref(&h, hh, HB, y);
    return dot(y, hcoef, HB * HV);
}

TEST(easyrec_head_forward_backward) {
    fill(hh, HB * HC, 1, 0.1f), fill(hw, HC * HC, 0.3f, 0.2f), fill(hb, HC, 0.2f, 0.3f), fill(hcoef, HB * HV, 1, 0.4f);
    float y[HB * HC], yr[HB * HC], dout[HB * HC], dh[HB * HC], dw[HC * HC] = {0}, db[HC] = {0};
    er_easyrec_head_forward(y, hh, er_weight_f32(hw), hb, HB, HC, 0);
    er_easyrec_head_forward_ref(yr, hh, hw, hb, HB, HC);
    CHECK(maxdiff(y, yr, HB * HC) <= 1e-6);
    memcpy(dout, hcoef, sizeof dout);
    er_easyrec_head_backward(dh, dw, db, dout, y, hh, hw, HB, HC, 1);
    double fd;
    for (int i = 0; i < HB * HC; i++) {
        FD(easyrec_head_loss(), hh, i, 1e-2f, fd);
        CHECK_NEAR(dh[i], fd, 2e-3 * fabs(fd) + 1e-3);
    }
    for (int i = 0; i < HC * HC; i += 7) {
        FD(easyrec_head_loss(), hw, i, 1e-2f, fd);
        CHECK_NEAR(dw[i], fd, 2e-3 * fabs(fd) + 1e-3);
    }
    for (int i = 0; i < HC; i++) {
        FD(easyrec_head_loss(), hb, i, 1e-2f, fd);
        CHECK_NEAR(db[i], fd, 2e-3 * fabs(fd) + 1e-3);
    }
}

TEST(lm_head_forward_backward) {
    fill(hh, HB * HC, 1, 0.1f), fill(hw2, HC * HC, 0.3f, 0.5f), fill(hb2, HC, 0.2f, 0.6f), fill(hdec, HV * HC, 0.3f, 0.7f);
    fill(hdb, HV, 0.1f, 0.8f), fill(hcoef, HB * HV, 1, 0.9f);
    for (int i = 0; i < HC; i++) hlw[i] = 1 + 0.03f * i, hlb[i] = 0.01f * i;
    er_lm_head h = lm();
    float y[HB * HV], yr[HB * HV], y3[HB * HV], zpre[HB * HC], u[HB * HC], v[HB * HC], mean[HB], rstd[HB], vi[HB * HC];
    er_lm_head_forward(&h, hh, HB, zpre, u, mean, rstd, v, y, 1);
    er_lm_head_forward(&h, hh, HB, NULL, NULL, NULL, NULL, vi, y3, 0); /* the inference form */
    er_lm_head_forward_ref(&h, hh, HB, yr);
    CHECK(maxdiff(y, yr, HB * HV) <= 2e-5);
    CHECK(!memcmp(y, y3, sizeof y));
    float gw[HC * HC] = {0}, gb[HC] = {0}, glw[HC] = {0}, glb[HC] = {0}, gdec[HV * HC] = {0}, gdb[HV] = {0};
    float dv[HB * HC], du[HB * HC], dhid[HB * HC];
    er_lm_head_backward(&h, gw, gb, glw, glb, gdec, gdb, hcoef, hh, zpre, u, mean, rstd, v, dv, du, dhid, HB, 2);
    struct {
        float *x, *g;
        int n, step;
    } t[] = {{hh, dhid, HB * HC, 1}, {hw2, gw, HC * HC, 13}, {hb2, gb, HC, 1}, {hlw, glw, HC, 1},
             {hlb, glb, HC, 1},      {hdec, gdec, HV * HC, 37}, {hdb, gdb, HV, 3}};
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++)
        for (int i = 0; i < t[k].n; i += t[k].step) {
            double fd;
            FD(lm_head_loss(), t[k].x, i, 1e-2f, fd);
            if (!(fabs(t[k].g[i] - fd) <= 3e-3 * fabs(fd) + 2e-3)) printf("    tensor %zu [%d]\n", k, i);
            CHECK_NEAR(t[k].g[i], fd, 3e-3 * fabs(fd) + 2e-3);
        }
}

/* ---- one forward for inference and training ---- */

TEST(inference_and_training_run_the_same_forward) {
    easyrec_config c = {0};
    c.n_layers = 2, c.hidden = 32, c.n_heads = 4, c.ffn = 64, c.vocab_size = 64, c.max_positions = 40;
    c.type_vocab_size = 1, c.pad_id = 1, c.layer_norm_eps = 1e-5f, c.is_roberta = 1, c.has_mlp = 1;
    easyrec_model *m = NULL;
    REQUIRE(easyrec_model_init(&c, 7, &m) == EASYREC_OK);
    enum { B = 3, N = 17 };
    int off[B + 1] = {0, 6, 9, 17};
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(i * 7 % 60) + 2;
    er_acts a;
    REQUIRE(er_acts_init(&a, &c, N, B, 8) == EASYREC_OK);
    memcpy(a.off, off, sizeof off);
    memcpy(a.ids, ids, sizeof ids);
    er_encoder_forward(m, &a, a.ids, B, 0);
    er_train_acts t;
    REQUIRE(er_train_acts_init(&t, &c, N, B, 8, 2) == EASYREC_OK);
    memcpy(t.off, off, sizeof off);
    memcpy(t.ids, ids, sizeof ids);
    t.B = B;
    er_encoder_forward_train(m, &t, NULL);
    /* same code, same thread-independent kernels: the same bits (with the own GEMM, whose
     * elements do not depend on how the columns are split; CBLAS may block differently) */
    const float *tx = t.x + (size_t)c.n_layers * N * c.hidden;
    if (!strcmp(er_gemm_backend(), "easyrec-avx512"))
        CHECK(!memcmp(a.x, tx, sizeof(float) * N * c.hidden));
    else
        CHECK(maxdiff(a.x, tx, (size_t)N * c.hidden) <= 1e-5);
    er_train_acts_free(&t);
    er_acts_free(&a);
    easyrec_model_free(m);
}

CHECK_MAIN(CASE(linear_forward_backward), CASE(layernorm_forward_backward), CASE(gelu_forward_backward_threads),
           CASE(softmax_and_xent_backward), CASE(attention_forward_backward), CASE(embedding_positions_and_backward),
           CASE(easyrec_head_forward_backward), CASE(lm_head_forward_backward),
           CASE(inference_and_training_run_the_same_forward))
