/* test_train.c — training against PyTorch autograd (tools/gen_train_fixture.py) and finite
 * differences: the loss and EVERY parameter gradient of one EasyRec step (contrastive +
 * 0.1 MLM, dropout off), 3 AdamW steps vs torch.optim.AdamW, thread-count invariance with
 * dropout on, and finite-difference checks of each layer's backward.
 * Tolerances: loss 1e-5 relative; gradients max |diff| <= 2e-3 * max |ref| + 1e-7 per
 * tensor (fp32 vs fp32 with different summation orders); AdamW params 1e-5. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "io/tensors.h"
#include "model/model.h"
#include "train/train.h"

/* the contrastive loss with scratch of its own (the library preallocates it) */
static double cl_loss(const float *e, float *de, int n, int C, float temp) {
    er_contrastive w;
    if (er_contrastive_init(&w, n, C) != EASYREC_OK) abort();
    double l = er_contrastive_loss(&w, e, de, n, C, temp);
    er_contrastive_free(&w);
    return l;
}


#define FIX "tests/fixtures/train"

typedef struct {
    easyrec_model *m;
    er_batch b;
    json_t *ref;
} fixture;

static void load_seqs(json_t *arr, int32_t *ids, int *off, int *k, int *tok) {
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i);
        off[*k] = *tok;
        for (size_t t = 0; t < json_array_size(s); t++) ids[(*tok)++] = (int32_t)json_integer_value(json_array_get(s, t));
        (*k)++;
    }
    off[*k] = *tok;
}

static void fixture_load(fixture *f) {
    memset(f, 0, sizeof(*f));
    int rc = er_model_load(FIX "/model", 1, &f->m);
    if (rc) printf("    %s\n", easyrec_last_error());
    REQUIRE(rc == EASYREC_OK);
    json_error_t e;
    f->ref = json_load_file(FIX "/batch.json", 0, &e);
    REQUIRE(f->ref);
    int n = (int)json_array_size(json_object_get(f->ref, "users"));
    f->b.n = n;
    f->b.n_seq = 6 * n;
    f->b.ids = calloc(4096, sizeof(int32_t));
    f->b.off = calloc((size_t)6 * n + 1, sizeof(int));
    f->b.labels = calloc(4096, sizeof(int32_t));
    int k = 0, tok = 0;
    load_seqs(json_object_get(f->ref, "users"), f->b.ids, f->b.off, &k, &tok);
    load_seqs(json_object_get(f->ref, "pos"), f->b.ids, f->b.off, &k, &tok);
    load_seqs(json_object_get(f->ref, "neg"), f->b.ids, f->b.off, &k, &tok);
    int t0 = tok;
    load_seqs(json_object_get(f->ref, "mlm_ids"), f->b.ids, f->b.off, &k, &tok);
    json_t *labs = json_object_get(f->ref, "mlm_labels");
    int j = 0;
    for (size_t i = 0; i < json_array_size(labs); i++) {
        json_t *s = json_array_get(labs, i);
        for (size_t t = 0; t < json_array_size(s); t++) f->b.labels[j++] = (int32_t)json_integer_value(json_array_get(s, t));
    }
    REQUIRE(j == tok - t0);
}

static void fixture_free(fixture *f) {
    easyrec_model_free(f->m);
    json_decref(f->ref);
    free(f->b.ids), free(f->b.off), free(f->b.labels);
}

/* grads of one step into a fresh buffer (caller frees) */
static float *step_grads(fixture *f, int threads, const er_dropout *drop, double *loss, double *lc, double *lm) {
    const easyrec_config *c = &f->m->cfg;
    float *gbuf = calloc(f->m->nparams, sizeof(float));
    er_params g;
    er_params_assign(c, &g, gbuf);
    er_step s;
    REQUIRE(er_step_init(&s, c, f->b.n, (size_t)f->b.off[6 * f->b.n], 64, threads) == EASYREC_OK);
    *loss = er_train_step(f->m, &g, &s, &f->b, (float)json_real_value(json_object_get(f->ref, "temp")),
                       (float)json_real_value(json_object_get(f->ref, "mlm_weight")), 1.0f, drop, lc, lm);
    er_step_free(&s);
    return gbuf;
}

