/* test_gemm.c — er_gemm (own AVX-512 kernel where the CPU has it, and CBLAS) against a plain
 * double-precision loop, in all three forms the encoder uses (A·B^T, A·B, A^T·B), over
 * shapes that hit every edge of the blocking (M, N, K not multiples of the 12x32 tile or
 * the K/N blocks), strided operands, bias and accumulation; er_gemm_mt bit-identical for 1, 2
 * and 3 threads. Tolerance: 1e-5 relative to the sum of |products| (fp32 reassociation).
 * The packed-B product (er_gemm_pack_rows / er_gemm_pack_kn / er_gemm_packed_nt) bit for bit
 * against er_gemm_nt / er_gemm. */
#include <stdlib.h>

#include "check.h"
#include "model/model.h"

/* op(A) (i, k), op(B) (k, j) of the stored operands */
static float opa(const float *A, int lda, int ta, int i, int k) { return ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]; }
static float opb(const float *B, int ldb, int tb, int k, int j) { return tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]; }

static void run_shape(int ta, int tb, int M, int N, int K, int pad, int acc, int with_bias) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * (na + 1)), *B = malloc(sizeof(float) * (nb + 1));
    float *C = malloc(sizeof(float) * (nc + 1)), *C0 = malloc(sizeof(float) * (nc + 1));
    float *bias = malloc(sizeof(float) * (size_t)(N + 1));
    for (size_t i = 0; i < na; i++) A[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 1000.0f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((int)(i * 40503u % 1999) - 999) / 999.0f;
    for (size_t i = 0; i < nc; i++) C0[i] = C[i] = (float)(i % 13) - 6.0f;
    for (int j = 0; j < N; j++) bias[j] = (float)(j % 11) * 0.25f - 1.0f;
    er_gemm(ta, tb, M, N, K, A, lda, B, ldb, with_bias ? bias : NULL, C, ldc, acc);
    int bad = 0;
    for (int i = 0; i < M && !bad; i++)
        for (int j = 0; j < ldc && !bad; j++) {
            size_t o = (size_t)i * ldc + j;
            if (j >= N) { /* columns past N are untouched */
                bad = C[o] != C0[o];
                continue;
            }
            double ref = (acc ? C0[o] : 0.0) + (with_bias ? bias[j] : 0.0), mag = fabs(ref);
            for (int k = 0; k < K; k++) {
                double p = (double)opa(A, lda, ta, i, k) * opb(B, ldb, tb, k, j);
                ref += p;
                mag += fabs(p);
            }
            bad = fabs(C[o] - ref) > 1e-5 * (mag + 1);
        }
    if (bad)
        printf("    ta=%d tb=%d M=%d N=%d K=%d pad=%d acc=%d bias=%d (%s)\n", ta, tb, M, N, K, pad, acc, with_bias,
               er_gemm_backend());
    CHECK(!bad);
    /* column-split threads: bit-identical for 1, 2 and 3 threads */
    float *C1 = malloc(sizeof(float) * (nc + 1)), *C2 = malloc(sizeof(float) * (nc + 1));
    for (size_t i = 0; i < nc; i++) C1[i] = C0[i];
    er_gemm_mt(ta, tb, M, N, K, A, lda, B, ldb, with_bias ? bias : NULL, C1, ldc, acc, 1);
    for (int th = 2; th <= 3; th++) {
        for (size_t i = 0; i < nc; i++) C2[i] = C0[i];
        er_gemm_mt(ta, tb, M, N, K, A, lda, B, ldb, with_bias ? bias : NULL, C2, ldc, acc, th);
        CHECK(memcmp(C2, C1, sizeof(float) * nc) == 0);
    }
    free(C1), free(C2);
    free(A), free(B), free(C), free(C0), free(bias);
}

static void all_shapes(void) {
    static const int dims[][3] = {{1, 1, 1},     {12, 32, 256}, {13, 33, 257},  {11, 31, 255}, {97, 769, 300},
                                  {5, 1000, 7},  {200, 64, 768}, {1, 2304, 768}, {24, 17, 1030}, {3, 5, 0}};
    for (int form = 0; form < 3; form++) {
        int ta = form == 2, tb = form == 0;
        for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
            for (int v = 0; v < 4; v++)
                run_shape(ta, tb, dims[s][0], dims[s][1], dims[s][2], v & 1 ? 5 : 0, v >> 1, v & 1);
    }
}

