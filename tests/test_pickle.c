/* test_pickle.c — the pickle VM (src/io/pickle.c) on hand-written opcode strings, its
 * failure modes, and the scipy sparse reader (src/io/sparse_pickle.c) on the fixtures of
 * tools/gen_loader_fixtures.py and, when ../shared is present, the real EasyRec matrices.
 */
#include <jansson.h>
#include <math.h>

#include "check.h"
#include "core/err.h"
#include "io/pickle.h"
#include "io/sparse_pickle.h"

#define FIX "tests/fixtures/loaders/"

/* Load a pickle given as a string literal (sizeof - 1 bytes). */
#define LOAD(lit, p, root) er_pickle_load((const uint8_t *)(lit), sizeof(lit) - 1, "t", (p), (root))

static int load_fails(const char *bytes, size_t len, int want_code, const char *want_msg) {
    er_pickle *p = (er_pickle *)1;
    er_pobj *root = (er_pobj *)1;
    int rc = er_pickle_load((const uint8_t *)bytes, len, "t", &p, &root);
    if (rc == EASYREC_OK) {
        er_pickle_free(p);
        return 0;
    }
    if (p || root) return 0;
    return check_failed_with(rc, want_code, want_msg);
}
#define FAILS(lit, code, msg) load_fails((lit), sizeof(lit) - 1, (code), (msg))

/* ---- the VM --------------------------------------------------------------------------- */

TEST(test_scalars) {
    er_pickle *p;
    er_pobj *r;
    /* (1, 300, -2, 2**40, -1, 1.5, None, True, False) via BININT1/2, BININT, LONG1 */
    REQUIRE(LOAD("\x80\x02(K\x01M\x2c\x01J\xfe\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\x01"
                 "\x8a\x01\xff" "G\x3f\xf8\x00\x00\x00\x00\x00\x00" "N\x88\x89t.", &p, &r) == 0);
    REQUIRE(r->type == ER_P_TUPLE && r->n == 9);
    CHECK_EQ_INT(r->items[0]->i, 1);
    CHECK_EQ_INT(r->items[1]->i, 300);
    CHECK_EQ_INT(r->items[2]->i, -2);
    CHECK_EQ_INT(r->items[3]->i, 1LL << 40);
    CHECK_EQ_INT(r->items[4]->i, -1);
    CHECK(r->items[5]->type == ER_P_FLOAT && r->items[5]->f == 1.5);
    CHECK(r->items[6]->type == ER_P_NONE);
    CHECK(r->items[7]->type == ER_P_BOOL && r->items[7]->i == 1);
    CHECK(r->items[8]->type == ER_P_BOOL && r->items[8]->i == 0);
    er_pickle_free(p);
    /* LONG1 of 8 bytes: INT64_MIN; LONG4 of 2 bytes: 0x8000 -> -32768 */
    REQUIRE(LOAD("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8b\x02\x00\x00\x00\x00\x80\x86.", &p, &r) == 0);
    CHECK(r->items[0]->i == INT64_MIN);
    CHECK_EQ_INT(r->items[1]->i, -32768);
    er_pickle_free(p);
}

TEST(test_strings_and_memo) {
    er_pickle *p;
    er_pobj *r;
    /* protocol 4 with FRAME: ('ab', b'xyz', 'ab' (memo), 'q' short_binstring) */
    REQUIRE(LOAD("\x80\x04\x95\x14\x00\x00\x00\x00\x00\x00\x00(\x8c\x02" "ab\x94" "C\x03xyzh\x00U\x01qX\x00\x00\x00\x00t.",
                 &p, &r) == 0);
    REQUIRE(r->type == ER_P_TUPLE && r->n == 5);
    CHECK(r->items[0]->type == ER_P_STR && !strcmp(r->items[0]->s, "ab") && r->items[0]->len == 2);
    CHECK(r->items[1]->type == ER_P_BYTES && r->items[1]->len == 3 && !memcmp(r->items[1]->s, "xyz", 3));
    CHECK(r->items[2] == r->items[0]);
    CHECK(r->items[3]->type == ER_P_STR && !strcmp(r->items[3]->s, "q"));
    CHECK(r->items[4]->type == ER_P_STR && r->items[4]->len == 0);
    er_pickle_free(p);
    /* BINBYTES8 / BINUNICODE8 / BYTEARRAY8 and a binary NUL inside */
    REQUIRE(LOAD("\x8e\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x8d\x01\x00\x00\x00\x00\x00\x00\x00z"
                 "\x96\x01\x00\x00\x00\x00\x00\x00\x00w\x87.", &p, &r) == 0);
    CHECK(r->items[0]->len == 2 && r->items[0]->s[0] == 0 && r->items[0]->s[1] == 1);
    CHECK(r->items[1]->type == ER_P_STR && !strcmp(r->items[1]->s, "z"));
    CHECK(r->items[2]->type == ER_P_BYTES && !strcmp(r->items[2]->s, "w"));
    er_pickle_free(p);
}

