/* test_loaders.c — the checkpoint readers: safetensors.c, torchbin.c and the shared tensor
 * code in tensors.c.
 *
 * Good files come from tools/gen_loader_fixtures.py (torch.save output and a hand-written
 * safetensors file) and are compared value by value with expected.json. Bad files are
 * made here from the good ones or from scratch: every truncation, wrong header lengths,
 * offsets past the end, overflowing shapes, unknown dtypes and opcodes, hostile strides,
 * missing storages — each must give an error code and a message, never a crash (run
 * under `make sanitize` too).
 */
#include <jansson.h>
#include <math.h>
#include <zip.h>

#include "check.h"
#include "core/err.h"
#include "io/tensors.h"

#define FIX "tests/fixtures/loaders/"

/* ---- helpers -------------------------------------------------------------------------- */

static json_t *expected(const char *file) {
    static json_t *all;
    if (!all) {
        json_error_t jerr;
        all = json_load_file(FIX "expected.json", 0, &jerr);
        if (!all) return NULL;
    }
    return json_object_get(all, file);
}

/* Every tensor of exp is in ts with the same dtype, shape and (exactly) the same values. */
static void check_set(const er_tensorset *ts, json_t *exp) {
    REQUIRE(exp);
    CHECK_EQ_INT(ts->n, json_object_size(exp));
    const char *name;
    json_t *e;
    json_object_foreach(exp, name, e) {
        const er_tensor *t = er_tensorset_find(ts, name);
        if (!t) CHECK_FAILMSG("tensor %s missing", name);
        if (!t) continue;
        CHECK(!strcmp(er_dtype_name(t->dtype), json_string_value(json_object_get(e, "dtype"))));
        json_t *shape = json_object_get(e, "shape"), *vals = json_object_get(e, "values");
        CHECK_EQ_INT(t->ndim, json_array_size(shape));
        for (int d = 0; d < t->ndim; d++) CHECK_EQ_INT(t->shape[d], json_integer_value(json_array_get(shape, (size_t)d)));
        REQUIRE(t->numel == json_array_size(vals));
        float *f = malloc((t->numel + 1) * sizeof(float));
        er_tensor_to_f32(t, f);
        for (size_t k = 0; k < t->numel; k++) {
            double want = (float)json_number_value(json_array_get(vals, k));
            if (f[k] != want) CHECK_FAILMSG("%s[%zu] = %.9g, expected %.9g", name, k, f[k], want);
        }
        free(f);
    }
}

/* rc is an error with a message containing msg (if given) and ts was left zeroed. */
static int failed_with(int rc, const er_tensorset *ts, int code, const char *msg) {
    if (rc == EASYREC_OK) return 0;
    if (ts->t || ts->n || ts->priv) return 0;
    return check_failed_with(rc, code, msg);
}

static int st_fails(const void *buf, size_t len, int code, const char *msg) {
    er_tensorset ts;
    int rc = er_safetensors_parse(buf, len, "x.safetensors", &ts);
    if (rc == EASYREC_OK) er_tensorset_close(&ts);
    return failed_with(rc, &ts, code, msg);
}

static int tb_fails(const void *buf, size_t len, int code, const char *msg) {
    er_tensorset ts;
    int rc = er_torchbin_parse(buf, len, "x.bin", &ts);
    if (rc == EASYREC_OK) er_tensorset_close(&ts);
    return failed_with(rc, &ts, code, msg);
}

/* A safetensors file from header JSON text and data bytes (caller frees). */
static uint8_t *st_build(const char *hdr, const void *data, size_t dlen, size_t *len) {
    size_t h = strlen(hdr);
    *len = 8 + h + dlen;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    if (dlen) memcpy(b + 8 + h, data, dlen);
    return b;
}

static int st_json_fails(const char *hdr, size_t dlen, int code, const char *msg) {
    static const uint8_t zeros[256];
    size_t len;
    uint8_t *b = st_build(hdr, zeros, dlen, &len);
    int ok = st_fails(b, len, code, msg);
    free(b);
    return ok;
}