TEST(gemm_default_backend) { all_shapes(); }

TEST(gemm_own_kernel) {
    if (!er_gemm_has_own_kernel()) SKIP("CPU has no AVX-512: the CBLAS path is the only one");
    er_gemm_force_backend(1);
    all_shapes();
}

TEST(gemm_cblas) {
    er_gemm_force_backend(0);
    all_shapes();
}

/* A (M, K) . B^T with B's rows (picked through an index list) packed once == er_gemm_nt on
 * the gathered rows: the same bits (the eval scorer relies on it) */
static void packed_shape(int M, int N, int K, int lda, int ldb) {
    int nrows = 2 * N + 3;
    float *A = malloc(sizeof(float) * (size_t)M * lda), *B = malloc(sizeof(float) * (size_t)nrows * ldb);
    float *G = malloc(sizeof(float) * (size_t)N * K), *Bp = malloc(sizeof(float) * er_gemm_packed_floats(N, K));
    float *C = malloc(sizeof(float) * (size_t)M * (N + 1)), *R = malloc(sizeof(float) * (size_t)M * N);
    int32_t *rows = malloc(sizeof(int32_t) * (size_t)N);
    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 997.0f;
    for (size_t i = 0; i < (size_t)nrows * ldb; i++) B[i] = (float)((int)(i * 40503u % 1999) - 999) / 1013.0f;
    for (int j = 0; j < N; j++) {
        rows[j] = (int32_t)((j * 7 + 1) % nrows);
        memcpy(G + (size_t)j * K, B + (size_t)rows[j] * ldb, sizeof(float) * (size_t)K);
    }
    er_gemm_pack_rows(B, rows, N, K, (size_t)ldb, Bp);
    for (size_t i = 0; i < (size_t)M * (N + 1); i++) C[i] = 7.0f;
    er_gemm_packed_nt(M, A, lda, Bp, N, K, C, N + 1);
    er_gemm_nt(M, N, K, A, lda, G, K, NULL, R, N, 0);
    int same = 1, kept = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) same &= C[(size_t)i * (N + 1) + j] == R[(size_t)i * N + j];
        kept &= C[(size_t)i * (N + 1) + N] == 7.0f; /* the column past N is untouched */
    }
    if (!same || !kept) printf("    M=%d N=%d K=%d\n", M, N, K);
    CHECK(same);
    CHECK(kept);
    /* rows NULL: B's first N rows */
    er_gemm_pack_rows(B, NULL, N, K, (size_t)ldb, Bp);
    er_gemm_packed_nt(M, A, lda, Bp, N, K, C, N + 1);
    er_gemm_nt(M, N, K, A, lda, B, ldb, NULL, R, N, 0);
    same = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) same &= C[(size_t)i * (N + 1) + j] == R[(size_t)i * N + j];
    CHECK(same);
    free(A), free(B), free(G), free(Bp), free(C), free(R), free(rows);
}

/* B (K, N) row-major packed with er_gemm_pack_kn == er_gemm(0, 0, ...) on B: the same bits
 * (the CF InfoNCE's P Ĉ relies on it) */
static void packed_kn_shape(int M, int N, int K, int lda, int ldb) {
    float *A = malloc(sizeof(float) * (size_t)M * lda), *B = malloc(sizeof(float) * (size_t)K * ldb);
    float *Bp = malloc(sizeof(float) * er_gemm_packed_floats(N, K));
    float *C = malloc(sizeof(float) * (size_t)M * (N + 1)), *R = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 997.0f;
    for (size_t i = 0; i < (size_t)K * ldb; i++) B[i] = (float)((int)(i * 40503u % 1999) - 999) / 1013.0f;
    er_gemm_pack_kn(B, K, N, (size_t)ldb, Bp);
    for (size_t i = 0; i < (size_t)M * (N + 1); i++) C[i] = 7.0f;
    er_gemm_packed_nt(M, A, lda, Bp, N, K, C, N + 1);
    er_gemm(0, 0, M, N, K, A, lda, B, ldb, NULL, R, N, 0);
    int same = 1, kept = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) same &= C[(size_t)i * (N + 1) + j] == R[(size_t)i * N + j];
        kept &= C[(size_t)i * (N + 1) + N] == 7.0f;
    }
    if (!same || !kept) printf("    kn M=%d N=%d K=%d\n", M, N, K);
    CHECK(same);
    CHECK(kept);
    free(A), free(B), free(Bp), free(C), free(R);
}

