/* test_runtime.c — the library's runtime rules (include/easyrec.h): a host's OpenBLAS thread
 * count is left as it was; contexts made and freed on many threads leave nothing behind
 * (scratch freed at thread exit; under `make sanitize` LeakSanitizer checks the rest at
 * exit); a tokenizer error raised on a worker thread reaches the caller with its message;
 * cancellation through the options; the GEMM backend is the call's choice; NaN weights and
 * non-finite embeddings are errors. Self-contained: a tiny model with a 6-token BPE
 * vocabulary written to a temporary directory. */
#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "easyrec.h"
#include "eval/eval.h"
#include "kernels/kernels.h"
#include "model/model.h"

static char dir[64];

static void put(const char *name, const char *text) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    REQUIRE(er_write_file_atomic(p, text, strlen(text)) == EASYREC_OK);
}

/* a 1-layer model whose vocabulary knows only "a", "b" and the space: "c" cannot be tokenized
 * (no unk token) */
static easyrec_model *tiny(void (*edit)(easyrec_model *)) {
    if (!dir[0]) {
        strcpy(dir, "/tmp/easyrec-rt-XXXXXX");
        REQUIRE(mkdtemp(dir));
    }
    easyrec_config c = {0};
    c.n_layers = 1, c.hidden = 32, c.n_heads = 2, c.ffn = 64, c.vocab_size = 8, c.max_positions = 66;
    c.type_vocab_size = 1, c.pad_id = 1, c.layer_norm_eps = 1e-5f, c.is_roberta = 1, c.has_mlp = 1;
    easyrec_model *m = NULL;
    REQUIRE(easyrec_model_init(&c, 3, &m) == EASYREC_OK);
    if (edit) edit(m);
    REQUIRE(easyrec_model_save(m, dir) == EASYREC_OK);
    easyrec_model_free(m);
    put("vocab.json", "{\"<s>\": 0, \"<pad>\": 1, \"</s>\": 2, \"a\": 3, \"b\": 4, \"\\u0120\": 5}");
    put("merges.txt", "#version: 0.2\n");
    m = NULL;
    int rc = easyrec_model_load(dir, &m);
    if (rc) printf("    load: %s\n", easyrec_last_error());
    return m;
}

#define NT 300
static const char *texts[NT];
static void fill_texts(void) {
    static const char *forms[] = {"a", "ab", "ab ba", "a b a b a", "bbb aaa ab", "ab ab ab ab ab ab ab"};
    for (int i = 0; i < NT; i++) texts[i] = forms[i % 6];
}

TEST(host_blas_threads_unchanged) {
    easyrec_model *m = tiny(NULL);
    REQUIRE(m);
    fill_texts();
    openblas_set_num_threads(2);
    int before = openblas_get_num_threads();
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    float *e = malloc(sizeof(float) * NT * 32), *f = malloc(sizeof(float) * NT * 32);
    REQUIRE(ctx && e && f);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.threads = 2;
    o.batch_tokens = 64;
    CHECK(easyrec_encode(ctx, texts, NULL, NT, &o, e) == EASYREC_OK);
    CHECK_EQ_INT(openblas_get_num_threads(), before);
    o.gemm = EASYREC_GEMM_BLAS; /* every product through OpenBLAS */
    CHECK(easyrec_encode(ctx, texts, NULL, NT, &o, f) == EASYREC_OK);
    CHECK_EQ_INT(openblas_get_num_threads(), before);
    double md = 0;
    for (int i = 0; i < NT * 32; i++) md = fmax(md, fabs(e[i] - f[i]));
    CHECK(md < 1e-5);
    CHECK_EQ_INT(er_gemm_get_backend(), ER_GEMM_AUTO); /* the call's choice did not stick to this thread */
    int32_t ids[] = {0, 3, 4, 2};
    float h[4 * 32];
    CHECK(easyrec_hidden_states(ctx, ids, 4, h) == EASYREC_OK);
    CHECK_EQ_INT(openblas_get_num_threads(), before);
    /* evaluation's dense scorer */
    er_dense_scorer d = {e, f, NT, 32};
    er_scorer sc;
    er_dense_scorer_bind(&d, &sc);
    int32_t users[8] = {0, 1, 2, 3, 4, 5, 6, 7}, ranked[8 * 5];
    er_rank_opts ro = {NT, 5, {NULL, NULL}, 2, 0};
    CHECK(er_topk_rank(&sc, users, 8, &ro, ranked) == EASYREC_OK);
    CHECK_EQ_INT(openblas_get_num_threads(), before);
    free(e);
    free(f);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

static easyrec_model *shared_model;

static void *worker(void *arg) {
    int threads = (int)(intptr_t)arg;
    easyrec_ctx *ctx = easyrec_ctx_new(shared_model);
    float *e = malloc(sizeof(float) * 60 * 32);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.threads = threads;
    o.batch_tokens = 32;
    intptr_t rc = ctx && e ? easyrec_encode(ctx, texts, NULL, 60, &o, e) : -100;
    free(e);
    easyrec_ctx_free(ctx);
    return (void *)rc;
}

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

TEST(many_contexts_on_many_threads_leave_nothing) {
    shared_model = tiny(NULL);
    REQUIRE(shared_model);
    fill_texts();
    /* a fixed mmap threshold: every large block (packing buffers, activations) is an mmap
     * counted in hblkhd whichever thread's arena it came from */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    size_t base = 0;
    for (int round = 0; round < 8; round++) {
        pthread_t th[8];
        for (int t = 0; t < 8; t++) REQUIRE(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)(1 + t % 2)) == 0);
        for (int t = 0; t < 8; t++) {
            void *rc;
            pthread_join(th[t], &rc);
            CHECK_EQ_INT((int)(intptr_t)rc, EASYREC_OK);
        }
        if (round == 0) base = heap_in_use(); /* after the first round: OpenMP's pools exist */
    }
    size_t grown = heap_in_use() - base;
    if (heap_in_use() < base) grown = 0;
    /* 56 more threads, each of which ran GEMMs (0.8 MB of packing buffers) and BPE (a piece
     * cache): nothing of that may remain */
    if (grown > 4u << 20) CHECK_FAILMSG("heap grew by %zu bytes over 56 threads", grown);
    /* freeing the calling thread's scratch at once is allowed any time */
    easyrec_thread_cleanup();
    easyrec_thread_cleanup();
    easyrec_model_free(shared_model);
}

