/* test_import.c — `easyrec data import` (src/data/import.c): the input formats, dense ids,
 * the rating filter and duplicates, the k-core (verified on the written matrices), the
 * per-user split (disjoint, every user and item in train), byte-identical output for the
 * same seed, the release pickles read back by our reader, clear errors; MovieLens-100K
 * counts against tests/fixtures/import/ml100k_*_counts.txt, computed independently by
 * tools/import_check.py (pandas); that script's scipy check of the written files when
 * /usr/bin/python3 with scipy is present (skipped otherwise: make test needs no Python). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "core/rng.h"
#include "data/import.h"
#include "data/interactions.h"
#include "io/sparse_pickle.h"

#define ML "../shared/data/movielens-100k/u.data"
static const char *tmp(void) { return check_tmpdir("import"); }
static char *tpath(const char *name) {
    static char p[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp(), name);
    return p[k];
}
static void write_file(const char *name, const char *text) {
    REQUIRE(er_write_file_atomic(tpath(name), text, strlen(text)) == 0);
}

/* the three split matrices of dir as CSR (our reader) */
static void load_splits(const char *dir, er_csr m[3]) {
    static const char *names[3] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"};
    for (int s = 0; s < 3; s++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, names[s]);
        er_sparse sp;
        int rc = er_sparse_pickle_load(p, &sp);
        if (rc) printf("    %s\n", easyrec_last_error());
        REQUIRE(rc == 0);
        REQUIRE(er_csr_from_sparse(&sp, &m[s]) == 0);
        CHECK_EQ_INT(m[s].nnz, sp.nnz); /* no duplicates written */
        er_sparse_free(&sp);
    }
}

/* disjoint splits; every user in train; every item in train when items_in_train; the union
 * is a k-core; returns the union's nnz */
static size_t check_splits(const er_csr m[3], int k, int items_in_train) {
    int32_t U = m[0].nrows, I = m[0].ncols;
    int64_t *ic = calloc((size_t)I, sizeof(int64_t)), *itr = calloc((size_t)I, sizeof(int64_t));
    REQUIRE(ic && itr);
    size_t total = 0;
    int overlap = 0, user_no_trn = 0, small_user = 0, small_item = 0, item_no_trn = 0;
    for (int32_t u = 0; u < U; u++) {
        int64_t n = 0;
        for (int s = 0; s < 3; s++) {
            CHECK(m[s].nrows == U && m[s].ncols == I);
            for (int64_t j = m[s].indptr[u]; j < m[s].indptr[u + 1]; j++) {
                int32_t i = m[s].indices[j];
                for (int t = s + 1; t < 3; t++) overlap += er_csr_has(&m[t], u, i);
                ic[i]++;
                if (s == 0) itr[i]++;
                n++;
            }
        }
        user_no_trn += csr_row_len(&m[0], u) == 0;
        small_user += n < k;
        total += (size_t)n;
    }
    for (int32_t i = 0; i < I; i++) small_item += ic[i] < k, item_no_trn += itr[i] == 0;
    CHECK_EQ_INT(overlap, 0);
    CHECK_EQ_INT(user_no_trn, 0);
    CHECK_EQ_INT(small_user, 0);
    CHECK_EQ_INT(small_item, 0);
    if (items_in_train) CHECK_EQ_INT(item_no_trn, 0);
    free(ic);
    free(itr);
    return total;
}
static void free_splits(er_csr m[3]) {
    for (int s = 0; s < 3; s++) er_csr_free(&m[s]);
}

static er_import_opts defaults(const char *in, const char *out) {
    er_import_opts o = {.interactions = in, .output = out, .p = {0.8, 0.1, 0.1}, .seed = 7};
    return o;
}

