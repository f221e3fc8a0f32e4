/* test_npy.c — src/io/npy.c: numpy-written fixtures read back (f4/f8/f2, format 1.0–3.0),
 * our writer's exact header bytes and round trip, and malformed headers and sizes; the
 * mapped view (er_npy_open_f32) gives the same arrays and errors as reading.
 */
#include <jansson.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "io/tensors.h"

#define FIX "tests/fixtures/loaders/"

static int npy_fails(const char *buf, size_t len, int code, const char *msg) {
    float *d = (float *)1;
    int nd = -1;
    int64_t shape[ER_MAX_DIMS];
    int rc = er_npy_parse_f32((const uint8_t *)buf, len, "a.npy", &d, &nd, shape);
    if (rc == EASYREC_OK) {
        free(d);
        return 0;
    }
    if (d || nd) return 0;
    return check_failed_with(rc, code, msg);
}

/* A .npy v1.0 file from a header dict and data bytes. */
static char *npy_build(const char *dict, const void *data, size_t dlen, size_t *len) {
    size_t h = strlen(dict);
    *len = 10 + h + dlen;
    char *b = malloc(*len);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (char)(h & 0xff);
    b[9] = (char)(h >> 8);
    memcpy(b + 10, dict, h);
    if (dlen) memcpy(b + 10 + h, data, dlen);
    return b;
}

static int dict_fails(const char *dict, size_t dlen, int code, const char *msg) {
    static const float zeros[64];
    size_t len;
    char *b = npy_build(dict, zeros, dlen, &len);
    int ok = npy_fails(b, len, code, msg);
    free(b);
    return ok;
}

TEST(test_read_fixtures) {
    json_error_t jerr;
    json_t *all = json_load_file(FIX "expected.json", 0, &jerr);
    REQUIRE(all);
    json_t *exp = json_object_get(all, "npy");
    REQUIRE(json_object_size(exp) == 6);
    const char *name;
    json_t *e;
    json_object_foreach(exp, name, e) {
        char path[256];
        snprintf(path, sizeof path, FIX "%s", name);
        float *d;
        int nd;
        int64_t shape[ER_MAX_DIMS];
        int rc = er_npy_read_f32(path, &d, &nd, shape);
        if (rc) CHECK_FAILMSG("%s: %s", name, easyrec_last_error());
        if (rc) continue;
        json_t *js = json_object_get(e, "shape"), *jv = json_object_get(e, "values");
        CHECK_EQ_INT(nd, json_array_size(js));
        size_t n = 1;
        for (int i = 0; i < nd; i++) {
            CHECK_EQ_INT(shape[i], json_integer_value(json_array_get(js, (size_t)i)));
            n *= (size_t)shape[i];
        }
        REQUIRE(n == json_array_size(jv));
        for (size_t k = 0; k < n; k++) CHECK(d[k] == (float)json_number_value(json_array_get(jv, k)));
        /* the view: '<f4' in place from the mapping, other dtypes converted */
        er_npy_view v;
        REQUIRE(er_npy_open_f32(path, &v) == 0);
        CHECK(v.ndim == nd && !memcmp(v.shape, shape, sizeof(shape[0]) * (size_t)nd) && v.numel == n);
        CHECK(n == 0 || !memcmp(v.data, d, n * sizeof(float)));
        int f4 = strcmp(name, "arr_f2.npy") && strcmp(name, "arr_f8.npy"); /* the others are '<f4' */
        CHECK(f4 ? v.map && !v.owned : !v.map && v.owned);
        er_npy_close(&v);
        CHECK(v.data == NULL && v.map == NULL);
        free(d);
    }
    json_decref(all);
}