/* ---- conversions ---------------------------------------------------------------------- */

TEST(test_f16_exhaustive) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
        double want = exp == 31 ? (man ? NAN : INFINITY) : exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
        if (sign) want = -want;
        float got = er_f16_to_f32((uint16_t)h);
        if (isnan(want) ? !isnan(got) : (got != (float)want || !signbit(got) != !signbit(want))) bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(test_bf16_and_strides) {
    CHECK(er_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(er_bf16_to_f32(0xc000) == -2.0f);
    CHECK(isinf(er_bf16_to_f32(0x7f80)));
    CHECK(isnan(er_bf16_to_f32(0x7fc1)));
    CHECK(er_bf16_to_f32(0x0001) == ldexpf(1.0f, -133));
    /* a (2, 3, 2) view with permuted strides over 12 int32 values 0..11 */
    int32_t v[12];
    for (int i = 0; i < 12; i++) v[i] = i;
    er_tensor t = {.dtype = ER_DT_I32, .ndim = 3, .shape = {2, 3, 2}, .stride = {1, 4, 2}, .data = (uint8_t *)v, .numel = 12};
    float out[12];
    er_tensor_to_f32(&t, out);
    int k = 0, good = 1;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++) good &= out[k++] == (float)(a + 4 * b + 2 * c);
    CHECK(good);
    /* broadcast (stride 0) and the other integer types */
    int64_t i64[2] = {-5, 1LL << 40};
    er_tensor b = {.dtype = ER_DT_I64, .ndim = 2, .shape = {2, 2}, .stride = {1, 0}, .data = (uint8_t *)i64, .numel = 4};
    er_tensor_to_f32(&b, out);
    CHECK(out[0] == -5 && out[1] == -5 && out[2] == ldexpf(1, 40) && out[3] == ldexpf(1, 40));
    uint8_t bytes[3] = {255, 0, 7};
    er_tensor u = {.dtype = ER_DT_U8, .ndim = 1, .shape = {3}, .stride = {1}, .data = bytes, .numel = 3};
    er_tensor_to_f32(&u, out);
    CHECK(out[0] == 255 && out[2] == 7);
    u.dtype = ER_DT_I8;
    er_tensor_to_f32(&u, out);
    CHECK(out[0] == -1);
    u.dtype = ER_DT_BOOL;
    er_tensor_to_f32(&u, out);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == 1);
    CHECK(er_dtype_is_float(ER_DT_BF16) && !er_dtype_is_float(ER_DT_I64));
    CHECK_EQ_INT(er_dtype_size(ER_DT_F64), 8);
}

/* ---- safetensors ---------------------------------------------------------------------- */

TEST(test_safetensors_fixture) {
    er_tensorset ts;
    int rc = er_safetensors_open(FIX "st.safetensors", &ts);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    check_set(&ts, expected("st.safetensors"));
    CHECK(er_tensorset_find(&ts, "__metadata__") == NULL);
    CHECK(er_tensorset_find(&ts, "missing.weight") == NULL);
    CHECK(er_tensorset_find(&ts, "") == NULL);
    er_tensorset_close(&ts);
    er_tensorset_close(&ts); /* zeroed: no-op */
    CHECK(er_tensorset_find(&ts, "half") == NULL);
}

