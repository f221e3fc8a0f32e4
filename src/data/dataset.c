/* dataset.c — open a dataset (EasyRec directory or interaction text files) and read its
 * profile sets with coverage checks (see dataset.h).
 *
 * Matrices are binarised with `!= 0` as the original's loaders do; a matrix that is not a
 * pickled scipy COO/CSR/CSC is refused by sparse_pickle.c with the file named. Files are
 * only opened, never written.
 */
#include "data/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"

static const char *split_file[3] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"};
static const char *split_name[3] = {"trn", "val", "tst"};

void er_dataset_free(er_dataset *ds) {
    if (!ds) return;
    for (int s = 0; s < 3; s++) {
        er_csr_free(&ds->split[s]);
        free(ds->split_path[s]);
    }
    for (int k = 0; k < ER_MAX_PROFILE_SETS; k++) {
        free(ds->sets[k].item_path);
        free(ds->sets[k].user_path);
    }
    er_idmap_free(&ds->users);
    er_idmap_free(&ds->items);
    memset(ds, 0, sizeof(*ds));
}

/* Give every absent split an empty (U, I) matrix so callers never see a NULL indptr. */
static int fill_absent(er_dataset *ds) {
    for (int s = 0; s < 3; s++) {
        if (ds->has_split[s]) continue;
        int rc = er_csr_from_pairs(ds->n_users, ds->n_items, NULL, NULL, 0, &ds->split[s]);
        if (rc) return rc;
    }
    return EASYREC_OK;
}

/* path if it names a regular file, else NULL (malloc'd) */
static char *existing(const char *dir, const char *name, int *rc) {
    char *p = er_path_join(dir, name);
    if (!p) {
        *rc = EASYREC_ERR_NOMEM;
        return NULL;
    }
    struct stat st;
    if (stat(p, &st) || !S_ISREG(st.st_mode)) {
        free(p);
        return NULL;
    }
    return p;
}

static int locate_sets(const char *dir, er_dataset *ds) {
    int rc = EASYREC_OK;
    for (int k = 0; k < ER_MAX_PROFILE_SETS && !rc; k++) {
        er_profile_set *ps = &ds->sets[ds->n_sets];
        char item[96], user[96];
        if (k == 0) {
            snprintf(ps->name, sizeof ps->name, "original");
            snprintf(item, sizeof item, "item_profile.json");
            snprintf(user, sizeof user, "user_profile.json");
        } else {
            snprintf(ps->name, sizeof ps->name, "diverse%d", k - 1);
            snprintf(item, sizeof item, "diverse_profile/diverse_item_profile_%d.json", k - 1);
            snprintf(user, sizeof user, "diverse_profile/diverse_user_profile_%d.json", k - 1);
        }
        ps->item_path = existing(dir, item, &rc);
        if (!rc) ps->user_path = existing(dir, user, &rc);
        if (ps->item_path || ps->user_path) ds->n_sets++;
        else memset(ps->name, 0, sizeof ps->name);
    }
    return rc;
}

int er_dataset_open_dir(const char *dir, er_dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    struct stat st;
    if (stat(dir, &st)) return er_error(EASYREC_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return er_error(EASYREC_ERR_ARG, "%s: not a directory", dir);
    int rc = EASYREC_OK, first = -1;
    for (int s = 0; s < 3 && !rc; s++) {
        char *p = existing(dir, split_file[s], &rc);
        if (!p) continue;
        ds->split_path[s] = p;
        er_sparse m;
        if ((rc = er_sparse_pickle_load(p, &m))) break;
        if (first < 0) {
            first = s;
            ds->n_users = m.nrows;
            ds->n_items = m.ncols;
        } else if (m.nrows != ds->n_users || m.ncols != ds->n_items) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: shape (%d, %d) differs from %s's (%d, %d)", p, m.nrows, m.ncols,
                          split_file[first], ds->n_users, ds->n_items);
        }
        if (!rc && (rc = er_csr_from_sparse(&m, &ds->split[s]))) er_error_prefix(rc, "%s", p);
        if (!rc) ds->has_split[s] = 1;
        er_sparse_free(&m);
    }
    if (!rc && first < 0)
        rc = er_error(EASYREC_ERR_FORMAT, "%s: no trn_mat.pkl, val_mat.pkl or tst_mat.pkl (not an EasyRec dataset directory)",
                      dir);
    if (!rc) rc = fill_absent(ds);
    if (!rc) rc = locate_sets(dir, ds);
    if (rc) er_dataset_free(ds);
    return rc;
}

