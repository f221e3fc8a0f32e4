/* kernels.h — the numeric kernels every forward and backward pass is built from, below the
 * model layer (core -> io -> tokenizer -> kernels -> model -> ...): no model structs here,
 * only pointers and shapes. docs/model.md ("Kernels").
 */
#ifndef ER_KERNELS_H
#define ER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- GEMM (gemm.c): the one matrix-multiply entry of the project ---- */

/* gemm.c: C (M, N) = A (M, K) · B^T + bias (N), B (N, K), row strides lda/ldb/ldc; bias may
 * be NULL; accumulate: C += instead of =. Single-threaded in the calling thread. */
void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias, float *C,
             int ldc, int accumulate);
/* General form: C (M, N) [+]= op(A) · op(B) + bias; ta: A stored (K, M) instead of (M, K);
 * tb: B stored (N, K) instead of (K, N) (so gemm_nt == gemm(0, 1, ...)). */
void gemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, const float *bias,
          float *C, int ldc, int accumulate);
/* gemm split over nthreads by column panels: bit-identical to nthreads = 1. */
void gemm_mt(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
             const float *bias, float *C, int ldc, int accumulate, int nthreads);
const char *gemm_backend(void); /* "easyrec-avx512" or "cblas" */
int gemm_has_own_kernel(void);  /* the CPU can run the AVX-512 kernel */
void gemm_force_backend(int own); /* tests: 1 own kernel (only if supported), 0 cblas */

#endif