TEST(step_loss_and_every_gradient_match_pytorch) {
    fixture f;
    fixture_load(&f);
    double loss, lc, lm;
    er_dropout off = {0.0f, 0};
    float *gbuf = step_grads(&f, 2, &off, &loss, &lc, &lm);
    CHECK_NEAR(lc, json_real_value(json_object_get(f.ref, "loss_cl")), 1e-5 * 2);
    CHECK_NEAR(lm, json_real_value(json_object_get(f.ref, "loss_mlm")), 1e-5 * 7);
    CHECK_NEAR(loss, json_real_value(json_object_get(f.ref, "loss")), 1e-5 * 3);
    er_params g;
    er_params_assign(&f.m->cfg, &g, gbuf);
    er_tensorset ts;
    REQUIRE(er_safetensors_open(FIX "/grads.safetensors", &ts) == EASYREC_OK);
    int checked = 0;
    for (int i = 0; i < ts.n; i++) {
        const er_tensor *t = &ts.t[i];
        size_t numel = 0;
        float *ours = er_params_find(&f.m->cfg, &g, t->name, &numel);
        if (!ours) printf("    no parameter for %s\n", t->name);
        REQUIRE(ours && numel == t->numel);
        float *ref = malloc(numel * sizeof(float));
        er_tensor_to_f32(t, ref);
        double md = 0, mx = 0;
        for (size_t k = 0; k < numel; k++) {
            md = fmax(md, fabs(ours[k] - ref[k]));
            mx = fmax(mx, fabs(ref[k]));
        }
        /* 2e-3 of the tensor's largest gradient (observed worst: 5.6e-4), + 1e-7 for the
         * key biases, whose true gradient is exactly 0 (softmax is shift invariant) */
        double tol = 2e-3 * mx + 1e-7;
        if (getenv("VERBOSE") || !(md <= tol)) printf("    %s: max diff %g (max |grad| %g)\n", t->name, md, mx);
        CHECK(md <= tol);
        checked++;
        free(ref);
    }
    /* every trainable tensor of the model was compared */
    CHECK_EQ_INT(checked, 5 + 16 * f.m->cfg.n_layers + 2 + 6);
    er_tensorset_close(&ts);
    free(gbuf);
    fixture_free(&f);
}

TEST(adamw_matches_torch_three_steps) {
    fixture f;
    fixture_load(&f);
    const easyrec_config *c = &f.m->cfg;
    size_t n = f.m->nparams;
    float *grad = calloc(n, sizeof(float)), *mm = calloc(n, sizeof(float)), *vv = calloc(n, sizeof(float));
    uint8_t *mask = calloc(n, 1);
    er_params g;
    er_params_assign(c, &g, grad);
    er_tensorset gs, want;
    REQUIRE(er_safetensors_open(FIX "/grads.safetensors", &gs) == EASYREC_OK);
    REQUIRE(er_safetensors_open(FIX "/adamw.safetensors", &want) == EASYREC_OK);
    for (int i = 0; i < gs.n; i++) {
        size_t numel;
        float *dst = er_params_find(c, &g, gs.t[i].name, &numel);
        REQUIRE(dst);
        er_tensor_to_f32(&gs.t[i], dst);
        const char *nm = gs.t[i].name;
        int decay = !(strstr(nm, ".bias") && strlen(strstr(nm, ".bias")) == 5) && !strstr(nm, "LayerNorm") &&
                    !strstr(nm, "layer_norm");
        memset(mask + (dst - grad), decay, numel);
    }
    er_adamw h = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f};
    for (long t = 1; t <= 3; t++) er_adamw_step(&h, f.m->buf, grad, mm, vv, n, t, mask, 2);
    double md = 0;
    for (int i = 0; i < want.n; i++) {
        size_t numel;
        const float *p = er_params_find(c, &f.m->w, want.t[i].name, &numel);
        REQUIRE(p);
        float *ref = malloc(numel * sizeof(float));
        er_tensor_to_f32(&want.t[i], ref);
        for (size_t k = 0; k < numel; k++) md = fmax(md, fabs(p[k] - ref[k]));
        free(ref);
    }
    if (!(md <= 1e-5)) printf("    max |param - torch| = %g\n", md);
    CHECK(md <= 1e-5);
    er_tensorset_close(&gs);
    er_tensorset_close(&want);
    free(grad), free(mm), free(vv), free(mask);
    fixture_free(&f);
}

