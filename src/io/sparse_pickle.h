/* sparse_pickle.h — read a pickled scipy.sparse matrix (EasyRec's trn/val/tst_mat.pkl) as
 * COO triplets, without Python.
 *
 * Accepts coo_matrix/coo_array (row/col, or scipy >= 1.13's coords), csr_* and csc_*
 * pickled with protocols 2–5 by any numpy >= 1.x (arrays rebuilt through
 * numpy.core.multiarray._reconstruct + __setstate__, or numpy.core.numeric._frombuffer at
 * protocol 5). Index arrays may be any little-endian integer type; values any integer,
 * bool or float type. See docs/formats.md.
 */
#ifndef ER_SPARSE_PICKLE_H
#define ER_SPARSE_PICKLE_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t nrows, ncols; /* shape (e.g. n_user, n_item) */
    size_t nnz;
    int32_t *row, *col;   /* (nnz) 0 <= row < nrows, 0 <= col < ncols; COO order as stored,
                             CSR expanded row by row, CSC column by column (as scipy's tocoo) */
    float *val;           /* (nnz) values (float64 rounded) */
} er_sparse;

/* Read path. On success *out holds malloc'd arrays (free with er_sparse_free; non-NULL even
 * when nnz is 0). On failure *out is zeroed and the error names the file and field. */
int er_sparse_pickle_load(const char *path, er_sparse *out);
/* Same from pickle bytes in memory; `what` names them in messages. */
int er_sparse_pickle_parse(const uint8_t *buf, size_t len, const char *what, er_sparse *out);
/* Free the arrays and zero *m. NULL or a zeroed struct is a no-op. */
void er_sparse_free(er_sparse *m);

/* Write a scipy.sparse.coo_matrix pickle (protocol 4, the release layout: int32 row/col,
 * float64 data = 1.0) of nnz coordinates to path, atomically (sparse_pickle_write.c).
 * canonical: 1 when the coordinates are sorted row-major without duplicates (scipy's
 * has_canonical_format). Coordinates must lie inside the shape (ER_ASSERT). */
int er_sparse_pickle_write(const char *path, int32_t nrows, int32_t ncols, const int32_t *row, const int32_t *col,
                           size_t nnz, int canonical);

#endif
