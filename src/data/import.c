/* import.c — `easyrec data import`: filter, k-core, dense ids, per-user split and the
 * release-layout files (import.h). */
#include "data/import.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/rng.h"
#include "io/sparse_pickle.h"
#include "tokenizer/hmap.h"

typedef struct {
    int32_t u, i;  /* dense ids */
    int64_t ts, line;
    int split;
} kept_row;

/* ---- sorting helpers ------------------------------------------------------------------ */
static const er_raw_row *g_rows; /* qsort has no context argument; import runs are not concurrent */
static int by_pair_time(const void *a, const void *b) {
    const er_raw_row *x = &g_rows[*(const size_t *)a], *y = &g_rows[*(const size_t *)b];
    if (x->u != y->u) return x->u < y->u ? -1 : 1;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}
static int kept_by_item(const void *a, const void *b) {
    const kept_row *x = a, *y = b;
    if (x->u != y->u) return x->u < y->u ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}
static int kept_by_time(const void *a, const void *b) {
    const kept_row *x = a, *y = b;
    if (x->u != y->u) return x->u < y->u ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

typedef struct {
    char **names;
    int numeric;
    long long *val;
} name_order;
static const name_order *g_order;
static int by_name(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (g_order->numeric) {
        if (g_order->val[x] != g_order->val[y]) return g_order->val[x] < g_order->val[y] ? -1 : 1;
        return strcmp(g_order->names[x], g_order->names[y]); /* "007" vs "7" */
    }
    return strcmp(g_order->names[x], g_order->names[y]);
}

static int is_int(const char *s) {
    const char *p = s + (*s == '-');
    size_t n = strlen(p);
    if (!n || n > 18) return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

/* Dense ids for the raw ids with count > 0, in ascending original order: map[raw] = dense
 * or -1; *dense_names[dense] = raw name (borrowed). */
static int assign_ids(char **names, int32_t n, const int64_t *count, int32_t *map, char ***dense_names, int32_t *nd) {
    int32_t *live = er_mallocarray(n ? (size_t)n : 1, sizeof(*live));
    long long *val = er_calloc(n ? (size_t)n : 1, sizeof(*val));
    if (!live || !val) {
        free(live);
        free(val);
        return EASYREC_ERR_NOMEM;
    }
    int32_t m = 0;
    int numeric = 1;
    for (int32_t k = 0; k < n; k++) {
        map[k] = -1;
        if (count[k] > 0) {
            live[m++] = k;
            if (numeric && is_int(names[k])) val[k] = strtoll(names[k], NULL, 10);
            else numeric = 0;
        }
    }
    name_order ord = {names, numeric, val};
    g_order = &ord;
    qsort(live, (size_t)m, sizeof(*live), by_name);
    *dense_names = er_mallocarray(m ? (size_t)m : 1, sizeof(char *));
    if (!*dense_names) {
        free(live);
        free(val);
        return EASYREC_ERR_NOMEM;
    }
    for (int32_t d = 0; d < m; d++) {
        map[live[d]] = d;
        (*dense_names)[d] = names[live[d]];
    }
    *nd = m;
    free(live);
    free(val);
    return EASYREC_OK;
}

/* ---- split ---------------------------------------------------------------------------- */
static void split_random(kept_row *r, size_t n, int32_t n_items, const double p[3], uint64_t seed, er_import_stats *st,
                         uint8_t *item_has_trn) {
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && r[b].u == r[a].u) b++;
        er_rng g;
        er_rng_seed(&g, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(r[a].u + 1)));
        size_t len = b - a;
        /* the user's rows (in item order) shuffled by a generator seeded by (seed, user) */
        for (size_t k = len - 1; k > 0; k--) {
            size_t j = (size_t)er_rng_below(&g, k + 1);
            kept_row t = r[a + k];
            r[a + k] = r[a + j];
            r[a + j] = t;
        }
        for (size_t k = 0; k < len; k++) {
            double x = er_rng_uniform(&g);
            r[a + k].split = k == 0 || x < p[0] ? 0 : x < p[0] + p[1] ? 1 : 2;
        }
        a = b;
    }
    qsort(r, n, sizeof(*r), kept_by_item);
    memset(item_has_trn, 0, (size_t)n_items);
    for (size_t k = 0; k < n; k++)
        if (r[k].split == 0) item_has_trn[r[k].i] = 1;
    for (size_t k = 0; k < n; k++) /* rows in ascending user order: smallest user id first */
        if (!item_has_trn[r[k].i]) {
            r[k].split = 0;
            item_has_trn[r[k].i] = 1;
            st->moved_to_train++;
        }
}

