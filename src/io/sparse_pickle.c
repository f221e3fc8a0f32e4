/* sparse_pickle.c — interpret the pickle of a scipy.sparse matrix (pickle.c builds the
 * tree; nothing is executed) and return it as COO triplets.
 *
 * What scipy/numpy write (docs/formats.md has an annotated listing):
 *   scipy.sparse._coo.coo_matrix  NEWOBJ ()  BUILD {'_shape': (n, m), 'row': A, 'col': A,
 *                                                  'data': A, ...}
 *   csr/csc:                      BUILD {'_shape', 'indptr': A, 'indices': A, 'data': A}
 * where each numpy array A is one of
 *   numpy.core.multiarray._reconstruct(ndarray, (0,), b'b') BUILD (1, shape, dtype,
 *       is_fortran, raw)             raw: bytes, a py2 str, or (protocol 2 under Python 3)
 *                                    _codecs.encode(<latin-1 text>, 'latin1')
 *   numpy.core.numeric._frombuffer(raw, dtype, shape, order)          (protocol 5)
 * and dtype is numpy.dtype('i4', False, True) BUILD (3, '<', ...) (byte order '<', '|'
 * or '='; '>' is rejected). Arrays must be 1-D with exactly shape * itemsize raw bytes.
 *
 * Every index is range-checked against the shape (which must fit int32), CSR/CSC indptr
 * must start at 0, never decrease and end at nnz. Object arrays (raw given as a list) and
 * non-numeric dtypes are rejected.
 */
#include "io/sparse_pickle.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/pickle.h"
#include "io/tensors.h"

typedef struct {
    char kind;          /* 'i' signed, 'u' unsigned, 'f' float, 'b' bool */
    size_t size;        /* bytes per element */
    size_t n;           /* elements (1-D) */
    const uint8_t *data;
    uint8_t *owned;     /* latin-1 decoded copy backing data, or NULL */
} np_arr;

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* ---- numpy arrays --------------------------------------------------------------------- */

static int np_dtype(const char *what, const char *field, const er_pobj *d, np_arr *a) {
    const char *fn = er_pickle_call_name(d);
    const er_pobj *code = er_pickle_item(d ? d->args : NULL, 0);
    if (!fn || strcmp(fn, "numpy.dtype") || !code || code->type != ER_P_STR || code->len != 2)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: %s: dtype is not a simple numpy dtype", what, field);
    a->kind = code->s[0];
    a->size = (size_t)(code->s[1] - '0');
    int ok = (a->kind == 'i' || a->kind == 'u') ? (a->size == 1 || a->size == 2 || a->size == 4 || a->size == 8)
             : a->kind == 'f'                   ? (a->size == 2 || a->size == 4 || a->size == 8)
             : a->kind == 'b'                   ? a->size == 1
                                                : 0;
    if (!ok) return er_error(EASYREC_ERR_UNSUPPORTED, "%s: %s: numpy dtype '%s' not supported", what, field, code->s);
    const er_pobj *order = er_pickle_item(d->state, 1);
    if (order && order->type == ER_P_STR && !strcmp(order->s, ">") && a->size > 1)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: %s: big-endian arrays not supported", what, field);
    return EASYREC_OK;
}

/* Raw array bytes: bytes, a py2 str, or _codecs.encode(text, 'latin1') whose UTF-8 text
 * holds only code points < 256 (one byte each after decoding). */
