/* npy.c — NumPy .npy files: write float32 arrays (what `easyrec encode` produces) and read
 * float arrays back (tests, CF side information).
 *
 * Follows numpy/lib/format.py (NEP 1): magic "\x93NUMPY", major, minor, header length
 * (u16 LE for 1.0, u32 LE for 2.0/3.0), an ASCII (3.0: UTF-8) Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), } padded with spaces and a
 * final '\n' so that the data starts at a multiple of 64 bytes, then the raw C-order data.
 * docs/formats.md has the byte layout.
 *
 * Writing always produces version 1.0 '<f4' (2.0 only if the header would not fit in 64 KiB,
 * which no shape of <= 8 dims can reach). Reading accepts '<f4', '<f8' and '<f2' (converted
 * to float), versions 1.0–3.0, and validates the header syntax, the shape (non-negative
 * dims, overflow-checked product) and that the data size matches exactly. Not supported:
 * big-endian data, Fortran order with more than one dim, structured or object dtypes.
 * er_npy_open_f32 maps the file instead of reading it: '<f4' data is used where it lies in
 * the page cache (no copy, no conversion; what `easyrec eval --user-emb` loads), anything
 * else is converted as er_npy_read_f32 does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "io/tensors.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_ALIGN 64

/* ---- writing -------------------------------------------------------------------------- */

int er_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    ER_ASSERT(ndim >= 0 && ndim <= ER_MAX_DIMS);
    char dict[512];
    size_t k = (size_t)snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t numel = 1, nbytes;
    for (int d = 0; d < ndim; d++) {
        ER_ASSERT(shape[d] >= 0);
        if (er_mul_size(numel, (size_t)shape[d], &numel))
            return er_error(EASYREC_ERR_ARG, "%s: array shape overflows", path);
        k += (size_t)snprintf(dict + k, sizeof dict - k, "%lld%s", (long long)shape[d],
                              ndim == 1 ? "," : d + 1 < ndim ? ", " : "");
    }
    k += (size_t)snprintf(dict + k, sizeof dict - k, "), }");
    ER_ASSERT(k < sizeof dict);
    /* 10 bytes of preamble + dict + padding + '\n' is a multiple of 64 */
    size_t hlen = (10 + k + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN - 10, total;
    if (er_mul_size(numel, sizeof(float), &nbytes) || er_add_size(10 + hlen, nbytes, &total))
        return er_error(EASYREC_ERR_ARG, "%s: array too large", path);
    uint8_t *buf = er_mallocarray(total, 1);
    if (!buf) return EASYREC_ERR_NOMEM;
    memcpy(buf, NPY_MAGIC "\x01\x00", 8);
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, k);
    memset(buf + 10 + k, ' ', hlen - k - 1);
    buf[10 + hlen - 1] = '\n';
    if (nbytes) memcpy(buf + 10 + hlen, data, nbytes);
    int rc = er_write_file_atomic(path, buf, total);
    free(buf);
    return rc;
}

/* ---- reading: the header dict --------------------------------------------------------- */

typedef struct {
    const char *p, *end, *what;
} npy_lex;

static void lx_ws(npy_lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

static int lx_char(npy_lex *l, char c) {
    lx_ws(l);
    if (l->p < l->end && *l->p == c) {
        l->p++;
        return 1;
    }
    return 0;
}

/* A quoted string (no escapes: numpy never writes them in these fields) into out[cap]. */
static int lx_str(npy_lex *l, char *out, size_t cap) {
    lx_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return -1;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *l->p++;
    }
    if (l->p >= l->end) return -1;
    l->p++;
    out[n] = 0;
    return 0;
}

static int lx_word(npy_lex *l, const char *w) {
    lx_ws(l);
    size_t n = strlen(w);
    if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n)) return 0;
    l->p += n;
    return 1;
}