TEST(test_safetensors_truncated) {
    char *buf;
    size_t len;
    REQUIRE(er_read_file(FIX "st.safetensors", &buf, &len) == 0);
    for (size_t cut = 0; cut < len; cut++) CHECK(st_fails(buf, cut, 0, NULL));
    /* header length one byte too long / beyond the file / 2^64-1 / too short for the JSON */
    uint8_t *b = malloc(len);
    memcpy(b, buf, len);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h |= (uint64_t)b[i] << (8 * i);
    b[0] = (uint8_t)(h + 1);
    CHECK(st_fails(b, len, EASYREC_ERR_FORMAT, NULL));
    memset(b, 0xff, 8);
    CHECK(st_fails(b, len, EASYREC_ERR_FORMAT, "beyond file size"));
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((h - 10) >> (8 * i)); /* cuts the JSON short */
    CHECK(st_fails(b, len, EASYREC_ERR_FORMAT, "header JSON"));
    free(b);
    free(buf);
    CHECK(st_fails("", 0, EASYREC_ERR_FORMAT, "too short"));
}

TEST(test_safetensors_bad_headers) {
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8, EASYREC_ERR_FORMAT, "beyond the 8 data bytes"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, EASYREC_ERR_FORMAT, "bad data_offsets"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, EASYREC_ERR_FORMAT, "bad data_offsets"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, EASYREC_ERR_FORMAT, "need 12"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                        EASYREC_ERR_FORMAT, "overflows"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F16\",\"shape\":[4611686018427387904,2],\"data_offsets\":[0,8]}}", 8,
                        EASYREC_ERR_FORMAT, "overflows"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8,
                        EASYREC_ERR_FORMAT, "header JSON"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 8, EASYREC_ERR_FORMAT, "dim 0"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, EASYREC_ERR_FORMAT, "dim 0"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
                        EASYREC_ERR_UNSUPPORTED, "9 dims"));
    CHECK(st_json_fails("{\"enc.w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 8,
                        EASYREC_ERR_UNSUPPORTED, "tensor enc.w: unsupported dtype F8_E4M3"));
    CHECK(st_json_fails("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, EASYREC_ERR_FORMAT, "missing dtype"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, EASYREC_ERR_FORMAT, "missing shape"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, EASYREC_ERR_FORMAT, "data_offsets"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, EASYREC_ERR_FORMAT, "data_offsets"));
    CHECK(st_json_fails("{\"a\":[1]}", 8, EASYREC_ERR_FORMAT, "not an object"));
    CHECK(st_json_fails("[]", 8, EASYREC_ERR_FORMAT, "not a JSON object"));
    CHECK(st_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, EASYREC_ERR_FORMAT, "duplicate"));
    /* empty and metadata-only headers are fine; overlapping tensors are read as they are */
    er_tensorset ts;
    size_t len;
    uint8_t *b = st_build("{\"__metadata__\":{\"k\":\"v\"}}", NULL, 0, &len);
    CHECK(er_safetensors_parse(b, len, "m", &ts) == 0 && ts.n == 0);
    er_tensorset_close(&ts);
    free(b);
    float two[2] = {1.5f, -2.0f};
    b = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}", two, 8, &len);
    REQUIRE(er_safetensors_parse(b, len, "m", &ts) == 0);
    float out[2];
    er_tensor_to_f32(er_tensorset_find(&ts, "b"), out);
    CHECK(out[0] == -2.0f && er_tensorset_find(&ts, "b")->ndim == 0);
    er_tensorset_close(&ts);
    free(b);
}

TEST(test_safetensors_open_errors) {
    er_tensorset ts;
    CHECK(failed_with(er_safetensors_open(FIX "absent.safetensors", &ts), &ts, EASYREC_ERR_IO, "absent.safetensors"));
    CHECK(failed_with(er_safetensors_open(FIX "../loaders", &ts), &ts, EASYREC_ERR_FORMAT, NULL));
    CHECK(failed_with(er_safetensors_open(FIX "arr_f4.npy", &ts), &ts, EASYREC_ERR_FORMAT, "arr_f4.npy"));
}

/* ---- torch zip checkpoints: the fixtures ------------------------------------------------ */

