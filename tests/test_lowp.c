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

#include "check.h"
#include "kernels/cpu.h"
#include "kernels/lowp.h"

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
    CHECK(er_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(er_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);        /* tie -> even */
    CHECK(er_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);    /* tie -> even (up) */
    CHECK(er_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);
    CHECK(er_f32_to_bf16(-2.5f) == 0xc020);
    CHECK(er_f32_to_bf16(1e-40f) == 0);                     /* denormal -> 0 */
    CHECK(er_bf16_to_f32(er_f32_to_bf16(NAN)) != er_bf16_to_f32(er_f32_to_bf16(NAN)));
    CHECK(er_bf16_to_f32(er_f32_to_bf16(INFINITY)) == INFINITY);
    CHECK(er_bf16_to_f32(er_f32_to_bf16(3.4e38f)) == INFINITY); /* rounds past the largest bf16 */
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
                    refb += (double)er_bf16_to_f32(er_f32_to_bf16(a)) * er_bf16_to_f32(er_f32_to_bf16(w));
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

CHECK_MAIN(CASE(isa_names), CASE(bf16_rounding), CASE(bf16_vs_reference), CASE(int8_vs_reference),
           CASE(bf16_levels_agree), CASE(int8_levels_agree), CASE(int8_special_rows))
