/* interactions.c — binarised CSR interaction matrices and the TSV / RecBole `.inter`
 * readers (see interactions.h).
 *
 * CSR is built with two counting passes (by column, then by row), so rows come out in
 * ascending item order without a comparison sort: O(nnz + U + I). Duplicated coordinates
 * are dropped, as `trn_mat != 0` on a scipy COO with duplicates would sum them into one
 * non-zero entry. Text ids are interned with the tokenizer's strmap (first-insertion order).
 */
#include "data/interactions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tokenizer/hmap.h"

/* ---- CSR ------------------------------------------------------------------------------ */

void er_csr_free(er_csr *m) {
    if (!m) return;
    free(m->indptr);
    free(m->indices);
    memset(m, 0, sizeof(*m));
}

int er_csr_from_pairs(int32_t nrows, int32_t ncols, const int32_t *row, const int32_t *col, size_t n, er_csr *out) {
    memset(out, 0, sizeof(*out));
    ER_ASSERT(nrows >= 0 && ncols >= 0);
    int rc = EASYREC_ERR_NOMEM;
    int64_t *ccount = er_calloc((size_t)ncols + 1, sizeof(*ccount)), *cursor = NULL;
    size_t *bycol = er_mallocarray(n ? n : 1, sizeof(*bycol));
    out->indptr = er_calloc((size_t)nrows + 1, sizeof(*out->indptr));
    out->indices = er_mallocarray(n ? n : 1, sizeof(*out->indices));
    if (!ccount || !bycol || !out->indptr || !out->indices) goto out_free;
    out->nrows = nrows;
    out->ncols = ncols;
    /* pass 1: entries ordered by column (stable) */
    for (size_t k = 0; k < n; k++) {
        ER_ASSERT(row[k] >= 0 && row[k] < nrows && col[k] >= 0 && col[k] < ncols);
        ccount[col[k] + 1]++;
    }
    for (int32_t c = 0; c < ncols; c++) ccount[c + 1] += ccount[c];
    for (size_t k = 0; k < n; k++) bycol[ccount[col[k]]++] = k;
    /* pass 2: scatter by row; within a row, columns arrive ascending */
    for (size_t k = 0; k < n; k++) out->indptr[row[k] + 1]++;
    for (int32_t r = 0; r < nrows; r++) out->indptr[r + 1] += out->indptr[r];
    if (!(cursor = er_mallocarray((size_t)nrows + 1, sizeof(*cursor)))) goto out_free;
    memcpy(cursor, out->indptr, ((size_t)nrows + 1) * sizeof(*cursor));
    for (size_t j = 0; j < n; j++) {
        size_t k = bycol[j];
        out->indices[cursor[row[k]]++] = col[k];
    }
    /* drop duplicates, compacting in place */
    size_t w = 0;
    int64_t start = 0;
    for (int32_t r = 0; r < nrows; r++) {
        int64_t end = out->indptr[r + 1];
        out->indptr[r] = (int64_t)w;
        for (int64_t k = start; k < end; k++)
            if (k == start || out->indices[k] != out->indices[k - 1]) out->indices[w++] = out->indices[k];
        start = end;
    }
    out->indptr[nrows] = (int64_t)w;
    out->nnz = w;
    rc = EASYREC_OK;
out_free:
    free(ccount);
    free(cursor);
    free(bycol);
    if (rc) er_csr_free(out);
    return rc;
}

int er_csr_from_sparse(const er_sparse *m, er_csr *out) {
    size_t keep = 0;
    memset(out, 0, sizeof(*out));
    /* a shape read from a file must not make us allocate gigabytes of empty rows */
    if (m->nrows > ER_CSR_MAX_DIM || m->ncols > ER_CSR_MAX_DIM)
        return er_error(EASYREC_ERR_UNSUPPORTED, "matrix shape (%d, %d): more than %d rows or columns", m->nrows,
                        m->ncols, ER_CSR_MAX_DIM);
    int32_t *r = er_mallocarray(m->nnz ? m->nnz : 1, sizeof(*r));
    int32_t *c = er_mallocarray(m->nnz ? m->nnz : 1, sizeof(*c));
    int rc = EASYREC_ERR_NOMEM;
    if (!r || !c) goto out_free;
    for (size_t k = 0; k < m->nnz; k++) {
        if (!(m->val[k] != 0.0f)) continue; /* NaN != 0 holds, as in numpy */
        r[keep] = m->row[k];
        c[keep] = m->col[k];
        keep++;
    }
    rc = er_csr_from_pairs(m->nrows, m->ncols, r, c, keep, out);
out_free:
    free(r);
    free(c);
    return rc;
}