TEST(test_torch_fixture) {
    er_tensorset ts;
    int rc = er_torchbin_open(FIX "torch_sd.bin", &ts);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    check_set(&ts, expected("torch_sd.bin"));
    CHECK(er_tensorset_find(&ts, "note") == NULL); /* an int in the dict: skipped */
    const er_tensor *base = er_tensorset_find(&ts, "base"), *vt = er_tensorset_find(&ts, "view_t");
    const er_tensor *vo = er_tensorset_find(&ts, "view_off"), *ve = er_tensorset_find(&ts, "view_elem");
    REQUIRE(base && vt && vo && ve);
    CHECK(vt->data == base->data && vt->stride[0] == 1 && vt->stride[1] == 6); /* one shared copy */
    CHECK(vo->data == base->data + 6 * 4 && ve->data == base->data + 15 * 4);
    CHECK(!strcmp(ts.t[0].name, "0.weight")); /* file order kept */
    er_tensorset_close(&ts);
}

TEST(test_torch_v2style) {
    er_tensorset ts;
    int rc = er_torchbin_open(FIX "torch_v2style.bin", &ts);
    if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
    REQUIRE(rc == 0);
    check_set(&ts, expected("torch_v2style.bin"));
    er_tensorset_close(&ts);
}

/* ---- torch zip checkpoints: archives built here ----------------------------------------- */

typedef struct {
    const char *name;
    const void *data;
    size_t len;
} zent;

