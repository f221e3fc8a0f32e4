/* test_lowp.c — the bf16 and int8 GEMMs (src/kernels) against fp32 / double references,
 * every instruction-set level against the fastest one this CPU has, and the ISA names.
 *
 * Tolerances (stated, per output element y = Σ_k a_k w_k + b, with S = Σ_k |a_k w_k|):
 *   bf16 vs the exact sum of the fp32 inputs: |y - ref| <= 2^-7 S + 1e-6 (each operand
 *   rounded to 8 significant bits: relative error <= 2^-9 each, 2^-8 per product, and fp32
 *   accumulation far below that).
 *   bf16 vs the exact sum of the bf16-rounded inputs: |y - ref| <= (K + 2) 2^-24 (S + |b|).
 *   int8 vs the exact fp32 sum: |y - ref| <= s_w/2 Σ|a| + s_a/2 Σ|w| + K s_a s_w/4 + 1e-5 |ref|
 *   (s_w, s_a the channel and token scales: half a step of rounding on each operand).
 *   int8 levels: bit-identical (exact integer sums, one epilogue expression).
 *   bf16 levels: bit-identical on these inputs (no fp32 denormals arise), asserted within
 *   1e-6 S so a denormal-flushing difference would not fail spuriously.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "kernels/cpu.h"
#include "kernels/lowp.h"
#include "io/tensors.h"
#include "model/model.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static const int shapes[][3] = {{1, 1, 1},   {1, 5, 3},    {3, 31, 7},    {12, 32, 2},  {13, 33, 17},
                                {5, 64, 768}, {97, 70, 130}, {100, 96, 257}, {25, 40, 3072}};
static const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);

typedef struct {
    int M, N, K, lda, ldc;
    float *A, *W, *bias, *C;
} problem;

static void make(problem *p, int M, int N, int K, float wscale) {
    p->M = M, p->N = N, p->K = K, p->lda = K + 3, p->ldc = N + 5;
    p->A = malloc(sizeof(float) * (size_t)M * p->lda);
    p->W = malloc(sizeof(float) * (size_t)N * K);
    p->bias = malloc(sizeof(float) * (size_t)N);
    p->C = malloc(sizeof(float) * (size_t)M * p->ldc);
    for (size_t i = 0; i < (size_t)M * p->lda; i++) p->A[i] = urand() * 3.0f;
    for (size_t i = 0; i < (size_t)N * K; i++) p->W[i] = urand() * wscale;
    for (int i = 0; i < N; i++) p->bias[i] = urand();
}
static void unmake(problem *p) { free(p->A), free(p->W), free(p->bias), free(p->C); }

static void run(problem *p, er_isa isa, const er_lowp_mat *m, float *C) {
    for (size_t i = 0; i < (size_t)p->M * p->ldc; i++) C[i] = 12345.0f; /* sentinel past N */
    er_lowp_gemm(isa, m, p->M, p->A, p->lda, p->bias, C, p->ldc);
}

static int sentinels_intact(const problem *p, const float *C) {
    for (int r = 0; r < p->M; r++)
        for (int c = p->N; c < p->ldc; c++)
            if (C[(size_t)r * p->ldc + c] != 12345.0f) return 0;
    return 1;
}

TEST(isa_names) {
    er_isa v;
    for (int i = 0; i < ER_ISA_COUNT; i++) {
        CHECK(er_isa_parse(er_isa_name((er_isa)i), &v) == EASYREC_OK);
        CHECK_EQ_INT(v, i);
    }
    CHECK(check_failed_with(er_isa_parse("sse9", &v), EASYREC_ERR_ARG, "sse9"));
    CHECK(er_isa_clamp(ER_ISA_AVX512BF16) == er_cpu_isa());
    CHECK(er_isa_clamp(ER_ISA_SCALAR) == ER_ISA_SCALAR);
    printf("    cpu level: %s\n", er_isa_name(er_cpu_isa()));
}