int er_csr_has(const er_csr *m, int32_t r, int32_t c) {
    int64_t lo = m->indptr[r], hi = m->indptr[r + 1];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->indices[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->indptr[r + 1] && m->indices[lo] == c;
}

int er_csr_nonempty_rows(const er_csr *m, int32_t **rows, int32_t *n) {
    int32_t k = 0;
    *rows = er_mallocarray(m->nrows ? (size_t)m->nrows : 1, sizeof(**rows));
    if (!*rows) return EASYREC_ERR_NOMEM;
    for (int32_t r = 0; r < m->nrows; r++)
        if (csr_row_len(m, r) > 0) (*rows)[k++] = r;
    *n = k;
    return EASYREC_OK;
}

/* ---- text files ----------------------------------------------------------------------- */

void er_inter_file_free(er_inter_file *f) {
    if (!f) return;
    free(f->buf);
    free(f->user);
    free(f->item);
    memset(f, 0, sizeof(*f));
}

/* Split line s (NUL-terminated, no newline) on TABs in place; fields into f[0..cap). */
static int split_tabs(char *s, char **f, int cap) {
    int n = 0;
    for (;;) {
        if (n < cap) f[n] = s;
        n++;
        char *t = strchr(s, '\t');
        if (!t) break;
        *t = 0;
        s = t + 1;
    }
    return n;
}

static int header_is_item(const char *s) {
    return !strcasecmp(s, "item") || !strcasecmp(s, "item_id") || !strcasecmp(s, "itemid");
}

/* RecBole header: find the columns whose name (before ':') is user_id / item_id. */
static int recbole_columns(char **f, int nf, const char *what, int *ucol, int *icol) {
    *ucol = *icol = -1;
    for (int k = 0; k < nf; k++) {
        const char *colon = strchr(f[k], ':');
        size_t len = colon ? (size_t)(colon - f[k]) : strlen(f[k]);
        if (len == 7 && !strncmp(f[k], "user_id", 7)) *ucol = k;
        if (len == 7 && !strncmp(f[k], "item_id", 7)) *icol = k;
    }
    if (*ucol < 0 || *icol < 0)
        return er_error(EASYREC_ERR_FORMAT, "%s:1: RecBole header lacks a user_id:... or item_id:... column", what);
    return EASYREC_OK;
}

#define MAX_FIELDS 64

int er_inter_file_parse(const char *bytes, size_t len, const char *what, er_inter_file *out) {
    memset(out, 0, sizeof(*out));
    size_t cap = 0, lineno = 0, pos = 0;
    int ucol = 0, icol = 1, first = 1, rc = EASYREC_OK;
    if (!(out->buf = er_mallocarray(len + 1, 1))) return EASYREC_ERR_NOMEM;
    memcpy(out->buf, bytes, len);
    out->buf[len] = 0;
    if (memchr(out->buf, 0, len)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: contains a NUL byte (not a text file)", what);
        goto fail;
    }
    while (pos < len) {
        char *s = out->buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl ? 1 : 0);
        s[ll] = 0;
        if (ll && s[ll - 1] == '\r') s[--ll] = 0;
        lineno++;
        if (ll == 0 || s[0] == '#') continue;
        char *f[MAX_FIELDS];
        int nf = split_tabs(s, f, MAX_FIELDS);
        if (nf > MAX_FIELDS) nf = MAX_FIELDS;
        if (first) { /* the first non-blank line may be a header */
            first = 0;
            if (nf >= 2 && strchr(f[0], ':') && strchr(f[1], ':')) {
                if ((rc = recbole_columns(f, nf, what, &ucol, &icol))) goto fail;
                continue;
            }
            if (nf >= 2 && header_is_item(f[1])) continue;
        }
        int need = (ucol > icol ? ucol : icol) + 1;
        if (nf < need) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%zu: %d field(s), need %d (user<TAB>item)", what, lineno, nf, need);
            goto fail;
        }
        if (!f[ucol][0] || !f[icol][0]) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%zu: empty %s id", what, lineno, f[ucol][0] ? "item" : "user");
            goto fail;
        }
        if (out->n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            char **nu = er_reallocarray(out->user, nc, sizeof(*nu));
            if (!nu) goto nomem;
            out->user = nu;
            char **ni = er_reallocarray(out->item, nc, sizeof(*ni));
            if (!ni) goto nomem;
            out->item = ni;
            cap = nc;
        }
        out->user[out->n] = f[ucol];
        out->item[out->n] = f[icol];
        out->n++;
    }
    if (!out->user && !(out->user = er_mallocarray(1, sizeof(*out->user)))) goto nomem;
    if (!out->item && !(out->item = er_mallocarray(1, sizeof(*out->item)))) goto nomem;
    return EASYREC_OK;
