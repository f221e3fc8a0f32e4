/* test_eval.c — the evaluation kernels: Recall/NDCG on hand-computed rankings, top-K
 * selection against a full sort (ties, NaN) and fed in pieces, blocked ranking with masks
 * against a naive loop across thread counts, block sizes and GEMM backends, er_eval_run on the committed tiny dataset (expected values
 * worked out by hand in tools/gen_eval_fixtures.py's layout), user text from training
 * items, and the lexical / popularity / random scorers. The CLI end to end is in
 * test_eval_cli.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "core/rng.h"
#include "eval/eval.h"
#include "io/tensors.h"
#include "kernels/kernels.h"

#define TINY ER_FIXTURES "/eval/tiny" /* staged from the .in files of tests/fixtures/eval/tiny */

/* 1 / log2(j + 1) */
static double disc(int j) { return 1.0 / log2(j + 1.0); }

/* ---- metrics -------------------------------------------------------------------------- */

TEST(metrics_by_hand) {
    int32_t ranked[] = {3, 1, 4, 2, 0};
    int32_t pos2[] = {1, 2};
    /* hit at rank 2 of 3; IDCG over min(3, 2) = 2 positions */
    CHECK_NEAR(er_metrics_recall_at_k(ranked, 5, pos2, 2, 3), 0.5, 1e-15);
    CHECK_NEAR(er_metrics_ndcg_at_k(ranked, 5, pos2, 2, 3), disc(2) / (disc(1) + disc(2)), 1e-15);
    /* k = 5: hits at ranks 2 and 4 */
    CHECK_NEAR(er_metrics_recall_at_k(ranked, 5, pos2, 2, 5), 1.0, 1e-15);
    CHECK_NEAR(er_metrics_ndcg_at_k(ranked, 5, pos2, 2, 5), (disc(2) + disc(4)) / (disc(1) + disc(2)), 1e-15);
    /* fewer positives than k, hit at the top: perfect */
    int32_t pos1[] = {3};
    CHECK_NEAR(er_metrics_recall_at_k(ranked, 5, pos1, 1, 4), 1.0, 0);
    CHECK_NEAR(er_metrics_ndcg_at_k(ranked, 5, pos1, 1, 4), 1.0, 1e-15);
    /* more positives than k: recall denominator is |G| = 5, not min(k, |G|) */
    int32_t pos5[] = {0, 1, 2, 3, 4};
    CHECK_NEAR(er_metrics_recall_at_k(ranked, 5, pos5, 5, 2), 0.4, 1e-15);
    CHECK_NEAR(er_metrics_ndcg_at_k(ranked, 5, pos5, 5, 2), 1.0, 1e-15);
    /* no hit */
    int32_t pos9[] = {9};
    CHECK_NEAR(er_metrics_recall_at_k(ranked, 5, pos9, 1, 5), 0.0, 0);
    CHECK_NEAR(er_metrics_ndcg_at_k(ranked, 5, pos9, 1, 5), 0.0, 0);
    /* k larger than the list (catalogue of 3 items): positions past the end are misses;
     * IDCG still runs over min(k, |G|) = 2 */
    int32_t small[] = {2, 0, 1};
    int32_t pos01[] = {0, 1};
    CHECK_NEAR(er_metrics_recall_at_k(small, 3, pos01, 2, 10), 1.0, 0);
    CHECK_NEAR(er_metrics_ndcg_at_k(small, 3, pos01, 2, 10), (disc(2) + disc(3)) / (disc(1) + disc(2)), 1e-15);
    /* er_metrics_user does every k at once */
    int ks[] = {3, 5};
    double r[2], n[2];
    er_metrics_user(ranked, 5, pos2, 2, ks, 2, r, n);
    CHECK(r[0] == 0.5 && r[1] == 1.0 && n[1] == er_metrics_ndcg_at_k(ranked, 5, pos2, 2, 5));
}

/* ---- top-K selection ------------------------------------------------------------------ */

