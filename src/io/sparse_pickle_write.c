/* sparse_pickle_write.c — write a scipy.sparse.coo_matrix pickle (protocol 4), the layout of
 * the EasyRec release trn/val/tst_mat.pkl: int32 row/col, float64 data = 1.0, `_shape`,
 * `maxprint` 50, `has_canonical_format`. Python 3 + scipy (1.x, and 1.13+'s coords through
 * its setstate) load it with pickle.load; er_sparse_pickle_load reads it back.
 *
 * Opcode layout (what pickle.dumps(coo, 4) emits, less FRAME/MEMOIZE of unused values):
 *   GLOBAL scipy.sparse._coo coo_matrix; EMPTY_TUPLE NEWOBJ; EMPTY_DICT MARK
 *     '_shape' (U, I)  'maxprint' 50
 *     'row'|'col'|'data' _reconstruct(ndarray, (0,), b'b') BUILD (1, (n,), dtype, False, bytes)
 *     'has_canonical_format' bool
 *   SETITEMS BUILD STOP
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/sparse_pickle.h"

typedef struct {
    unsigned char *b;
    size_t n, cap;
    int oom;
} pbuf;

static void put(pbuf *p, const void *d, size_t n) {
    if (p->oom) return;
    if (p->n + n > p->cap) {
        size_t c = p->cap ? p->cap : 4096;
        while (c < p->n + n) c *= 2;
        unsigned char *nb = realloc(p->b, c);
        if (!nb) {
            p->oom = 1;
            return;
        }
        p->b = nb;
        p->cap = c;
    }
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void op(pbuf *p, unsigned char c) { put(p, &c, 1); }
static void le32(pbuf *p, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(p, b, 4);
}
static void str(pbuf *p, const char *s) { /* SHORT_BINUNICODE (all ours are < 256 bytes) */
    size_t n = strlen(s);
    op(p, 0x8c);
    op(p, (unsigned char)n);
    put(p, s, n);
}
static void pint(pbuf *p, int64_t v) {
    if (v >= 0 && v < 256) {
        op(p, 'K');
        op(p, (unsigned char)v);
    } else if (v >= 0 && v < 65536) {
        op(p, 'M');
        op(p, (unsigned char)v);
        op(p, (unsigned char)(v >> 8));
    } else {
        op(p, 'J');
        le32(p, (uint32_t)(int32_t)v);
    }
}
static void bytes(pbuf *p, const void *d, size_t n) {
    if (n < 256) {
        op(p, 'C');
        op(p, (unsigned char)n);
    } else {
        op(p, 'B'); /* BINBYTES, 4-byte length (callers keep n < 2^32) */
        le32(p, (uint32_t)n);
    }
    put(p, d, n);
}
static void global(pbuf *p, const char *mod, const char *name) {
    str(p, mod);
    str(p, name);
    op(p, 0x93); /* STACK_GLOBAL */
}
/* numpy dtype('<i4') / dtype('<f8') with its setstate tuple */
static void dtype(pbuf *p, const char *code) {
    global(p, "numpy", "dtype");
    str(p, code);
    op(p, 0x89); /* False */
    op(p, 0x88); /* True */
    op(p, 0x87); /* TUPLE3 */
    op(p, 'R');
    op(p, '(');
    pint(p, 3);
    str(p, "<");
    op(p, 'N');
    op(p, 'N');
    op(p, 'N');
    pint(p, -1);
    pint(p, -1);
    pint(p, 0);
    op(p, 't');
    op(p, 'b');
}
/* a 1-D little-endian array of n elements, raw bytes d (n * itemsize) */
static void ndarray(pbuf *p, const char *code, const void *d, size_t n, size_t itemsize) {
    global(p, "numpy.core.multiarray", "_reconstruct");
    global(p, "numpy", "ndarray");
    pint(p, 0);
    op(p, 0x85); /* TUPLE1 */
    bytes(p, "b", 1);
    op(p, 0x87);
    op(p, 'R');
    op(p, '(');
    pint(p, 1);
    pint(p, (int64_t)n);
    op(p, 0x85);
    dtype(p, code);
    op(p, 0x89);
    bytes(p, d, n * itemsize);
    op(p, 't');
    op(p, 'b');
}

int er_sparse_pickle_write(const char *path, int32_t nrows, int32_t ncols, const int32_t *row, const int32_t *col,
                           size_t nnz, int canonical) {
    if (nrows < 0 || ncols < 0) return er_error(EASYREC_ERR_ARG, "%s: negative shape", path);
    if (nnz > (size_t)INT32_MAX / 8) return er_error(EASYREC_ERR_UNSUPPORTED, "%s: %zu entries is too many", path, nnz);
    for (size_t k = 0; k < nnz; k++)
        ER_ASSERT(row[k] >= 0 && row[k] < nrows && col[k] >= 0 && col[k] < ncols);
    /* the arrays' bytes, little-endian (the hosts we build on are; checked) */
    const uint32_t one = 1;
    ER_ASSERT(*(const unsigned char *)&one == 1);
    double *data = er_mallocarray(nnz ? nnz : 1, sizeof(double));
    if (!data) return EASYREC_ERR_NOMEM;
    for (size_t k = 0; k < nnz; k++) data[k] = 1.0;
    pbuf p = {0};
    op(&p, 0x80);
    op(&p, 4);
    global(&p, "scipy.sparse._coo", "coo_matrix");
    op(&p, ')');
    op(&p, 0x81); /* NEWOBJ */
    op(&p, '}');
    op(&p, '(');
    str(&p, "_shape");
    pint(&p, nrows);
    pint(&p, ncols);
    op(&p, 0x86); /* TUPLE2 */
    str(&p, "maxprint");
    pint(&p, 50);
    str(&p, "row");
    ndarray(&p, "i4", row, nnz, 4);
    str(&p, "col");
    ndarray(&p, "i4", col, nnz, 4);
    str(&p, "data");
    ndarray(&p, "f8", data, nnz, 8);
    str(&p, "has_canonical_format");
    op(&p, canonical ? 0x88 : 0x89);
    op(&p, 'u'); /* SETITEMS */
    op(&p, 'b'); /* BUILD */
    op(&p, '.');
    free(data);
    if (p.oom) {
        free(p.b);
        return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = er_write_file_atomic(path, p.b, p.n);
    free(p.b);
    return rc;
}