static void split_time(kept_row *r, size_t n, int32_t n_items, const double p[3], er_import_stats *st,
                       uint8_t *item_has_trn) {
    qsort(r, n, sizeof(*r), kept_by_time);
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && r[b].u == r[a].u) b++;
        size_t len = b - a;
        size_t nt = (size_t)floor((double)len * p[2] + 0.5), nv = (size_t)floor((double)len * p[1] + 0.5);
        while (nv + nt > len - 1) {
            if (nv) nv--;
            else nt--;
        }
        for (size_t k = 0; k < len; k++) r[a + k].split = k >= len - nt ? 2 : k >= len - nt - nv ? 1 : 0;
        a = b;
    }
    qsort(r, n, sizeof(*r), kept_by_item);
    memset(item_has_trn, 0, (size_t)n_items);
    for (size_t k = 0; k < n; k++)
        if (r[k].split == 0) item_has_trn[r[k].i] = 1;
    for (int32_t i = 0; i < n_items; i++) st->items_without_train += !item_has_trn[i];
}

/* ---- output --------------------------------------------------------------------------- */
static int remove_tree(const char *dir) { /* one level: the staging directory holds files only */
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = er_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    return rmdir(dir);
}

/* 1: dir exists and holds entries; 0: absent or empty; -1: exists and is not a directory */
static int dir_state(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return -1;
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int any = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) any = 1;
    closedir(d);
    return any;
}

static int write_idmap(char **names, int32_t n, const char *header, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path);
    fprintf(f, "%s\n", header);
    for (int32_t k = 0; k < n; k++) fprintf(f, "%d\t%s\n", k, names[k]);
    int bad = fclose(f);
    int rc = bad ? er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path) : er_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

/* item_meta.json: one line per dense item, the metadata line of its original id (first
 * one wins) with "item_id" rewritten to the dense id and "original_id" added. */