TEST(topk_ties_and_nan) {
    float s[] = {0.5f, 0.9f, 0.5f, 0.9f, NAN, -INFINITY, 0.7f};
    er_topk_entry heap[7];
    int32_t out[7], ref[7];
    er_topk_select(s, 7, 3, heap, out);
    CHECK(out[0] == 1 && out[1] == 3 && out[2] == 6); /* equal scores: lower id first */
    er_topk_select(s, 7, 7, heap, out);
    int32_t want[] = {1, 3, 6, 0, 2, 4, 5}; /* NaN as -inf, ties with -inf by id */
    for (int j = 0; j < 7; j++) CHECK_EQ_INT(out[j], want[j]);
    REQUIRE(er_topk_select_naive(s, 7, 7, ref) == 0);
    CHECK(!memcmp(out, ref, sizeof ref));
    float one = 2.0f;
    er_topk_select(&one, 1, 1, heap, out);
    CHECK(out[0] == 0);
}

TEST(topk_matches_full_sort) {
    er_rng g;
    er_rng_seed(&g, 7);
    enum { N = 3000 };
    static float s[N];
    static er_topk_entry heap[N];
    static int32_t a[N], b[N];
    for (int trial = 0; trial < 200; trial++) {
        int32_t n = 1 + (int32_t)er_rng_below(&g, N);
        int k = 1 + (int)er_rng_below(&g, (uint64_t)(n < 64 ? n : 64));
        if (trial % 10 == 0) k = n;
        int levels = trial % 3 == 0 ? 5 : 1 << 20; /* few distinct values: many ties */
        for (int32_t i = 0; i < n; i++) s[i] = (float)er_rng_below(&g, (uint64_t)levels) / levels - 0.5f;
        if (trial % 7 == 0) s[er_rng_below(&g, (uint64_t)n)] = NAN;
        er_topk_select(s, n, k, heap, a);
        REQUIRE(er_topk_select_naive(s, n, k, b) == 0);
        if (memcmp(a, b, (size_t)k * sizeof(*a))) {
            CHECK_FAILMSG("trial %d n %d k %d differs", trial, n, k);
            break;
        }
    }
}

TEST(topk_stream_in_pieces) {
    er_rng g;
    er_rng_seed(&g, 5);
    enum { N = 2000 };
    static float s[N];
    static er_topk_entry h1[N], h2[N];
    static int32_t a[N], b[N];
    for (int trial = 0; trial < 200; trial++) {
        int32_t n = 1 + (int32_t)er_rng_below(&g, N);
        int k = 1 + (int)er_rng_below(&g, (uint64_t)(n < 40 ? n : 40));
        if (trial % 9 == 0) k = n;
        int levels = trial % 3 == 0 ? 4 : 1 << 20;
        for (int32_t i = 0; i < n; i++) s[i] = (float)er_rng_below(&g, (uint64_t)levels) / levels - 0.5f;
        if (trial % 5 == 0) s[er_rng_below(&g, (uint64_t)n)] = NAN;
        if (trial % 11 == 0) s[er_rng_below(&g, (uint64_t)n)] = -INFINITY;
        er_topk_select(s, n, k, h1, a);
        /* pieces of 1..40 items: some end while the heap is still filling */
        er_topk_stream st;
        er_topk_stream_init(&st, h2, k);
        for (int32_t i0 = 0; i0 < n;) {
            int32_t m = 1 + (int32_t)er_rng_below(&g, 40);
            if (m > n - i0) m = n - i0;
            er_topk_stream_push(&st, s + i0, i0, m);
            i0 += m;
        }
        er_topk_stream_finish(&st, b);
        if (memcmp(a, b, (size_t)k * sizeof(*a))) {
            CHECK_FAILMSG("trial %d n %d k %d: pieces differ from one call", trial, n, k);
            break;
        }
    }
}

/* ---- blocked ranking ------------------------------------------------------------------ */