TEST(test_containers) {
    er_pickle *p;
    er_pobj *r;
    /* {'a': [1, 2, 3], 'b': {4}, 'c': frozenset({5}), 'a': 9} (the second 'a' wins) */
    REQUIRE(LOAD("}q\x00(X\x01\x00\x00\x00" "a]q\x01K\x01" "a(K\x02K\x03" "eX\x01\x00\x00\x00"
                 "b\x8f(K\x04\x90X\x01\x00\x00\x00" "c(K\x05\x91u" "X\x01\x00\x00\x00" "aK\x09s.", &p, &r) == 0);
    REQUIRE(r->type == ER_P_DICT && r->n == 8);
    er_pobj *a = r->items[1];
    REQUIRE(a->type == ER_P_LIST && a->n == 3);
    CHECK(a->items[0]->i == 1 && a->items[1]->i == 2 && a->items[2]->i == 3);
    CHECK(er_pickle_dict_get(r, "b")->type == ER_P_SET && er_pickle_dict_get(r, "b")->n == 1);
    CHECK(er_pickle_dict_get(r, "c")->type == ER_P_SET);
    CHECK(er_pickle_dict_get(r, "a")->i == 9);
    CHECK(er_pickle_dict_get(r, "zz") == NULL);
    CHECK(er_pickle_dict_get(a, "a") == NULL);
    CHECK(er_pickle_item(a, 2)->i == 3 && er_pickle_item(a, 3) == NULL);
    er_pickle_free(p);
    /* DICT and LIST from MARK, EMPTY_TUPLE, POP_MARK and DUP */
    REQUIRE(LOAD("(K\x01(K\x07\x31" "2l(X\x01\x00\x00\x00kK\x02" "d\x86)\x86.", &p, &r) == 0);
    REQUIRE(r->type == ER_P_TUPLE && r->n == 2);
    CHECK(r->items[0]->type == ER_P_TUPLE && r->items[0]->items[0]->type == ER_P_LIST);
    CHECK(r->items[0]->items[0]->n == 2 && r->items[0]->items[0]->items[0] == r->items[0]->items[0]->items[1]);
    CHECK(er_pickle_dict_get(r->items[0]->items[1], "k")->i == 2);
    CHECK(r->items[1]->type == ER_P_TUPLE && r->items[1]->n == 0);
    er_pickle_free(p);
}

TEST(test_globals_calls) {
    er_pickle *p;
    er_pobj *r;
    /* collections.OrderedDict() with SETITEMS, then BUILD; STACK_GLOBAL + NEWOBJ; PERSID */
    REQUIRE(LOAD("\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00kK\x01u}b"
                 "\x8c\x01m\x8c\x01n\x93)\x81\x85Q\x86.", &p, &r) == 0);
    REQUIRE(r->type == ER_P_TUPLE && r->n == 2);
    er_pobj *od = r->items[0];
    CHECK(od->type == ER_P_CALL && !strcmp(er_pickle_call_name(od), "collections.OrderedDict"));
    CHECK(er_pickle_is_global(od->fn, "collections.OrderedDict"));
    CHECK(od->args->type == ER_P_TUPLE && od->args->n == 0);
    CHECK(er_pickle_dict_get(od->dict, "k")->i == 1);
    CHECK(od->state && od->state->type == ER_P_DICT);
    er_pobj *pid = r->items[1];
    REQUIRE(pid->type == ER_P_PERSID && pid->n == 1);
    er_pobj *obj = pid->items[0]->items[0];
    CHECK(!strcmp(er_pickle_call_name(obj), "m.n") && obj->list == NULL);
    er_pickle_free(p);
    /* NEWOBJ_EX with empty kwargs; APPENDS onto an object (list subclass) */
    REQUIRE(LOAD("\x8c\x01m\x8c\x01n\x93)}\x92(K\x01K\x02" "e.", &p, &r) == 0);
    CHECK(r->type == ER_P_CALL && r->list && r->list->n == 2);
    er_pickle_free(p);
}