static int write_meta(const char *meta_path, char **item_names, int32_t n_items, const char *path, er_import_stats *st) {
    char *buf;
    size_t len;
    int rc = er_read_file(meta_path, &buf, &len);
    if (rc) return rc;
    strmap ids;
    json_t **lines = er_calloc(n_items ? (size_t)n_items : 1, sizeof(*lines));
    if (!lines || (rc = er_strmap_init(&ids, (uint32_t)n_items + 16))) {
        free(lines);
        free(buf);
        return rc ? rc : EASYREC_ERR_NOMEM;
    }
    int added;
    for (int32_t d = 0; d < n_items && !rc; d++) {
        int32_t k = er_strmap_intern(&ids, item_names[d], strlen(item_names[d]), d, &added);
        if (k < 0) rc = k;
    }
    char *p = buf, *end = buf + len, idbuf[1024];
    int line_no = 0;
    while (!rc && p < end) {
        char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        line_no++;
        char *q = p;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q < e) {
            json_error_t jerr;
            json_t *o = json_loadb(p, (size_t)(e - p), 0, &jerr);
            json_t *idv = NULL;
            const char *key;
            json_t *v;
            if (o && json_is_object(o)) json_object_foreach(o, key, v) if (!idv && er_import_column_role(key, strlen(key)) == 1) idv = v;
            size_t il;
            if (!o || !json_is_object(o) || !idv || er_import_json_id(idv, idbuf, sizeof idbuf, &il)) {
                rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: expected a JSON object with an \"item_id\" (string or integer)",
                              meta_path, line_no);
            } else {
                int32_t k = er_strmap_find(&ids, idbuf, il);
                int32_t d = k >= 0 ? ids.e[k].val : -1;
                if (d >= 0 && !lines[d]) {
                    json_t *n = json_object();
                    json_object_set_new(n, "item_id", json_integer(d));
                    json_object_set_new(n, "original_id", json_string(item_names[d]));
                    json_object_foreach(o, key, v) if (v != idv && strcmp(key, "item_id") && strcmp(key, "original_id"))
                        json_object_set(n, key, v);
                    lines[d] = n;
                }
            }
            json_decref(o);
        }
        p = e < end ? e + 1 : end;
    }
    char *out = NULL;
    size_t olen = 0;
    FILE *f = rc ? NULL : open_memstream(&out, &olen);
    if (!rc && !f) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
    for (int32_t d = 0; !rc && d < n_items; d++) {
        json_t *n = lines[d];
        if (n) st->meta_found++;
        else {
            st->meta_missing++;
            n = json_pack("{s:i,s:s}", "item_id", (json_int_t)d, "original_id", item_names[d]);
        }
        char *s = json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!lines[d]) json_decref(n);
        if (!s) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
        else fprintf(f, "%s\n", s);
        free(s);
    }
    if (f && fclose(f) && !rc) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
    if (!rc) rc = er_write_file_atomic(path, out, olen);
    free(out);
    for (int32_t d = 0; d < n_items; d++) json_decref(lines[d]);
    free(lines);
    er_strmap_free(&ids);
    free(buf);
    return rc;
}

static int write_info(const er_import_opts *o, const er_import_stats *st, const char *path) {
    const char *src = strrchr(o->interactions, '/');
    src = src ? src + 1 : o->interactions;
    json_t *j = json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:s,s:[f,f,f],s:I,s:i,s:o,s:I,s:I,s:I,s:I,s:i}", "source", src,
                          "users", (json_int_t)st->users, "items", (json_int_t)st->items, "trn", (json_int_t)st->nnz[0],
                          "val", (json_int_t)st->nnz[1], "tst", (json_int_t)st->nnz[2], "split",
                          o->by_time ? "time" : "random", "proportions", o->p[0], o->p[1], o->p[2], "seed",
                          (json_int_t)o->seed, "k_core", o->k_core, "min_rating",
                          o->has_min_rating ? json_real(o->min_rating) : json_null(), "rows_read", (json_int_t)st->rows,
                          "below_rating", (json_int_t)st->below_rating, "duplicates", (json_int_t)st->duplicates,
                          "moved_to_train", (json_int_t)st->moved_to_train, "items_without_train",
                          (int)st->items_without_train);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(j);
    if (!s) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n'; /* replace the NUL; written with its length */
    int rc = er_write_file_atomic(path, s, n + 1);
    free(s);
    return rc;
}

static int write_split(const char *dir, const char *name, const kept_row *r, size_t n, int split, int32_t U, int32_t I,
                       size_t *nnz) {
    size_t m = 0;
    for (size_t k = 0; k < n; k++) m += r[k].split == split;
    int32_t *row = er_mallocarray(m ? m : 1, sizeof(*row)), *col = er_mallocarray(m ? m : 1, sizeof(*col));
    char *path = er_path_join(dir, name);
    int rc = EASYREC_ERR_NOMEM;
    if (row && col && path) {
        size_t w = 0;
        for (size_t k = 0; k < n; k++)
            if (r[k].split == split) row[w] = r[k].u, col[w++] = r[k].i;
        rc = er_sparse_pickle_write(path, U, I, row, col, m, 1);
        *nnz = m;
    }
    free(row);
    free(col);
    free(path);
    return rc;
}

