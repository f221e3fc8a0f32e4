/* bench_encode_sgemm.c — the GEMM peaks that bench/bench_encode.sh compares the encoders with.
 *
 *   bench_encode_sgemm M N K THREADS [SECONDS]
 *
 * C (M, N) = A (M, K) · B^T, B (N, K) — the layout of every nn.Linear (M tokens, N outputs,
 * K inputs). Prints one line per measurement, best of repeated calls for about SECONDS
 * (default 2) each:
 *   openblas-1call   one cblas_sgemm call with openblas_set_num_threads(THREADS): the usual
 *                    "sgemm peak" of the machine as OpenBLAS sees it
 *   openblas-split   THREADS OpenMP threads, each a single-threaded cblas_sgemm on its own
 *                    buffers (how easyrec uses BLAS with EASYREC_GEMM=blas: one batch a thread)
 *   easyrec-split    the same with easyrec's own kernel (er_gemm_nt of src/kernels/er_gemm.c; only
 *                    where the CPU has AVX-512, else it says so)
 * GFLOP/s counts 2*M*N*K per GEMM (per thread for the split variants, summed).
 * Built by bench/bench_encode.sh against build/libeasyrec.a (internal header model/model.h).
 */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *rand_buf(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof(*p));
    if (!p) {
        fprintf(stderr, "bench_encode_sgemm: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

typedef struct {
    float *A, *B, *C;
} bufs;

static void run_gemm(int kind, int M, int N, int K, const bufs *b) {
    if (kind == 2)
        er_gemm_nt(M, N, K, b->A, K, b->B, K, NULL, b->C, N, 0);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, b->A, K, b->B, K, 0.0f, b->C, N);
}

/* kind 0: one call on `threads` BLAS threads; 1: split, cblas; 2: split, easyrec kernel */
static double measure(int kind, int M, int N, int K, int threads, double seconds) {
    int nb = kind == 0 ? 1 : threads;
    bufs *b = calloc((size_t)nb, sizeof(*b));
    for (int t = 0; t < nb; t++) {
        b[t].A = rand_buf((size_t)M * K, 1 + t);
        b[t].B = rand_buf((size_t)N * K, 100 + t);
        b[t].C = rand_buf((size_t)M * N, 200 + t);
    }
    openblas_set_num_threads(kind == 0 ? threads : 1);
    double best = 1e30, t_end = now() + seconds;
    int reps = 0;
    do {
        double t0 = now();
        if (kind == 0) {
            run_gemm(0, M, N, K, &b[0]);
        } else {
#pragma omp parallel num_threads(nb)
            run_gemm(kind, M, N, K, &b[omp_get_thread_num()]);
        }
        double dt = now() - t0;
        if (reps++ > 0 && dt < best) best = dt; /* the first call warms up */
    } while (now() < t_end || reps < 3);
    for (int t = 0; t < nb; t++) {
        free(b[t].A);
        free(b[t].B);
        free(b[t].C);
    }
    free(b);
    return 2.0 * M * N * K * nb / best * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_encode_sgemm M N K THREADS [SECONDS]\n");
        return 2;
    }
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]), threads = atoi(argv[4]);
    double seconds = argc > 5 ? atof(argv[5]) : 2.0;
    if (M <= 0 || N <= 0 || K <= 0 || threads <= 0 || seconds <= 0) {
        fprintf(stderr, "bench_encode_sgemm: bad arguments\n");
        return 2;
    }
    printf("openblas-1call %d %d %d %d %.1f\n", M, N, K, threads, measure(0, M, N, K, threads, seconds));
    printf("openblas-split %d %d %d %d %.1f\n", M, N, K, threads, measure(1, M, N, K, threads, seconds));
    if (er_gemm_has_own_kernel()) {
        er_gemm_force_backend(1);
        printf("easyrec-split %d %d %d %d %.1f\n", M, N, K, threads, measure(2, M, N, K, threads, seconds));
    } else {
        printf("easyrec-split %d %d %d %d n/a\n", M, N, K, threads);
    }
    return 0;
}