/* random integer-valued embeddings (exact dot products) and a random mask */
TEST(rank_blocks_masks_threads) {
    enum { U = 37, I = 53, D = 8, K = 7 };
    static float ue[U * D], ie[I * D], sc[I];
    er_rng g;
    er_rng_seed(&g, 11);
    for (int k = 0; k < U * D; k++) ue[k] = (float)((int)er_rng_below(&g, 7) - 3);
    for (int k = 0; k < I * D; k++) ie[k] = (float)((int)er_rng_below(&g, 7) - 3);
    int32_t mr[200], mc[200];
    for (int k = 0; k < 200; k++) {
        mr[k] = (int32_t)er_rng_below(&g, U);
        mc[k] = (int32_t)er_rng_below(&g, I);
    }
    er_csr mask;
    REQUIRE(er_csr_from_pairs(U, I, mr, mc, 200, &mask) == 0);
    int32_t users[U], E = 0;
    for (int32_t u = 0; u < U; u += 1 + (u % 3)) users[E++] = u; /* a non-contiguous subset */
    er_dense_scorer d = {ue, ie, I, D};
    er_scorer s;
    er_dense_scorer_bind(&d, &s);
    static int32_t r1[U * K], r4[U * K], ref[K];
    er_rank_opts o = {.n_items = I, .k = K, .mask = {&mask, NULL}, .threads = 1, .block_bytes = 5 * I * sizeof(float)};
    REQUIRE(er_topk_rank(&s, users, E, &o, r1) == 0);
    o.threads = 4;
    o.block_bytes = 0;
    REQUIRE(er_topk_rank(&s, users, E, &o, r4) == 0);
    CHECK(!memcmp(r1, r4, (size_t)E * K * sizeof(int32_t)));
    for (int32_t e = 0; e < E; e++) {
        int32_t u = users[e];
        for (int i = 0; i < I; i++) {
            float v = 0;
            for (int k = 0; k < D; k++) v += ue[u * D + k] * ie[i * D + k];
            sc[i] = er_csr_has(&mask, u, i) ? ER_MASK_SCORE : v;
        }
        REQUIRE(er_topk_select_naive(sc, I, K, ref) == 0);
        if (memcmp(ref, r1 + e * K, sizeof ref)) CHECK_FAILMSG("user %d: blocked ranking differs from naive", u);
    }
    er_csr_free(&mask);
}

/* The dense scorer by item ranges against the naive loop on exact integer dot products:
 * ranges that end inside a 256-item range, blocks of 256, 37 and 3 users (a block of at
 * most 8 takes the dot products, a larger one the GEMM with its users packed), 1 and 2
 * threads, own kernel and CBLAS. */
TEST(rank_item_ranges) {
    enum { U = 300, I = 700, D = 40, K = 20 };
    static float ue[U * D], ie[I * D], sc[I];
    er_rng g;
    er_rng_seed(&g, 3);
    for (int k = 0; k < U * D; k++) ue[k] = (float)((int)er_rng_below(&g, 9) - 4);
    for (int k = 0; k < I * D; k++) ie[k] = (float)((int)er_rng_below(&g, 9) - 4);
    enum { NM = 3000 };
    static int32_t mr[NM], mc[NM];
    for (int k = 0; k < NM; k++) {
        mr[k] = (int32_t)er_rng_below(&g, U);
        mc[k] = (int32_t)er_rng_below(&g, I);
    }
    er_csr mask;
    REQUIRE(er_csr_from_pairs(U, I, mr, mc, NM, &mask) == 0);
    static int32_t users[U], got[U * K], ref[U * K];
    int32_t E = 0;
    for (int32_t u = 0; u < U; u += 1 + (u % 2)) users[E++] = u;
    for (int32_t e = 0; e < E; e++) {
        int32_t u = users[e];
        for (int i = 0; i < I; i++) {
            float x = 0;
            for (int k = 0; k < D; k++) x += ue[u * D + k] * ie[i * D + k];
            sc[i] = er_csr_has(&mask, u, i) ? ER_MASK_SCORE : x;
        }
        REQUIRE(er_topk_select_naive(sc, I, K, ref + e * K) == 0);
    }
    er_dense_scorer d = {ue, ie, I, D};
    er_scorer s;
    er_dense_scorer_bind(&d, &s);
    er_rank_opts o = {.n_items = I, .k = K, .mask = {&mask, NULL}};
    size_t blocks[] = {0, 37 * ER_RANK_ITEM_CHUNK * sizeof(float), 3 * ER_RANK_ITEM_CHUNK * sizeof(float)};
    for (int backend = 0; backend < 2; backend++) {
        if (backend == 1 && !er_gemm_has_own_kernel()) break;
        er_gemm_force_backend(backend);
        for (int v = 0; v < 3; v++)
            for (o.threads = 1; o.threads <= 2; o.threads++) {
                o.block_bytes = blocks[v];
                REQUIRE(er_topk_rank(&s, users, E, &o, got) == 0);
                if (memcmp(got, ref, (size_t)E * K * sizeof(int32_t)))
                    CHECK_FAILMSG("%s, block %d, %d threads: ranking differs from naive", er_gemm_backend(), v, o.threads);
            }
    }
    er_gemm_set_backend(ER_GEMM_AUTO);
    er_csr_free(&mask);
}