TEST(formats_and_ids) {
    /* CSV with a header, quotes, a duplicate (earliest kept), a low rating */
    write_file("a.csv", "userId,movieId,rating,timestamp\n"
                        "u10,\"The \"\"Item\"\", 1\",5,100\n"
                        "u9,i2,4,50\n"
                        "u10,i2,1,60\n"
                        "u9,i2,5,10\n");
    er_import_opts o = defaults(tpath("a.csv"), tpath("a"));
    o.has_min_rating = 1;
    o.min_rating = 2;
    er_import_stats st;
    int rc = er_import_run(&o, &st);
    if (rc) printf("    %s\n", easyrec_last_error());
    REQUIRE(rc == 0);
    CHECK_EQ_INT(st.rows, 4);
    CHECK_EQ_INT(st.below_rating, 1);
    CHECK_EQ_INT(st.duplicates, 1);
    CHECK_EQ_INT(st.users, 2);
    CHECK_EQ_INT(st.items, 2);
    char *s = NULL;
    size_t n;
    REQUIRE(er_read_file(tpath("a/user_id_map.tsv"), &s, &n) == 0);
    CHECK(!strcmp(s, "user_id\toriginal_id\n0\tu10\n1\tu9\n")); /* bytewise order: not all numeric */
    free(s);
    REQUIRE(er_read_file(tpath("a/item_id_map.tsv"), &s, &n) == 0);
    CHECK(!strcmp(s, "item_id\toriginal_id\n0\tThe \"Item\", 1\n1\ti2\n"));
    free(s);
    /* a UTF-8 BOM before the header (Excel's CSV) */
    write_file("bom.csv", "\xEF\xBB\xBFuser,item\nu1,i1\n");
    o = defaults(tpath("bom.csv"), tpath("bom"));
    REQUIRE(er_import_run(&o, &st) == 0);
    CHECK_EQ_INT(st.rows, 1);
    /* JSON lines with integer ids: numeric order (2 < 10), and "::" text */
    write_file("b.jsonl", "{\"user_id\": 10, \"item_id\": 3}\n\n{\"user_id\": 2, \"item_id\": 30, \"rating\": 4}\n");
    o = defaults(tpath("b.jsonl"), tpath("b"));
    REQUIRE(er_import_run(&o, &st) == 0);
    REQUIRE(er_read_file(tpath("b/user_id_map.tsv"), &s, &n) == 0);
    CHECK(!strcmp(s, "user_id\toriginal_id\n0\t2\n1\t10\n"));
    free(s);
    write_file("c.dat", "1::5::3::978300760\n1::6::3::978300761\n");
    o = defaults(tpath("c.dat"), tpath("c"));
    o.by_time = 1;
    REQUIRE(er_import_run(&o, &st) == 0);
    CHECK_EQ_INT(st.items, 2);
    /* metadata: rewritten to dense ids, a missing item gets its id only */
    write_file("meta.jsonl", "{\"item_id\": \"6\", \"title\": \"Six\", \"genres\": [\"x\"]}\n{\"item_id\": 99, \"title\": \"n/a\"}\n");
    o = defaults(tpath("c.dat"), tpath("d"));
    o.items = tpath("meta.jsonl");
    REQUIRE(er_import_run(&o, &st) == 0);
    CHECK_EQ_INT(st.meta_found, 1);
    CHECK_EQ_INT(st.meta_missing, 1);
    REQUIRE(er_read_file(tpath("d/item_meta.json"), &s, &n) == 0);
    CHECK(!strcmp(s, "{\"item_id\":0,\"original_id\":\"5\"}\n"
                     "{\"item_id\":1,\"original_id\":\"6\",\"title\":\"Six\",\"genres\":[\"x\"]}\n"));
    free(s);
}

TEST(errors_are_clear) {
    er_import_stats st;
    write_file("bad.tsv", "1\t2\n3\n");
    er_import_opts o = defaults(tpath("bad.tsv"), tpath("bad"));
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_FORMAT, "bad.tsv:2"));
    CHECK(access(tpath("bad"), F_OK) != 0); /* nothing left behind */
    write_file("norating.tsv", "1\t2\n");
    o = defaults(tpath("norating.tsv"), tpath("nr"));
    o.has_min_rating = 1;
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_ARG, "no rating column"));
    o.has_min_rating = 0;
    o.by_time = 1;
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_ARG, "no timestamp"));
    o.by_time = 0;
    o.k_core = 2;
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_ARG, "no interactions left"));
    mkdir(tpath("taken"), 0755);
    write_file("taken/x", "x");
    o = defaults(tpath("norating.tsv"), tpath("taken"));
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_ARG, "not empty"));
    o.p[0] = 0.9;
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_ARG, "sum to 1"));
    write_file("badjson.jsonl", "{\"user_id\": 1, \"item_id\": [2]}\n");
    o = defaults(tpath("badjson.jsonl"), tpath("bj"));
    CHECK(check_failed_with(er_import_run(&o, &st), EASYREC_ERR_FORMAT, "badjson.jsonl:1: no item id"));
}