TEST(test_write_roundtrip) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/easyrec_test_npy_%d.npy", (int)getpid());
    float v[6] = {1, -2, 3.5f, 0, 1e-30f, 7};
    int64_t shape[2] = {2, 3};
    REQUIRE(er_npy_write_f32(path, v, 2, shape) == 0);
    char *buf;
    size_t len;
    REQUIRE(er_read_file(path, &buf, &len) == 0);
    /* exactly what numpy 1.24 writes for np.save(path, np.zeros((2, 3), np.float32)) */
    static const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(len == 128 + sizeof v);
    CHECK(!memcmp(buf, hdr, sizeof hdr - 1));
    CHECK(buf[127] == '\n' && buf[126] == ' ');
    free(buf);
    float *d;
    int nd;
    int64_t got[ER_MAX_DIMS];
    REQUIRE(er_npy_read_f32(path, &d, &nd, got) == 0);
    CHECK(nd == 2 && got[0] == 2 && got[1] == 3 && !memcmp(d, v, sizeof v));
    free(d);
    /* 1-d "(3,)", 0-d "()" and empty "(0, 4)" */
    int64_t s1 = 3, s0[2] = {0, 4};
    REQUIRE(er_npy_write_f32(path, v, 1, &s1) == 0);
    REQUIRE(er_npy_read_f32(path, &d, &nd, got) == 0);
    CHECK(nd == 1 && got[0] == 3 && d[2] == 3.5f);
    free(d);
    REQUIRE(er_npy_write_f32(path, v, 0, NULL) == 0);
    REQUIRE(er_npy_read_f32(path, &d, &nd, got) == 0);
    CHECK(nd == 0 && d[0] == 1);
    free(d);
    REQUIRE(er_npy_write_f32(path, v, 2, s0) == 0);
    REQUIRE(er_npy_read_f32(path, &d, &nd, got) == 0);
    CHECK(nd == 2 && got[0] == 0 && got[1] == 4 && d != NULL);
    free(d);
    /* the view refuses what reading refuses: data cut short, a file too short to map */
    er_npy_view view;
    REQUIRE(er_npy_write_f32(path, v, 2, shape) == 0);
    REQUIRE(er_read_file(path, &buf, &len) == 0);
    REQUIRE(er_write_file_atomic(path, buf, len - 4) == 0);
    CHECK(er_npy_open_f32(path, &view) == EASYREC_ERR_FORMAT && strstr(easyrec_last_error(), "need 24"));
    CHECK(view.data == NULL && view.map == NULL);
    REQUIRE(er_write_file_atomic(path, buf, 5) == 0);
    CHECK(er_npy_open_f32(path, &view) == EASYREC_ERR_FORMAT && strstr(easyrec_last_error(), "not a .npy"));
    free(buf);
    unlink(path);
    CHECK(er_npy_write_f32("/nonexistent-dir/x.npy", v, 1, &s1) == EASYREC_ERR_IO);
    CHECK(er_npy_read_f32("/nonexistent-dir/x.npy", &d, &nd, got) == EASYREC_ERR_IO && d == NULL);
    CHECK(er_npy_open_f32("/nonexistent-dir/x.npy", &view) == EASYREC_ERR_IO && view.data == NULL);
    er_npy_close(NULL);
}

TEST(test_bad_files) {
    char *buf;
    size_t len;
    REQUIRE(er_read_file(FIX "arr_f8.npy", &buf, &len) == 0);
    for (size_t cut = 0; cut < len; cut++) CHECK(npy_fails(buf, cut, 0, NULL));
    buf[6] = 4;
    CHECK(npy_fails(buf, len, EASYREC_ERR_UNSUPPORTED, "version 4.0"));
    buf[6] = 1;
    buf[9] = 0x7f;
    CHECK(npy_fails(buf, len, EASYREC_ERR_FORMAT, "beyond file size"));
    buf[0] = 'x';
    CHECK(npy_fails(buf, len, EASYREC_ERR_FORMAT, "not a .npy"));
    free(buf);
    CHECK(dict_fails("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, EASYREC_ERR_UNSUPPORTED, "'>f4'"));
    CHECK(dict_fails("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8, EASYREC_ERR_UNSUPPORTED, "'<i4'"));
    CHECK(dict_fails("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, EASYREC_ERR_UNSUPPORTED, "descr"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 1), }", 8, EASYREC_ERR_UNSUPPORTED, "Fortran"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, 0, NULL) == 0); /* 1-d: same */
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8, EASYREC_ERR_FORMAT, "need 12"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 8,
                     EASYREC_ERR_FORMAT, "overflows"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8,
                     EASYREC_ERR_FORMAT, "shape"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, EASYREC_ERR_FORMAT, "shape"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,2), }", 8, EASYREC_ERR_FORMAT, "shape"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False, 'shape': (2, }", 8, EASYREC_ERR_FORMAT, "shape"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': False}", 8, EASYREC_ERR_FORMAT, "lacks"));
    CHECK(dict_fails("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, EASYREC_ERR_FORMAT, "twice"));
    CHECK(dict_fails("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", 8, EASYREC_ERR_FORMAT, "True/False"));
    CHECK(dict_fails("{'descr': '<f4', 'extra': 1, 'fortran_order': False, 'shape': (2,)}", 8, EASYREC_ERR_FORMAT, "extra"));
    CHECK(dict_fails("{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, EASYREC_ERR_FORMAT, "expected"));
    CHECK(dict_fails("['descr']", 8, EASYREC_ERR_FORMAT, "not a dict"));
    CHECK(dict_fails("{'descr: '<f4'}", 8, EASYREC_ERR_FORMAT, NULL));
    /* no trailing comma and Python 2 long suffix are accepted */
    CHECK(dict_fails("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L,)}", 8, 0, NULL) == 0);
}

CHECK_MAIN(CASE(test_read_fixtures), CASE(test_write_roundtrip), CASE(test_bad_files))
