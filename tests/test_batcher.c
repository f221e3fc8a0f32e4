/* test_batcher.c — the server's encoder pool (src/serve/batcher.h) on a small random model
 * (needs ../shared/vocab; skipped if absent): sequences handed in by many threads at once
 * come back as easyrec_encode_ids makes them one at a time; a call whose tokens pass the
 * round's budget (threads x --max-batch-tokens) is encoded in rounds that respect it; the
 * counters add up; bad sequences are refused, and errors raised on the encoder or scoring
 * thread reach the caller with their own message. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "serve/batcher.h"

static const char *tmp(void) { return check_tmpdir("batcher"); }

#define NT 12   /* caller threads */
#define PER 3   /* sequences per call */
#define CALLS 4 /* calls per thread */
#define LMAX 30

static easyrec_model *model;
static er_pool *pool;
static int32_t seq[NT][CALLS][PER][LMAX];
static int len[NT][CALLS][PER];
static float got[NT][CALLS][PER][64];
static int call_rc[NT];

static void *caller(void *arg) {
    int t = (int)(intptr_t)arg;
    for (int c = 0; c < CALLS; c++) {
        const int32_t *ids[PER];
        for (int i = 0; i < PER; i++) ids[i] = seq[t][c][i];
        int rc = er_pool_encode(pool, ids, len[t][c], PER, &got[t][c][0][0]);
        if (rc) call_rc[t] = rc;
    }
    return NULL;
}