/* ---- er_eval_run on the tiny dataset ----------------------------------------------------- */

static float *load(const char *path) {
    float *x = NULL;
    int nd;
    int64_t sh[ER_MAX_DIMS];
    REQUIRE(er_npy_read_f32(path, &x, &nd, sh) == 0);
    return x;
}

TEST(eval_tiny_by_hand) {
    er_dataset ds;
    REQUIRE(er_dataset_open_dir(TINY, &ds) == 0);
    float *U = load(TINY "/U.npy"), *I = load(TINY "/I.npy");
    er_dense_scorer d = {U, I, 6, 2};
    er_scorer sc;
    er_dense_scorer_bind(&d, &sc);
    er_eval_setup s = {.ds = &ds, .split = ER_SPLIT_TST, .ks = {1, 2, 10}, .nk = 3, .threads = 2};
    er_set_result r;
    /* users 0, 1, 3 (user 2 has no test item). Rankings after masking train items:
     *   u0 (train 0; test 2, 4): 1 2 3 4 5 | 0   (items 1, 2 tie at 0.45: lower id first)
     *   u1 (train 1, 2; test 0): 0 3 4 5 | 1 2
     *   u3 (train 5; test 3, 4; user = -x): 4 3 1 2 0 | 5 */
    REQUIRE(er_eval_run(&s, &sc, &r) == 0);
    CHECK_NEAR(r.recall[0], (0 + 1 + 0.5) / 3, 1e-12);
    CHECK_NEAR(r.ndcg[0], (0 + 1 + 1) / 3.0, 1e-12);
    CHECK_NEAR(r.recall[1], (0.5 + 1 + 1) / 3, 1e-12);
    double u0 = disc(2) / (disc(1) + disc(2));
    CHECK_NEAR(r.ndcg[1], (u0 + 1 + 1) / 3, 1e-12);
    /* k = 10 > 6 items: every list holds all 6 */
    CHECK_NEAR(r.recall[2], 1.0, 1e-12);
    CHECK_NEAR(r.ndcg[2], ((disc(2) + disc(4)) / (disc(1) + disc(2)) + 1 + 1) / 3, 1e-12);
    /* --mask-val: u0's val item 1 also goes down: 2 3 4 5 | 0 1 */
    s.mask_val = 1;
    REQUIRE(er_eval_run(&s, &sc, &r) == 0);
    CHECK_NEAR(r.recall[0], (0.5 + 1 + 0.5) / 3, 1e-12);
    CHECK_NEAR(r.ndcg[1], (1 / (disc(1) + disc(2)) + 1 + 1) / 3, 1e-12);
    /* val split: only u0 (val item 1, ranked first) */
    s.mask_val = 0;
    s.split = ER_SPLIT_VAL;
    int32_t *users, n;
    REQUIRE(er_eval_users(&s, &users, &n) == 0);
    CHECK(n == 1 && users[0] == 0);
    free(users);
    REQUIRE(er_eval_run(&s, &sc, &r) == 0);
    CHECK(r.recall[0] == 1.0 && r.ndcg[0] == 1.0);
    free(U);
    free(I);
    er_dataset_free(&ds);
}