/* a decay mask entry decays whenever it is non-zero (a byte of 1, 2 or 255 alike), and 0 keeps
 * the entry undecayed */
TEST(adamw_any_nonzero_mask_entry_decays) {
    enum { N = 64 };
    float p[4][N], g[N], m[4][N], v[4][N];
    uint8_t mask[4][N];
    for (int i = 0; i < N; i++) g[i] = (float)((i * 37) % 11 - 5) * 0.01f;
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < N; i++) {
            p[c][i] = 0.5f + 0.01f * (float)i;
            m[c][i] = v[c][i] = 0.0f;
            mask[c][i] = (uint8_t)(c == 3 ? 0 : i % 2 ? 1 : c == 0 ? 1 : c == 1 ? 2 : 255);
        }
    er_adamw h = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f};
    for (long t = 1; t <= 3; t++)
        for (int c = 0; c < 4; c++) er_adamw_step(&h, p[c], g, m[c], v[c], N, t, mask[c], 1);
    CHECK(!memcmp(p[0], p[1], sizeof p[0]));
    CHECK(!memcmp(p[0], p[2], sizeof p[0]));
    CHECK(memcmp(p[0], p[3], sizeof p[0])); /* and decay is really applied */
}

TEST(step_is_thread_count_invariant_with_dropout) {
    fixture f;
    fixture_load(&f);
    er_dropout d = {0.1f, 12345};
    double l1, l2, c1, c2, m1, m2;
    float *g1 = step_grads(&f, 1, &d, &l1, &c1, &m1);
    float *g2 = step_grads(&f, 2, &d, &l2, &c2, &m2);
    CHECK(l1 == l2);
    CHECK(memcmp(g1, g2, f.m->nparams * sizeof(float)) == 0);
    /* dropout changes the loss (it is really applied) */
    er_dropout off = {0.0f, 0};
    float *g3 = step_grads(&f, 1, &off, &l2, &c2, &m2);
    CHECK(l1 != l2);
    free(g1), free(g2), free(g3);
    fixture_free(&f);
}

/* ---- finite differences of single layers (float kernels, double-precision loss sums) ---- */

static double ln_loss(const float *x, const float *w, const float *b, const float *coef, int N, int C) {
    float out[64], mean[4], rstd[4];
    er_layernorm_forward(out, NULL, mean, rstd, x, NULL, w, b, N, C, 1e-5f, 1);
    double s = 0;
    for (int i = 0; i < N * C; i++) s += (double)out[i] * coef[i];
    return s;
}

TEST(layernorm_backward_finite_differences) {
    enum { N = 3, C = 16 };
    float x[N * C], w[C], b[C], coef[N * C], dx[N * C], dw[C] = {0}, db[C] = {0}, mean[N], rstd[N], out[N * C];
    for (int i = 0; i < N * C; i++) x[i] = sinf(i * 1.3f) * 2, coef[i] = cosf(i * 0.7f);
    for (int i = 0; i < C; i++) w[i] = 1 + 0.1f * i, b[i] = 0.05f * i;
    er_layernorm_forward(out, NULL, mean, rstd, x, NULL, w, b, N, C, 1e-5f, 1);
    er_layernorm_backward(dx, dw, db, coef, x, mean, rstd, w, N, C, 0, 1);
    float h = 1e-2f;
    for (int i = 0; i < N * C; i++) {
        float s = x[i];
        x[i] = s + h;
        double lp = ln_loss(x, w, b, coef, N, C);
        x[i] = s - h;
        double lm = ln_loss(x, w, b, coef, N, C);
        x[i] = s;
        CHECK_NEAR(dx[i], (lp - lm) / (2 * h), 2e-3);
    }
    for (int i = 0; i < C; i++) {
        float s = w[i];
        w[i] = s + h;
        double lp = ln_loss(x, w, b, coef, N, C);
        w[i] = s - h;
        double lm = ln_loss(x, w, b, coef, N, C);
        w[i] = s;
        CHECK_NEAR(dw[i], (lp - lm) / (2 * h), 2e-3);
        double dbn = 0;
        for (int n = 0; n < N; n++) dbn += coef[n * C + i];
        CHECK_NEAR(db[i], dbn, 1e-5);
    }
}

