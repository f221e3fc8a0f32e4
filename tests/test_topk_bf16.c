/* test_topk_bf16.c — top-K from a bf16 item scan with fp32 rescoring (src/eval/topk_bf16.c,
 * put together by er_recommend of src/serve/recommender.c, run here on one thread; its
 * threads and batches are tests/test_recommend.c's) equals the exact top-K
 * (double-accumulated scores rounded to float, ties by lower item id) on random embeddings,
 * on near-ties below bf16 resolution, on exact duplicates, on inputs whose every component
 * bf16 rounds by the most it can (one built so that a bound of half the size would prune the
 * true best item), and at every ISA level; the candidate set stays small on well-separated
 * scores; the packed copy follows a matrix that changes (rows
 * replaced, appended, dropped). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "eval/eval.h"
#include "eval/topk_bf16.h"
#include "serve/recommender.h"

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

/* out (nq, k): the ids of each query's top k through er_recommend on one thread, scanning at
 * b->m.isa; -1 past the hits it returned */
static int topk_ids(const er_bf16_items *b, const float *Q, int nq, int k, int32_t *out) {
    er_hit *h = malloc(sizeof(er_hit) * (size_t)nq * k);
    int *nh = malloc(sizeof(int) * (size_t)nq);
    REQUIRE(h && nh);
    int rc = er_recommend(b, Q, nq, k, NULL, 1, NULL, h, nh);
    for (int q = 0; q < nq && !rc; q++)
        for (int j = 0; j < k; j++) out[(size_t)q * k + j] = j < nh[q] ? h[(size_t)q * k + j].row : -1;
    free(h), free(nh);
    return rc;
}

/* items er_bf16_refine rescores for the queries Q (nq, D) at the fastest level, summed */
static int64_t candidates(const er_bf16_items *b, const float *Q, int nq, int k) {
    float *a = malloc(sizeof(float) * (size_t)b->n), *sc = malloc(sizeof(float) * (size_t)k);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)k), nc;
    er_bf16_refine_scratch s = {0};
    int64_t sum = 0;
    for (int q = 0; q < nq; q++) {
        const float *qv = Q + (size_t)q * b->dim;
        er_bf16_scan(b, er_cpu_isa(), qv, 1, 0, b->m.panels, a, (size_t)b->n);
        REQUIRE(er_bf16_refine(b, qv, a, k, NULL, 0, &s, ids, sc, &nc) >= 0);
        sum += nc;
    }
    er_bf16_refine_scratch_free(&s);
    free(a), free(sc), free(ids);
    return sum;
}

