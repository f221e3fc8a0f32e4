/* test_eval_cli.c — `easyrec eval` end to end: given embeddings on the committed tiny
 * dataset (metrics worked out by hand, see test_eval.c), TSV and RecBole inputs, the
 * baselines, clear errors for bad input, and --model with the embedding cache on a small
 * random model (needs ../shared/vocab; skipped if absent).
 * The binary is $EASYREC_BIN (set by make test), default build/easyrec. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "core/err.h"
#include "io/tensors.h"

#define TINY ER_FIXTURES "/eval/tiny" /* staged from the .in files of tests/fixtures/eval/tiny */
#define EMB "--user-emb " TINY "/U.npy --item-emb " TINY "/I.npy"

static const char *tmp(void) { return check_tmpdir("evalcli"); }
static void write_file(const char *name, const char *text) { check_write_file(tmp(), name, text); }

/* run `easyrec eval ARGS --json` and parse stdout; NULL (with a failure) if it fails */
static json_t *eval_json(const char *args) {
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/out.json", tmp());
    snprintf(err, sizeof err, "%s/err.txt", tmp());
    int rc = check_sh("%s eval %s --json --threads 2 > %s 2> %s", check_bin(), args, out, err);
    if (rc) {
        char *e = NULL;
        size_t n;
        if (er_read_file(err, &e, &n) == 0) printf("    stderr: %s", e);
        free(e);
        CHECK_FAILMSG("easyrec eval %s: exit %d", args, rc);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_load_file(out, 0, &je);
    if (!j) CHECK_FAILMSG("output is not JSON: %s", je.text);
    return j;
}

static double metric(const json_t *j, const char *name) {
    return json_real_value(json_object_get(json_object_get(j, "mean"), name));
}

/* exit status of `easyrec eval ARGS`, stderr must contain msg */
static int eval_fails(const char *args, const char *msg) {
    char err[256];
    snprintf(err, sizeof err, "%s/err.txt", tmp());
    int rc = check_sh("%s eval %s > /dev/null 2> %s", check_bin(), args, err);
    char *e = NULL;
    size_t n;
    if (er_read_file(err, &e, &n) || !strstr(e, msg)) {
        printf("    stderr of '%s': %s\n", args, e ? e : "(none)");
        rc = -1;
    }
    free(e);
    return rc;
}

static double disc(int j) { return 1.0 / log2(j + 1.0); }

TEST(embeddings_on_tiny) {
    json_t *j = eval_json("--data " TINY " " EMB " --k 1,2");
    REQUIRE(j);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "n_users")), 3);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "n_items")), 6);
    CHECK_NEAR(metric(j, "recall@1"), 0.5, 1e-9);
    CHECK_NEAR(metric(j, "ndcg@1"), 2 / 3.0, 1e-9);
    CHECK_NEAR(metric(j, "recall@2"), 2.5 / 3, 1e-9);
    CHECK_NEAR(metric(j, "ndcg@2"), (disc(2) / (disc(1) + disc(2)) + 2) / 3, 1e-9);
    json_decref(j);
    REQUIRE((j = eval_json("--data " TINY " " EMB " --k 1 --mask-val")));
    CHECK_NEAR(metric(j, "recall@1"), 2 / 3.0, 1e-9);
    json_decref(j);
    REQUIRE((j = eval_json("--data " TINY " " EMB " --k 1 --split val")));
    CHECK(json_integer_value(json_object_get(j, "n_users")) == 1 && metric(j, "recall@1") == 1.0);
    json_decref(j);
    /* the human table */
    CHECK(check_sh("%s eval --data " TINY " " EMB " --k 1,2 | grep -q '^embeddings  *given  *0.5000  *0.6667  *0.8333'", check_bin()) == 0);
}

static void write_npy(const char *name, const float *x, int64_t rows, int64_t cols) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmp(), name);
    int64_t sh2[2] = {rows, cols};
    REQUIRE(er_npy_write_f32(p, x, 2, sh2) == 0);
}