nomem:
    rc = EASYREC_ERR_NOMEM;
fail:
    er_inter_file_free(out);
    return rc;
}

int er_inter_file_read(const char *path, er_inter_file *out) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof(*out));
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    size_t bom = len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0; /* a UTF-8 byte-order mark is skipped */
    rc = er_inter_file_parse(buf + bom, len - bom, path, out);
    free(buf);
    return rc;
}

/* ---- dense ids ------------------------------------------------------------------------ */

void er_idmap_free(er_idmap *m) {
    if (!m) return;
    if (m->names)
        for (int32_t i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    memset(m, 0, sizeof(*m));
}

/* decimal integer in [0, INT32_MAX - 1], no sign, no spaces; -1 otherwise */
static int64_t parse_id(const char *s) {
    int64_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (*s - '0');
        if (v > INT32_MAX - 1) return -1;
    }
    return v;
}

/* one side: tokens[f][k] = side token of line k of file f */
static int map_side(const er_inter_file *files, int nf, int user_side, er_idmap *m, int32_t **ids) {
    int numeric = 1;
    int64_t maxv = -1;
    size_t lines = 0;
    for (int f = 0; f < nf && numeric; f++)
        for (size_t k = 0; k < files[f].n && numeric; k++) {
            int64_t v = parse_id(user_side ? files[f].user[k] : files[f].item[k]);
            if (v < 0) numeric = 0;
            if (v > maxv) maxv = v;
        }
    for (int f = 0; f < nf; f++) lines += files[f].n;
    /* sparse numeric ids (timestamps, catalogue numbers) would make huge empty matrices */
    if (numeric && (uint64_t)maxv >= 2 * (uint64_t)lines + 1024) numeric = 0;
    memset(m, 0, sizeof(*m));
    m->numeric = numeric;
    strmap sm;
    int rc = er_strmap_init(&sm, 1024);
    if (rc) return rc;
    for (int f = 0; f < nf && !rc; f++) {
        if (!(ids[f] = er_mallocarray(files[f].n ? files[f].n : 1, sizeof(*ids[f])))) {
            rc = EASYREC_ERR_NOMEM;
            break;
        }
        for (size_t k = 0; k < files[f].n; k++) {
            const char *t = user_side ? files[f].user[k] : files[f].item[k];
            int added;
            int32_t v = numeric ? (int32_t)parse_id(t) : er_strmap_intern(&sm, t, strlen(t), 0, &added);
            if (v < 0) {
                rc = v;
                break;
            }
            ids[f][k] = v;
        }
    }
    if (!rc && numeric) m->n = (int32_t)(maxv + 1);
    if (!rc && !numeric) {
        m->n = (int32_t)sm.n;
        if (!(m->names = er_calloc(sm.n ? sm.n : 1, sizeof(*m->names)))) rc = EASYREC_ERR_NOMEM;
        for (uint32_t i = 0; !rc && i < sm.n; i++)
            if (!(m->names[i] = er_strdup(strmap_key(&sm, (int32_t)i)))) rc = EASYREC_ERR_NOMEM;
    }
    er_strmap_free(&sm);
    if (rc) er_idmap_free(m);
    return rc;
}

int er_interactions_map(const er_inter_file *files, int nf, er_idmap *users, er_idmap *items, int32_t **rows,
                     int32_t **cols) {
    for (int f = 0; f < nf; f++) rows[f] = cols[f] = NULL;
    memset(items, 0, sizeof(*items));
    int rc = map_side(files, nf, 1, users, rows);
    if (!rc) rc = map_side(files, nf, 0, items, cols);
    if (rc) {
        er_idmap_free(users);
        er_idmap_free(items);
        for (int f = 0; f < nf; f++) {
            free(rows[f]);
            free(cols[f]);
            rows[f] = cols[f] = NULL;
        }
    }
    return rc;
}

int er_idmap_write(const er_idmap *m, const char *header, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path);
    fprintf(f, "%s\n", header);
    for (int32_t i = 0; i < m->n; i++) {
        if (m->names) fprintf(f, "%d\t%s\n", i, m->names[i]);
        else fprintf(f, "%d\t%d\n", i, i);
    }
    int bad = fclose(f);
    int rc = bad ? er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path) : er_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}