/* er_gemm_packed on a part of a packed operand (columns from n0, K rows from k0), accumulating
 * into C == er_gemm on that part with accumulate: the same bits (the InfoNCE's chunks) */
static void packed_part_shape(int M, int Np, int Kp, int n0, int N, int k0, int K, int with_bias) {
    float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)Kp * Np);
    float *Bp = malloc(sizeof(float) * er_gemm_packed_floats(Np, Kp));
    float *C = malloc(sizeof(float) * (size_t)M * N), *R = malloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 997.0f;
    for (size_t i = 0; i < (size_t)Kp * Np; i++) B[i] = (float)((int)(i * 40503u % 1999) - 999) / 1013.0f;
    for (size_t i = 0; i < (size_t)M * N; i++) C[i] = R[i] = (float)(i % 7) - 3.0f;
    float *bias = NULL;
    if (with_bias) {
        bias = malloc(sizeof(float) * (size_t)N);
        for (int j = 0; j < N; j++) bias[j] = 0.25f * (float)(j % 5) - 0.5f;
    }
    er_gemm_pack_kn(B, Kp, Np, (size_t)Np, Bp);
    er_gemm_packed(M, A, K, Bp + (size_t)n0 * Kp + (size_t)ER_GEMM_PANEL * k0, (size_t)ER_GEMM_PANEL * Kp, N, K, bias, C,
                   N, !with_bias);
    er_gemm(0, 0, M, N, K, A, K, B + (size_t)k0 * Np + n0, Np, bias, R, N, !with_bias);
    free(bias);
    int same = 1;
    for (size_t i = 0; i < (size_t)M * N; i++) same &= C[i] == R[i];
    if (!same) printf("    part M=%d N=%d (%d of %d) K=%d (%d of %d)\n", M, N, n0, Np, K, k0, Kp);
    CHECK(same);
    free(A), free(B), free(Bp), free(C), free(R);
}

TEST(gemm_packed_b) {
    if (!er_gemm_has_own_kernel()) SKIP("CPU has no AVX-512: nothing is packed");
    er_gemm_force_backend(1);
    CHECK(er_gemm_packs());
    CHECK(er_gemm_packed_floats(33, 5) == 64 * 5 && er_gemm_packed_floats(32, 5) == 32 * 5);
    static const int shapes[][5] = {/* M, N, K, lda, ldb */
                                    {1, 1, 1, 1, 1},        {12, 32, 256, 256, 256}, {13, 33, 257, 260, 257},
                                    {97, 200, 300, 300, 301}, {256, 256, 768, 768, 768}, {9, 70, 1030, 1030, 1031},
                                    {300, 9, 3, 3, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int *d = shapes[s];
        packed_shape(d[0], d[1], d[2], d[3], d[4]);
        packed_kn_shape(d[0], d[1], d[2], d[3], d[1] + d[4] - d[2]); /* ldb >= N, padded alike */
    }
    for (int b = 0; b < 2; b++) { /* accumulating, then with a bias */
        packed_part_shape(96, 96, 1000, 0, 96, 512, 488, b);  /* rows 512.. of a (1000, 96) */
        packed_part_shape(13, 200, 300, 64, 100, 7, 290, b); /* a middle block, ragged edges */
        packed_part_shape(5, 33, 40, 32, 1, 0, 40, b);        /* the last, one-column panel */
    }
    er_gemm_force_backend(0); /* the thread's GEMMs are CBLAS: nothing packs */
    CHECK(!er_gemm_packs());
}

CHECK_MAIN(CASE(gemm_default_backend), CASE(gemm_own_kernel), CASE(gemm_cblas), CASE(gemm_packed_b))
