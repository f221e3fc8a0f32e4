/* test_dataset.c — dataset reading: CSR building (binarise, sort, dedupe), the EasyRec
 * directory layout on the committed tiny fixture (tools/gen_eval_fixtures.py) and on the
 * real release data in ../shared/data (skipped if absent), profile coverage, TSV and
 * RecBole .inter inputs, and malformed inputs -> clear errors. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "data/dataset.h"

#define TINY ER_FIXTURES "/eval/tiny" /* staged from the .in files of tests/fixtures/eval/tiny */
#define BAD "tests/fixtures/eval/bad"

static const char *tmp(void) { return check_tmpdir("ds"); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    char *buf;
    size_t len;
    REQUIRE(er_read_file(from, &buf, &len) == 0);
    FILE *f = fopen(to, "wb");
    REQUIRE(f);
    fwrite(buf, 1, len, f);
    fclose(f);
    free(buf);
}

static int row_is(const er_csr *m, int32_t r, const int32_t *want, int n) {
    if (csr_row_len(m, r) != n) return 0;
    for (int k = 0; k < n; k++)
        if (m->indices[m->indptr[r] + k] != want[k]) return 0;
    return 1;
}

TEST(csr_binarises_sorts_and_dedupes) {
    /* rows out of order, a duplicate, an explicit zero, a NaN (kept: NaN != 0) */
    int32_t row[] = {2, 0, 2, 0, 2, 1, 0};
    int32_t col[] = {3, 4, 0, 1, 3, 2, 2};
    float val[] = {1, 1, 2, 1, 1, 0, NAN};
    er_sparse s = {3, 5, 7, row, col, val};
    er_csr m;
    REQUIRE(er_csr_from_sparse(&s, &m) == 0);
    CHECK_EQ_INT(m.nnz, 5);
    CHECK(row_is(&m, 0, (int32_t[]){1, 2, 4}, 3));
    CHECK(row_is(&m, 1, NULL, 0));
    CHECK(row_is(&m, 2, (int32_t[]){0, 3}, 2));
    CHECK(er_csr_has(&m, 0, 4) && !er_csr_has(&m, 0, 3) && !er_csr_has(&m, 1, 2) && er_csr_has(&m, 2, 0));
    int32_t *rows, n;
    REQUIRE(er_csr_nonempty_rows(&m, &rows, &n) == 0);
    CHECK(n == 2 && rows[0] == 0 && rows[1] == 2);
    free(rows);
    er_csr_free(&m);
    er_csr_free(NULL);
    /* empty */
    REQUIRE(er_csr_from_pairs(0, 0, NULL, NULL, 0, &m) == 0);
    CHECK(m.nnz == 0 && m.indptr[0] == 0);
    er_csr_free(&m);
}

TEST(tiny_dir_layout) {
    er_dataset ds;
    int rc = er_dataset_open_dir(TINY, &ds);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    CHECK_EQ_INT(ds.n_users, 4);
    CHECK_EQ_INT(ds.n_items, 6);
    CHECK(ds.has_split[0] && ds.has_split[1] && ds.has_split[2]);
    CHECK(row_is(&ds.split[ER_SPLIT_TRN], 1, (int32_t[]){1, 2}, 2));
    CHECK(row_is(&ds.split[ER_SPLIT_VAL], 0, (int32_t[]){1}, 1)); /* val is a CSR pickle */
    CHECK(row_is(&ds.split[ER_SPLIT_TST], 3, (int32_t[]){3, 4}, 2));
    CHECK(row_is(&ds.split[ER_SPLIT_TST], 2, NULL, 0));
    REQUIRE(ds.n_sets == 3);
    CHECK(!strcmp(ds.sets[0].name, "original") && ds.sets[0].item_path && ds.sets[0].user_path);
    CHECK(!strcmp(ds.sets[1].name, "diverse0") && ds.sets[1].item_path && ds.sets[1].user_path);
    CHECK(!strcmp(ds.sets[2].name, "diverse1") && ds.sets[2].item_path && !ds.sets[2].user_path);
    er_texts t;
    REQUIRE(er_dataset_read_profiles(&ds, ds.sets[0].item_path, 0, &t) == 0);
    CHECK(t.n == 6 && strstr(t.text[0], "chess") && strstr(t.text[5], "cookbook")); /* by item_id, not file order */
    er_texts_free(&t);
    REQUIRE(er_dataset_read_profiles(&ds, ds.sets[0].user_path, 1, &t) == 0);
    CHECK(t.n == 4 && strstr(t.text[3], "guitar"));
    er_texts_free(&t);
    /* coverage: 5 item profiles for 6 items */
    CHECK(er_dataset_read_profiles(&ds, BAD "/item_profile_short.json", 0, &t) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "5 profiles") && strstr(easyrec_last_error(), "6 items"));
    /* user profiles offered for items */
    CHECK(er_dataset_read_profiles(&ds, ds.sets[0].user_path, 0, &t) == EASYREC_ERR_FORMAT);
    CHECK(!strcmp(er_dataset_split_name(ER_SPLIT_VAL), "val"));
    er_dataset_free(&ds);
    er_dataset_free(NULL);
}

