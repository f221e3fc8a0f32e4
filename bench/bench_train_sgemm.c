/* bench_train_sgemm.c — the GEMM peaks that bench/bench_train.sh measures model-FLOPs
 * utilisation against.
 *
 *   bench_train_sgemm [M N K THREADS SECONDS]     (default 2048 3072 768 2 3)
 *
 * C (M, N) = A (M, K) · B^T with B (N, K) — the layout of an nn.Linear forward (M tokens,
 * N outputs, K inputs; the defaults are the FFN up-projection of a 768/3072 layer over 2048
 * tokens). Two measurements, each the best call over about SECONDS (the first call is a
 * warm-up and not counted), one line each:
 *   openblas M N K THREADS GFLOPS BEST_SECONDS CALLS   one cblas_sgemm call on THREADS
 *            OpenBLAS threads (the machine's "sgemm peak" as OpenBLAS, and PyTorch, see it)
 *   easyrec  M N K THREADS GFLOPS BEST_SECONDS CALLS   er_gemm_mt of src/kernels/er_gemm.c on THREADS
 *            threads (easyrec's own AVX-512 kernel where the CPU has one, else CBLAS)
 * GFLOP/s counts 2*M*N*K per call. Built by bench/bench_train.sh against build/libeasyrec.a
 * (internal header model/model.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
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
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

/* best seconds of one C = A B^T call; *calls = timed calls */
static double measure(int own, int M, int N, int K, int threads, double seconds, const float *A, const float *B,
                      float *C, int *calls) {
    double best = 1e30, t_end = now() + seconds;
    int n = 0;
    do {
        double t0 = now();
        if (own)
            er_gemm_mt(0, 1, M, N, K, A, K, B, K, NULL, C, N, 0, threads);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
        double dt = now() - t0;
        if (n++ > 0 && dt < best) best = dt;
    } while (now() < t_end || n < 3);
    *calls = n - 1;
    return best;
}

int main(int argc, char **argv) {
    int M = 2048, N = 3072, K = 768, threads = 2;
    double seconds = 3.0;
    if (argc == 6) {
        M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]), threads = atoi(argv[4]);
        seconds = atof(argv[5]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_train_sgemm [M N K THREADS SECONDS]\n");
        return 2;
    }
    if (M <= 0 || N <= 0 || K <= 0 || threads <= 0 || !(seconds > 0)) {
        fprintf(stderr, "bench_train_sgemm: bad arguments\n");
        return 2;
    }
    float *A = rand_buf((size_t)M * K, 1), *B = rand_buf((size_t)N * K, 2), *C = rand_buf((size_t)M * N, 3);
    if (!A || !B || !C) {
        fprintf(stderr, "bench_train_sgemm: out of memory\n");
        return 1;
    }
    double flop = 2.0 * M * N * K;
    int calls;
    openblas_set_num_threads(threads);
    double t = measure(0, M, N, K, threads, seconds, A, B, C, &calls);
    printf("openblas %d %d %d %d %.1f %.6f %d\n", M, N, K, threads, flop / t * 1e-9, t, calls);
    openblas_set_num_threads(1); /* easyrec calls BLAS single-threaded inside its own threads */
    t = measure(1, M, N, K, threads, seconds, A, B, C, &calls);
    printf("easyrec %d %d %d %d %.1f %.6f %d %s\n", M, N, K, threads, flop / t * 1e-9, t, calls, er_gemm_backend());
    free(A), free(B), free(C);
    return 0;
}
