/* bench_serve_topk.c — the exact top-K engine of `easyrec serve` / `easyrec recommend`
 * (er_recommend, src/serve/recommender.c: bf16 scan + exact rescoring) on given item and
 * query matrices, for bench/bench_serve.sh: batched queries/s (all queries, in the server's
 * products of 64) and single-query latency (p50/p99 over the first n_single queries, one at a
 * time), the time to pack the bf16 copy, its size, the process RSS, and how many items per
 * query were rescored. Writes the top-K row ids of the batched run to OUT.npy (float32) so
 * the driver can compare them with FAISS.
 * Usage: bench_serve_topk ITEMS.npy QUERIES.npy K THREADS N_SINGLE OUT.npy
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

/* VmRSS / VmHWM of this process in MiB */
static double status_mib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') v = atof(line + kl + 1) / 1024.0;
    if (f) fclose(f);
    return v;
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
    double rss_f32 = status_mib("VmRSS"), tp = now();
    er_bf16_items b;
    if (er_bf16_items_init(&b, I, ni, D)) {
        fprintf(stderr, "packing: %s\n", easyrec_last_error());
        return 1;
    }
    tp = now() - tp;
    /* warm-up (page in the item matrix, size the scratch) */
    er_recommend(&b, Q, nq < 64 ? nq : 64, k, NULL, T, &s, h, n);
    double t0 = now();
    for (int q0 = 0; q0 < nq; q0 += 64) /* the server scores at most 64 waiting queries at once */
        er_recommend(&b, Q + (size_t)q0 * D, nq - q0 < 64 ? nq - q0 : 64, k, NULL, T, &s, h + (size_t)q0 * k, n + q0);
    double batched = now() - t0;
    /* items rescored per query (single-threaded refine of the first 64 queries' scan) */
    int nc_q = nq < 64 ? nq : 64;
    float *approx = malloc(sizeof(float) * (size_t)nc_q * ni), best[1024];
    int32_t top[1024], nc;
    int64_t cand = 0;
    er_bf16_refine_scratch rs = {0};
    er_bf16_scan(&b, b.m.isa, Q, nc_q, 0, b.m.panels, approx, (size_t)ni);
    for (int i = 0; i < nc_q; i++) {
        er_bf16_refine(&b, Q + (size_t)i * D, approx + (size_t)i * ni, k, NULL, 0, &rs, top, best, &nc);
        cand += nc;
    }
    er_bf16_refine_scratch_free(&rs);
    free(approx);
    double *lat = malloc(sizeof(double) * (size_t)ns);
    er_hit h1[1024];
    int n1;
    for (int i = 0; i < ns; i++) {
        double a = now();
        er_recommend(&b, Q + (size_t)(i % nq) * D, 1, k, NULL, T, &s, h1, &n1);
        lat[i] = now() - a;
    }
    qsort(lat, (size_t)ns, sizeof(double), cmp);
    float *ids = malloc(sizeof(float) * (size_t)nq * k);
    for (size_t i = 0; i < (size_t)nq * k; i++) ids[i] = (float)h[i].row;
    int64_t shape[2] = {nq, k};
    er_npy_write_f32(argv[6], ids, 2, shape);
    printf("{\"items\": %d, \"dim\": %d, \"queries\": %d, \"k\": %d, \"threads\": %d, \"batched_qps\": %.1f, "
           "\"single_p50_ms\": %.3f, \"single_p99_ms\": %.3f, \"pack_s\": %.3f, \"bf16_mib\": %.1f, "
           "\"rss_f32_mib\": %.1f, \"rss_mib\": %.1f, \"rss_peak_mib\": %.1f, \"candidates_per_query\": %.1f}\n",
           ni, D, nq, k, T, nq / batched, lat[ns / 2] * 1e3, lat[(int)(ns * 0.99)] * 1e3, tp,
           er_bf16_items_bytes(&b) / 1048576.0, rss_f32, status_mib("VmRSS"), status_mib("VmHWM"), (double)cand / nc_q);
    er_rec_scratch_free(&s);
    er_bf16_items_free(&b);
    free(I);
    free(Q);
    free(h);
    free(n);
    free(lat);
    free(ids);
    return 0;
}