/* A tuple of non-negative decimal ints ("(3, 4)", "(5,)", "()"); Python 2 may add 'L'. */
static int lx_shape(npy_lex *l, int *ndim, int64_t *shape) {
    *ndim = 0;
    if (!lx_char(l, '(')) return -1;
    for (;;) {
        if (lx_char(l, ')')) return 0;
        lx_ws(l);
        if (l->p >= l->end || *l->p < '0' || *l->p > '9' || *ndim == ER_MAX_DIMS) return -1;
        int64_t v = 0;
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *l->p - '0', &v)) return -1;
            l->p++;
        }
        if (l->p < l->end && *l->p == 'L') l->p++;
        shape[(*ndim)++] = v;
        if (!lx_char(l, ',')) return lx_char(l, ')') ? 0 : -1;
    }
}

/* Parse the dict: descr, fortran_order and shape, each exactly once. */
static int npy_header(npy_lex *l, char *descr, size_t dcap, int *fortran, int *ndim, int64_t *shape) {
    int seen = 0;
    if (!lx_char(l, '{')) return er_error(EASYREC_ERR_FORMAT, "%s: .npy header is not a dict", l->what);
    while (!lx_char(l, '}')) {
        char key[32];
        int bit;
        if (lx_str(l, key, sizeof key) || !lx_char(l, ':'))
            return er_error(EASYREC_ERR_FORMAT, "%s: .npy header: malformed key", l->what);
        if (!strcmp(key, "descr")) {
            bit = 1;
            if (lx_str(l, descr, dcap)) return er_error(EASYREC_ERR_UNSUPPORTED, "%s: .npy descr is not a simple dtype string", l->what);
        } else if (!strcmp(key, "fortran_order")) {
            bit = 2;
            if (lx_word(l, "True")) *fortran = 1;
            else if (lx_word(l, "False")) *fortran = 0;
            else return er_error(EASYREC_ERR_FORMAT, "%s: .npy fortran_order is not True/False", l->what);
        } else if (!strcmp(key, "shape")) {
            bit = 4;
            if (lx_shape(l, ndim, shape))
                return er_error(EASYREC_ERR_FORMAT, "%s: .npy shape is not a tuple of at most %d non-negative ints",
                                l->what, ER_MAX_DIMS);
        } else {
            return er_error(EASYREC_ERR_FORMAT, "%s: .npy header: unexpected key '%s'", l->what, key);
        }
        if (seen & bit) return er_error(EASYREC_ERR_FORMAT, "%s: .npy header: key '%s' twice", l->what, key);
        seen |= bit;
        if (!lx_char(l, ',')) {
            if (!lx_char(l, '}')) return er_error(EASYREC_ERR_FORMAT, "%s: .npy header: expected ',' or '}'", l->what);
            break;
        }
    }
    if (seen != 7) return er_error(EASYREC_ERR_FORMAT, "%s: .npy header lacks descr, fortran_order or shape", l->what);
    return EASYREC_OK;
}

/* ---- reading: the file ---------------------------------------------------------------- */

/* The preamble and header of buf: dtype, shape and where the data starts (validated against
 * len: the data is exactly what shape and dtype need). */