TEST(text_inputs) {
    /* string ids: users ann bob, items by first appearance: pen cup ink mug */
    write_file("trn.tsv", "user\titem\nann\tpen\nbob\tcup\n");
    write_file("tst.tsv", "ann\tink\nbob\tmug\nbob\tink\n");
    float U[] = {1, 0, 0, 1};                      /* ann likes x, bob likes y */
    float I[] = {9, 0, 0, 9, 1, 0.5f, 0.5f, 1}; /* pen cup ink mug */
    write_npy("U2.npy", U, 2, 2);
    write_npy("I2.npy", I, 4, 2);
    char a[1024];
    snprintf(a, sizeof a, "--train %s/trn.tsv --test %s/tst.tsv --user-emb %s/U2.npy --item-emb %s/I2.npy --k 1 --id-maps %s/maps",
             tmp(), tmp(), tmp(), tmp(), tmp());
    json_t *j = eval_json(a);
    REQUIRE(j);
    /* ann: pen masked -> ink (1) first: hit, recall 1. bob: cup masked -> mug (1) first: hit, recall 1/2 */
    CHECK_NEAR(metric(j, "recall@1"), 0.75, 1e-9);
    CHECK_NEAR(metric(j, "ndcg@1"), 1.0, 1e-9);
    json_decref(j);
    CHECK(check_sh("grep -q '^3\tmug$' %s/maps/items.tsv", tmp()) == 0);
    /* RecBole with numeric ids; item embeddings have a row (4) beyond the largest id: a candidate too */
    write_file("r.train.inter", "user_id:token\titem_id:token\trating:float\n0\t0\t5\n1\t1\t4\n");
    write_file("r.test.inter", "user_id:token\titem_id:token\trating:float\n0\t2\t5\n1\t3\t1\n");
    float I5[] = {9, 0, 0, 9, 1, 0.5f, 0.5f, 1, 5, 5};
    write_npy("I5.npy", I5, 5, 2);
    snprintf(a, sizeof a, "--train %s/r.train.inter --test %s/r.test.inter --user-emb %s/U2.npy --item-emb %s/I5.npy --k 1",
             tmp(), tmp(), tmp(), tmp());
    REQUIRE((j = eval_json(a)));
    CHECK(json_integer_value(json_object_get(j, "n_items")) == 5 && metric(j, "recall@1") == 0.0); /* item 4 wins */
    json_decref(j);
    /* string item ids cannot grow: 5 rows for 4 items */
    snprintf(a, sizeof a, "--train %s/trn.tsv --test %s/tst.tsv --user-emb %s/U2.npy --item-emb %s/I5.npy", tmp(), tmp(), tmp(),
             tmp());
    CHECK(eval_fails(a, "I5.npy has 5 rows, but the dataset has 4 items") == 1);
    snprintf(a, sizeof a, "--train %s/trn.tsv --test %s/tst.tsv --user-emb %s/U2.npy --item-emb %s/I2.npy --split val", tmp(),
             tmp(), tmp(), tmp());
    CHECK(eval_fails(a, "no val split") == 1);
}

TEST(baselines) {
    json_t *j = eval_json("--data " TINY " --baseline popularity --k 2");
    REQUIRE(j);
    /* counts: items 0 1 2 5 once. u0: 1 2 (hit at 2); u1: 0 5 (hit at 1); u3: 0 1 (miss) */
    CHECK_NEAR(metric(j, "recall@2"), 0.5, 1e-9);
    CHECK_NEAR(metric(j, "ndcg@2"), (disc(2) / (disc(1) + disc(2)) + 1) / 3, 1e-9);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "n_runs")), 1);
    json_decref(j);
    REQUIRE((j = eval_json("--data " TINY " --baseline bm25 --user-text auto:2")));
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "n_runs")), 3); /* original, diverse0, diverse1 */
    json_t *sets = json_object_get(j, "sets");
    CHECK(!strcmp(json_string_value(json_object_get(json_array_get(sets, 2), "user_text")), "items:2"));
    double m = 0;
    for (int s = 0; s < 3; s++) m += json_real_value(json_object_get(json_array_get(sets, s), "recall@10")) / 3;
    CHECK_NEAR(metric(j, "recall@10"), m, 1e-9);
    json_decref(j);
    REQUIRE((j = eval_json("--data " TINY " --baseline tfidf --profiles original")));
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "n_runs")), 1);
    json_decref(j);
    REQUIRE((j = eval_json("--data " TINY " --baseline random --seed 3")));
    json_decref(j);
    CHECK(eval_fails("--data " TINY " --baseline bm25", "profile set 'diverse1' has no user profiles; pass --user-text") == 1);
    CHECK(eval_fails("--data " TINY " --baseline bm25 --profiles diverse --user-text items:3", "") == 0);
}