int er_dataset_open_text(const char *trn, const char *val, const char *tst, const char *item_profiles,
                      const char *user_profiles, er_dataset *ds) {
    memset(ds, 0, sizeof(*ds));
    ER_ASSERT(trn && tst);
    const char *paths[3] = {trn, val, tst};
    er_inter_file files[3] = {{0}};
    int idx[3], nf = 0, rc = EASYREC_OK;
    int32_t *rows[3] = {0}, *cols[3] = {0};
    for (int s = 0; s < 3 && !rc; s++) {
        if (!paths[s]) continue;
        idx[nf] = s;
        rc = er_inter_file_read(paths[s], &files[nf]);
        nf++;
    }
    if (!rc) rc = er_interactions_map(files, nf, &ds->users, &ds->items, rows, cols);
    if (!rc) {
        ds->from_text = 1;
        ds->n_users = ds->users.n;
        ds->n_items = ds->items.n;
    }
    for (int f = 0; f < nf && !rc; f++) {
        int s = idx[f];
        rc = er_csr_from_pairs(ds->n_users, ds->n_items, rows[f], cols[f], files[f].n, &ds->split[s]);
        if (!rc) ds->has_split[s] = 1;
        if (!rc && !(ds->split_path[s] = er_strdup(paths[s]))) rc = EASYREC_ERR_NOMEM;
    }
    if (!rc) rc = fill_absent(ds);
    if (!rc && (item_profiles || user_profiles)) {
        er_profile_set *ps = &ds->sets[0];
        snprintf(ps->name, sizeof ps->name, "original");
        if (item_profiles && !(ps->item_path = er_strdup(item_profiles))) rc = EASYREC_ERR_NOMEM;
        if (user_profiles && !(ps->user_path = er_strdup(user_profiles))) rc = EASYREC_ERR_NOMEM;
        ds->n_sets = 1;
    }
    for (int f = 0; f < nf; f++) {
        er_inter_file_free(&files[f]);
        free(rows[f]);
        free(cols[f]);
    }
    if (rc) er_dataset_free(ds);
    return rc;
}

static int csr_widen(er_csr *m, int32_t nrows, int32_t ncols) {
    if (nrows > m->nrows) {
        int64_t *p = er_reallocarray(m->indptr, (size_t)nrows + 1, sizeof(*p));
        if (!p) return EASYREC_ERR_NOMEM;
        for (int32_t r = m->nrows + 1; r <= nrows; r++) p[r] = p[m->nrows];
        m->indptr = p;
        m->nrows = nrows;
    }
    if (ncols > m->ncols) m->ncols = ncols;
    return EASYREC_OK;
}

int er_dataset_grow(er_dataset *ds, int32_t n_users, int32_t n_items) {
    if (!ds->from_text) return er_error(EASYREC_ERR_ARG, "dataset_grow: only for interaction text files");
    int32_t nu = ds->users.numeric && n_users > ds->n_users ? n_users : ds->n_users;
    int32_t ni = ds->items.numeric && n_items > ds->n_items ? n_items : ds->n_items;
    for (int s = 0; s < 3; s++) {
        int rc = csr_widen(&ds->split[s], nu, ni);
        if (rc) return rc;
    }
    ds->n_users = ds->users.n = nu;
    ds->n_items = ds->items.n = ni;
    return EASYREC_OK;
}

int er_dataset_read_profiles(const er_dataset *ds, const char *path, int users, er_texts *out) {
    int rc = er_profiles_read_jsonl(path, out);
    if (rc) return rc;
    size_t want = (size_t)(users ? ds->n_users : ds->n_items);
    if (out->n != want) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: %zu profiles, but the interaction matrices have %zu %s (one profile per id 0..%zu needed)",
                      path, out->n, want, users ? "users" : "items", want ? want - 1 : 0);
        er_texts_free(out);
    }
    return rc;
}

const char *er_dataset_split_name(int s) { return s >= 0 && s < 3 ? split_name[s] : "?"; }
