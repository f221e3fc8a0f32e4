/* test_model.c — the encoder against the PyTorch reference fixtures (tools/gen_fixtures.py).
 *
 * Each tests/fixtures/models/<name>/ holds a random HF-layout checkpoint (safetensors or
 * pytorch_model.bin; fp32, fp16 or bf16; with/without prefix, mlp, lm_head) and
 * reference.json computed by PyTorch on ONE right-padded batch. Tolerance: max abs diff
 * <= 1e-4 on hidden states, pooled outputs and MLM logits (the fp32 bound; low
 * precision checkpoints are compared with PyTorch running the same upcast weights).
 */
#include <jansson.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "easyrec.h"
#include "model/model.h"

#define TOL 1e-4

static json_t *load_ref(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "tests/fixtures/models/%s/reference.json", name);
    json_error_t e;
    json_t *r = json_load_file(path, 0, &e);
    if (!r) printf("    cannot read %s: %s\n", path, e.text);
    return r;
}

/* max |a - ref| over n floats of a JSON array */
static double max_diff(const float *a, json_t *ref, size_t n) {
    if (json_array_size(ref) != n) return INFINITY;
    double md = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - json_number_value(json_array_get(ref, i)));
        if (!(d <= md)) md = d; /* NaN propagates */
    }
    return md;
}

static void check_fixture(const char *name, int expect_mlp, int expect_lm) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/models/%s", name);
    easyrec_model *m = NULL;
    int rc = er_model_load(dir, 1, &m);
    if (rc) printf("    %s: %s\n", dir, easyrec_last_error());
    REQUIRE(rc == EASYREC_OK);
    json_t *ref = load_ref(name);
    REQUIRE(ref);
    const easyrec_config *c = easyrec_model_config(m);
    CHECK_EQ_INT(c->has_mlp, expect_mlp);
    CHECK_EQ_INT(c->has_lm_head, expect_lm);
    int C = c->hidden;
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    json_t *seqs = json_object_get(ref, "seqs");
    size_t B = json_array_size(seqs);
    int32_t **ids = calloc(B, sizeof(*ids));
    int *n = calloc(B, sizeof(int));
    for (size_t b = 0; b < B; b++) {
        json_t *s = json_array_get(seqs, b);
        n[b] = (int)json_array_size(s);
        ids[b] = calloc((size_t)n[b], sizeof(int32_t));
        for (int t = 0; t < n[b]; t++) ids[b][t] = (int32_t)json_integer_value(json_array_get(s, t));
    }
    /* hidden states, one sequence at a time */
    for (size_t b = 0; b < B; b++) {
        float *h = calloc((size_t)n[b] * C, sizeof(float));
        CHECK(easyrec_hidden_states(ctx, ids[b], n[b], h) == EASYREC_OK);
        double d = max_diff(h, json_array_get(json_object_get(ref, "hidden"), b), (size_t)n[b] * C);
        if (!(d <= TOL)) printf("    %s seq %zu (len %d): hidden max diff %g\n", name, b, n[b], d);
        CHECK(d <= TOL);
        free(h);
    }
    /* pooled, whole batch, several batch sizes and thread counts, without normalisation */
    const char *pools[] = {"pool_easyrec", "pool_cls", "pool_mean"};
    easyrec_pooling pk[] = {EASYREC_POOL_EASYREC, EASYREC_POOL_CLS, EASYREC_POOL_MEAN};
    float *out = calloc(B * C, sizeof(float));
    for (int p = 0; p < 3; p++) {
        json_t *pr = json_object_get(ref, pools[p]);
        if (!pr) {
            easyrec_encode_opts o;
            easyrec_encode_opts_init(&o);
            o.pooling = pk[p];
            CHECK(easyrec_encode_ids(ctx, (const int32_t *const *)ids, n, B, &o, out) == EASYREC_ERR_ARG);
            continue;
        }
        int btoks[] = {1, 40, 4096};
        for (int bt = 0; bt < 3; bt++)
            for (int th = 1; th <= 2; th++) {
                easyrec_encode_opts o;
                easyrec_encode_opts_init(&o);
                o.pooling = pk[p];
                o.no_normalize = 1;
                o.batch_tokens = btoks[bt];
                o.threads = th;
                memset(out, 0, B * C * sizeof(float));
                CHECK(easyrec_encode_ids(ctx, (const int32_t *const *)ids, n, B, &o, out) == EASYREC_OK);
                for (size_t b = 0; b < B; b++) {
                    double d = max_diff(out + b * C, json_array_get(pr, b), C);
                    if (!(d <= TOL)) printf("    %s %s seq %zu batch_tokens %d threads %d: diff %g\n", name,
                                            pools[p], b, btoks[bt], th, d);
                    CHECK(d <= TOL);
                }
            }
    }
    /* default pooling is normalised and equals the matching reference / its norm */
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    CHECK(easyrec_encode_ids(ctx, (const int32_t *const *)ids, n, B, &o, out) == EASYREC_OK);
    json_t *pr = json_object_get(ref, expect_mlp ? "pool_easyrec" : "pool_cls");
    for (size_t b = 0; b < B; b++) {
        json_t *r = json_array_get(pr, b);
        double ss = 0, nn = 0;
        for (int k = 0; k < C; k++) ss += pow(json_number_value(json_array_get(r, k)), 2);
        for (int k = 0; k < C; k++) {
            CHECK_NEAR(out[b * C + k], json_number_value(json_array_get(r, k)) / sqrt(ss), TOL);
            nn += (double)out[b * C + k] * out[b * C + k];
        }
        CHECK_NEAR(nn, 1.0, 1e-5);
    }
    /* MLM logits of sequence 0 */
    json_t *lr = json_object_get(ref, "mlm_logits_0");
    if (lr) {
        er_acts a;
        REQUIRE(er_acts_init(&a, c, (size_t)n[0], 1, n[0]) == EASYREC_OK);
        memcpy(a.ids, ids[0], (size_t)n[0] * sizeof(int32_t));
        a.off[0] = 0;
        a.off[1] = n[0];
        er_encoder_forward(m, &a, a.ids, 1, 0);
        float *z = calloc((size_t)n[0] * C, sizeof(float));
        float *logits = calloc((size_t)n[0] * c->vocab_size, sizeof(float));
        er_model_lm_head_forward(m, &a, 0, n[0], z, logits);
        double d = max_diff(logits, lr, (size_t)n[0] * c->vocab_size);
        if (!(d <= TOL)) printf("    %s: mlm logits diff %g\n", name, d);
        CHECK(d <= TOL);
        free(z);
        free(logits);
        er_acts_free(&a);
    }
    for (size_t b = 0; b < B; b++) free(ids[b]);
    free(ids);
    free(n);
    free(out);
    json_decref(ref);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