TEST(bad_input_is_a_clear_error) {
    CHECK(eval_fails("--data " TINY " --user-emb " TINY "/I.npy --item-emb " TINY "/I.npy",
                     "I.npy has 6 rows, but the dataset has 4 users") == 1);
    CHECK(eval_fails("--data " TINY " --user-emb " TINY "/U.npy --item-emb " TINY "/absent.npy", "absent.npy") == 1);
    CHECK(eval_fails("--data " TINY " --user-emb " TINY "/U.npy --item-emb " TINY "/trn_mat.pkl", "trn_mat.pkl") == 1);
    float nanv[] = {1, 0, 0, NAN, 1, 1, 0, 0};
    write_npy("nan.npy", nanv, 4, 2);
    char a[512];
    snprintf(a, sizeof a, "--data " TINY " --user-emb %s/nan.npy --item-emb " TINY "/I.npy", tmp());
    CHECK(eval_fails(a, "nan.npy: row 1 has a non-finite value") == 1);
    /* checked in chunks on two threads: the first bad row is named, wherever the other is */
    enum { WIDE = 40000 };
    float *wide = calloc(4 * WIDE, sizeof(float));
    REQUIRE(wide);
    wide[150000] = NAN;     /* row 3, in the last chunk */
    wide[70000] = INFINITY; /* row 1, in an earlier chunk */
    write_npy("wide.npy", wide, 4, WIDE);
    free(wide);
    snprintf(a, sizeof a, "--data " TINY " --user-emb %s/wide.npy --item-emb " TINY "/I.npy --threads 2", tmp());
    CHECK(eval_fails(a, "wide.npy: row 1 has a non-finite value") == 1);
    float d3[] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1};
    write_npy("d3.npy", d3, 4, 3);
    snprintf(a, sizeof a, "--data " TINY " --user-emb %s/d3.npy --item-emb " TINY "/I.npy", tmp());
    CHECK(eval_fails(a, "has D = 3 but") == 1);
    CHECK(eval_fails("--data tests/fixtures/eval/absent " EMB, "absent") == 1);
    CHECK(eval_fails("--data " TINY " " EMB " --k 0", "--k must be") == 2);
    CHECK(eval_fails("--data " TINY " " EMB " --k 1,,x", "--k must be") == 2);
    CHECK(eval_fails("--data " TINY " " EMB " --split train", "--split must be") == 2);
    CHECK(eval_fails("--data " TINY, "exactly one of") == 2);
    CHECK(eval_fails(EMB, "either --data") == 2);
    CHECK(eval_fails("--data " TINY " --baseline foo", "--baseline must be") == 2);
    CHECK(eval_fails("--data " TINY " --baseline bm25 --user-text items:0", "--user-text K") == 2);
    CHECK(eval_fails("--data " TINY " --baseline bm25 --user-text some", "--user-text must be") == 2);
    /* steam-like: no training matrix */
    char d[256];
    snprintf(d, sizeof d, "%s/notrn", tmp());
    mkdir(d, 0777);
    REQUIRE(check_sh("cp " TINY "/tst_mat.pkl %s/", d) == 0);
    snprintf(a, sizeof a, "--data %s " EMB, d);
    CHECK(eval_fails(a, "no trn_mat.pkl") == 1);
    /* a dataset without text for the model / bm25 */
    snprintf(a, sizeof a, "--data %s --baseline bm25", d);
    CHECK(eval_fails(a, "no trn_mat.pkl") == 1);
    REQUIRE(check_sh("cp " TINY "/trn_mat.pkl %s/", d) == 0);
    CHECK(eval_fails(a, "no profile set to evaluate") == 1);
    CHECK(check_sh("%s eval --help | grep -q 'usage: easyrec eval'", check_bin()) == 0);
}

/* ---- --model and the cache ------------------------------------------------------------- */

