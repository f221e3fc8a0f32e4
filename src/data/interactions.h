/* interactions.h — user-item interaction matrices: binarised CSR, and the plain-text inputs
 * users bring (TSV `user<TAB>item`, RecBole `.inter`).
 *
 * Shapes: U users (rows), I items (columns). A matrix holds each (user, item) once; rows
 * list their items in ascending id order. Text inputs: see docs/eval.md §Data.
 */
#ifndef ER_INTERACTIONS_H
#define ER_INTERACTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "io/sparse_pickle.h"

typedef struct {
    int32_t nrows, ncols; /* U, I */
    size_t nnz;
    int64_t *indptr;      /* (U + 1) row r owns indices[indptr[r] .. indptr[r+1]) */
    int32_t *indices;     /* (nnz) item ids, strictly ascending within a row */
} er_csr;

/* Largest number of rows or columns accepted from a file (2^27: 134M users or items). */
#define ER_CSR_MAX_DIM (1 << 27)

/* Binarise a COO matrix as the original does (`m != 0`: zeros dropped, NaN kept, values
 * forgotten), sort each row and drop duplicate coordinates. *out owned by the caller
 * (er_csr_free). A shape over ER_CSR_MAX_DIM is refused (EASYREC_ERR_UNSUPPORTED). */
int er_csr_from_sparse(const er_sparse *m, er_csr *out);
/* Same from n (row, col) pairs, every row in [0, nrows) and col in [0, ncols) (checked:
 * ER_ASSERT, callers validate first). */
int er_csr_from_pairs(int32_t nrows, int32_t ncols, const int32_t *row, const int32_t *col, size_t n, er_csr *out);
void er_csr_free(er_csr *m);
static inline int64_t csr_row_len(const er_csr *m, int32_t r) { return m->indptr[r + 1] - m->indptr[r]; }
/* 1 when (r, c) is stored (binary search in row r). */
int er_csr_has(const er_csr *m, int32_t r, int32_t c);
/* Rows with at least one entry, ascending; *rows malloc'd (caller frees; non-NULL). */
int er_csr_nonempty_rows(const er_csr *m, int32_t **rows, int32_t *n);

/* ---- text interaction files ----------------------------------------------------------- */

/* One file of interactions, tokens NUL-terminated in place inside buf.
 * Format, detected from the first line:
 *   RecBole atomic file: a header of TAB-separated `name:type` fields; the columns named
 *     user_id and item_id (any type) are used, every other column ignored.
 *   TSV: `user<TAB>item[<TAB>anything...]` per line; a first line whose second field is
 *     "item", "item_id" or "itemId" (any case) is taken as a header and skipped.
 * Blank lines and lines starting with '#' are skipped; "\r\n" is accepted. A data line
 * with fewer fields than needed, or an empty id, is an error naming file and line. */
typedef struct {
    char *buf;         /* file contents; owned */
    char **user;       /* (n) user id tokens, pointers into buf */
    char **item;       /* (n) item id tokens */
    size_t n;
} er_inter_file;

int er_inter_file_read(const char *path, er_inter_file *out);
/* Same from bytes (copied; `what` names them in messages). */
int er_inter_file_parse(const char *bytes, size_t len, const char *what, er_inter_file *out);
void er_inter_file_free(er_inter_file *f);

/* Dense ids of one side (users or items) over a set of files. */
typedef struct {
    int numeric;   /* 1: every token was a decimal integer below 2 * interactions + 1024
                      (and 2^31 - 1): dense id = value */
    int32_t n;     /* ids are 0..n-1 (numeric: max value + 1) */
    char **names;  /* string mode: (n) original token of each dense id, owned; numeric: NULL */
} er_idmap;

/* Map the user and item tokens of files[0..nf) to dense ids. A side whose tokens are all
 * decimal integers, the largest below 2 * (lines in all files) + 1024, keeps them (so rows
 * of embeddings indexed by those ids line up; the bound keeps memory proportional to the
 * input); otherwise dense ids follow first appearance, reading files in the order given (e.g.
 * train, val, test) and lines in file order. rows[f] / cols[f] receive malloc'd arrays of
 * files[f].n ids (caller frees). `what` names the files in messages. */
int er_interactions_map(const er_inter_file *files, int nf, er_idmap *users, er_idmap *items, int32_t **rows,
                     int32_t **cols);
void er_idmap_free(er_idmap *m);
/* Write "dense_id<TAB>original" lines (with a header) to path, atomically. */
int er_idmap_write(const er_idmap *m, const char *header, const char *path);

#endif