TEST(gelu_backward_finite_differences) {
    for (float v = -6.0f; v <= 6.0f; v += 0.37f) {
        float d, one = 1.0f;
        er_gelu_backward(&d, &v, &one, 1, 1);
        double h = 1e-3, fp = (v + h) * 0.5 * (1 + erf((v + h) / sqrt(2.0))), fm = (v - h) * 0.5 * (1 + erf((v - h) / sqrt(2.0)));
        CHECK_NEAR(d, (fp - fm) / (2 * h), 1e-5);
    }
}

TEST(contrastive_loss_finite_differences) {
    enum { n = 3, C = 5 };
    float e[3 * n * C], de[3 * n * C], tmp[3 * n * C];
    for (int i = 0; i < 3 * n * C; i++) e[i] = sinf(i * 0.91f + 0.3f);
    cl_loss(e, de, n, C, 0.5f);
    float h = 1e-3f;
    for (int i = 0; i < 3 * n * C; i++) {
        float s = e[i];
        e[i] = s + h;
        double lp = cl_loss(e, tmp, n, C, 0.5f);
        e[i] = s - h;
        double lm = cl_loss(e, tmp, n, C, 0.5f);
        e[i] = s;
        CHECK_NEAR(de[i], (lp - lm) / (2 * h), 2e-3);
    }
}

/* whole step: finite differences on a few entries of each kind of tensor; the dropout
 * masks are a function of (seed, site, position), so they stay fixed across the
 * perturbed evaluations and the finite difference checks the masked backward too */
static void step_finite_differences(const er_dropout *drop) {
    fixture f;
    fixture_load(&f);
    double l, lc, lm;
    float *g = step_grads(&f, 1, drop, &l, &lc, &lm);
    er_params gp;
    er_params_assign(&f.m->cfg, &gp, g);
    er_tensorset ts; /* every tensor the PyTorch reference has a gradient for */
    REQUIRE(er_safetensors_open(FIX "/grads.safetensors", &ts) == EASYREC_OK);
    for (int i = 0; i < ts.n; i++) {
        const char *name = ts.t[i].name;
        size_t numel;
        float *p = er_params_find(&f.m->cfg, &f.m->w, name, &numel), *gg = er_params_find(&f.m->cfg, &gp, name, &numel);
        REQUIRE(p && gg);
        /* the entry with the largest gradient: a clear signal for a float finite difference */
        size_t k = 0;
        for (size_t j = 1; j < numel; j++) if (fabsf(gg[j]) > fabsf(gg[k])) k = j;
        float s = p[k], h = 1e-2f;
        double lp, lmn;
        p[k] = s + h;
        free(step_grads(&f, 1, drop, &lp, &lc, &lm));
        p[k] = s - h;
        free(step_grads(&f, 1, drop, &lmn, &lc, &lm));
        p[k] = s;
        double fd = (lp - lmn) / (2 * h);
        if (!(fabs(fd - gg[k]) <= 0.02 * fabs(gg[k]) + 1e-3)) printf("    %s[%zu]: fd %g analytic %g\n", name, k, fd, gg[k]);
        CHECK(fabs(fd - gg[k]) <= 0.02 * fabs(gg[k]) + 1e-3);
    }
    er_tensorset_close(&ts);
    free(g);
    fixture_free(&f);
}

TEST(step_finite_differences_sample) {
    er_dropout off = {0.0f, 0};
    step_finite_differences(&off);
}

TEST(step_finite_differences_sample_with_dropout) {
    er_dropout on = {0.1f, 777};
    step_finite_differences(&on);
}

CHECK_MAIN(CASE(step_loss_and_every_gradient_match_pytorch), CASE(adamw_matches_torch_three_steps), CASE(adamw_any_nonzero_mask_entry_decays),
           CASE(step_is_thread_count_invariant_with_dropout), CASE(layernorm_backward_finite_differences),
           CASE(gelu_backward_finite_differences), CASE(contrastive_loss_finite_differences),
           CASE(step_finite_differences_sample), CASE(step_finite_differences_sample_with_dropout))