TEST(model_and_cache) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for a random model");
    const char *t = tmp();
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 1 --hidden 32 --heads 2 --ffn 64 "
               "--seed 3 2>/dev/null",
               check_bin(), t) == 0);
    REQUIRE(check_sh("cp -r " TINY " %s/ds", t) == 0);
    char a[1024], err[256];
    snprintf(err, sizeof err, "%s/err.txt", t);
    snprintf(a, sizeof a, "--model %s/model --data %s/ds --profiles original --cache %s/cache --k 2", t, t, t);
    json_t *j1 = eval_json(a);
    REQUIRE(j1);
    CHECK(check_sh("grep -q 'encoded items-original: 6 texts' %s", err) == 0);
    json_t *j2 = eval_json(a); /* second run: both from the cache, same numbers */
    REQUIRE(j2);
    CHECK(check_sh("grep -q 'cached items-original' %s && grep -q 'cached users-original-profiles' %s", err, err) == 0);
    CHECK(metric(j1, "recall@2") == metric(j2, "recall@2") && metric(j1, "ndcg@2") == metric(j2, "ndcg@2"));
    json_decref(j2);
    /* the cached arrays scored as given embeddings give the same metrics */
    snprintf(a, sizeof a, "--data %s/ds --user-emb %s/cache/users-original-profiles-*.npy --item-emb %s/cache/items-original-*.npy --k 2",
             t, t, t);
    REQUIRE((j2 = eval_json(a)));
    CHECK(metric(j1, "recall@2") == metric(j2, "recall@2") && metric(j1, "ndcg@2") == metric(j2, "ndcg@2"));
    json_decref(j2);
    /* a changed profile file (new mtime) is never served from the cache */
    REQUIRE(check_sh("touch -d '2001-01-01' %s/ds/item_profile.json", t) == 0);
    snprintf(a, sizeof a, "--model %s/model --data %s/ds --profiles original --cache %s/cache --k 2", t, t, t);
    REQUIRE((j2 = eval_json(a)));
    CHECK(check_sh("grep -q 'encoded items-original' %s && grep -q 'cached users-original' %s", err, err) == 0);
    json_decref(j2);
    /* other max_length: other entry */
    snprintf(a, sizeof a, "--model %s/model --data %s/ds --profiles original --cache %s/cache --max-length 8", t, t, t);
    REQUIRE((j2 = eval_json(a)));
    CHECK(check_sh("grep -q 'encoded users-original' %s", err) == 0);
    json_decref(j2);
    /* bf16 / int8 embeddings are their own cache entries, never the fp32 ones */
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "--model %s/model --data %s/ds --profiles original --cache %s/cache --k 2 --precision %s", t,
                 t, t, i ? "int8" : "bf16");
        REQUIRE((j2 = eval_json(a)));
        CHECK(check_sh("grep -q 'encoded items-original' %s && grep -q 'encoded users-original' %s", err, err) == 0);
        CHECK(!strcmp(json_string_value(json_object_get(j2, "precision")) ?: "", i ? "int8" : "bf16"));
        CHECK(json_is_string(json_object_get(j2, "isa")));
        json_decref(j2);
        REQUIRE((j2 = eval_json(a)));
        CHECK(check_sh("grep -q 'cached items-original' %s", err) == 0);
        json_decref(j2);
    }
    CHECK(!strcmp(json_string_value(json_object_get(j1, "precision")) ?: "", "fp32"));
    /* all sets: diverse1 has no user text, auto:1 describes its users by one training item */
    snprintf(a, sizeof a, "--model %s/model --data %s/ds --user-text auto:1 --k 2", t, t);
    REQUIRE((j2 = eval_json(a)));
    CHECK_EQ_INT(json_integer_value(json_object_get(j2, "n_runs")), 3);
    json_decref(j2);
    /* the same at int8 (as the quality runs of issue 15: --user-text with --precision) */
    snprintf(a, sizeof a, "--model %s/model --data %s/ds --user-text auto:1 --k 2 --precision int8", t, t);
    REQUIRE((j2 = eval_json(a)));
    CHECK_EQ_INT(json_integer_value(json_object_get(j2, "n_runs")), 3);
    CHECK(!strcmp(json_string_value(json_object_get(j2, "precision")) ?: "", "int8"));
    double r2 = metric(j2, "recall@2");
    CHECK(r2 >= 0 && r2 <= 1);
    json_decref(j2);
    json_decref(j1);
}

CHECK_MAIN(CASE(embeddings_on_tiny), CASE(text_inputs), CASE(baselines), CASE(bad_input_is_a_clear_error),
           CASE(model_and_cache))