TEST(roberta_safetensors_f32) { check_fixture("roberta_st_f32", 1, 1); }
TEST(roberta_bin_bf16_like_released) { check_fixture("roberta_bin_bf16", 1, 1); }
TEST(roberta_safetensors_bf16_no_lm_head) { check_fixture("roberta_st_bf16", 1, 0); }
TEST(roberta_bin_f32_without_prefix_or_head) { check_fixture("roberta_bin_f32_bare", 0, 0); }
TEST(bert_safetensors_f16) { check_fixture("bert_st_f16", 0, 0); }

/* the public loader leaves the MLM head out (encoding does not use it) */
TEST(public_load_skips_the_mlm_head) {
    easyrec_model *m = NULL, *m2 = NULL;
    REQUIRE(easyrec_model_load("tests/fixtures/models/roberta_st_f32", &m) == EASYREC_OK);
    REQUIRE(er_model_load("tests/fixtures/models/roberta_st_f32", 1, &m2) == EASYREC_OK);
    CHECK(!m->cfg.has_lm_head && m2->cfg.has_lm_head);
    CHECK(m->nparams < m2->nparams);
    CHECK(memcmp(m->w.wte, m2->w.wte, sizeof(float) * 512 * 32) == 0);
    easyrec_model_free(m);
    easyrec_model_free(m2);
}

/* ---- kernels against their plain references ---- */