TEST(bad_dirs_are_clear_errors) {
    char d[128], p[160];
    er_dataset ds;
    CHECK(er_dataset_open_dir("tests/fixtures/eval/absent", &ds) == EASYREC_ERR_IO);
    CHECK(er_dataset_open_dir(TINY "/trn_mat.pkl", &ds) == EASYREC_ERR_ARG);
    CHECK(er_dataset_open_dir("tests/fixtures/eval", &ds) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "no trn_mat.pkl"));
    /* shapes differ between splits */
    snprintf(d, sizeof d, "%s/shape", tmp());
    mkdir(d, 0777);
    snprintf(p, sizeof p, "%s/trn_mat.pkl", d);
    copy_file(TINY "/trn_mat.pkl", p);
    snprintf(p, sizeof p, "%s/tst_mat.pkl", d);
    copy_file(BAD "/shape_tst_mat.pkl", p);
    CHECK(er_dataset_open_dir(d, &ds) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "shape (5, 7) differs"));
    CHECK(ds.split[0].indptr == NULL && ds.n_sets == 0);
    /* not a sparse matrix */
    copy_file(BAD "/not_a_matrix.pkl", p);
    CHECK(er_dataset_open_dir(d, &ds) == EASYREC_ERR_UNSUPPORTED);
    CHECK(strstr(easyrec_last_error(), "tst_mat.pkl"));
    /* not a pickle at all */
    write_file(p, "user\titem\n");
    CHECK(er_dataset_open_dir(d, &ds) != 0);
    CHECK(strstr(easyrec_last_error(), "tst_mat.pkl"));
}

/* ---- text inputs ---------------------------------------------------------------------- */

TEST(tsv_string_ids_first_appearance) {
    char trn[128], tst[128], val[128];
    snprintf(trn, sizeof trn, "%s/trn.tsv", tmp());
    snprintf(val, sizeof val, "%s/val.tsv", tmp());
    snprintf(tst, sizeof tst, "%s/tst.tsv", tmp());
    write_file(trn, "user\titem\trating\n# comment\nbob\tpear\t5\r\nann\tfig\t3\nbob\tfig\t1\n\nbob\tpear\t2\n");
    write_file(val, "ann\tkiwi\n");
    write_file(tst, "cid\tpear\nann\tpear\n");
    er_dataset ds;
    int rc = er_dataset_open_text(trn, val, tst, NULL, NULL, &ds);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    CHECK(ds.from_text && !ds.users.numeric && !ds.items.numeric);
    CHECK_EQ_INT(ds.n_users, 3); /* bob ann cid */
    CHECK_EQ_INT(ds.n_items, 3); /* pear fig kiwi */
    CHECK(!strcmp(ds.users.names[0], "bob") && !strcmp(ds.users.names[2], "cid"));
    CHECK(!strcmp(ds.items.names[1], "fig") && !strcmp(ds.items.names[2], "kiwi"));
    CHECK(row_is(&ds.split[ER_SPLIT_TRN], 0, (int32_t[]){0, 1}, 2)); /* duplicate bob-pear dropped */
    CHECK(row_is(&ds.split[ER_SPLIT_VAL], 1, (int32_t[]){2}, 1));
    CHECK(row_is(&ds.split[ER_SPLIT_TST], 2, (int32_t[]){0}, 1));
    CHECK(er_dataset_grow(&ds, 10, 10) == 0 && ds.n_users == 3); /* string ids never grow */
    char map[160];
    snprintf(map, sizeof map, "%s/users.tsv", tmp());
    REQUIRE(er_idmap_write(&ds.users, "user\toriginal", map) == 0);
    char *buf;
    size_t len;
    REQUIRE(er_read_file(map, &buf, &len) == 0);
    CHECK(!strcmp(buf, "user\toriginal\n0\tbob\n1\tann\n2\tcid\n"));
    free(buf);
    er_dataset_free(&ds);
}