TEST(user_text_from_training_items) {
    er_dataset ds;
    REQUIRE(er_dataset_open_dir(TINY, &ds) == 0);
    er_texts items, users;
    REQUIRE(er_dataset_read_profiles(&ds, ds.sets[0].item_path, 0, &items) == 0);
    REQUIRE(er_eval_user_text_from_items(&ds.split[ER_SPLIT_TRN], &items, 1, &users) == 0);
    REQUIRE(users.n == 4);
    CHECK(!strcmp(users.text[0], items.text[0])); /* u0: train {0}; val 1 and test 2, 4 never used */
    CHECK(!strcmp(users.text[1], items.text[1])); /* first K = 1 in ascending id */
    CHECK(users.len[2] == 0 && users.text[2][0] == 0);
    er_texts_free(&users);
    REQUIRE(er_eval_user_text_from_items(&ds.split[ER_SPLIT_TRN], &items, 5, &users) == 0);
    char want[512];
    snprintf(want, sizeof want, "%s %s", items.text[1], items.text[2]);
    CHECK(!strcmp(users.text[1], want) && users.len[1] == strlen(want));
    er_texts_free(&users);
    /* set rules: diverse1 has no user text */
    er_utext prof = {ER_UTEXT_PROFILES, 0}, it = {ER_UTEXT_ITEMS, 2}, aut = {ER_UTEXT_AUTO, 2};
    CHECK(er_eval_set_unusable(&ds, 0, prof) == NULL);
    CHECK(er_eval_set_unusable(&ds, 2, prof) && !strcmp(er_eval_set_unusable(&ds, 2, prof), "no user profiles"));
    CHECK(er_eval_set_unusable(&ds, 2, aut) == NULL);
    er_texts ti, tu;
    char rule[32];
    REQUIRE(er_eval_set_texts(&ds, 2, aut, &ti, &tu, rule, sizeof rule) == 0);
    CHECK(!strcmp(rule, "items:2") && tu.n == 4 && strstr(tu.text[1], "running shoes")); /* diverse1 = lower-case */
    er_texts_free(&ti);
    er_texts_free(&tu);
    REQUIRE(er_eval_set_texts(&ds, 0, aut, &ti, &tu, rule, sizeof rule) == 0);
    CHECK(!strcmp(rule, "profiles") && strstr(tu.text[0], "running"));
    er_texts_free(&ti);
    er_texts_free(&tu);
    REQUIRE(er_eval_set_texts(&ds, 1, it, &ti, &tu, rule, sizeof rule) == 0);
    CHECK(!strcmp(rule, "items:2") && strstr(tu.text[0], "CHESS"));
    er_texts_free(&ti);
    er_texts_free(&tu);
    CHECK(er_eval_set_texts(&ds, 2, prof, &ti, &tu, rule, sizeof rule) == EASYREC_ERR_ARG);
    CHECK(strstr(easyrec_last_error(), "diverse1") && ti.n == 0);
    er_texts_free(&items);
    er_dataset_free(&ds);
}

/* ---- baselines ------------------------------------------------------------------------ */

static char terms_seen[256];
static void add_term(const char *t, size_t n, void *user) {
    size_t k = strlen(terms_seen);
    snprintf(terms_seen + k, sizeof terms_seen - k, "%.*s|", (int)n, t);
}

static er_texts make_texts(const char **s, size_t n) {
    er_texts t = {0};
    t.text = calloc(n, sizeof(*t.text));
    t.len = calloc(n, sizeof(*t.len));
    t.n = n;
    for (size_t i = 0; i < n; i++) {
        t.text[i] = strdup(s[i]);
        t.len[i] = strlen(s[i]);
    }
    return t;
}

