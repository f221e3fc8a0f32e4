/* import.h — raw interactions → a dataset in the EasyRec release layout
 * (`easyrec data import`, docs/profile.md §Import).
 *
 * Input (import_read.c): one file of interactions, CSV, TSV, whitespace- or "::"-separated
 * text, or JSON lines, with user, item and optionally rating and timestamp. Text files with a
 * header name their columns (user|user_id|userId|uid|reviewerID, item|item_id|itemId|
 * movieId|business_id|asin|parent_asin, rating|score|stars|overall, timestamp|time|ts|
 * unixReviewTime; RecBole ":type" suffixes ignored); without a header the columns are
 * user, item[, rating[, timestamp]]. JSON lines use the same key names.
 *
 * Pipeline (import.c): rows with rating < min_rating dropped; duplicate (user, item) pairs
 * kept once (earliest timestamp, then first line); iterated k-core (every remaining user and
 * item has >= k interactions); dense ids 0..n-1 in ascending original-id order (numeric
 * when every id is an integer, else bytewise); per-user split:
 *   random (seeded): the user's interactions in item order are shuffled with a generator
 *     seeded by (seed, user); the first goes to train, every other one to train/val/test
 *     with probabilities p_trn/p_val/p_tst; then every item without a training interaction
 *     gets its interaction of the smallest user id moved to train. So every user and every
 *     item is in train, as in the release data.
 *   time: the user's interactions by (timestamp, line); the last round(n * p_tst) go to
 *     test, the round(n * p_val) before them to val, at least one stays in train.
 * Output: trn/val/tst_mat.pkl (scipy coo_matrix pickles), user_id_map.tsv,
 * item_id_map.tsv, import_info.json and, with item metadata, item_meta.json (JSON lines
 * {"item_id": dense, "original_id": str, <the metadata's other fields>}). Everything is
 * written into <output>.tmp.<pid> and renamed into place; the same input and options give
 * byte-identical files.
 */
#ifndef ER_IMPORT_H
#define ER_IMPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *interactions; /* input file (required) */
    const char *items;        /* item metadata JSON lines, or NULL */
    const char *output;       /* dataset directory to create (required) */
    double min_rating;        /* used when has_min_rating */
    int has_min_rating;
    int k_core;               /* 0 or 1: none */
    double p[3];              /* trn, val, tst proportions (sum 1) */
    int by_time;              /* 1: split by timestamp */
    uint64_t seed;
    int force;                /* 1: an existing non-empty output directory is overwritten */
} er_import_opts;

typedef struct {
    size_t rows;               /* data lines read */
    size_t below_rating;       /* dropped by min_rating */
    size_t duplicates;         /* repeated (user, item) pairs dropped */
    size_t kcore_removed;      /* interactions removed by the k-core */
    int kcore_rounds;          /* filtering rounds until stable */
    int32_t users, items;      /* after filtering */
    size_t nnz[3];             /* trn, val, tst */
    size_t moved_to_train;     /* random split: interactions moved so every item is in train */
    int32_t items_without_train; /* time split: items only in val/test */
    int32_t meta_found, meta_missing; /* items with / without a metadata line */
} er_import_stats;

/* Run the import. On failure nothing is left at opts->output (the staging directory is
 * removed) and the error names the file/line/field. */
int er_import_run(const er_import_opts *opts, er_import_stats *st);

/* ---- reading (import_read.c) ---------------------------------------------------------- */
typedef struct {
    int32_t u, i;   /* indices into the raw user / item string tables */
    double rating;  /* NaN when the file has none */
    int64_t ts;     /* 0 when the file has none */
    int64_t line;   /* 1-based line of the row */
} er_raw_row;

typedef struct {
    er_raw_row *rows;
    size_t n;
    int has_rating, has_time;
    char **user_names, **item_names; /* raw ids, indexed by er_raw_row.u / .i */
    int32_t n_user_names, n_item_names;
} er_raw_inter;

int er_import_read(const char *path, er_raw_inter *out);
/* Same from bytes; json: 1 JSON lines, 0 delimited text, -1 JSON when the first non-blank
 * byte is '{'. `what` names the input in messages. */
int er_import_parse(const char *bytes, size_t len, const char *what, int json, er_raw_inter *out);
void er_raw_inter_free(er_raw_inter *r);
/* Column/key role of a header name: 0 user, 1 item, 2 rating, 3 timestamp, -1 none. */
int er_import_column_role(const char *name, size_t len);
/* An id value of a JSON object as text (strings as they are, integers in decimal) into
 * buf[cap]; -1 when v is neither or too long. */
#include <jansson.h>
int er_import_json_id(json_t *v, char *buf, size_t cap, size_t *len);

#endif