TEST(worker_tokenizer_error_reaches_the_caller) {
    easyrec_model *m = tiny(NULL);
    REQUIRE(m);
    fill_texts();
    const char *t[NT];
    memcpy(t, texts, sizeof t);
    t[137] = "ab c";
    t[250] = "cc";
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    float *e = malloc(sizeof(float) * NT * 32);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.threads = 2;
    er_clear_error();
    int rc = easyrec_encode(ctx, t, NULL, NT, &o, e);
    CHECK(check_failed_with(rc, EASYREC_ERR_FORMAT, "text 137: token 'c' is not in the vocabulary"));
    free(e);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

static void cancel_after_first(void *user, size_t done, size_t total) {
    *(volatile int *)user = 1;
    (void)done, (void)total;
}

TEST(cancellation) {
    easyrec_model *m = tiny(NULL);
    REQUIRE(m);
    fill_texts();
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    float *e = malloc(sizeof(float) * NT * 32);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    volatile int flag = 1;
    o.cancel = &flag;
    CHECK(check_failed_with(easyrec_encode(ctx, texts, NULL, NT, &o, e), EASYREC_ERR_CANCELLED, "cancelled"));
    flag = 0;
    o.batch_tokens = 8; /* many batches; the first one's progress sets the flag */
    o.progress = cancel_after_first;
    o.progress_user = (void *)&flag;
    CHECK(check_failed_with(easyrec_encode(ctx, texts, NULL, NT, &o, e), EASYREC_ERR_CANCELLED, "cancelled"));
    flag = 0;
    o.progress = NULL;
    CHECK(easyrec_encode(ctx, texts, NULL, NT, &o, e) == EASYREC_OK);
    free(e);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

static void poison_key(easyrec_model *m) {
    size_t n = 0;
    float *w = er_params_find(&m->cfg, &m->w, "encoder.layer.0.attention.self.key.weight", &n);
    REQUIRE(w && n > 40);
    w[40] = NAN;
}

static void overflow_last_ln(easyrec_model *m) {
    size_t n = 0;
    float *w = er_params_find(&m->cfg, &m->w, "encoder.layer.0.output.LayerNorm.weight", &n);
    REQUIRE(w);
    for (size_t i = 0; i < n; i++) w[i] = 3e38f;
}

TEST(non_finite_weights_and_outputs_are_errors) {
    easyrec_model *m = tiny(poison_key);
    CHECK(!m);
    CHECK(strstr(easyrec_last_error(), "roberta.encoder.layer.0.attention.self.key.weight") &&
          strstr(easyrec_last_error(), "NaN"));
    m = tiny(overflow_last_ln);
    REQUIRE(m);
    fill_texts();
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    float *e = malloc(sizeof(float) * NT * 32);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.pooling = EASYREC_POOL_CLS;
    CHECK(check_failed_with(easyrec_encode(ctx, texts, NULL, NT, &o, e), EASYREC_ERR_FORMAT, "not finite"));
    free(e);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

TEST(cleanup) {
    if (!dir[0]) SKIP("nothing to clean");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

CHECK_MAIN(CASE(host_blas_threads_unchanged), CASE(many_contexts_on_many_threads_leave_nothing),
           CASE(worker_tokenizer_error_reaches_the_caller), CASE(cancellation),
           CASE(non_finite_weights_and_outputs_are_errors), CASE(cleanup))