TEST(concurrent_callers_get_their_own_embeddings) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for a random model");
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 1 --hidden 64 --heads 2 "
                     "--ffn 128 --seed 9 2>/dev/null",
                     check_bin(), tmp()) == 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/model", tmp());
    REQUIRE(easyrec_model_load(dir, &model) == EASYREC_OK);
    REQUIRE(easyrec_model_dim(model) == 64);
    uint64_t x = 88172645463325252ull;
    for (int t = 0; t < NT; t++)
        for (int c = 0; c < CALLS; c++)
            for (int i = 0; i < PER; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                int L = 2 + (int)(x % (LMAX - 1));
                len[t][c][i] = L;
                seq[t][c][i][0] = 0; /* <s> ... </s> around random ids */
                for (int k = 1; k < L - 1; k++) seq[t][c][i][k] = 4 + (int)((x >> (k % 40)) % 5000);
                seq[t][c][i][L - 1] = 2;
            }
    er_pool_opts po = {2, 64, 64, EASYREC_POOL_DEFAULT};
    REQUIRE(er_pool_start(model, &po, &pool) == EASYREC_OK);
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) REQUIRE(pthread_create(&th[t], NULL, caller, (void *)(intptr_t)t) == 0);
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++) CHECK_EQ_INT(call_rc[t], 0);
    /* the reference: one sequence at a time, not normalised (the pool leaves that to the caller) */
    easyrec_ctx *ctx = easyrec_ctx_new(model);
    REQUIRE(ctx != NULL);
    easyrec_encode_opts eo;
    easyrec_encode_opts_init(&eo);
    eo.no_normalize = 1;
    eo.max_length = 64;
    double worst = 0;
    for (int t = 0; t < NT; t++)
        for (int c = 0; c < CALLS; c++)
            for (int i = 0; i < PER; i++) {
                const int32_t *ids = seq[t][c][i];
                float ref[64];
                REQUIRE(easyrec_encode_ids(ctx, &ids, &len[t][c][i], 1, &eo, ref) == EASYREC_OK);
                for (int d = 0; d < 64; d++) {
                    double e = fabs((double)ref[d] - got[t][c][i][d]) / (fabs(ref[d]) + 1e-3);
                    if (e > worst) worst = e;
                }
            }
    CHECK(worst <= 1e-5);
    er_pool_stats st;
    er_pool_stats_get(pool, &st);
    CHECK_EQ_INT(st.sequences, NT * CALLS * PER);
    CHECK_EQ_INT(st.queued, 0);
    uint64_t in_hist = 0;
    for (int b = 0; b < ER_BATCH_HIST; b++) in_hist += st.batch_hist[b];
    CHECK_EQ_INT(in_hist, st.batches);
    CHECK(st.batches >= 1 && st.batches <= st.sequences);

    /* one call past the round's budget: 20 sequences of 30 ids, 2 threads x 64 tokens a round
     * -> 4 sequences a round, 5 rounds of 4 */
    static int32_t big[20][30];
    const int32_t *bids[20];
    int blen[20];
    for (int i = 0; i < 20; i++) {
        big[i][0] = 0;
        for (int k = 1; k < 29; k++) big[i][k] = 10 + i * 30 + k;
        big[i][29] = 2;
        bids[i] = big[i];
        blen[i] = 30;
    }
    static float bout[20][64];
    er_pool_stats before;
    er_pool_stats_get(pool, &before);
    REQUIRE(er_pool_encode(pool, bids, blen, 20, &bout[0][0]) == EASYREC_OK);
    er_pool_stats_get(pool, &st);
    CHECK_EQ_INT(st.batches - before.batches, 5);
    CHECK_EQ_INT(st.batch_hist[2] - before.batch_hist[2], 5); /* rounds of 3..4 sequences */
    CHECK_EQ_INT(st.tokens - before.tokens, 600);
    float ref[64];
    REQUIRE(easyrec_encode_ids(ctx, &bids[13], &blen[13], 1, &eo, ref) == EASYREC_OK);
    for (int d = 0; d < 64; d++) CHECK_NEAR(bout[13][d], ref[d], 1e-5 * (fabs(ref[d]) + 1e-3));
    /* refused: a sequence over the budget, one with fewer than 2 ids */
    int toolong = 65, one = 1;
    static int32_t longseq[65];
    const int32_t *lp = longseq;
    CHECK(check_failed_with(er_pool_encode(pool, &lp, &toolong, 1, &bout[0][0]), EASYREC_ERR_ARG, "has 65 ids"));
    CHECK(check_failed_with(er_pool_encode(pool, &lp, &one, 1, &bout[0][0]), EASYREC_ERR_ARG, "has 1 ids"));
    /* an error on the encoder thread reaches the caller with its own message (not the
     * caller's previous one) */
    static int32_t badseq[3] = {0, 1 << 30, 2};
    const int32_t *bp = badseq;
    int three = 3;
    CHECK(check_failed_with(er_pool_encode(pool, &bp, &three, 1, &bout[0][0]), EASYREC_ERR_ARG, "outside the vocabulary"));
    easyrec_ctx_free(ctx);
    er_pool_stop(pool);
    easyrec_model_free(model);
}

/* the scoring queue: a query refused on the scoring thread fails the caller's call with that
 * thread's message; a good query after it is answered */
TEST(scorer_queue_error_reaches_the_caller) {
    enum { I = 40, D = 8 };
    float items[I * D], q[D];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < I * D; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        items[i] = (float)(x >> 40) / (float)(1 << 24) - 0.5f;
    }
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, I, D) == EASYREC_OK);
    er_scorer_q *sq;
    REQUIRE(er_scorer_q_start(&b, 2, &sq) == EASYREC_OK);
    er_hit hits[5];
    int nh = -1;
    memcpy(q, items + 3 * D, sizeof q);
    q[2] = NAN;
    er_error(EASYREC_ERR_IO, "an older message of this thread");
    CHECK(check_failed_with(er_scorer_q_run(sq, q, 5, NULL, 0, hits, &nh), EASYREC_ERR_ARG, "not finite"));
    q[2] = items[3 * D + 2];
    REQUIRE(er_scorer_q_run(sq, q, 5, NULL, 0, hits, &nh) == EASYREC_OK);
    CHECK_EQ_INT(nh, 5);
    er_scorer_q_stop(sq);
    er_bf16_items_free(&b);
}

CHECK_MAIN(CASE(concurrent_callers_get_their_own_embeddings), CASE(scorer_queue_error_reaches_the_caller))