TEST(recbole_inter_numeric_ids) {
    char trn[128], tst[128];
    snprintf(trn, sizeof trn, "%s/x.train.inter", tmp());
    snprintf(tst, sizeof tst, "%s/x.test.inter", tmp());
    write_file(trn, "rating:float\titem_id:token\tuser_id:token\ttimestamp:float\n4\t7\t0\t1\n3\t2\t1\t2\n");
    write_file(tst, "rating:float\titem_id:token\tuser_id:token\n5\t5\t1\n");
    er_dataset ds;
    int rc = er_dataset_open_text(trn, NULL, tst, NULL, NULL, &ds);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    CHECK(ds.users.numeric && ds.items.numeric);
    CHECK_EQ_INT(ds.n_users, 2);
    CHECK_EQ_INT(ds.n_items, 8); /* ids used as they are: 0..7 */
    CHECK(row_is(&ds.split[ER_SPLIT_TRN], 0, (int32_t[]){7}, 1));
    CHECK(row_is(&ds.split[ER_SPLIT_TST], 1, (int32_t[]){5}, 1));
    CHECK(!ds.has_split[ER_SPLIT_VAL] && ds.split[ER_SPLIT_VAL].nnz == 0 && ds.split[ER_SPLIT_VAL].nrows == 2);
    REQUIRE(er_dataset_grow(&ds, 3, 10) == 0);
    CHECK(ds.n_users == 3 && ds.n_items == 10 && ds.split[ER_SPLIT_TRN].nrows == 3 && ds.split[ER_SPLIT_TST].ncols == 10);
    CHECK(csr_row_len(&ds.split[ER_SPLIT_TRN], 2) == 0);
    er_dataset_free(&ds);
}

static int text_fails(const char *text, const char *msg) {
    er_inter_file f;
    int rc = er_inter_file_parse(text, strlen(text), "x.tsv", &f);
    if (rc == 0) {
        er_inter_file_free(&f);
        return 0;
    }
    if (f.buf || f.user || f.n) return 0;
    if (!strstr(easyrec_last_error(), msg)) {
        printf("    message: %s\n", easyrec_last_error());
        return 0;
    }
    return 1;
}

TEST(malformed_text_inputs) {
    CHECK(text_fails("a\tb\nc\n", "x.tsv:2: 1 field(s)"));
    CHECK(text_fails("a\tb\n\tb\n", "x.tsv:2: empty user id"));
    CHECK(text_fails("a\t\n", "x.tsv:1: empty item id"));
    CHECK(text_fails("user_id:token\tscore:float\n1\t2\n", "lacks a user_id"));
    CHECK(text_fails("item_id:token\tuser_id:token\n1\n", "x.tsv:2: 1 field(s), need 2"));
    char nul[] = "a\tb\n\0\td\n";
    er_inter_file f;
    CHECK(er_inter_file_parse(nul, sizeof nul - 1, "n.tsv", &f) == EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "NUL byte"));
    /* empty file: no interactions, no error */
    REQUIRE(er_inter_file_parse("", 0, "e.tsv", &f) == 0);
    CHECK(f.n == 0);
    er_inter_file_free(&f);
    /* ids that overflow int32 fall back to string mapping */
    er_inter_file g[1];
    const char *t = "99999999999\t1\n5\t2\n";
    REQUIRE(er_inter_file_parse(t, strlen(t), "g.tsv", &g[0]) == 0);
    er_idmap u, i;
    int32_t *r[1], *c[1];
    REQUIRE(er_interactions_map(g, 1, &u, &i, r, c) == 0);
    CHECK(!u.numeric && u.n == 2 && i.numeric && i.n == 3);
    CHECK(r[0][0] == 0 && r[0][1] == 1 && c[0][1] == 2);
    free(r[0]);
    free(c[0]);
    er_idmap_free(&u);
    er_idmap_free(&i);
    er_inter_file_free(&g[0]);
    /* integer ids far beyond the number of interactions (timestamps...) are mapped too */
    t = "1000000\t1\n3\t2\n";
    REQUIRE(er_inter_file_parse(t, strlen(t), "g.tsv", &g[0]) == 0);
    REQUIRE(er_interactions_map(g, 1, &u, &i, r, c) == 0);
    CHECK(!u.numeric && u.n == 2 && !strcmp(u.names[0], "1000000") && i.numeric);
    free(r[0]);
    free(c[0]);
    er_idmap_free(&u);
    er_idmap_free(&i);
    er_inter_file_free(&g[0]);
    er_dataset ds;
    CHECK(er_dataset_open_text("tests/fixtures/eval/absent.tsv", NULL, "x", NULL, NULL, &ds) == EASYREC_ERR_IO);
}

