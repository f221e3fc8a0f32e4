/* bench_serve_topk.c — the exact top-K engine of `easyrec serve` / `easyrec recommend`
 * (er_recommend, src/serve/recommender.c) on given item and query matrices, for
 * bench/bench_serve.sh: batched queries/s (all queries, in the server's products of 64) and
 * single-query latency (p50/p99 over the first n_single queries, one at a time). Writes the
 * top-K row ids of the batched run to OUT.npy (float32) so the driver can compare them with
 * FAISS. Usage: bench_serve_topk ITEMS.npy QUERIES.npy K THREADS N_SINGLE OUT.npy
 * Prints one JSON line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/tensors.h"
#include "serve/recommender.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s ITEMS.npy QUERIES.npy K THREADS N_SINGLE OUT.npy\n", argv[0]);
        return 2;
    }
    float *I, *Q;
    int nd;
    int64_t si[8], sq[8];
    if (er_npy_read_f32(argv[1], &I, &nd, si) || er_npy_read_f32(argv[2], &Q, &nd, sq) || si[1] != sq[1]) {
        fprintf(stderr, "bad inputs\n");
        return 1;
    }
    int k = atoi(argv[3]), T = atoi(argv[4]), ns = atoi(argv[5]), D = (int)si[1], nq = (int)sq[0];
    int32_t ni = (int32_t)si[0];
    er_hit *h = malloc(sizeof(er_hit) * (size_t)nq * k);
    int *n = malloc(sizeof(int) * (size_t)nq);
    er_rec_scratch s = {0};
    /* warm-up (page in the item matrix, size the scratch) */
    er_recommend(I, ni, D, Q, nq < 64 ? nq : 64, k, NULL, T, &s, h, n);
    double t0 = now();
    for (int q0 = 0; q0 < nq; q0 += 64) /* the server scores at most 64 waiting queries at once */
        er_recommend(I, ni, D, Q + (size_t)q0 * D, nq - q0 < 64 ? nq - q0 : 64, k, NULL, T, &s, h + (size_t)q0 * k, n + q0);
    double batched = now() - t0;
    double *lat = malloc(sizeof(double) * (size_t)ns);
    er_hit h1[1024];
    int n1;
    for (int i = 0; i < ns; i++) {
        double a = now();
        er_recommend(I, ni, D, Q + (size_t)(i % nq) * D, 1, k, NULL, T, &s, h1, &n1);
        lat[i] = now() - a;
    }
    qsort(lat, (size_t)ns, sizeof(double), cmp);
    float *ids = malloc(sizeof(float) * (size_t)nq * k);
    for (size_t i = 0; i < (size_t)nq * k; i++) ids[i] = (float)h[i].row;
    int64_t shape[2] = {nq, k};
    er_npy_write_f32(argv[6], ids, 2, shape);
    printf("{\"items\": %d, \"dim\": %d, \"queries\": %d, \"k\": %d, \"threads\": %d, \"batched_qps\": %.1f, "
           "\"single_p50_ms\": %.3f, \"single_p99_ms\": %.3f}\n",
           ni, D, nq, k, T, nq / batched, lat[ns / 2] * 1e3, lat[(int)(ns * 0.99)] * 1e3);
    er_rec_scratch_free(&s);
    free(I);
    free(Q);
    free(h);
    free(n);
    free(lat);
    free(ids);
    return 0;
}
