/* embed_cache.c — text embeddings for evaluation, cached on disk so that repeated runs
 * (other K, other split, baselines side by side) encode each profile set once.
 *
 * A cache entry is two files in the cache directory:
 *   <label>-<h>.npy   float32 (n, D), written by er_npy_write_f32 (atomic)
 *   <label>-<h>.json  {"format": 1, "key": {...}, "shape": [n, D]} written after the .npy
 *                     (atomic), so an .npy without its sidecar is never trusted
 * where h is 16 hex digits of a 64-bit hash of the compact key text. An entry is used only
 * if the sidecar's key equals the request's key field by field (json_equal) and the .npy
 * has shape (n, D); anything else is re-encoded and overwritten. What the key holds:
 * er_embed_texts() in eval.h and docs/eval.md. The key carries mtimes, so touching a profile
 * or weights file invalidates the entry even when its contents did not change.
 * Under MPI (e->comm) each rank encodes its share of the rows and all-gathers the rest, an
 * entry is used only when every rank found it, and rank 0 alone writes one.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/err.h"
#include "eval/eval.h"
#include "io/tensors.h"
#include "tokenizer/hmap.h"

#define CACHE_FORMAT 1
/* texts are encoded in chunks so tokenized ids stay bounded for huge inputs */
#define CHUNK 65536

/* {"path": realpath, "size": n, "mtime_ns": n}, or {"path": path, "missing": true} */
static json_t *file_stamp(const char *path) {
    struct stat st;
    char real[PATH_MAX];
    const char *p = realpath(path, real) ? real : path;
    if (stat(path, &st)) return json_pack("{s:s, s:b}", "path", p, "missing", 1);
    long long ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return json_pack("{s:s, s:I, s:I}", "path", p, "size", (json_int_t)st.st_size, "mtime_ns", (json_int_t)ns);
}

static const char *const model_files[] = {"config.json", "model.safetensors", "pytorch_model.bin", "vocab.json",
                                          "merges.txt",  "tokenizer.json",    "vocab.txt",         "tokenizer_config.json"};

static json_t *model_key(const er_embedder *e) {
    char real[PATH_MAX];
    json_t *files = json_object();
    for (size_t k = 0; k < sizeof model_files / sizeof model_files[0]; k++) {
        char *p = er_path_join(e->model_dir, model_files[k]);
        if (p && er_file_exists(p)) json_object_set_new(files, model_files[k], file_stamp(p));
        free(p);
    }
    json_t *k = json_pack("{s:s, s:o}", "dir", realpath(e->model_dir, real) ? real : e->model_dir, "files", files);
    /* bf16/int8 embeddings differ from fp32 ones (fp32 keys stay as they were) */
    easyrec_precision p = e->model ? easyrec_model_precision(e->model) : EASYREC_PRECISION_FP32;
    if (k && p != EASYREC_PRECISION_FP32) json_object_set_new(k, "precision", json_string(easyrec_precision_name(p)));
    return k;
}

static uint64_t texts_hash(const er_texts *t) {
    uint64_t h = hm_mix(t->n + 1);
    for (size_t i = 0; i < t->n; i++) h = hm_mix(h ^ hm_hash(t->text[i], t->len[i])) + i;
    return h;
}

static json_t *request_key(const er_embedder *e, const char *label, const char *const *sources, int n_sources,
                           const char *text_rule, const er_texts *t, int dim) {
    json_t *src = json_array();
    for (int k = 0; k < n_sources; k++) json_array_append_new(src, file_stamp(sources[k]));
    char th[17];
    snprintf(th, sizeof th, "%016llx", (unsigned long long)texts_hash(t));
    int max_length = e->opts.max_length > 0 ? e->opts.max_length : 512;
    return json_pack("{s:i, s:s, s:o, s:{s:i, s:i, s:b, s:i}, s:o, s:s, s:I, s:s}", "format", CACHE_FORMAT, "label",
                     label, "model", model_key(e), "encode", "max_length", max_length, "pooling", (int)e->opts.pooling,
                     "normalize", !e->opts.no_normalize, "dim", dim, "sources", src, "text_rule", text_rule, "n",
                     (json_int_t)t->n, "texts_hash", th);
}

/* the cached array if the sidecar matches key and the shape is (n, dim), else NULL */
static float *cache_lookup(const char *side, const char *npy, const json_t *key, size_t n, int dim) {
    json_error_t je;
    json_t *s = json_load_file(side, 0, &je);
    float *data = NULL;
    int nd = 0;
    int64_t shape[ER_MAX_DIMS];
    if (s && json_equal(json_object_get(s, "key"), (json_t *)key) && er_npy_read_f32(npy, &data, &nd, shape) == 0 &&
        !(nd == 2 && shape[0] == (int64_t)n && shape[1] == dim)) {
        free(data);
        data = NULL;
    }
    json_decref(s);
    er_clear_error();
    return data;
}