static int np_raw(const char *what, const char *field, const er_pobj *r, np_arr *a, size_t *len) {
    if (r && (r->type == ER_P_BYTES || r->type == ER_P_STR)) {
        a->data = (const uint8_t *)r->s;
        *len = r->len;
        return EASYREC_OK;
    }
    const char *fn = er_pickle_call_name(r);
    const er_pobj *text = er_pickle_item(r ? r->args : NULL, 0), *enc = er_pickle_item(r ? r->args : NULL, 1);
    if (!fn || strcmp(fn, "_codecs.encode") || !text || text->type != ER_P_STR || !enc || enc->type != ER_P_STR ||
        (strcmp(enc->s, "latin1") && strcmp(enc->s, "latin-1")))
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: %s: array data is a %s, not raw bytes", what, field,
                        er_pickle_type_name(r));
    if (!(a->owned = er_mallocarray(text->len + 1, 1))) return EASYREC_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < text->len; i++) {
        uint8_t c = (uint8_t)text->s[i];
        if (c >= 0x80) {
            uint8_t c2 = i + 1 < text->len ? (uint8_t)text->s[i + 1] : 0;
            if ((c != 0xc2 && c != 0xc3) || (c2 & 0xc0) != 0x80)
                return er_error(EASYREC_ERR_FORMAT, "%s: %s: latin-1 array text is not valid", what, field);
            c = (uint8_t)((c & 0x1f) << 6 | (c2 & 0x3f));
            i++;
        }
        a->owned[n++] = c;
    }
    a->data = a->owned;
    *len = n;
    return EASYREC_OK;
}

/* A 1-D numpy array from either of numpy's pickled forms. */
static int np_array(const char *what, const char *field, const er_pobj *o, np_arr *a) {
    memset(a, 0, sizeof(*a));
    if (!o) return er_error(EASYREC_ERR_FORMAT, "%s: missing %s", what, field);
    const char *fn = er_pickle_call_name(o);
    const er_pobj *shape, *dtype, *raw;
    if (fn && has_suffix(fn, "multiarray._reconstruct") && !strncmp(fn, "numpy.", 6)) {
        const er_pobj *st = o->state;
        size_t skip = st && st->type == ER_P_TUPLE && st->n == 5 ? 1 : 0; /* version 1 leads */
        if (!st || st->type != ER_P_TUPLE || st->n != 4 + skip)
            return er_error(EASYREC_ERR_FORMAT, "%s: %s: ndarray state is not (version, shape, dtype, fortran, data)",
                            what, field);
        shape = st->items[skip];
        dtype = st->items[skip + 1];
        raw = st->items[skip + 3];
    } else if (fn && has_suffix(fn, "numeric._frombuffer") && !strncmp(fn, "numpy.", 6)) {
        raw = er_pickle_item(o->args, 0);
        dtype = er_pickle_item(o->args, 1);
        shape = er_pickle_item(o->args, 2);
    } else {
        return er_error(EASYREC_ERR_FORMAT, "%s: %s is a %s%s%s, not a numpy array", what, field, er_pickle_type_name(o),
                        fn ? " " : "", fn ? fn : "");
    }
    const er_pobj *n = er_pickle_item(shape, 0);
    if (!shape || shape->type != ER_P_TUPLE || shape->n != 1 || n->type != ER_P_INT || n->i < 0)
        return er_error(EASYREC_ERR_FORMAT, "%s: %s: not a 1-D array", what, field);
    int rc;
    size_t len = 0, want;
    if ((rc = np_dtype(what, field, dtype, a)) || (rc = np_raw(what, field, raw, a, &len))) return rc;
    a->n = (size_t)n->i;
    if (er_mul_size(a->n, a->size, &want) || want != len)
        return er_error(EASYREC_ERR_FORMAT, "%s: %s: %zu data bytes for %lld elements of %zu bytes", what, field, len,
                        (long long)n->i, a->size);
    return EASYREC_OK;
}

/* Element k as int64; returns -1 if it does not fit (huge uint64) or is not an integer. */
static int np_int(const np_arr *a, size_t k, int64_t *v) {
    const uint8_t *p = a->data + k * a->size;
    uint64_t u = 0;
    if (a->kind == 'f') return -1;
    for (size_t i = 0; i < a->size; i++) u |= (uint64_t)p[i] << (8 * i);
    if (a->kind == 'i' && a->size < 8 && (u >> (8 * a->size - 1)) & 1) u |= ~(uint64_t)0 << (8 * a->size);
    if (a->kind == 'u' && u > INT64_MAX) return -1;
    *v = (int64_t)u;
    return 0;
}