/* A zip of the given entries (stored, or deflated when deflate is set); caller frees. */
static uint8_t *zip_build(const zent *e, int n, int deflate, size_t *len) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &err);
    zip_source_keep(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &err);
    ER_ASSERT(za);
    for (int i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(za, e[i].data, e[i].len, 0);
        zip_int64_t idx = zip_file_add(za, e[i].name, s, ZIP_FL_OVERWRITE);
        ER_ASSERT(idx >= 0);
        zip_set_file_compression(za, (zip_uint64_t)idx, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
    ER_ASSERT(zip_close(za) == 0);
    zip_stat_t st;
    ER_ASSERT(zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0);
    uint8_t *buf = malloc(st.size);
    ER_ASSERT(zip_source_read(src, buf, st.size) == (zip_int64_t)st.size);
    zip_source_close(src);
    zip_source_free(src);
    *len = st.size;
    return buf;
}

/* A tiny pickle writer for hand-made state dicts. */
typedef struct {
    uint8_t b[4096];
    size_t n;
} pkb;

static void pb(pkb *p, const void *s, size_t n) {
    ER_ASSERT(p->n + n <= sizeof p->b);
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void pb_str(pkb *p, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    pb(p, h, 5);
    pb(p, s, n);
}
static void pb_int(pkb *p, int64_t v) { /* LONG1 with 8 bytes: any int64 */
    uint8_t h[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
    pb(p, h, 10);
}
static void pb_global(pkb *p, const char *mod, const char *name) {
    pb(p, "c", 1);
    pb(p, mod, strlen(mod));
    pb(p, "\n", 1);
    pb(p, name, strlen(name));
    pb(p, "\n", 1);
}
static void pb_begin(pkb *p) {
    p->n = 0;
    pb(p, "\x80\x02", 2);
    pb_global(p, "collections", "OrderedDict");
    pb(p, ")R(", 3);
}
static void pb_end(pkb *p) { pb(p, "u.", 2); }

/* name -> fn(('storage', torch.<stype>, key, 'cpu', numel), offset, size, stride, False, {}) */
static void pb_tensor_nds(pkb *p, const char *name, const char *fn, const char *stype, const char *key,
                          int64_t numel, int64_t offset, int nd, const int64_t *size, int nds, const int64_t *stride) {
    pb_str(p, name);
    pb_global(p, "torch._utils", fn);
    pb(p, "((", 2);
    pb_str(p, "storage");
    pb_global(p, "torch", stype);
    pb_str(p, key);
    pb_str(p, "cpu");
    pb_int(p, numel);
    pb(p, "tQ", 2);
    pb_int(p, offset);
    pb(p, "(", 1);
    for (int d = 0; d < nd; d++) pb_int(p, size[d]);
    pb(p, "t(", 2);
    for (int d = 0; d < nds; d++) pb_int(p, stride[d]);
    pb(p, "t\x89}tR", 5);
}
static void pb_tensor(pkb *p, const char *name, const char *fn, const char *stype, const char *key, int64_t numel,
                      int64_t offset, int nd, const int64_t *size, const int64_t *stride) {
    pb_tensor_nds(p, name, fn, stype, key, numel, offset, nd, size, nd, stride);
}

static const float six[6] = {1, 2, 3, 4, 5, 6};

/* Archive with data.pkl = p and storage "0" = six floats; parse and compare. */
static int tb_pkl_fails(const pkb *p, int code, const char *msg) {
    zent e[] = {{"archive/data.pkl", p->b, p->n}, {"archive/data/0", six, sizeof six}};
    size_t len;
    uint8_t *z = zip_build(e, 2, 0, &len);
    int ok = tb_fails(z, len, code, msg);
    free(z);
    return ok;
}

static int tb_one_fails(const char *stype, int64_t numel, int64_t offset, int nd, const int64_t *size,
                        const int64_t *stride, int code, const char *msg) {
    pkb p;
    pb_begin(&p);
    pb_tensor(&p, "x", "_rebuild_tensor_v2", stype, "0", numel, offset, nd, size, stride);
    pb_end(&p);
    return tb_pkl_fails(&p, code, msg);
}

TEST(test_torch_built_good) {
    pkb p;
    int64_t sz[2] = {2, 2}, st[2] = {1, 3}, z[2] = {0, 3}, zs[2] = {3, 1};
    pb_begin(&p);
    pb_tensor(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 1, 2, sz, st); /* [[2,5],[3,6]] */
    pb_tensor(&p, "e", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 6, 2, z, zs);  /* empty, at the end */
    pb_end(&p);
    zent e[] = {{"m/data.pkl", p.b, p.n}, {"m/data/0", six, sizeof six}, {"m/byteorder", "little\n", 7}};
    for (int deflate = 0; deflate < 2; deflate++) {
        size_t len;
        uint8_t *zb = zip_build(e, 3, deflate, &len);
        er_tensorset ts;
        int rc = er_torchbin_parse(zb, len, "m.bin", &ts);
        free(zb); /* the set does not point into the archive */
        if (rc) CHECK_FAILMSG("%s", easyrec_last_error());
        REQUIRE(rc == 0 && ts.n == 2);
        float out[4];
        er_tensor_to_f32(er_tensorset_find(&ts, "x"), out);
        CHECK(out[0] == 2 && out[1] == 5 && out[2] == 3 && out[3] == 6);
        CHECK(er_tensorset_find(&ts, "e")->numel == 0);
        er_tensorset_close(&ts);
    }
}

TEST(test_torch_hostile_tensors) {
    int64_t sz[2] = {2, 3}, st[2] = {3, 1};
    CHECK(tb_one_fails("FloatStorage", 6, 0, 2, sz, st, 0, NULL) == 0); /* the baseline loads */
    CHECK(tb_one_fails("FloatStorage", 6, 1, 2, sz, st, EASYREC_ERR_FORMAT, "reaches past the 24-byte storage 0"));
    int64_t neg[2] = {-3, 1}, big[2] = {1LL << 62, 1};
    CHECK(tb_one_fails("FloatStorage", 6, 0, 2, sz, neg, EASYREC_ERR_FORMAT, "size/stride"));
    CHECK(tb_one_fails("FloatStorage", 6, 0, 2, neg, st, EASYREC_ERR_FORMAT, "size/stride"));
    CHECK(tb_one_fails("FloatStorage", 6, 0, 2, sz, big, EASYREC_ERR_FORMAT, "reaches past"));
    int64_t huge[2] = {1LL << 62, 1LL << 62};
    CHECK(tb_one_fails("FloatStorage", 6, 0, 2, huge, st, EASYREC_ERR_FORMAT, "overflows"));
    int64_t one[1] = {1}, s1[1] = {1};
    CHECK(tb_one_fails("FloatStorage", 6, INT64_MAX, 1, one, s1, EASYREC_ERR_FORMAT, "reaches past"));
    CHECK(tb_one_fails("FloatStorage", 6, -1, 1, one, s1, EASYREC_ERR_FORMAT, "storage_offset"));
    CHECK(tb_one_fails("FloatStorage", 7, 0, 2, sz, st, EASYREC_ERR_FORMAT, "holds 24 bytes, but its numel 7"));
    CHECK(tb_one_fails("FloatStorage", INT64_MAX, 0, 2, sz, st, EASYREC_ERR_FORMAT, "overflows"));
    CHECK(tb_one_fails("HalfStorage", 12, 0, 2, sz, st, 0, NULL) == 0); /* 12 halves = 24 bytes */
    CHECK(tb_one_fails("ShortStorage", 12, 0, 2, sz, st, EASYREC_ERR_UNSUPPORTED, "tensor x: unsupported storage type torch.ShortStorage"));
    int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(tb_one_fails("FloatStorage", 6, 0, 9, nine, nine, EASYREC_ERR_FORMAT, "at most 8"));

    pkb p;
    pb_begin(&p); /* 2 sizes, 1 stride */
    pb_tensor_nds(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 0, 2, sz, 1, st);
    pb_end(&p);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "size/stride"));
    pb_begin(&p); /* a missing storage entry */
    pb_tensor(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "7", 6, 0, 2, sz, st);
    pb_end(&p);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "missing archive entry archive/data/7"));
    pb_begin(&p); /* one storage described with two types */
    pb_tensor(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 0, 2, sz, st);
    pb_tensor(&p, "y", "_rebuild_tensor_v2", "HalfStorage", "0", 12, 0, 2, sz, st);
    pb_end(&p);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "described twice differently"));
    pb_begin(&p); /* a duplicate name */
    pb_tensor(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 0, 2, sz, st);
    pb_tensor(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 0, 2, sz, st);
    pb_end(&p);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "duplicate tensor name x"));
    pb_begin(&p); /* a quantized tensor */
    pb_tensor(&p, "q", "_rebuild_qtensor", "FloatStorage", "0", 6, 0, 2, sz, st);
    pb_end(&p);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_UNSUPPORTED, "tensor q: torch._utils._rebuild_qtensor is not supported"));
    pb_begin(&p); /* a storage that is not a persistent id */
    pb_str(&p, "x");
    pb_global(&p, "torch._utils", "_rebuild_tensor_v2");
    pb(&p, "(K\x01K\x00)))\x89}tR", 12);
    pb_end(&p);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "storage is not"));
    p.n = 0; /* a list at the top */
    pb(&p, "\x80\x02]K\x01" "a.", 7);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "holds a list, not a state dict"));
    p.n = 0; /* an integer key */
    pb(&p, "}K\x01K\x02s.", 7);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "key 0 is not a string"));
    p.n = 0; /* an unknown opcode */
    pb(&p, "\x80\x02}\xf0.", 5);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_UNSUPPORTED, "opcode 0xf0"));
    p.n = 0; /* stack underflow */
    pb(&p, "\x80\x02}s.", 5);
    CHECK(tb_pkl_fails(&p, EASYREC_ERR_FORMAT, "stack underflow"));
}