static int npy_layout(const uint8_t *buf, size_t len, const char *what, er_tensor *t, size_t *data_off) {
    if (len < 10 || memcmp(buf, NPY_MAGIC, 6)) return er_error(EASYREC_ERR_FORMAT, "%s: not a .npy file", what);
    int major = buf[6];
    if (major < 1 || major > 3)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: .npy format version %d.%d", what, major, buf[7]);
    size_t pre = major == 1 ? 10 : 12, hlen = buf[8] | (size_t)buf[9] << 8;
    if (major > 1) {
        if (len < 12) return er_error(EASYREC_ERR_FORMAT, "%s: truncated .npy preamble", what);
        hlen |= (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    }
    if (hlen > len - pre)
        return er_error(EASYREC_ERR_FORMAT, "%s: .npy header length %zu beyond file size %zu", what, hlen, len);
    char descr[16];
    int fortran = 0, nd = 0;
    int64_t shp[ER_MAX_DIMS];
    npy_lex l = {(const char *)buf + pre, (const char *)buf + pre + hlen, what};
    int rc = npy_header(&l, descr, sizeof descr, &fortran, &nd, shp);
    if (rc) return rc;
    er_dtype dt = !strcmp(descr, "<f4") ? ER_DT_F32 : !strcmp(descr, "<f8") ? ER_DT_F64 : ER_DT_F16;
    if (dt == ER_DT_F16 && strcmp(descr, "<f2"))
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: .npy dtype '%s' (only <f4, <f8, <f2)", what, descr);
    if (fortran && nd > 1) return er_error(EASYREC_ERR_UNSUPPORTED, "%s: Fortran-order .npy arrays", what);
    memset(t, 0, sizeof(*t));
    t->dtype = dt;
    t->ndim = nd;
    memcpy(t->shape, shp, sizeof(shp[0]) * (size_t)nd);
    size_t nbytes;
    if (er_tensor_contiguous(t) || er_mul_size(t->numel, er_dtype_size(dt), &nbytes))
        return er_error(EASYREC_ERR_FORMAT, "%s: .npy shape product overflows", what);
    if (nbytes != len - pre - hlen)
        return er_error(EASYREC_ERR_FORMAT, "%s: .npy data is %zu bytes, shape and dtype need %zu", what,
                        len - pre - hlen, nbytes);
    *data_off = pre + hlen;
    t->data = buf + *data_off;
    return EASYREC_OK;
}

int er_npy_parse_f32(const uint8_t *buf, size_t len, const char *what, float **data, int *ndim,
                  int64_t shape[ER_MAX_DIMS]) {
    *data = NULL;
    *ndim = 0;
    er_tensor t;
    size_t off;
    int rc = npy_layout(buf, len, what, &t, &off);
    if (rc) return rc;
    float *out = er_mallocarray(t.numel ? t.numel : 1, sizeof(float));
    if (!out) return EASYREC_ERR_NOMEM;
    er_tensor_to_f32(&t, out);
    *data = out;
    *ndim = t.ndim;
    memcpy(shape, t.shape, sizeof(t.shape[0]) * (size_t)t.ndim);
    return EASYREC_OK;
}

int er_npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[ER_MAX_DIMS]) {
    char *buf;
    size_t len;
    *data = NULL;
    *ndim = 0;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    rc = er_npy_parse_f32((const uint8_t *)buf, len, path, data, ndim, shape);
    free(buf);
    return rc;
}

/* ---- reading: a view of the file ------------------------------------------------------ */

int er_npy_open_f32(const char *path, er_npy_view *v) {
    memset(v, 0, sizeof(*v));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = EASYREC_OK;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 10) {
        /* the page cache's pages, mapped up front (no fault per page later) */
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (map != MAP_FAILED) {
            v->map = map;
            v->map_len = (size_t)st.st_size;
        }
    }
    close(fd);
    if (!v->map) { /* a pipe, a tiny or unmappable file: read and convert */
        float *d;
        if ((rc = er_npy_read_f32(path, &d, &v->ndim, v->shape))) return rc;
        v->owned = d;
        v->data = d;
    } else {
        er_tensor t;
        size_t off;
        if ((rc = npy_layout(v->map, v->map_len, path, &t, &off))) goto fail;
        v->ndim = t.ndim;
        memcpy(v->shape, t.shape, sizeof(t.shape[0]) * (size_t)t.ndim);
        if (t.dtype == ER_DT_F32 && off % sizeof(float) == 0) {
            v->data = (const float *)(const void *)((const uint8_t *)v->map + off);
        } else { /* another dtype, or data numpy would not have placed there: a converted copy */
            if (!(v->owned = er_mallocarray(t.numel ? t.numel : 1, sizeof(float)))) {
                rc = EASYREC_ERR_NOMEM;
                goto fail;
            }
            er_tensor_to_f32(&t, v->owned);
            munmap(v->map, v->map_len);
            v->map = NULL;
            v->data = v->owned;
        }
    }
    v->numel = 1;
    for (int d = 0; d < v->ndim; d++) v->numel *= (size_t)v->shape[d]; /* checked by npy_layout */
    return EASYREC_OK;
fail:
    er_npy_close(v);
    return rc;
}

void er_npy_close(er_npy_view *v) {
    if (!v) return;
    if (v->map) munmap(v->map, v->map_len);
    free(v->owned);
    memset(v, 0, sizeof(*v));
}