static float np_float(const np_arr *a, size_t k) {
    const uint8_t *p = a->data + k * a->size;
    if (a->kind == 'f') {
        if (a->size == 8) { double d; memcpy(&d, p, 8); return (float)d; }
        if (a->size == 4) { float f; memcpy(&f, p, 4); return f; }
        return er_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    }
    int64_t v = 0;
    np_int(a, k, &v);
    return (float)v;
}

/* Convert an index array to int32 in [0, limit). */
static int np_index(const char *what, const char *field, const np_arr *a, int64_t limit, int32_t *out) {
    for (size_t k = 0; k < a->n; k++) {
        int64_t v;
        if (np_int(a, k, &v) || v < 0 || v >= limit)
            return er_error(EASYREC_ERR_FORMAT, "%s: %s[%zu] out of range [0, %lld)", what, field, k, (long long)limit);
        out[k] = (int32_t)v;
    }
    return EASYREC_OK;
}

/* ---- matrices ------------------------------------------------------------------------- */

static int sp_alloc(er_sparse *m, size_t nnz) {
    m->nnz = nnz;
    m->row = er_mallocarray(nnz ? nnz : 1, sizeof(*m->row));
    m->col = er_mallocarray(nnz ? nnz : 1, sizeof(*m->col));
    m->val = er_mallocarray(nnz ? nnz : 1, sizeof(*m->val));
    return m->row && m->col && m->val ? EASYREC_OK : EASYREC_ERR_NOMEM;
}

static int sp_coo(const char *what, const er_pobj *st, er_sparse *m) {
    np_arr r = {0}, c = {0}, d = {0};
    const er_pobj *coords = er_pickle_dict_get(st, "coords");
    const er_pobj *ro = coords ? er_pickle_item(coords, 0) : er_pickle_dict_get(st, "row");
    const er_pobj *co = coords ? er_pickle_item(coords, 1) : er_pickle_dict_get(st, "col");
    int rc = np_array(what, "row", ro, &r);
    if (!rc) rc = np_array(what, "col", co, &c);
    if (!rc) rc = np_array(what, "data", er_pickle_dict_get(st, "data"), &d);
    if (!rc && (r.n != c.n || r.n != d.n))
        rc = er_error(EASYREC_ERR_FORMAT, "%s: row, col and data lengths differ (%zu, %zu, %zu)", what, r.n, c.n, d.n);
    if (!rc) rc = sp_alloc(m, r.n);
    if (!rc) rc = np_index(what, "row", &r, m->nrows, m->row);
    if (!rc) rc = np_index(what, "col", &c, m->ncols, m->col);
    for (size_t k = 0; !rc && k < d.n; k++) m->val[k] = np_float(&d, k);
    free(r.owned);
    free(c.owned);
    free(d.owned);
    return rc;
}