TEST(bf16_rounding) {
    CHECK(er_f32_to_bf16_bits(1.0f) == 0x3f80);
    CHECK(er_f32_to_bf16_bits(1.0f + 0x1p-8f) == 0x3f80);        /* tie -> even */
    CHECK(er_f32_to_bf16_bits(1.0f + 3 * 0x1p-8f) == 0x3f82);    /* tie -> even (up) */
    CHECK(er_f32_to_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
    CHECK(er_f32_to_bf16_bits(-2.5f) == 0xc020);
    CHECK(er_f32_to_bf16_bits(1e-40f) == 0);                     /* denormal -> 0 */
    CHECK(er_bf16_bits_to_f32(er_f32_to_bf16_bits(NAN)) != er_bf16_bits_to_f32(er_f32_to_bf16_bits(NAN)));
    CHECK(er_bf16_bits_to_f32(er_f32_to_bf16_bits(INFINITY)) == INFINITY);
    CHECK(er_bf16_bits_to_f32(er_f32_to_bf16_bits(3.4e38f)) == INFINITY); /* rounds past the largest bf16 */
}

TEST(bf16_vs_reference) {
    int bad = 0;
    for (int s = 0; s < nshapes; s++) {
        problem p;
        make(&p, shapes[s][0], shapes[s][1], shapes[s][2], 0.5f);
        er_lowp_mat m;
        REQUIRE(er_lowp_pack(&m, ER_LOWP_BF16, p.W, p.N, p.K, p.K) == EASYREC_OK);
        run(&p, er_cpu_isa(), &m, p.C);
        CHECK(sentinels_intact(&p, p.C));
        for (int r = 0; r < p.M; r++)
            for (int n = 0; n < p.N; n++) {
                double ref = p.bias[n], refb = p.bias[n], S = 0;
                for (int k = 0; k < p.K; k++) {
                    float a = p.A[(size_t)r * p.lda + k], w = p.W[(size_t)n * p.K + k];
                    ref += (double)a * w;
                    refb += (double)er_bf16_bits_to_f32(er_f32_to_bf16_bits(a)) * er_bf16_bits_to_f32(er_f32_to_bf16_bits(w));
                    S += fabs((double)a * w);
                }
                double y = p.C[(size_t)r * p.ldc + n];
                if (fabs(y - ref) > 0x1p-7 * S + 1e-6 || fabs(y - refb) > (p.K + 2) * 0x1p-24 * (S + fabs(p.bias[n]))) {
                    if (bad++ < 3)
                        printf("    %dx%dx%d (%d,%d): %.9g vs %.9g / bf16-exact %.9g (S %.3g)\n", p.M, p.N, p.K, r,
                               n, y, ref, refb, S);
                }
            }
        er_lowp_free(&m);
        unmake(&p);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(int8_vs_reference) {
    int bad = 0;
    double worst = 0;
    for (int s = 0; s < nshapes; s++) {
        problem p;
        make(&p, shapes[s][0], shapes[s][1], shapes[s][2], 0.05f);
        er_lowp_mat m;
        REQUIRE(er_lowp_pack(&m, ER_LOWP_INT8, p.W, p.N, p.K, p.K) == EASYREC_OK);
        run(&p, er_cpu_isa(), &m, p.C);
        CHECK(sentinels_intact(&p, p.C));
        for (int r = 0; r < p.M; r++) {
            const float *a = p.A + (size_t)r * p.lda;
            double amax = 0, suma = 0;
            for (int k = 0; k < p.K; k++) amax = fmax(amax, fabs(a[k])), suma += fabs(a[k]);
            double sa = amax / 127;
            for (int n = 0; n < p.N; n++) {
                const float *w = p.W + (size_t)n * p.K;
                double ref = p.bias[n], wmax = 0, sumw = 0;
                for (int k = 0; k < p.K; k++) ref += (double)a[k] * w[k], wmax = fmax(wmax, fabs(w[k])), sumw += fabs(w[k]);
                double sw = wmax / 127;
                double tol = sw / 2 * suma + sa / 2 * sumw + p.K * sa * sw / 4 + 1e-5 * fabs(ref) + 1e-6;
                double e = fabs(p.C[(size_t)r * p.ldc + n] - ref);
                if (e / tol > worst) worst = e / tol;
                if (e > tol && bad++ < 3)
                    printf("    %dx%dx%d (%d,%d): %.9g vs %.9g (tol %.3g)\n", p.M, p.N, p.K, r, n,
                           p.C[(size_t)r * p.ldc + n], ref, tol);
            }
        }
        er_lowp_free(&m);
        unmake(&p);
    }
    printf("    worst error / bound: %.3f\n", worst);
    CHECK_EQ_INT(bad, 0);
}

/* every level the CPU has gives the fast path's result */
static void levels_agree(int dtype) {
    int bad = 0, differ = 0;
    er_isa top = er_cpu_isa();
    for (int s = 0; s < nshapes; s++) {
        problem p;
        make(&p, shapes[s][0], shapes[s][1], shapes[s][2], dtype == ER_LOWP_BF16 ? 0.5f : 0.05f);
        er_lowp_mat m;
        REQUIRE(er_lowp_pack(&m, dtype, p.W, p.N, p.K, p.K) == EASYREC_OK);
        run(&p, top, &m, p.C);
        float *C2 = malloc(sizeof(float) * (size_t)p.M * p.ldc);
        for (int lv = 0; lv < (int)top; lv++) {
            run(&p, (er_isa)lv, &m, C2);
            CHECK(sentinels_intact(&p, C2));
            for (int r = 0; r < p.M; r++)
                for (int n = 0; n < p.N; n++) {
                    size_t o = (size_t)r * p.ldc + n;
                    if (C2[o] == p.C[o]) continue;
                    differ++;
                    double S = 0;
                    for (int k = 0; k < p.K; k++) S += fabs((double)p.A[(size_t)r * p.lda + k] * p.W[(size_t)n * p.K + k]);
                    if (dtype == ER_LOWP_INT8 || fabs(C2[o] - p.C[o]) > 1e-6 * S) {
                        if (bad++ < 3)
                            printf("    %s vs %s %dx%dx%d (%d,%d): %.9g vs %.9g\n", er_isa_name((er_isa)lv),
                                   er_isa_name(top), p.M, p.N, p.K, r, n, C2[o], p.C[o]);
                    }
                }
        }
        free(C2);
        er_lowp_free(&m);
        unmake(&p);
    }
    printf("    levels below %s: %d elements not bit-identical\n", er_isa_name(top), differ);
    CHECK_EQ_INT(bad, 0);
}

TEST(bf16_levels_agree) { levels_agree(ER_LOWP_BF16); }
TEST(int8_levels_agree) { levels_agree(ER_LOWP_INT8); }

TEST(int8_special_rows) {
    /* a zero row gives the bias; a row with NaN or inf gives NaN (not a silent number) */
    problem p;
    make(&p, 3, 40, 9, 0.1f);
    for (int k = 0; k < p.K; k++) p.A[k] = 0.0f;
    p.A[p.lda + 4] = NAN;
    p.A[2 * p.lda + 1] = INFINITY;
    for (int dt = ER_LOWP_BF16; dt <= ER_LOWP_INT8; dt++) {
        er_lowp_mat m;
        REQUIRE(er_lowp_pack(&m, dt, p.W, p.N, p.K, p.K) == EASYREC_OK);
        for (int lv = 0; lv <= (int)er_cpu_isa(); lv++) {
            run(&p, (er_isa)lv, &m, p.C);
            for (int n = 0; n < p.N; n++) {
                CHECK(p.C[n] == p.bias[n]);
                CHECK(isnan(p.C[p.ldc + n]));
                CHECK(!isfinite(p.C[2 * p.ldc + n]));
            }
        }
        er_lowp_free(&m);
    }
    unmake(&p);
}


/* ---- whole-model embeddings: fixture checkpoints and a random EasyRec-shaped model ---- */

#define NSEQ 40

static void make_seqs(int vocab, int maxlen, int32_t **ids, int *n) {
    for (int i = 0; i < NSEQ; i++) {
        n[i] = 2 + (int)((urand() + 1.0f) * 0.5f * (float)(maxlen - 2));
        if (n[i] > maxlen) n[i] = maxlen;
        ids[i] = malloc(sizeof(int32_t) * (size_t)n[i]);
        ids[i][0] = 0;
        for (int t = 1; t < n[i] - 1; t++) ids[i][t] = 3 + (int)((urand() + 1.0f) * 0.5f * (float)(vocab - 4));
        ids[i][n[i] - 1] = 2;
    }
}

static int encode_all(easyrec_model *m, int32_t **ids, const int *n, float *out) {
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.batch_tokens = 300; /* several batches */
    int rc = easyrec_encode_ids(ctx, (const int32_t *const *)ids, n, NSEQ, &o, out);
    easyrec_ctx_free(ctx);
    return rc;
}

/* mean and worst cosine of rows of a and b (already L2-normalised) */
static void cosines(const float *a, const float *b, int D, double *mean, double *worst) {
    *mean = 0, *worst = 1;
    for (int i = 0; i < NSEQ; i++) {
        double c = 0;
        for (int k = 0; k < D; k++) c += (double)a[(size_t)i * D + k] * b[(size_t)i * D + k];
        *mean += c / NSEQ;
        if (c < *worst) *worst = c;
    }
}

/* fp32 vs bf16 vs int8 embeddings of one model; every ISA level (all, or only the best
 * and avx2 when the model is large) must give the fast path's embeddings */
static void check_model(easyrec_model *(*load)(void), const char *what, int all_levels) {
    easyrec_model *m = load();
    REQUIRE(m);
    const easyrec_config *c = easyrec_model_config(m);
    int D = c->hidden, maxlen = c->max_positions - c->pad_id - 1 < 64 ? c->max_positions - c->pad_id - 1 : 64;
    int32_t *ids[NSEQ];
    int n[NSEQ];
    make_seqs(c->vocab_size, maxlen, ids, n);
    float *ref = malloc(sizeof(float) * NSEQ * D), *got = malloc(sizeof(float) * NSEQ * D),
          *lv = malloc(sizeof(float) * NSEQ * D);
    REQUIRE(encode_all(m, ids, n, ref) == EASYREC_OK);
    size_t bytes32 = easyrec_model_weight_bytes(m);
    easyrec_model_free(m);
    static const double min_mean[3] = {0, 0.9999, 0.999};
    for (int p = EASYREC_PRECISION_BF16; p <= EASYREC_PRECISION_INT8; p++) {
        m = load();
        REQUIRE(easyrec_model_set_precision(m, (easyrec_precision)p, NULL) == EASYREC_OK);
        CHECK(easyrec_model_precision(m) == (easyrec_precision)p);
        size_t bytes = easyrec_model_weight_bytes(m);
        CHECK(bytes < bytes32);
        REQUIRE(encode_all(m, ids, n, got) == EASYREC_OK);
        double mean, worst;
        cosines(ref, got, D, &mean, &worst);
        printf("    %s %s (%s): mean cosine to fp32 %.7f, worst %.7f; weights %.2f of fp32's %zu bytes\n", what,
               easyrec_precision_name((easyrec_precision)p), easyrec_model_isa(m), mean, worst,
               (double)bytes / (double)bytes32, bytes32);
        CHECK(mean >= min_mean[p]);
        CHECK(worst >= 1 - 20 * (1 - min_mean[p]));
        /* converted models cannot be saved or converted again */
        CHECK(check_failed_with(easyrec_model_save(m, "/nonexistent"), EASYREC_ERR_ARG, "cannot be saved"));
        CHECK(check_failed_with(easyrec_model_set_precision(m, p == 1 ? EASYREC_PRECISION_INT8 : EASYREC_PRECISION_BF16, NULL),
                                EASYREC_ERR_ARG, "already converted"));
        CHECK(check_failed_with(easyrec_model_set_precision(m, (easyrec_precision)p, "avx1024"), EASYREC_ERR_ARG,
                                "avx1024"));
        for (int l = (int)er_cpu_isa() - 1; l >= 0; l--) {
            if (!all_levels && l != ER_ISA_AVX2) continue;
            REQUIRE(easyrec_model_set_precision(m, (easyrec_precision)p, er_isa_name((er_isa)l)) == EASYREC_OK);
            CHECK(!strcmp(easyrec_model_isa(m), er_isa_name((er_isa)l)));
            REQUIRE(encode_all(m, ids, n, lv) == EASYREC_OK);
            double md = 0;
            for (int i = 0; i < NSEQ * D; i++) md = fmax(md, fabs((double)lv[i] - got[i]));
            if (p == EASYREC_PRECISION_INT8) CHECK(md == 0);
            CHECK(md <= 1e-6);
            if (md > 0) printf("    %s at %s: max |diff| to the fast path %.3g\n", easyrec_precision_name((easyrec_precision)p), er_isa_name((er_isa)l), md);
        }
        easyrec_model_free(m);
    }
    for (int i = 0; i < NSEQ; i++) free(ids[i]);
    free(ref), free(got), free(lv);
}

static easyrec_model *load_dir(const char *name) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/models/%s", name);
    easyrec_model *m = NULL;
    if (easyrec_model_load(dir, &m) != EASYREC_OK) printf("    %s: %s\n", dir, easyrec_last_error());
    return m;
}
static easyrec_model *load_roberta(void) { return load_dir("roberta_st_f32"); }
static easyrec_model *load_bert(void) { return load_dir("bert_st_f16"); }
/* EasyRec-like widths (fewer layers, smaller vocab): random N(0, 0.02) weights */
static easyrec_model *load_random(void) {
    easyrec_config c = {.n_layers = 2, .hidden = 256, .n_heads = 4, .ffn = 1024, .vocab_size = 1000,
                        .max_positions = 130, .type_vocab_size = 1, .pad_id = 1, .layer_norm_eps = 1e-5f,
                        .is_roberta = 1, .has_mlp = 1};
    easyrec_model *m = NULL;
    if (easyrec_model_init(&c, 7, &m) != EASYREC_OK) printf("    init: %s\n", easyrec_last_error());
    return m;
}

TEST(model_roberta_fixture) { check_model(load_roberta, "roberta_st_f32", 1); }
TEST(model_bert_fixture) { check_model(load_bert, "bert_st_f16 (cls)", 1); }
TEST(model_random_256) { check_model(load_random, "random 2x256 (F 1024)", 0); }


/* ---- the command line: encode --precision / --isa / EASYREC_ISA / EASYREC_PRECISION ---- */

static float *read_npy(const char *path, int64_t *rows, int64_t *cols) {
    float *d = NULL;
    int nd = 0;
    int64_t shape[8];
    if (er_npy_read_f32(path, &d, &nd, shape) != 0 || nd != 2) return NULL;
    *rows = shape[0], *cols = shape[1];
    return d;
}

TEST(cli_encode_precision) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for an end-to-end model");
    char t[64] = "/tmp/easyrec-lowp-XXXXXX";
    REQUIRE(mkdtemp(t));
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 2 --hidden 64 --heads 4 "
                     "--ffn 128 --seed 9 2>/dev/null", check_bin(), t) == 0);
    REQUIRE(check_sh("printf 'a basketball fan who watches NBA games\\nswimming goggles for lovers of the pool\\n"
                     "a quiet novel about a lighthouse keeper\\nthis user buys camping gear and trail shoes\\n' > %s/in.txt",
                     t) == 0);
    const char *runs[][2] = {{"", "fp32"},          {"--precision bf16", "bf16"},  {"--precision int8", "int8"},
                             {"--precision int8 --isa avx2", "int8-avx2"},     {"--precision bf16 --isa scalar", "bf16-scalar"}};
    for (int i = 0; i < 5; i++)
        REQUIRE(check_sh("%s encode --model %s/model --input %s/in.txt --text --output %s/%s.npy --quiet %s", check_bin(), t, t,
                         t, runs[i][1], runs[i][0]) == 0);
    REQUIRE(check_sh("EASYREC_ISA=scalar %s encode --model %s/model --input %s/in.txt --text --output %s/int8-env.npy "
                     "--precision int8 2>%s/err.txt", check_bin(), t, t, t, t) == 0);
    CHECK(check_sh("grep -q 'int8 weights .* MiB (fp32 .* MiB), kernels scalar' %s/err.txt", t) == 0);
    char p[256];
    float *e[6];
    int64_t r = 0, c = 0;
    const char *names[6] = {"fp32", "bf16", "int8", "int8-avx2", "bf16-scalar", "int8-env"};
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s.npy", t, names[i]);
        e[i] = read_npy(p, &r, &c);
        REQUIRE(e[i] && r == 4 && c == 64);
    }
    for (int i = 0; i < 4; i++) {
        double cb = 0, ci = 0;
        for (int k = 0; k < 64; k++) cb += (double)e[0][i * 64 + k] * e[1][i * 64 + k], ci += (double)e[0][i * 64 + k] * e[2][i * 64 + k];
        CHECK(cb >= 0.9999);
        CHECK(ci >= 0.999);
    }
    CHECK(memcmp(e[2], e[3], sizeof(float) * 256) == 0); /* int8: every level the same bits */
    CHECK(memcmp(e[2], e[5], sizeof(float) * 256) == 0);
    double md = 0;
    for (int k = 0; k < 256; k++) md = fmax(md, fabs((double)e[1][k] - e[4][k]));
    CHECK(md <= 1e-6);
    for (int i = 0; i < 6; i++) free(e[i]);
    /* --version names the kernels' level, and the cap */
    CHECK(check_sh("%s --version | grep -q '^isa: %s'", check_bin(), er_isa_name(er_cpu_isa())) == 0);
    CHECK(check_sh("EASYREC_ISA=scalar %s --version | grep -q '^isa: scalar'", check_bin()) == 0);
    /* ... and the precision commands run at without --precision */
    CHECK(check_sh("%s --version | grep -q '^precision: fp32 (default'", check_bin()) == 0);
    CHECK(check_sh("EASYREC_PRECISION=int8 %s --version | grep -q '^precision: int8 (EASYREC_PRECISION)'", check_bin()) == 0);
    REQUIRE(check_sh("EASYREC_PRECISION=int8 %s encode --model %s/model --input %s/in.txt --text --output %s/env8.npy --quiet",
                     check_bin(), t, t, t) == 0);
    CHECK(check_sh("cmp -s %s/env8.npy %s/int8.npy", t, t) == 0);
    /* usage errors */
    CHECK(check_sh("%s encode --model %s/model --input %s/in.txt --text --output %s/x.npy --precision fp16 2>%s/err.txt",
                   check_bin(), t, t, t, t) == 2);
    CHECK(check_sh("grep -q 'fp32, bf16 or int8' %s/err.txt", t) == 0);
    CHECK(check_sh("EASYREC_ISA=sse9 %s encode --model %s/model --input %s/in.txt --text --output %s/x.npy --precision int8 "
                   "2>%s/err.txt", check_bin(), t, t, t, t) == 1);
    CHECK(check_sh("grep -q \"unknown instruction set 'sse9'\" %s/err.txt", t) == 0);
    check_sh("rm -rf %s", t);
}

CHECK_MAIN(CASE(isa_names), CASE(bf16_rounding), CASE(bf16_vs_reference), CASE(int8_vs_reference),
           CASE(bf16_levels_agree), CASE(int8_levels_agree), CASE(int8_special_rows),
           CASE(model_roberta_fixture), CASE(model_bert_fixture), CASE(model_random_256),
           CASE(cli_encode_precision))
