/* state.c — `easyrec cf --save/--resume`: one file DIR/cf_state.bin holding everything a run
 * needs to continue exactly where it stopped (a resumed run gives the same numbers as an
 * uninterrupted one): the configuration and shapes, the parameters, Adam's moments and step,
 * the sampler's generator, the epoch counter, early-stopping progress and the best snapshot.
 *
 * Layout (little-endian): "ERCFST01", i32 algo align layers dim N M H D, f64 keep_rate reg
 * kd_weight kd_temp mask_ratio lr, u64 n_params, i64 adam_t, i32 epoch best_epoch bad_checks
 * has_best, f64 best, u64 rng[4], f32 params[n], m1[n], m2[n], (has_best) best[n],
 * u64 FNV-1a of everything before. Written through a temp file + rename. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cf/cf.h"
#include "core/err.h"

#define MAGIC "ERCFST01"
#define FILE_NAME "cf_state.bin"

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < n; k++) h = (h ^ p[k]) * 1099511628211ULL;
    return h;
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static void put(wbuf *b, const void *x, size_t n) {
    ER_ASSERT(b->n + n <= b->cap);
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

static void header_ints(er_cf_model *m, int32_t h[8]) {
    const er_cf_config *c = er_cf_model_config(m);
    h[0] = c->algo, h[1] = c->align, h[2] = c->layers, h[3] = c->dim;
    h[4] = er_cf_n_users(m), h[5] = er_cf_n_items(m), h[6] = er_cf_text_dim(m), h[7] = er_cf_out_dim(m);
}

int er_cf_state_save(const char *dir, er_cf_model *m, const er_cf_progress *pr) {
    struct stat st;
    if (mkdir(dir, 0777) != 0 && !(stat(dir, &st) == 0 && S_ISDIR(st.st_mode)))
        return er_error(EASYREC_ERR_IO, "cf: cannot create the directory %s", dir);
    size_t np;
    float *p = er_cf_params(m, &np), *m1, *m2;
    long *t;
    er_cf_adam_state(m, &m1, &m2, &t);
    int has_best = pr->best_params != NULL;
    size_t fl = np * sizeof(float);
    wbuf b = {0};
    b.cap = 8 + 8 * 4 + 6 * 8 + 8 + 8 + 4 * 4 + 8 + 4 * 8 + (3 + (size_t)has_best) * fl + 8;
    b.p = malloc(b.cap);
    if (!b.p) return er_error(EASYREC_ERR_NOMEM, "cf: out of memory saving the state");
    const er_cf_config *c = er_cf_model_config(m);
    int32_t h[8];
    header_ints(m, h);
    double hp[6] = {c->keep_rate, c->reg, c->kd_weight, c->kd_temp, c->mask_ratio, c->lr};
    uint64_t n64 = np;
    int64_t t64 = *t;
    int32_t prog[4] = {pr->epoch, pr->best_epoch, pr->bad_checks, has_best};
    put(&b, MAGIC, 8);
    put(&b, h, sizeof h);
    put(&b, hp, sizeof hp);
    put(&b, &n64, 8);
    put(&b, &t64, 8);
    put(&b, prog, sizeof prog);
    put(&b, &pr->best, 8);
    put(&b, pr->rng.s, 32);
    put(&b, p, fl);
    put(&b, m1, fl);
    put(&b, m2, fl);
    if (has_best) put(&b, pr->best_params, fl);
    uint64_t sum = fnv1a(b.p, b.n);
    put(&b, &sum, 8);
    char *path = er_path_join(dir, FILE_NAME);
    int rc = path ? er_write_file_atomic(path, b.p, b.n) : EASYREC_ERR_NOMEM;
    free(path);
    free(b.p);
    return rc;
}

int er_cf_state_load(const char *dir, er_cf_model *m, er_cf_progress *pr) {
    char *path = er_path_join(dir, FILE_NAME);
    if (!path) return EASYREC_ERR_NOMEM;
    if (!er_file_exists(path)) {
        free(path);
        return er_error(EASYREC_ERR_IO, "cf: no saved state in %s", dir);
    }
    char *data;
    size_t len;
    int rc = er_read_file(path, &data, &len);
    if (rc) {
        free(path);
        return rc;
    }
    const uint8_t *q = (const uint8_t *)data;
    size_t np;
    float *p = er_cf_params(m, &np), *m1, *m2;
    long *t;
    er_cf_adam_state(m, &m1, &m2, &t);
    size_t fl = np * sizeof(float), head = 8 + 32 + 48 + 8 + 8 + 16 + 8 + 32;
    int32_t h[8], want[8], prog[4];
    uint64_t n64, sum;
    int64_t t64;
    rc = EASYREC_ERR_FORMAT;
    if (len < head + 8 || memcmp(q, MAGIC, 8) != 0) {
        er_error(rc, "%s: not an easyrec cf state", path);
        goto out;
    }
    memcpy(&sum, q + len - 8, 8);
    if (fnv1a(q, len - 8) != sum) {
        er_error(rc, "%s: checksum mismatch (truncated or damaged)", path);
        goto out;
    }
    memcpy(h, q + 8, 32);
    header_ints(m, want);
    static const char *const names[8] = {"algo", "align", "layers", "dim", "users", "items", "text dim", "out dim"};
    for (int k = 0; k < 8; k++)
        if (h[k] != want[k]) {
            er_error(rc, "%s: saved %s is %d, this run has %d", path, names[k], h[k], want[k]);
            goto out;
        }
    memcpy(&n64, q + 8 + 32 + 48, 8);
    memcpy(&t64, q + 8 + 32 + 48 + 8, 8);
    memcpy(prog, q + 8 + 32 + 48 + 16, 16);
    if (n64 != np || len != head + (3 + (size_t)(prog[3] != 0)) * fl + 8 || prog[0] < 0 || t64 < 0) {
        er_error(rc, "%s: inconsistent sizes", path);
        goto out;
    }
    *t = (long)t64;
    pr->epoch = prog[0], pr->best_epoch = prog[1], pr->bad_checks = prog[2];
    memcpy(&pr->best, q + head - 40, 8);
    memcpy(pr->rng.s, q + head - 32, 32);
    const uint8_t *a = q + head;
    memcpy(p, a, fl);
    memcpy(m1, a + fl, fl);
    memcpy(m2, a + 2 * fl, fl);
    free(pr->best_params);
    pr->best_params = NULL;
    if (prog[3]) {
        pr->best_params = er_mallocarray(np, sizeof(float));
        if (!pr->best_params) {
            rc = EASYREC_ERR_NOMEM;
            goto out;
        }
        memcpy(pr->best_params, a + 3 * fl, fl);
    }
    rc = EASYREC_OK;
out:
    free(path);
    free(data);
    return rc;
}