/* CSR (by_row) or CSC: expand indptr into the major coordinate. */
static int sp_compressed(const char *what, const er_pobj *st, int by_row, er_sparse *m) {
    np_arr p = {0}, ix = {0}, d = {0};
    int rc = np_array(what, "indptr", er_pickle_dict_get(st, "indptr"), &p);
    if (!rc) rc = np_array(what, "indices", er_pickle_dict_get(st, "indices"), &ix);
    if (!rc) rc = np_array(what, "data", er_pickle_dict_get(st, "data"), &d);
    int64_t major = by_row ? m->nrows : m->ncols, minor = by_row ? m->ncols : m->nrows;
    if (!rc && (p.n != (size_t)major + 1 || ix.n != d.n))
        rc = er_error(EASYREC_ERR_FORMAT, "%s: indptr has %zu entries for %lld %s; indices %zu, data %zu", what, p.n,
                      (long long)major, by_row ? "rows" : "columns", ix.n, d.n);
    if (!rc) rc = sp_alloc(m, ix.n);
    int32_t *maj = by_row ? m->row : m->col, *min = by_row ? m->col : m->row;
    if (!rc) rc = np_index(what, "indices", &ix, minor, min);
    int64_t prev = 0, next = 0;
    if (!rc && (np_int(&p, 0, &prev) || prev != 0)) rc = er_error(EASYREC_ERR_FORMAT, "%s: indptr[0] is not 0", what);
    for (int64_t i = 0; !rc && i < major; i++) {
        if (np_int(&p, (size_t)i + 1, &next) || next < prev || (uint64_t)next > ix.n)
            rc = er_error(EASYREC_ERR_FORMAT, "%s: indptr[%lld] decreases or exceeds nnz %zu", what, (long long)i + 1, ix.n);
        for (int64_t k = prev; !rc && k < next; k++) maj[k] = (int32_t)i;
        prev = next;
    }
    if (!rc && (uint64_t)prev != ix.n)
        rc = er_error(EASYREC_ERR_FORMAT, "%s: indptr ends at %lld, nnz is %zu", what, (long long)prev, ix.n);
    for (size_t k = 0; !rc && k < d.n; k++) m->val[k] = np_float(&d, k);
    free(p.owned);
    free(ix.owned);
    free(d.owned);
    return rc;
}

static int sp_matrix(const char *what, const er_pobj *root, er_sparse *m) {
    const char *fn = er_pickle_call_name(root);
    int kind = !fn || strncmp(fn, "scipy.sparse.", 13) ? 0
               : has_suffix(fn, ".coo_matrix") || has_suffix(fn, ".coo_array") ? 1
               : has_suffix(fn, ".csr_matrix") || has_suffix(fn, ".csr_array") ? 2
               : has_suffix(fn, ".csc_matrix") || has_suffix(fn, ".csc_array") ? 3 : 0;
    if (!kind)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: pickle holds %s%s, not a scipy COO/CSR/CSC matrix", what,
                        fn ? fn : er_pickle_type_name(root), fn ? "" : "");
    const er_pobj *st = root->state, *shape = er_pickle_dict_get(st, "_shape");
    const er_pobj *nr = er_pickle_item(shape, 0), *nc = er_pickle_item(shape, 1);
    if (!st || st->type != ER_P_DICT)
        return er_error(EASYREC_ERR_FORMAT, "%s: %s without a state dict", what, fn);
    if (!shape || shape->type != ER_P_TUPLE || shape->n != 2 || nr->type != ER_P_INT || nc->type != ER_P_INT ||
        nr->i < 0 || nc->i < 0 || nr->i > INT32_MAX || nc->i > INT32_MAX)
        return er_error(EASYREC_ERR_FORMAT, "%s: _shape is not two ints in [0, 2^31)", what);
    m->nrows = (int32_t)nr->i;
    m->ncols = (int32_t)nc->i;
    return kind == 1 ? sp_coo(what, st, m) : sp_compressed(what, st, kind == 2, m);
}

int er_sparse_pickle_parse(const uint8_t *buf, size_t len, const char *what, er_sparse *out) {
    memset(out, 0, sizeof(*out));
    er_pickle *p;
    er_pobj *root;
    int rc = er_pickle_load(buf, len, what, &p, &root);
    if (rc) return rc;
    rc = sp_matrix(what, root, out);
    er_pickle_free(p);
    if (rc) er_sparse_free(out);
    return rc;
}

int er_sparse_pickle_load(const char *path, er_sparse *out) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof(*out));
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    rc = er_sparse_pickle_parse((const uint8_t *)buf, len, path, out);
    free(buf);
    return rc;
}

void er_sparse_free(er_sparse *m) {
    if (!m) return;
    free(m->row);
    free(m->col);
    free(m->val);
    memset(m, 0, sizeof(*m));
}
