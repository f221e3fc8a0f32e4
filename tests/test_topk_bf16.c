/* test_topk_bf16.c — top-K from a bf16 item scan with fp32 rescoring (src/eval/topk_bf16.c)
 * equals the exact top-K (double-accumulated scores rounded to float, ties by lower item id)
 * on random embeddings, on near-ties below bf16 resolution, on exact duplicates, and at every
 * ISA level; the candidate set stays small on well-separated scores. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "eval/eval.h"
#include "eval/topk_bf16.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void normalize(float *v, int D) {
    double s = 0;
    for (int k = 0; k < D; k++) s += (double)v[k] * v[k];
    for (int k = 0; k < D; k++) v[k] = (float)(v[k] / sqrt(s));
}

/* the reference: exact scores of every item, er_topk_select */
static void reference(const float *items, int32_t n, int D, const float *q, int k, int32_t *out) {
    float *s = malloc(sizeof(float) * (size_t)n);
    er_topk_entry *heap = malloc(sizeof(*heap) * (size_t)k);
    for (int32_t i = 0; i < n; i++) s[i] = er_exact_dot(q, items + (size_t)i * D, D);
    er_topk_select(s, n, k, heap, out);
    free(s), free(heap);
}

/* every level: same ids as the reference; returns mean candidates per query */
static double run_case(const float *items, int32_t n, int D, const float *Q, int nq, int k, int *bad) {
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, n, D) == EASYREC_OK);
    int32_t *got = malloc(sizeof(int32_t) * (size_t)nq * k), *ref = malloc(sizeof(int32_t) * (size_t)k);
    double cand = 0;
    for (int lv = (int)er_cpu_isa(); lv >= 0; lv--) {
        er_bf16_topk_stats st = {0};
        REQUIRE(er_bf16_topk(&b, (er_isa)lv, Q, nq, k, got, &st) == EASYREC_OK);
        if (lv == (int)er_cpu_isa()) cand = (double)st.candidates / nq;
        for (int q = 0; q < nq; q++) {
            reference(items, n, D, Q + (size_t)q * D, k, ref);
            if (memcmp(ref, got + (size_t)q * k, sizeof(int32_t) * (size_t)k) != 0 && (*bad)++ < 3)
                printf("    %s: query %d differs (n %d, D %d, k %d)\n", er_isa_name((er_isa)lv), q, (int)n, D, k);
        }
    }
    free(got), free(ref);
    er_bf16_items_free(&b);
    return cand;
}

TEST(random_embeddings) {
    int bad = 0;
    static const int cases[][4] = {{2000, 64, 16, 20}, {777, 768, 5, 50}, {33, 7, 3, 33}, {1, 5, 2, 1}};
    for (int c = 0; c < 4; c++) {
        int32_t n = cases[c][0];
        int D = cases[c][1], nq = cases[c][2], k = cases[c][3];
        float *items = malloc(sizeof(float) * (size_t)n * D), *Q = malloc(sizeof(float) * (size_t)nq * D);
        for (int32_t i = 0; i < n; i++) {
            for (int d = 0; d < D; d++) items[(size_t)i * D + d] = urand();
            normalize(items + (size_t)i * D, D);
        }
        for (int q = 0; q < nq; q++) {
            for (int d = 0; d < D; d++) Q[(size_t)q * D + d] = urand();
            normalize(Q + (size_t)q * D, D);
        }
        double cand = run_case(items, n, D, Q, nq, k, &bad);
        printf("    n %d, D %d, k %d: %.1f candidates rescored per query\n", (int)n, D, k, cand);
        if (n >= 777) CHECK(cand < n / 2.0); /* the scan prunes */
        free(items), free(Q);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(near_ties_and_duplicates) {
    /* groups of items that differ from each other far below bf16 resolution (one component
     * nudged by a few fp32 ulps), and exact duplicates: bf16 cannot tell them apart, the
     * exact ranking can (and duplicates go by id) */
    int bad = 0;
    int D = 96, nq = 8, k = 10;
    int32_t n = 600;
    float *items = malloc(sizeof(float) * (size_t)n * D), *Q = malloc(sizeof(float) * (size_t)nq * D);
    float base[4][96];
    for (int g = 0; g < 4; g++) {
        for (int d = 0; d < D; d++) base[g][d] = urand();
        normalize(base[g], D);
    }
    for (int32_t i = 0; i < n; i++) {
        float *v = items + (size_t)i * D;
        memcpy(v, base[i % 4], sizeof(float) * (size_t)D);
        if (i % 3) /* every third item an exact duplicate of its base */
            for (int d = 0; d < D; d++) v[d] = nextafterf(v[d], (i * 7 + d) % 2 ? 2.0f : -2.0f);
        if (i % 5 == 0) v[i % D] += 1e-6f * urand();
    }
    for (int q = 0; q < nq; q++) {
        for (int d = 0; d < D; d++) Q[(size_t)q * D + d] = base[q % 4][d] + 0.01f * urand();
        normalize(Q + (size_t)q * D, D);
    }
    double cand = run_case(items, n, D, Q, nq, k, &bad);
    printf("    %.1f candidates per query (near-ties: most of a group is rescored)\n", cand);
    CHECK(cand >= k);
    CHECK_EQ_INT(bad, 0);
    free(items), free(Q);
}

TEST(rejects_non_finite) {
    float items[6] = {1, 0, 0, 1, NAN, 0}, q[2] = {1, INFINITY};
    er_bf16_items b;
    CHECK(check_failed_with(er_bf16_items_init(&b, items, 3, 2), EASYREC_ERR_ARG, "item 2, component 0"));
    REQUIRE(er_bf16_items_init(&b, items, 2, 2) == EASYREC_OK);
    int32_t out[2];
    CHECK(check_failed_with(er_bf16_topk(&b, er_cpu_isa(), q, 1, 2, out, NULL), EASYREC_ERR_ARG, "not finite"));
    q[1] = 0.5f;
    REQUIRE(er_bf16_topk(&b, er_cpu_isa(), q, 1, 2, out, NULL) == EASYREC_OK);
    CHECK(out[0] == 0 && out[1] == 1);
    er_bf16_items_free(&b);
}

CHECK_MAIN(CASE(random_embeddings), CASE(near_ties_and_duplicates), CASE(rejects_non_finite))