/* ---- the release data in ../shared/data ------------------------------------------------ */

TEST(real_easyrec_movies) {
    if (!er_file_exists("../shared/data/easyrec/movies/trn_mat.pkl")) SKIP("../shared/data/easyrec absent");
    er_dataset ds;
    int rc = er_dataset_open_dir("../shared/data/easyrec/movies", &ds);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    CHECK_EQ_INT(ds.n_users, 16994);
    CHECK_EQ_INT(ds.n_items, 9370);
    CHECK_EQ_INT(ds.split[ER_SPLIT_TRN].nnz, 134649); /* data README */
    int32_t *rows, n;
    REQUIRE(er_csr_nonempty_rows(&ds.split[ER_SPLIT_TST], &rows, &n) == 0);
    CHECK_EQ_INT(n, 9577); /* users with test items (issue 4) */
    free(rows);
    /* original: item text only; diverse 0..2: users and items */
    REQUIRE(ds.n_sets == 4);
    CHECK(ds.sets[0].item_path && !ds.sets[0].user_path);
    for (int k = 1; k < 4; k++) CHECK(ds.sets[k].item_path && ds.sets[k].user_path);
    er_texts t;
    REQUIRE(er_dataset_read_profiles(&ds, ds.sets[3].user_path, 1, &t) == 0);
    CHECK(t.n == 16994);
    er_texts_free(&t);
    er_dataset_free(&ds);
}

TEST(real_other_layouts) {
    if (!er_file_exists("../shared/data/easyrec/steam/tst_mat.pkl")) SKIP("../shared/data/easyrec absent");
    er_dataset ds;
    /* steam: trn_mat.pkl missing from the public copy */
    REQUIRE(er_dataset_open_dir("../shared/data/easyrec/steam", &ds) == 0);
    CHECK(!ds.has_split[ER_SPLIT_TRN] && ds.has_split[ER_SPLIT_TST] && ds.n_users == 23310 && ds.n_items == 5237);
    CHECK(ds.split[ER_SPLIT_TRN].nrows == 23310 && ds.split[ER_SPLIT_TRN].nnz == 0);
    CHECK(ds.n_sets == 3 && !strcmp(ds.sets[0].name, "diverse0"));
    er_dataset_free(&ds);
    /* yelp: no text at all */
    REQUIRE(er_dataset_open_dir("../shared/data/easyrec/yelp", &ds) == 0);
    CHECK(ds.n_sets == 0 && ds.split[ER_SPLIT_TRN].nnz == 166620);
    er_dataset_free(&ds);
    if (!er_file_exists("../shared/data/xrec-yelp/trn_mat.pkl")) SKIP("../shared/data/xrec-yelp absent");
    REQUIRE(er_dataset_open_dir("../shared/data/xrec-yelp", &ds) == 0);
    CHECK(ds.n_users == 2228 && ds.n_items == 14085);
    CHECK(ds.split[ER_SPLIT_TRN].nnz == 88577 && ds.split[ER_SPLIT_VAL].nnz == 11124 &&
          ds.split[ER_SPLIT_TST].nnz == 11036);
    REQUIRE(ds.n_sets == 1 && ds.sets[0].user_path && ds.sets[0].item_path);
    er_texts t;
    REQUIRE(er_dataset_read_profiles(&ds, ds.sets[0].item_path, 0, &t) == 0);
    CHECK(t.n == 14085);
    er_texts_free(&t);
    er_dataset_free(&ds);
}

CHECK_MAIN(CASE(csr_binarises_sorts_and_dedupes), CASE(tiny_dir_layout), CASE(bad_dirs_are_clear_errors),
           CASE(tsv_string_ids_first_appearance), CASE(recbole_inter_numeric_ids), CASE(malformed_text_inputs),
           CASE(real_easyrec_movies), CASE(real_other_layouts))