TEST(test_cycle_and_dup) {
    er_pickle *p;
    er_pobj *r;
    /* l = []; l.append(l) */
    REQUIRE(LOAD("]q\x00h\x00" "a.", &p, &r) == 0);
    CHECK(r->type == ER_P_LIST && r->n == 1 && r->items[0] == r);
    er_pickle_free(p);
    er_pickle_free(NULL);
}

TEST(test_errors) {
    CHECK(FAILS("\xff", EASYREC_ERR_UNSUPPORTED, "opcode 0xff"));
    CHECK(FAILS("I1\n.", EASYREC_ERR_UNSUPPORTED, "opcode 0x49"));          /* text protocol 0 */
    CHECK(FAILS("\x80\x06N.", EASYREC_ERR_UNSUPPORTED, "protocol 6"));
    CHECK(FAILS("R.", EASYREC_ERR_FORMAT, "stack underflow"));
    CHECK(FAILS(".", EASYREC_ERR_FORMAT, "stack underflow"));
    CHECK(FAILS("K\x01(R.", EASYREC_ERR_FORMAT, "stack underflow"));         /* no popping past MARK */
    CHECK(FAILS("K\x01(a.", EASYREC_ERR_FORMAT, "stack underflow"));
    CHECK(FAILS("t.", EASYREC_ERR_FORMAT, "no MARK"));
    CHECK(FAILS("N", EASYREC_ERR_FORMAT, "without STOP"));
    CHECK(FAILS("", EASYREC_ERR_FORMAT, "without STOP"));
    CHECK(FAILS("X\xff\xff\xff\x7f" "abc.", EASYREC_ERR_FORMAT, "runs past the end"));
    CHECK(FAILS("\x8e\xff\xff\xff\xff\xff\xff\xff\xff.", EASYREC_ERR_FORMAT, "runs past the end"));
    CHECK(FAILS("T\xff\xff\xff\xff.", EASYREC_ERR_FORMAT, "negative"));
    CHECK(FAILS("J\x01\x02", EASYREC_ERR_FORMAT, "truncated"));
    CHECK(FAILS("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", EASYREC_ERR_FORMAT, "FRAME"));
    CHECK(FAILS("h\x05.", EASYREC_ERR_FORMAT, "never stored"));
    CHECK(FAILS("Nr\xff\xff\xff\x7f.", EASYREC_ERR_FORMAT, "memo index"));
    CHECK(FAILS("q\x00.", EASYREC_ERR_FORMAT, "stack underflow"));
    CHECK(FAILS("\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01.", EASYREC_ERR_UNSUPPORTED, "more than 64 bits"));
    CHECK(FAILS("K\x01N b.", EASYREC_ERR_UNSUPPORTED, "opcode 0x20"));
    CHECK(FAILS("K\x01Nb.", EASYREC_ERR_FORMAT, "BUILD applied to a int"));
    CHECK(FAILS("}(K\x01u.", EASYREC_ERR_FORMAT, "odd number"));
    CHECK(FAILS(")K\x01" "a.", EASYREC_ERR_FORMAT, "APPEND applied to a tuple"));
    CHECK(FAILS("]K\x01\x90.", EASYREC_ERR_FORMAT, "no MARK"));
    CHECK(FAILS("](K\x01\x90.", EASYREC_ERR_FORMAT, "ADDITEMS applied to a list"));
    CHECK(FAILS("K\x01K\x02\x93.", EASYREC_ERR_FORMAT, "two strings"));
    CHECK(FAILS("cmod\nname", EASYREC_ERR_FORMAT, "newline"));
    CHECK(FAILS("NK\x01R.", EASYREC_ERR_FORMAT, "not a tuple"));
    CHECK(FAILS("N)}X\x01\x00\x00\x00kK\x01s\x92.", EASYREC_ERR_UNSUPPORTED, "keyword"));
    CHECK(FAILS("N)R}b}b.", EASYREC_ERR_UNSUPPORTED, "twice"));
    CHECK(FAILS("\x97.", EASYREC_ERR_UNSUPPORTED, "opcode 0x97"));           /* out-of-band buffer */
    /* more MARKs than the limit */
    char marks[ER_PICKLE_MAX_MARKS + 2];
    memset(marks, '(', sizeof marks);
    CHECK(load_fails(marks, sizeof marks, EASYREC_ERR_FORMAT, "nested MARKs"));
}