TEST(test_torch_bad_archives) {
    pkb p;
    int64_t sz[2] = {2, 3}, st[2] = {3, 1};
    pb_begin(&p);
    pb_tensor(&p, "x", "_rebuild_tensor_v2", "FloatStorage", "0", 6, 0, 2, sz, st);
    pb_end(&p);
    size_t len;
    uint8_t *z;
    zent big[] = {{"a/data.pkl", p.b, p.n}, {"a/data/0", six, sizeof six}, {"a/byteorder", "big", 3}};
    z = zip_build(big, 3, 0, &len);
    CHECK(tb_fails(z, len, EASYREC_ERR_UNSUPPORTED, "only little-endian"));
    free(z);
    zent two[] = {{"a/data.pkl", p.b, p.n}, {"b/data.pkl", p.b, p.n}};
    z = zip_build(two, 2, 0, &len);
    CHECK(tb_fails(z, len, EASYREC_ERR_FORMAT, "more than one data.pkl"));
    free(z);
    zent none[] = {{"a/data/0", six, sizeof six}, {"a/b/data.pkl", p.b, p.n}};
    z = zip_build(none, 2, 0, &len);
    CHECK(tb_fails(z, len, EASYREC_ERR_FORMAT, "no data.pkl"));
    free(z);
    zent flat[] = {{"data.pkl", p.b, p.n}, {"data/0", six, sizeof six}};
    z = zip_build(flat, 2, 0, &len);
    er_tensorset ts;
    CHECK(er_torchbin_parse(z, len, "flat", &ts) == 0 && ts.n == 1); /* no top folder is fine */
    er_tensorset_close(&ts);
    free(z);
    CHECK(tb_fails("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14, EASYREC_ERR_UNSUPPORTED,
                   "legacy torch.save format (pre-1.6) not supported; re-save with torch>=1.6"));
    CHECK(tb_fails("{\"a\": 1}", 8, EASYREC_ERR_FORMAT, "not a zip archive"));
    CHECK(tb_fails("PK\x03\x04garbage", 11, EASYREC_ERR_FORMAT, "zip"));
    CHECK(tb_fails("", 0, EASYREC_ERR_FORMAT, NULL));
    CHECK(failed_with(er_torchbin_open(FIX "absent.bin", &ts), &ts, EASYREC_ERR_IO, "absent.bin"));
    CHECK(failed_with(er_torchbin_open(FIX "st.safetensors", &ts), &ts, EASYREC_ERR_FORMAT, "st.safetensors"));
}