/* every level: same ids as the reference; returns mean candidates per query */
static double run_case(const float *items, int32_t n, int D, const float *Q, int nq, int k, int *bad) {
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, n, D) == EASYREC_OK);
    int32_t *got = malloc(sizeof(int32_t) * (size_t)nq * k), *ref = malloc(sizeof(int32_t) * (size_t)k);
    double cand = (double)candidates(&b, Q, nq, k) / nq;
    for (int lv = (int)er_cpu_isa(); lv >= 0; lv--) {
        b.m.isa = (er_isa)lv;
        REQUIRE(topk_ids(&b, Q, nq, k, got) == EASYREC_OK);
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

/* Two items on disjoint coordinates. q rounds down (ties to even) on A's 401 coordinates
 * and up on B's 400; A rounds down, B up. A's exact score 401 (1 + 2^-8)^2 beats B's
 * 400 (1 + 2^-8 + 2^-23)^2, but bf16 scores them 401 and 400 (1 + 2^-7)^2: an inversion of
 * 5.3 where an error bound of 2^-8 ||q|| ||v|| per item (half the true one) sums to 4.5 and
 * would drop A without rescoring it. */
TEST(worst_case_rounding) {
    const int m1 = 401, m2 = 400, D = m1 + m2;
    float *items = calloc((size_t)2 * D, sizeof(float)), *q = malloc(sizeof(float) * (size_t)D);
    const float down = 1.0f + 0x1p-8f, upv = 1.0f + 0x1p-8f + 0x1p-23f;
    CHECK(er_f32_to_bf16_bits(down) == 0x3f80 && er_f32_to_bf16_bits(upv) == 0x3f81);
    for (int d = 0; d < D; d++) q[d] = d < m1 ? down : upv;
    for (int d = m1; d < D; d++) items[d] = upv; /* B, id 0 */
    for (int d = 0; d < m1; d++) items[D + d] = down; /* A, id 1 */
    int bad = 0;
    run_case(items, 2, D, q, 1, 1, &bad);
    CHECK_EQ_INT(bad, 0);
    int32_t ref;
    reference(items, 2, D, q, 1, &ref);
    CHECK_EQ_INT(ref, 1);
    free(items), free(q);
}

/* a value whose bf16 rounding error is (nearly) the largest relative one: just below or
 * at (rounding down) or just above (rounding up) the midpoint 1 + 2^-8, times 2^e */
static float worst(int up, int e, int neg) {
    float x = up ? 1.0f + 0x1p-8f + 0x1p-23f : 1.0f + 0x1p-8f;
    x = ldexpf(x, e);
    return neg ? -x : x;
}

TEST(adversarial_rounding) {
    /* every component at a worst-case rounding point, directions correlated per item
     * (whole items round up or down) and across items in groups whose exact scores differ
     * by a few units in the last place: many inversions under bf16, the answer unchanged */
    int bad = 0;
    const int D = 64, nq = 6;
    const int32_t n = 1500;
    float *items = malloc(sizeof(float) * (size_t)n * D), *Q = malloc(sizeof(float) * (size_t)nq * D);
    for (int32_t i = 0; i < n; i++) {
        int up = i % 2, g = i % 7;
        for (int d = 0; d < D; d++) {
            float u = urand();
            int e = -3 - (d + g) % 3;
            items[(size_t)i * D + d] = u < -0.8f ? 0.0f : worst(up ^ (u > 0.9f), e, (d * 5 + g) % 9 == 0);
        }
    }
    for (int q = 0; q < nq; q++)
        for (int d = 0; d < D; d++) Q[(size_t)q * D + d] = worst((d + q) % 2, -2 - (d % 2), (d * 5) % 9 == 0 && q % 2);
    static const int ks[] = {1, 10, 100};
    for (int c = 0; c < 3; c++) {
        double cand = run_case(items, n, D, Q, nq, ks[c], &bad);
        printf("    k %d: %.1f candidates per query\n", ks[c], cand);
    }
    CHECK_EQ_INT(bad, 0);
    free(items), free(Q);
}

/* the packed copy follows its matrix: rows replaced (er_bf16_items_update), appended after the
 * matrix moved and dropped at the end (er_bf16_items_resize); refused rows change nothing */
TEST(follows_changes) {
    const int D = 40, nq = 4, k = 7;
    int32_t n = 300, cap = 1200;
    float *items = malloc(sizeof(float) * (size_t)cap * D), *Q = malloc(sizeof(float) * (size_t)nq * D);
    for (size_t i = 0; i < (size_t)cap * D; i++) items[i] = urand();
    for (int q = 0; q < nq * D; q++) Q[q] = urand();
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, n, D) == EASYREC_OK);
    int bad = 0;
    int32_t *got = malloc(sizeof(int32_t) * (size_t)nq * k), ref[7];
    for (int step = 0; step < 6; step++) {
        if (step == 1 || step == 4) /* replace rows, some now the best */
            for (int r = 0; r < 20; r++) {
                int32_t i = (int32_t)((r * 37 + step) % n);
                for (int d = 0; d < D; d++) items[(size_t)i * D + d] = r % 3 ? urand() : 2.0f * Q[d];
                REQUIRE(er_bf16_items_update(&b, i) == EASYREC_OK);
            }
        if (step == 2) { /* the matrix moves and grows past the packed room */
            float *moved = malloc(sizeof(float) * (size_t)cap * D);
            memcpy(moved, items, sizeof(float) * (size_t)cap * D);
            free(items);
            items = moved;
            n = 1100;
            REQUIRE(er_bf16_items_resize(&b, items, n) == EASYREC_OK);
        }
        if (step == 3 || step == 5) { /* drop rows at the end, then take some back (packed again) */
            REQUIRE(er_bf16_items_resize(&b, items, n - 250) == EASYREC_OK);
            for (int d = 0; d < D; d++) items[(size_t)(n - 1) * D + d] = 3.0f * Q[D + d];
            REQUIRE(er_bf16_items_resize(&b, items, n - (step == 3 ? 1 : 0)) == EASYREC_OK);
            n -= step == 3 ? 1 : 0;
        }
        CHECK_EQ_INT(b.n, n);
        REQUIRE(topk_ids(&b, Q, nq, k, got) == EASYREC_OK);
        for (int q = 0; q < nq; q++) {
            reference(items, n, D, Q + (size_t)q * D, k, ref);
            if (memcmp(ref, got + (size_t)q * k, sizeof ref) && bad++ < 3) printf("    step %d, query %d differs\n", step, q);
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* refused: a non-finite row, a norm past 2^60; the packed row stays as it was */
    float keep = items[5 * D];
    items[5 * D] = NAN;
    CHECK(check_failed_with(er_bf16_items_update(&b, 5), EASYREC_ERR_ARG, "item 5 has a component that is not finite"));
    items[5 * D] = 0x1p61f;
    CHECK(check_failed_with(er_bf16_items_update(&b, 5), EASYREC_ERR_ARG, "item 5 has norm"));
    items[(size_t)n * D] = INFINITY;
    CHECK(check_failed_with(er_bf16_items_resize(&b, items, n + 1), EASYREC_ERR_ARG, "not finite"));
    CHECK_EQ_INT(b.n, n);
    items[5 * D] = keep;
    REQUIRE(topk_ids(&b, Q, 1, k, got) == EASYREC_OK);
    reference(items, n, D, Q, k, ref);
    CHECK(!memcmp(ref, got, sizeof ref));
    CHECK(er_bf16_items_bytes(&b) >= (size_t)n * D * 2);
    er_bf16_items_free(&b);
    free(items), free(Q), free(got);
}

TEST(rejects_non_finite) {
    float items[6] = {1, 0, 0, 1, NAN, 0}, q[2] = {1, INFINITY};
    er_bf16_items b;
    CHECK(check_failed_with(er_bf16_items_init(&b, items, 3, 2), EASYREC_ERR_ARG, "item 2 has a component that is not finite"));
    REQUIRE(er_bf16_items_init(&b, items, 2, 2) == EASYREC_OK);
    int32_t out[2];
    CHECK(check_failed_with(topk_ids(&b, q, 1, 2, out), EASYREC_ERR_ARG, "not finite"));
    q[1] = 0.5f;
    REQUIRE(topk_ids(&b, q, 1, 2, out) == EASYREC_OK);
    CHECK(out[0] == 0 && out[1] == 1);
    er_bf16_items_free(&b);
}

CHECK_MAIN(CASE(random_embeddings), CASE(near_ties_and_duplicates), CASE(worst_case_rounding), CASE(adversarial_rounding),
           CASE(follows_changes), CASE(rejects_non_finite))