static int cache_store(const char *dir, const char *side, const char *npy, const json_t *key, const float *data,
                       size_t n, int dim) {
    if (mkdir(dir, 0777) && errno != EEXIST) return er_error(EASYREC_ERR_IO, "--cache %s: %s", dir, strerror(errno));
    int64_t shape[2] = {(int64_t)n, dim};
    int rc = er_npy_write_f32(npy, data, 2, shape);
    if (rc) return rc;
    json_t *s = json_pack("{s:i, s:O, s:[I, i]}", "format", CACHE_FORMAT, "key", key, "shape", (json_int_t)n, dim);
    char *text = s ? json_dumps(s, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(s);
    if (!text) return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", side);
    rc = er_write_file_atomic(side, text, strlen(text));
    free(text);
    return rc;
}

typedef struct {
    const er_embedder *e;
    const char *label;
    size_t base, total;
} progress_state;

static void progress(void *user, size_t done, size_t total) {
    const progress_state *ps = user;
    ps->e->notify(ps->e->notify_user, ER_EMBED_PROGRESS, ps->label, ps->base + done, ps->total, 0.0, NULL);
    (void)total;
}

/* encodes this rank's share of t into out and all-gathers the rest; every rank returns the
 * agreed status */
static int encode_all(const er_embedder *e, const char *label, const er_texts *t, float *out, int dim) {
    er_comm *c = e->comm ? e->comm : er_comm_serial();
    size_t lo, hi, D = (size_t)dim; /* this rank's rows [lo, hi) */
    er_comm_share(c, c->rank, t->n, &lo, &hi);
    easyrec_ctx *ctx = easyrec_ctx_new(e->model);
    int rc = ctx ? EASYREC_OK : er_error(EASYREC_ERR_NOMEM, "out of memory for an encoder context");
    easyrec_encode_opts o = e->opts;
    progress_state ps = {e, label, 0, hi - lo};
    if (e->notify) {
        o.progress = progress;
        o.progress_user = &ps;
    }
    double t0 = er_now();
    for (size_t s = lo; s < hi && !rc; s += CHUNK) {
        size_t k = hi - s < CHUNK ? hi - s : CHUNK;
        ps.base = s - lo;
        rc = easyrec_encode(ctx, (const char *const *)t->text + s, t->len + s, k, &o, out + s * D);
    }
    double t1 = er_now();
    easyrec_ctx_free(ctx);
    rc = er_comm_gather_rows(c, rc, out, t->n, D);
    if (e->notify && !rc)
        e->notify(e->notify_user, ER_EMBED_ENCODED, label, t->n, t->n,
                  t1 - t0, NULL);
    return rc;
}

/* the cache files' paths for this request (*key, *side, *npy set, freed by the caller) */
static int cache_paths(const er_embedder *e, const char *label, const char *const *sources, int n_sources,
                       const char *text_rule, const er_texts *t, int dim, json_t **key, char **side, char **npy) {
    *key = request_key(e, label, sources, n_sources, text_rule, t, dim);
    char *kt = *key ? json_dumps(*key, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!kt) return er_error(EASYREC_ERR_NOMEM, "cache key: out of memory");
    char name[160];
    snprintf(name, sizeof name, "%.100s-%016llx.json", label, (unsigned long long)hm_hash(kt, strlen(kt)));
    free(kt);
    *side = er_path_join(e->cache_dir, name);
    memcpy(name + strlen(name) - 5, ".npy", 5);
    *npy = er_path_join(e->cache_dir, name);
    return *side && *npy ? EASYREC_OK : er_error(EASYREC_ERR_NOMEM, "cache paths: out of memory");
}

int er_embed_texts(const er_embedder *e, const char *label, const char *const *sources, int n_sources,
                const char *text_rule, const er_texts *t, float **out, int *dim) {
    *out = NULL;
    er_comm *c = e->comm ? e->comm : er_comm_serial();
    int D = easyrec_model_dim(e->model), rc = EASYREC_OK;
    *dim = D;
    json_t *key = NULL;
    char *side = NULL, *npy = NULL;
    if (e->cache_dir) {
        /* every rank learns whether any failed here, then whether any missed the entry */
        rc = er_comm_agree(c, cache_paths(e, label, sources, n_sources, text_rule, t, D, &key, &side, &npy));
        if (rc) goto out_free;
        *out = cache_lookup(side, npy, key, t->n, D);
        if (c->size > 1) { /* used only when every rank has it */
            float miss = *out ? 0.0f : 1.0f;
            if ((rc = c->allreduce_sum_f32(c, &miss, 1))) goto out_free;
            if (miss > 0) free(*out), *out = NULL;
        }
        if (*out) {
            if (e->notify) e->notify(e->notify_user, ER_EMBED_CACHED, label, t->n, t->n, 0.0, npy);
            goto out_free;
        }
    }
    *out = er_mallocarray(t->n ? t->n : 1, (size_t)D * sizeof(float));
    if ((rc = er_comm_agree(c, *out ? EASYREC_OK : EASYREC_ERR_NOMEM))) goto out_free;
    if ((rc = encode_all(e, label, t, *out, D))) goto out_free;
    if (e->cache_dir) rc = er_comm_agree(c, c->rank == 0 ? cache_store(e->cache_dir, side, npy, key, *out, t->n, D) : EASYREC_OK);
out_free:
    if (rc) {
        free(*out);
        *out = NULL;
    }
    json_decref(key);
    free(side);
    free(npy);
    return rc;
}