TEST(lexical_bm25_tfidf_by_hand) {
    const char *t = "Hello, WORLD!  caf\xc3\xa9 x2--y";
    er_lexical_terms(t, strlen(t), add_term, NULL);
    CHECK(!strcmp(terms_seen, "hello|world|caf\xc3\xa9|x2|y|"));
    const char *docs[] = {"apple banana", "Apple apple cherry", "durian", "cherry, APPLE"};
    const char *qs[] = {"apple cherry", "zzz unknown", ""};
    er_texts items = make_texts(docs, 4), users = make_texts(qs, 3);
    er_lexical *lx;
    REQUIRE(er_lexical_build(ER_LEX_BM25, &items, &users, &lx) == 0);
    er_scorer sc;
    er_lexical_scorer_bind(lx, &sc);
    float out[3 * 4];
    int32_t us[] = {0, 1, 2};
    sc.score(sc.ctx, us, 3, out, NULL);
    /* N = 4, avgdl = (2 + 3 + 1 + 2) / 4 = 2; df(apple) = 3, df(cherry) = 2 */
    double ia = log(1 + (4 - 3 + 0.5) / 3.5), ic = log(1 + (4 - 2 + 0.5) / 2.5);
    double k1 = 1.2, b = 0.75;
#define TFP(tf, dl) ((tf) * (k1 + 1) / ((tf) + k1 * (1 - b + b * (dl) / 2.0)))
    CHECK_NEAR(out[0], ia * TFP(1, 2), 1e-6);
    CHECK_NEAR(out[1], ia * TFP(2, 3) + ic * TFP(1, 3), 1e-6);
    CHECK_NEAR(out[2], 0, 0);
    CHECK_NEAR(out[3], ia * TFP(1, 2) + ic * TFP(1, 2), 1e-6);
    for (int i = 4; i < 12; i++) CHECK(out[i] == 0); /* unknown terms, empty query */
    er_lexical_free(lx);
    /* TF-IDF: cosine, so a document with the query's bag scores 1, a disjoint one 0 */
    REQUIRE(er_lexical_build(ER_LEX_TFIDF, &items, &users, &lx) == 0);
    er_lexical_scorer_bind(lx, &sc);
    sc.score(sc.ctx, us, 1, out, NULL);
    CHECK_NEAR(out[3], 1.0, 1e-6);
    CHECK_NEAR(out[2], 0.0, 0);
    CHECK(out[1] > out[0] && out[1] < 1);
    er_lexical_free(lx);
    er_lexical_free(NULL);
    er_texts_free(&items);
    er_texts_free(&users);
}

TEST(popularity_and_random) {
    er_dataset ds;
    REQUIRE(er_dataset_open_dir(TINY, &ds) == 0);
    er_popularity p;
    REQUIRE(er_popularity_init(&p, &ds.split[ER_SPLIT_TRN]) == 0);
    CHECK(p.count[0] == 1 && p.count[1] == 1 && p.count[3] == 0 && p.count[5] == 1);
    er_scorer sc;
    er_popularity_scorer_bind(&p, &sc);
    int32_t users[] = {0, 1, 3}, ranked[3 * 6];
    er_rank_opts o = {.n_items = 6, .k = 6, .mask = {&ds.split[ER_SPLIT_TRN], NULL}, .threads = 1};
    REQUIRE(er_topk_rank(&sc, users, 3, &o, ranked) == 0);
    int32_t want0[] = {1, 2, 5, 3, 4, 0}; /* counts 1,1,1 then 0,0 by id; masked item last */
    CHECK(!memcmp(ranked, want0, sizeof want0));
    er_popularity_free(&p);
    /* random: a user's scores do not depend on its block or neighbours */
    er_random_scorer rs = {42, 6};
    er_random_scorer_bind(&rs, &sc);
    float a[3 * 6], b[6];
    sc.score(sc.ctx, users, 3, a, NULL);
    sc.score(sc.ctx, users + 2, 1, b, NULL);
    CHECK(!memcmp(a + 12, b, sizeof b));
    for (int i = 0; i < 18; i++) CHECK(a[i] >= 0 && a[i] < 1);
    rs.seed = 43;
    sc.score(sc.ctx, users + 2, 1, b, NULL);
    CHECK(memcmp(a + 12, b, sizeof b));
    er_dataset_free(&ds);
}

CHECK_MAIN(CASE(metrics_by_hand), CASE(topk_ties_and_nan), CASE(topk_matches_full_sort), CASE(topk_stream_in_pieces),
           CASE(rank_blocks_masks_threads), CASE(rank_item_ranges), CASE(eval_tiny_by_hand), CASE(user_text_from_training_items),
           CASE(lexical_bm25_tfidf_by_hand), CASE(popularity_and_random))