TEST(matmul_matches_reference) {
    int N = 7, IN = 33, OUT = 19;
    float *x = malloc(sizeof(float) * N * IN), *w = malloc(sizeof(float) * OUT * IN), *b = malloc(sizeof(float) * OUT);
    float *y = malloc(sizeof(float) * N * OUT), *yr = malloc(sizeof(float) * N * OUT);
    srand(1);
    for (int i = 0; i < N * IN; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < OUT * IN; i++) w[i] = rand() / (float)RAND_MAX - 0.5f;
    for (int i = 0; i < OUT; i++) b[i] = rand() / (float)RAND_MAX - 0.5f;
    er_linear_forward(y, x, er_weight_f32(w), b, N, IN, OUT, 0);
    er_linear_forward_ref(yr, x, w, b, N, IN, OUT);
    for (int i = 0; i < N * OUT; i++) CHECK_NEAR(y[i], yr[i], 1e-5);
    free(x), free(w), free(b), free(y), free(yr);
}

TEST(gelu_matches_erf_form) {
    static float xs[4096];
    int n = 0;
    for (float v = -12.0f; v <= 12.0f && n < 4096; v += 0.00713f) xs[n++] = v;
    float ys[4096];
    memcpy(ys, xs, sizeof(float) * n);
    er_gelu_forward(ys, (size_t)n, 0);
    for (int i = 0; i < n; i++) {
        double x = xs[i], ref = 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
        if (!(fabs(ys[i] - ref) <= 2e-7 + 4e-7 * fabs(ref))) {
            CHECK_NEAR(ys[i], ref, 2e-7 + 4e-7 * fabs(ref));
            break;
        }
    }
    CHECK(er_gelu_ref(0.0f) == 0.0f);
}

/* ---- bad model directories ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

TEST(bad_directories_give_clear_errors) {
    easyrec_model *m = NULL;
    CHECK(easyrec_model_load("tests/fixtures/does-not-exist", &m) == EASYREC_ERR_IO);
    CHECK(m == NULL);
    char tmpl[] = "/tmp/easyrec-model-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    char cfg[300], w[300];
    snprintf(cfg, sizeof cfg, "%s/config.json", tmpl);
    snprintf(w, sizeof w, "%s/model.safetensors", tmpl);
    write_text(cfg, "{\"model_type\": \"roberta\", \"hidden_size\": 32, \"num_hidden_layers\": 2,"
                    " \"num_attention_heads\": 4, \"intermediate_size\": 64, \"vocab_size\": 512,"
                    " \"max_position_embeddings\": 66, \"type_vocab_size\": 1}");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_IO); /* no weights */
    CHECK(strstr(easyrec_last_error(), "no weights") != NULL);
    /* weights of another shape: error names the tensor and both shapes */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cp tests/fixtures/models/roberta_st_bf16/model.safetensors %s", w);
    REQUIRE(system(cmd) == 0);
    write_text(cfg, "{\"model_type\": \"roberta\", \"hidden_size\": 32, \"num_hidden_layers\": 3,"
                    " \"num_attention_heads\": 2, \"intermediate_size\": 48, \"vocab_size\": 512,"
                    " \"max_position_embeddings\": 66, \"type_vocab_size\": 1}");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "intermediate.dense.weight has shape [64, 32], expected [48, 32]") != NULL);
    /* more layers than stored: missing tensor named */
    write_text(cfg, "{\"model_type\": \"roberta\", \"hidden_size\": 32, \"num_hidden_layers\": 4,"
                    " \"num_attention_heads\": 2, \"intermediate_size\": 64, \"vocab_size\": 512,"
                    " \"max_position_embeddings\": 66, \"type_vocab_size\": 1}");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "missing tensor roberta.encoder.layer.3.") != NULL);
    /* the right config, but broken tokenizer files: an error, not a silently missing tokenizer */
    write_text(cfg, "{\"model_type\": \"roberta\", \"hidden_size\": 32, \"num_hidden_layers\": 3,"
                    " \"num_attention_heads\": 2, \"intermediate_size\": 64, \"vocab_size\": 512,"
                    " \"max_position_embeddings\": 66, \"type_vocab_size\": 1}");
    REQUIRE(easyrec_model_load(tmpl, &m) == EASYREC_OK);
    easyrec_model_free(m);
    m = NULL;
    char vj[300], mt[300];
    snprintf(vj, sizeof vj, "%s/vocab.json", tmpl);
    snprintf(mt, sizeof mt, "%s/merges.txt", tmpl);
    write_text(vj, "{\"a\": 0, ");
    write_text(mt, "#version: 0.2\n");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "vocab.json") != NULL);
    CHECK(m == NULL);
    unlink(vj);
    unlink(mt);
    /* bad configs */
    write_text(cfg, "{\"model_type\": \"gpt2\"}");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_UNSUPPORTED);
    write_text(cfg, "{\"model_type\": \"roberta\", \"hidden_size\": 30, \"num_hidden_layers\": 2,"
                    " \"num_attention_heads\": 4, \"intermediate_size\": 64, \"vocab_size\": 512}");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_FORMAT);
    write_text(cfg, "{\"model_type\": \"roberta\", \"hidden_size\": -1}");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_FORMAT);
    write_text(cfg, "{not json");
    CHECK(easyrec_model_load(tmpl, &m) == EASYREC_ERR_FORMAT);
    CHECK(m == NULL);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
    CHECK(system(cmd) == 0);
}