/* random interactions: a k-core, split invariants, determinism */
TEST(kcore_split_deterministic) {
    er_rng g;
    er_rng_seed(&g, 11);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int k = 0; k < 6000; k++) { /* skewed: many users/items fall under the core */
        uint64_t u = er_rng_below(&g, 400), i = er_rng_below(&g, 30 + er_rng_below(&g, 600));
        fprintf(f, "%llu\t%llu\t%d\t%d\n", (unsigned long long)u, (unsigned long long)i, (int)er_rng_below(&g, 5) + 1, k);
    }
    fclose(f);
    REQUIRE(er_write_file_atomic(tpath("r.tsv"), buf, len) == 0);
    free(buf);
    er_import_stats st, st2;
    for (int by_time = 0; by_time < 2; by_time++) {
        er_import_opts o = defaults(tpath("r.tsv"), tpath(by_time ? "r_t" : "r1"));
        o.k_core = 6;
        o.by_time = by_time;
        REQUIRE(er_import_run(&o, &st) == 0);
        CHECK(st.kcore_removed > 0 && st.kcore_rounds >= 2);
        er_csr m[3];
        load_splits(o.output, m);
        CHECK_EQ_INT(check_splits(m, 6, !by_time), st.nnz[0] + st.nnz[1] + st.nnz[2]);
        CHECK_EQ_INT(m[0].nrows, st.users);
        CHECK(st.nnz[1] > 0 && st.nnz[2] > 0);
        free_splits(m);
    }
    /* same input, same seed: byte-identical files; another seed: another split */
    er_import_opts o = defaults(tpath("r.tsv"), tpath("r2"));
    o.k_core = 6;
    REQUIRE(er_import_run(&o, &st2) == 0);
    CHECK_EQ_INT(st2.users, st.users);
    CHECK_EQ_INT(st2.items, st.items);
    static const char *files[] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl", "user_id_map.tsv", "item_id_map.tsv",
                                  "import_info.json"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
        CHECK(check_sh("cmp -s %s/r1/%s %s/r2/%s", tmp(), files[k], tmp(), files[k]) == 0);
    o = defaults(tpath("r.tsv"), tpath("r3"));
    o.k_core = 6;
    o.seed = 8;
    REQUIRE(er_import_run(&o, &st2) == 0);
    CHECK(check_sh("cmp -s %s/r1/trn_mat.pkl %s/r3/trn_mat.pkl", tmp(), tmp()) != 0);
}

/* "key value" lines of a counts fixture */
static long long fixture_count(const char *file, const char *key) {
    char *s = NULL;
    size_t n;
    if (er_read_file(file, &s, &n)) return -1;
    long long v = -1;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        size_t kl = strlen(key);
        if (!strncmp(line, key, kl) && line[kl] == ' ') v = atoll(line + kl + 1);
    }
    free(s);
    return v;
}

static int have_python_scipy(void) { return check_sh("/usr/bin/python3 -c 'import scipy, pandas' 2>/dev/null") == 0; }

TEST(movielens_counts) {
    if (access(ML, R_OK) != 0) SKIP("../shared/data/movielens-100k absent");
    struct {
        const char *fixture, *args;
        int k;
        double min_rating, p[3];
    } cases[] = {
        {"tests/fixtures/import/ml100k_r4_k5_counts.txt", "--min-rating 4 --k-core 5", 5, 4, {0.8, 0.1, 0.1}},
        {"tests/fixtures/import/ml100k_k20_counts.txt", "--k-core 20 --split 0.7,0.15,0.15", 20, -1, {0.7, 0.15, 0.15}},
    };
    for (int c = 0; c < 2; c++) {
        for (int by_time = 0; by_time < 2; by_time++) {
            char out[64];
            snprintf(out, sizeof out, "ml%d%d", c, by_time);
            /* through the command line */
            int rc = check_sh("%s data import --interactions %s --output %s %s %s > /dev/null 2>%s", check_bin(), ML,
                              tpath(out), cases[c].args, by_time ? "--split-by time" : "--seed 3", tpath("err.txt"));
            CHECK_EQ_INT(rc, 0);
            if (rc) continue;
            er_csr m[3];
            load_splits(tpath(out), m);
            size_t total = check_splits(m, cases[c].k, !by_time);
            CHECK_EQ_INT(m[0].nrows, fixture_count(cases[c].fixture, "users"));
            CHECK_EQ_INT(m[0].ncols, fixture_count(cases[c].fixture, "items"));
            CHECK_EQ_INT(total, fixture_count(cases[c].fixture, "interactions"));
            if (by_time) {
                CHECK_EQ_INT(m[0].nnz, fixture_count(cases[c].fixture, "time_trn"));
                CHECK_EQ_INT(m[1].nnz, fixture_count(cases[c].fixture, "time_val"));
                CHECK_EQ_INT(m[2].nnz, fixture_count(cases[c].fixture, "time_tst"));
            } else { /* near the proportions */
                CHECK_NEAR((double)m[1].nnz / (double)total, cases[c].p[1], 0.02);
                CHECK_NEAR((double)m[2].nnz / (double)total, cases[c].p[2], 0.02);
            }
            free_splits(m);
        }
    }
    if (!have_python_scipy()) {
        printf("    (no /usr/bin/python3 with scipy+pandas: scipy load check not run)\n");
        return;
    }
    CHECK(check_sh("/usr/bin/python3 tools/import_check.py verify %s %s --min-rating 4 --k-core 5 > %s 2>&1",
                   tpath("ml00"), ML, tpath("py.txt")) == 0);
    CHECK(check_sh("/usr/bin/python3 tools/import_check.py verify %s %s --k-core 20 >> %s 2>&1", tpath("ml11"), ML,
                   tpath("py.txt")) == 0);
    check_sh("grep -h MISMATCH %s", tpath("py.txt"));
}

TEST(cleanup) { check_sh("rm -rf %s", tmp()); }

CHECK_MAIN(CASE(formats_and_ids), CASE(errors_are_clear), CASE(kcore_split_deterministic), CASE(movielens_counts),
           CASE(cleanup))