/* Every strict prefix of a valid pickle lacks its STOP, so must fail cleanly. */
static void check_truncations(const char *path) {
    char *buf;
    size_t len;
    REQUIRE(er_read_file(path, &buf, &len) == 0);
    for (size_t cut = 0; cut < len; cut++) CHECK(load_fails(buf, cut, 0, NULL));
    er_pickle *p;
    er_pobj *r;
    CHECK(er_pickle_load((const uint8_t *)buf, len, path, &p, &r) == 0);
    er_pickle_free(p);
    free(buf);
}

TEST(test_truncated_fixtures) {
    check_truncations(FIX "coo_p2.pkl");
    check_truncations(FIX "csr_p5.pkl");
}

/* ---- scipy sparse ------------------------------------------------------------------- */

TEST(test_sparse_fixtures) {
    json_error_t jerr;
    json_t *exp = json_load_file(FIX "expected.json", 0, &jerr);
    REQUIRE(exp);
    json_t *sp = json_object_get(exp, "sparse");
    REQUIRE(json_object_size(sp) == 11);
    const char *name;
    json_t *e;
    json_object_foreach(sp, name, e) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s", name);
        er_sparse m;
        int rc = er_sparse_pickle_load(path, &m);
        if (rc) CHECK_FAILMSG("%s: %s", name, easyrec_last_error());
        if (rc) continue;
        json_t *shape = json_object_get(e, "shape"), *row = json_object_get(e, "row");
        json_t *col = json_object_get(e, "col"), *data = json_object_get(e, "data");
        CHECK_EQ_INT(m.nrows, json_integer_value(json_array_get(shape, 0)));
        CHECK_EQ_INT(m.ncols, json_integer_value(json_array_get(shape, 1)));
        REQUIRE(m.nnz == json_array_size(row));
        for (size_t k = 0; k < m.nnz; k++) {
            CHECK_EQ_INT(m.row[k], json_integer_value(json_array_get(row, k)));
            CHECK_EQ_INT(m.col[k], json_integer_value(json_array_get(col, k)));
            CHECK_NEAR(m.val[k], json_real_value(json_array_get(data, k)), 0);
        }
        er_sparse_free(&m);
    }
    json_decref(exp);
    er_sparse_free(NULL);
}

/* Patch the first occurrence of pat (len n) in buf by replacing it with rep (same len). */
static int patch(char *buf, size_t len, const char *pat, const char *rep, size_t n) {
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, pat, n)) {
            memcpy(buf + i, rep, n);
            return 1;
        }
    return 0;
}

static int sparse_fails(const char *buf, size_t len, int code, const char *msg) {
    er_sparse m;
    int rc = er_sparse_pickle_parse((const uint8_t *)buf, len, "m.pkl", &m);
    if (rc == EASYREC_OK) {
        er_sparse_free(&m);
        return 0;
    }
    if (m.row || m.col || m.val || m.nnz) return 0;
    if (code && rc != code) return 0;
    if (msg && !strstr(easyrec_last_error(), msg)) {
        printf("    message: %s\n", easyrec_last_error());
        return 0;
    }
    return 1;
}

