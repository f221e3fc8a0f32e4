/* test_gemm.c — gemm_nt (own AVX-512 kernel where the CPU has it, and CBLAS) against a
 * plain double-precision triple loop, over shapes that hit every edge of the blocking
 * (M, N, K not multiples of the 12x32 tile or the K/N blocks), strided operands and
 * accumulation. Tolerance: 1e-5 relative to the sum of |products| (fp32 reassociation). */
#include <stdlib.h>

#include "check.h"
#include "model/model.h"

static void run_shape(int M, int N, int K, int lda, int ldb, int ldc, int acc, int with_bias) {
    float *A = malloc(sizeof(float) * (size_t)M * lda), *B = malloc(sizeof(float) * (size_t)N * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc);
    for (size_t i = 0; i < (size_t)M * lda; i++) A[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 1000.0f;
    for (size_t i = 0; i < (size_t)N * ldb; i++) B[i] = (float)((int)(i * 40503u % 1999) - 999) / 999.0f;
    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = (float)(i % 13) - 6.0f;
    float *C0 = malloc(sizeof(float) * (size_t)M * ldc), *bias = malloc(sizeof(float) * (size_t)N);
    for (int j = 0; j < N; j++) bias[j] = (float)(j % 11) * 0.25f - 1.0f;
    for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = C[i];
    gemm_nt(M, N, K, A, lda, B, ldb, with_bias ? bias : NULL, C, ldc, acc);
    int bad = 0;
    for (int i = 0; i < M && !bad; i++)
        for (int j = 0; j < ldc && !bad; j++) {
            double ref = acc ? C0[(size_t)i * ldc + j] : 0.0;
            if (with_bias && j < N) ref += bias[j];
            double mag = fabs(ref);
            if (j >= N) { /* columns past N must be untouched */
                if (C[(size_t)i * ldc + j] != C0[(size_t)i * ldc + j]) bad = 1;
                continue;
            }
            for (int k = 0; k < K; k++) {
                double p = (double)A[(size_t)i * lda + k] * B[(size_t)j * ldb + k];
                ref += p;
                mag += fabs(p);
            }
            if (fabs(C[(size_t)i * ldc + j] - ref) > 1e-5 * (mag + 1)) bad = 1;
        }
    if (bad) printf("    shape M=%d N=%d K=%d lda=%d ldb=%d ldc=%d acc=%d bias=%d (%s)\n", M, N, K, lda, ldb, ldc,
                    acc, with_bias, gemm_backend());
    CHECK(!bad);
    free(A), free(B), free(C), free(C0), free(bias);
}

static void all_shapes(void) {
    static const int dims[][3] = {{1, 1, 1},    {12, 32, 256}, {13, 33, 257}, {11, 31, 255}, {97, 769, 300},
                                  {5, 1000, 7}, {200, 64, 768}, {1, 2304, 768}, {24, 17, 1030}, {3, 5, 0}};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++) {
        int M = dims[s][0], N = dims[s][1], K = dims[s][2];
        run_shape(M, N, K, K, K, N, 0, 0);
        run_shape(M, N, K, K, K, N, 0, 1);
        run_shape(M, N, K, K + 3, K + 5, N + 7, 1, 0);
        run_shape(M, N, K, K + 3, K + 5, N + 7, 1, 1);
    }
}

TEST(gemm_default_backend) { all_shapes(); }

TEST(gemm_own_kernel) {
    if (!gemm_has_own_kernel()) SKIP("CPU has no AVX-512: the CBLAS path is the only one");
    gemm_force_backend(1);
    all_shapes();
}

TEST(gemm_cblas) {
    gemm_force_backend(0);
    all_shapes();
}

CHECK_MAIN(CASE(gemm_default_backend), CASE(gemm_own_kernel), CASE(gemm_cblas))