/* ---- the run -------------------------------------------------------------------------- */
int er_import_run(const er_import_opts *o, er_import_stats *st) {
    memset(st, 0, sizeof(*st));
    double ps = o->p[0] + o->p[1] + o->p[2];
    if (!(o->p[0] > 0) || o->p[1] < 0 || o->p[2] < 0 || fabs(ps - 1) > 1e-6)
        return er_error(EASYREC_ERR_ARG, "split proportions must be >= 0, train > 0, and sum to 1 (got %g,%g,%g)",
                        o->p[0], o->p[1], o->p[2]);
    int ds = dir_state(o->output);
    if (ds < 0) return er_error(EASYREC_ERR_ARG, "%s exists and is not a directory", o->output);
    if (ds > 0 && !o->force)
        return er_error(EASYREC_ERR_ARG, "%s exists and is not empty (choose a new directory, or --force)", o->output);
    er_raw_inter raw;
    int rc = er_import_read(o->interactions, &raw);
    if (rc) return rc;
    if (o->has_min_rating && !raw.has_rating) {
        er_raw_inter_free(&raw);
        return er_error(EASYREC_ERR_ARG, "%s has no rating column, so --min-rating cannot apply", o->interactions);
    }
    if (o->by_time && !raw.has_time) {
        er_raw_inter_free(&raw);
        return er_error(EASYREC_ERR_ARG, "%s has no timestamp column, so the split cannot be by time", o->interactions);
    }
    st->rows = raw.n;
    size_t n = raw.n, nk = 0, *idx = er_mallocarray(n, sizeof(*idx));
    int64_t *ucount = er_calloc((size_t)raw.n_user_names + 1, sizeof(int64_t)),
            *icount = er_calloc((size_t)raw.n_item_names + 1, sizeof(int64_t));
    int32_t *umap = er_mallocarray((size_t)raw.n_user_names + 1, sizeof(int32_t)),
            *imap = er_mallocarray((size_t)raw.n_item_names + 1, sizeof(int32_t));
    char **unames = NULL, **inames = NULL, *stage = NULL;
    kept_row *kr = NULL;
    uint8_t *has_trn = NULL;
    rc = EASYREC_ERR_NOMEM;
    if (!idx || !ucount || !icount || !umap || !imap) goto out;
    /* rating filter, then duplicates (earliest timestamp, then first line, wins) */
    for (size_t k = 0; k < n; k++) {
        if (o->has_min_rating && !(raw.rows[k].rating >= o->min_rating)) st->below_rating++;
        else idx[nk++] = k;
    }
    g_rows = raw.rows;
    qsort(idx, nk, sizeof(*idx), by_pair_time);
    size_t w = 0;
    for (size_t k = 0; k < nk; k++) {
        if (w && raw.rows[idx[w - 1]].u == raw.rows[idx[k]].u && raw.rows[idx[w - 1]].i == raw.rows[idx[k]].i) {
            st->duplicates++;
            continue;
        }
        idx[w++] = idx[k];
    }
    nk = w;
    /* iterated k-core */
    for (size_t k = 0; k < nk; k++) ucount[raw.rows[idx[k]].u]++, icount[raw.rows[idx[k]].i]++;
    if (o->k_core > 1) {
        for (;;) {
            st->kcore_rounds++;
            w = 0;
            for (size_t k = 0; k < nk; k++) {
                const er_raw_row *r = &raw.rows[idx[k]];
                if (ucount[r->u] < o->k_core || icount[r->i] < o->k_core) continue;
                idx[w++] = idx[k];
            }
            int changed = w != nk;
            st->kcore_removed += nk - w;
            nk = w;
            memset(ucount, 0, (size_t)raw.n_user_names * sizeof(int64_t));
            memset(icount, 0, (size_t)raw.n_item_names * sizeof(int64_t));
            for (size_t k = 0; k < nk; k++) ucount[raw.rows[idx[k]].u]++, icount[raw.rows[idx[k]].i]++;
            if (!changed) break;
        }
    }
    if (!nk) {
        rc = er_error(EASYREC_ERR_ARG, "%s: no interactions left after filtering (min rating / k-core)", o->interactions);
        goto out;
    }
    if ((rc = assign_ids(raw.user_names, raw.n_user_names, ucount, umap, &unames, &st->users)) ||
        (rc = assign_ids(raw.item_names, raw.n_item_names, icount, imap, &inames, &st->items)))
        goto out;
    rc = EASYREC_ERR_NOMEM;
    if (!(kr = er_mallocarray(nk, sizeof(*kr))) || !(has_trn = er_calloc((size_t)st->items, 1))) goto out;
    for (size_t k = 0; k < nk; k++) {
        const er_raw_row *r = &raw.rows[idx[k]];
        kr[k] = (kept_row){umap[r->u], imap[r->i], r->ts, r->line, 0};
    }
    qsort(kr, nk, sizeof(*kr), kept_by_item);
    if (o->by_time) split_time(kr, nk, st->items, o->p, st, has_trn);
    else split_random(kr, nk, st->items, o->p, o->seed, st, has_trn);
    /* write into the staging directory */
    size_t sl = strlen(o->output) + 32;
    if (!(stage = malloc(sl))) goto out;
    snprintf(stage, sl, "%s.tmp.%ld", o->output, (long)getpid());
    remove_tree(stage);
    if (mkdir(stage, 0755) != 0) {
        rc = er_error(EASYREC_ERR_IO, "%s: %s", stage, strerror(errno));
        goto out;
    }
    static const char *mats[3] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"};
    for (int s = 0; s < 3; s++)
        if ((rc = write_split(stage, mats[s], kr, nk, s, st->users, st->items, &st->nnz[s]))) goto out_stage;
    char *p;
    rc = (p = er_path_join(stage, "user_id_map.tsv")) ? write_idmap(unames, st->users, "user_id\toriginal_id", p)
                                                      : EASYREC_ERR_NOMEM;
    free(p);
    if (rc) goto out_stage;
    rc = (p = er_path_join(stage, "item_id_map.tsv")) ? write_idmap(inames, st->items, "item_id\toriginal_id", p)
                                                      : EASYREC_ERR_NOMEM;
    free(p);
    if (rc) goto out_stage;
    if (o->items) {
        rc = (p = er_path_join(stage, "item_meta.json")) ? write_meta(o->items, inames, st->items, p, st)
                                                         : EASYREC_ERR_NOMEM;
        free(p);
        if (rc) goto out_stage;
    }
    rc = (p = er_path_join(stage, "import_info.json")) ? write_info(o, st, p) : EASYREC_ERR_NOMEM;
    free(p);
    if (rc) goto out_stage;
    /* move into place */
    ds = dir_state(o->output);
    if (ds == 0) {
        rmdir(o->output); /* an empty directory (absent: harmless ENOENT) */
        if (rename(stage, o->output) != 0) {
            rc = er_error(EASYREC_ERR_IO, "rename %s -> %s: %s", stage, o->output, strerror(errno));
            goto out_stage;
        }
    } else {
        static const char *files[] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl", "user_id_map.tsv",
                                      "item_id_map.tsv", "item_meta.json", "import_info.json"};
        for (size_t k = 0; k < sizeof files / sizeof files[0] && !rc; k++) {
            char *a = er_path_join(stage, files[k]), *b = er_path_join(o->output, files[k]);
            if (!a || !b) rc = EASYREC_ERR_NOMEM;
            else if (er_file_exists(a) && rename(a, b) != 0)
                rc = er_error(EASYREC_ERR_IO, "rename %s -> %s: %s", a, b, strerror(errno));
            free(a);
            free(b);
        }
        remove_tree(stage);
    }
    goto out;
out_stage:
    remove_tree(stage);
out:
    free(stage);
    free(has_trn);
    free(kr);
    free(unames);
    free(inames);
    free(idx);
    free(ucount);
    free(icount);
    free(umap);
    free(imap);
    er_raw_inter_free(&raw);
    return rc;
}