/* Cut the fixtures at every length and flip bytes all over them: errors, never crashes;
 * whatever still loads must be a consistent set. */
TEST(test_torch_truncated_and_corrupted) {
    static const char *files[] = {FIX "torch_sd.bin", FIX "torch_v2style.bin"};
    for (int f = 0; f < 2; f++) {
        char *buf;
        size_t len;
        REQUIRE(er_read_file(files[f], &buf, &len) == 0);
        for (size_t cut = 0; cut < len; cut++) CHECK(tb_fails(buf, cut, 0, NULL));
        uint32_t rng = 12345;
        for (size_t i = 0; i < len; i++) {
            char saved = buf[i];
            rng = rng * 1103515245u + 12345u;
            buf[i] = (char)(saved ^ (1 + (rng >> 24) % 255));
            er_tensorset ts;
            if (er_torchbin_parse((const uint8_t *)buf, len, "c", &ts) == 0) {
                for (int k = 0; k < ts.n; k++) {
                    float *o = malloc((ts.t[k].numel + 1) * sizeof(float));
                    er_tensor_to_f32(&ts.t[k], o);
                    free(o);
                }
                er_tensorset_close(&ts);
            }
            buf[i] = saved;
        }
        free(buf);
    }
}

CHECK_MAIN(CASE(test_f16_exhaustive), CASE(test_bf16_and_strides), CASE(test_safetensors_fixture),
           CASE(test_safetensors_truncated), CASE(test_safetensors_bad_headers), CASE(test_safetensors_open_errors),
           CASE(test_torch_fixture), CASE(test_torch_v2style), CASE(test_torch_built_good),
           CASE(test_torch_hostile_tensors), CASE(test_torch_bad_archives), CASE(test_torch_truncated_and_corrupted))