TEST(bad_ids_rejected) {
    easyrec_model *m = NULL;
    REQUIRE(easyrec_model_load("tests/fixtures/models/roberta_st_f32", &m) == EASYREC_OK);
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    int32_t s[] = {0, 600, 2};
    const int32_t *seqs[] = {s};
    int n[] = {3};
    float out[32];
    CHECK(easyrec_encode_ids(ctx, seqs, n, 1, NULL, out) == EASYREC_ERR_ARG);
    n[0] = 0;
    CHECK(easyrec_encode_ids(ctx, seqs, n, 1, NULL, out) == EASYREC_ERR_ARG);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

/* init -> save -> load gives back the same parameters, under the original's key names */
TEST(init_save_load_round_trip) {
    easyrec_config c = {0};
    c.n_layers = 2, c.hidden = 16, c.n_heads = 2, c.ffn = 24, c.vocab_size = 50, c.max_positions = 20;
    c.type_vocab_size = 1, c.pad_id = 1, c.layer_norm_eps = 1e-5f, c.is_roberta = 1, c.has_mlp = 1, c.has_lm_head = 1;
    easyrec_model *m = NULL, *m2 = NULL;
    REQUIRE(easyrec_model_init(&c, 7, &m) == EASYREC_OK);
    char tmpl[] = "/tmp/easyrec-save-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    REQUIRE(easyrec_model_save(m, tmpl) == EASYREC_OK);
    int rc = er_model_load(tmpl, 1, &m2);
    if (rc) printf("    %s\n", easyrec_last_error());
    REQUIRE(rc == EASYREC_OK);
    CHECK_EQ_INT(m2->nparams, m->nparams);
    CHECK(memcmp(m->buf, m2->buf, m->nparams * sizeof(float)) == 0);
    CHECK_EQ_INT(m2->cfg.has_mlp, 1);
    CHECK_EQ_INT(m2->cfg.has_lm_head, 1);
    CHECK(m->w.wte[1 * 16 + 3] == 0.0f); /* padding row zeroed */
    CHECK(m->w.ln1w[5] == 1.0f && m->w.ln1b[5] == 0.0f && m->w.qkvb[7] == 0.0f);
    /* same seed, same weights; another seed, others */
    easyrec_model *m3 = NULL;
    REQUIRE(easyrec_model_init(&c, 7, &m3) == EASYREC_OK);
    CHECK(memcmp(m->buf, m3->buf, m->nparams * sizeof(float)) == 0);
    easyrec_model_free(m3);
    REQUIRE(easyrec_model_init(&c, 8, &m3) == EASYREC_OK);
    CHECK(memcmp(m->buf, m3->buf, m->nparams * sizeof(float)) != 0);
    easyrec_model_free(m3);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
    CHECK(system(cmd) == 0);
    easyrec_model_free(m);
    easyrec_model_free(m2);
}

CHECK_MAIN(CASE(init_save_load_round_trip), CASE(public_load_skips_the_mlm_head), CASE(roberta_safetensors_f32), CASE(roberta_bin_bf16_like_released),
           CASE(roberta_safetensors_bf16_no_lm_head), CASE(roberta_bin_f32_without_prefix_or_head),
           CASE(bert_safetensors_f16), CASE(matmul_matches_reference), CASE(gelu_matches_erf_form),
           CASE(bad_directories_give_clear_errors), CASE(bad_ids_rejected))
