/* catalog.h — the items a recommender ranks: ids (integers or strings), profile texts,
 * any other fields of the source (returned with each recommendation), and the L2-normalised
 * embedding matrix, with an id -> row map.
 *
 * Sources (er_catalog_load):
 *   - a dataset directory in the EasyRec release layout: its item_profile.json;
 *   - a JSON lines file: {"item_id": 12 | "sku-12", "profile": "...", <any metadata>} per line.
 * Rows keep file order. An id is kept as text ("12" for the integer 12) plus a flag saying
 * whether it was an integer, so `12` and `"12"` name the same item and come back as given.
 *
 * The catalog is mutable (er_catalog_put / er_catalog_remove, used by the server); deleting
 * moves the last row into the hole, so rows stay dense. Once er_catalog_index has built the
 * bf16 scan copy of the embeddings, every put / remove updates it too. Not thread-safe:
 * callers lock.
 * Shapes: N items (rows), D embedding width.
 */
#ifndef ER_SERVE_CATALOG_H
#define ER_SERVE_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "easyrec.h"
#include "eval/topk_bf16.h"
#include "tokenizer/hmap.h"

typedef struct {
    int dim;          /* D; 0 until er_catalog_set_dim */
    int32_t n, cap;   /* rows used / allocated */
    char **id;        /* (n) id text */
    uint8_t *id_int;  /* (n) 1: the id is an integer (returned as a JSON number) */
    char **text;      /* (n) profile text, NUL-terminated */
    size_t *len;      /* (n) its byte length */
    char **meta;      /* (n) other fields as a compact JSON object text ("{}" when none) */
    float *emb;       /* (cap, D) embeddings; NULL until er_catalog_set_dim */
    er_bf16_items scan; /* the bf16 copy of emb[0..n) er_recommend scans; built by er_catalog_index */
    int indexed;      /* 1 once built: put / remove keep it in step */
    int32_t *key;     /* (n) index of the row's id in keys */
    strmap keys;      /* id text -> key index; entry val = row, or -1 once deleted */
} er_catalog;

int er_catalog_init(er_catalog *c);
void er_catalog_free(er_catalog *c);

/* Read a source (see above) into an initialised, empty catalog; no embeddings yet. Errors
 * name the file and line (missing/invalid "item_id" or "profile", a repeated id). */
int er_catalog_load(const char *src, er_catalog *c);

/* Allocate the embedding matrix for width D (rows zero). */
int er_catalog_set_dim(er_catalog *c, int dim);

/* Build the bf16 scan copy of the embeddings as they are now (after they are computed);
 * EASYREC_ERR_ARG names an item whose embedding is not finite. */
int er_catalog_index(er_catalog *c);

/* Row of id[0..len), or -1. */
int32_t er_catalog_find(const er_catalog *c, const char *id, size_t len);

/* Add or replace the item `id`: text, metadata (a JSON object text; NULL: "{}") and, when
 * emb is not NULL and the dimension is set, its D-float embedding. Returns the row or a
 * negative error (nothing changed then; EASYREC_ERR_ARG for an embedding that is not finite
 * once the catalog is indexed). */
int32_t er_catalog_put(er_catalog *c, const char *id, int id_int, const char *text, size_t len, const char *meta,
                       const float *emb);

/* Remove item id (the last row moves into its place). EASYREC_ERR_ARG when absent. */
int er_catalog_remove(er_catalog *c, const char *id, size_t len);

/* Encode the texts of rows[0..nr) (all rows when rows is NULL, nr ignored) into their
 * embedding rows with ctx; opts->progress, when set, sees (done, total) over the whole set. */
int er_catalog_encode(er_catalog *c, easyrec_ctx *ctx, const easyrec_encode_opts *opts, const int32_t *rows,
                      int32_t nr);

/* 1 when s[0..len) is a canonical decimal integer that fits int64 ("0", "-3", "42"; not
 * "042", "+1", "1e3"): such ids are returned as JSON numbers. */
int er_id_is_int(const char *s, size_t len);

/* Call fn(obj, lineno, user) for each non-blank line of a JSON lines file, each line a JSON
 * object (error naming path:line otherwise); fn returns 0 to continue or an error code. */
struct json_t;
int er_jsonl_each(const char *path, int (*fn)(struct json_t *obj, size_t lineno, void *user), void *user);

/* An id as JSON: a number when is_int (see er_id_is_int), else a string. New reference. */
struct json_t *er_id_json(const char *id, int is_int);

/* Row r of the catalog as {"item_id", "score" (only when score != NULL), "profile",
 * metadata...} — what `easyrec recommend` prints and the server returns. New reference. */
struct json_t *er_catalog_item_json(const er_catalog *c, int32_t r, const float *score);

#endif