TEST(test_sparse_bad) {
    char *buf;
    size_t len;
    REQUIRE(er_read_file(FIX "coo_p4.pkl", &buf, &len) == 0);
    for (size_t cut = 0; cut < len; cut++) CHECK(sparse_fails(buf, cut, 0, NULL));
    /* _shape (5, 7) -> (2, 7): row index 3 out of range */
    char *b = malloc(len);
    memcpy(b, buf, len);
    REQUIRE(patch(b, len, "_shape\x94K\x05", "_shape\x94K\x02", 9));
    CHECK(sparse_fails(b, len, EASYREC_ERR_FORMAT, "row[3] out of range [0, 2)"));
    /* dtype 'i4' -> 'i8': byte count no longer matches */
    memcpy(b, buf, len);
    REQUIRE(patch(b, len, "i4", "i8", 2));
    CHECK(sparse_fails(b, len, EASYREC_ERR_FORMAT, "data bytes"));
    /* byte order '<' -> '>' */
    memcpy(b, buf, len);
    REQUIRE(patch(b, len, "\x8c\x01<", "\x8c\x01>", 3));
    CHECK(sparse_fails(b, len, EASYREC_ERR_UNSUPPORTED, "big-endian"));
    /* 'data' key renamed: missing field */
    memcpy(b, buf, len);
    REQUIRE(patch(b, len, "\x04" "data", "\x04" "dat_", 5));
    CHECK(sparse_fails(b, len, EASYREC_ERR_FORMAT, "missing data"));
    /* another class */
    memcpy(b, buf, len);
    REQUIRE(patch(b, len, "coo_matrix", "dok_matrix", 10));
    CHECK(sparse_fails(b, len, EASYREC_ERR_UNSUPPORTED, "scipy.sparse._coo.dok_matrix"));
    free(b);
    free(buf);
    CHECK(sparse_fails("K\x01.", 3, EASYREC_ERR_UNSUPPORTED, "not a scipy"));
    /* CSR with indptr going backwards: patch indptr [0,1,3,3,4,6] -> [0,3,1,...] */
    REQUIRE(er_read_file(FIX "csr_p4.pkl", &buf, &len) == 0);
    REQUIRE(patch(buf, len, "\x00\x00\x00\x00\x01\x00\x00\x00\x03\x00\x00\x00", "\x00\x00\x00\x00\x03\x00\x00\x00\x01\x00\x00\x00", 12));
    CHECK(sparse_fails(buf, len, EASYREC_ERR_FORMAT, "indptr[2] decreases"));
    free(buf);
    CHECK(er_sparse_pickle_load("tests/fixtures/loaders/absent.pkl", &(er_sparse){0}) == EASYREC_ERR_IO);
}

/* The EasyRec release matrices (../shared/data/easyrec), nnz as in its README. */
TEST(test_sparse_real_data) {
    if (!check_shared_dir() && !er_file_exists("../shared/data/easyrec/arts/trn_mat.pkl"))
        SKIP("../shared/data/easyrec absent");
    static const struct {
        const char *ds;
        int users, items, nnz;
    } sets[] = {{"arts", 14470, 8537, 96328},        {"electronics", 26837, 14033, 165628},
                {"games", 17397, 8330, 120255},      {"home", 22893, 13070, 131556},
                {"movies", 16994, 9370, 134649},     {"tools", 26141, 14155, 154453},
                {"sports", 21476, 12741, 132400},    {"yelp", 11091, 11010, 166620}};
    int found = 0;
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        static const char *splits[] = {"trn", "val", "tst"};
        for (int s = 0; s < 3; s++) {
            char path[256];
            snprintf(path, sizeof path, "../shared/data/easyrec/%s/%s_mat.pkl", sets[i].ds, splits[s]);
            if (!er_file_exists(path)) continue;
            found++;
            er_sparse m;
            int rc = er_sparse_pickle_load(path, &m);
            if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
            if (rc) continue;
            CHECK_EQ_INT(m.nrows, sets[i].users);
            CHECK_EQ_INT(m.ncols, sets[i].items);
            if (s == 0) CHECK_EQ_INT(m.nnz, sets[i].nnz);
            int ones = 1;
            for (size_t k = 0; k < m.nnz; k++) ones &= m.val[k] == 1.0f;
            CHECK(ones);
            er_sparse_free(&m);
        }
    }
    if (!found) SKIP("no *_mat.pkl under ../shared/data/easyrec");
}

CHECK_MAIN(CASE(test_scalars), CASE(test_strings_and_memo), CASE(test_containers), CASE(test_globals_calls),
           CASE(test_cycle_and_dup), CASE(test_errors), CASE(test_truncated_fixtures), CASE(test_sparse_fixtures),
           CASE(test_sparse_bad), CASE(test_sparse_real_data))
