/* eval.h — zero-shot full-ranking evaluation (../shared/docs/easyrec-spec.md §4.1):
 * every item is ranked for every user with >= 1 interaction in the evaluated split, the
 * user's training items pushed to the bottom, and Recall@K / NDCG@K averaged over users.
 *
 * Pieces, one file each:
 *   metrics.c   Recall@K and NDCG@K of one ranked list, as the original computes them
 *   topk.c      exact top-K: score users in blocks, mask, partial selection (OpenMP)
 *   scorers.c   dense (GEMM of embeddings), popularity and random scorers
 *   lexical.c   BM25 and TF-IDF scorers over an inverted index of the item texts
 *   embed_cache.c  text embeddings under a model, cached on disk with a validated key
 *   eval.c      evaluation runs: users, masks, user text from training items, sets
 *   runner.c    a whole evaluation of a dataset: one run per profile set, the 1+3 mean
 *               (what `easyrec eval`, the trainer's validation and a server call)
 * Shapes: U users, I items, D embedding width, K list length, E evaluated users.
 * Choices (tie order, masking, user text): docs/eval.md.
 */
#ifndef ER_EVAL_H
#define ER_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/comm.h"
#include "data/dataset.h"
#include "easyrec.h"
#include "io/tensors.h"

#define ER_MAX_KS 8
/* Score given to masked (training) items: s * (1 - m) - 1e8 * m in the original. */
#define ER_MASK_SCORE (-1e8f)

/* ---- metrics.c ------------------------------------------------------------------------ */

/* Recall@k and NDCG@k of one user for each k of ks[0..nk): ranked (n) item ids best first,
 * pos (npos >= 1) the user's ground-truth items, strictly ascending. Positions past n
 * (n < k when the catalogue is smaller than k) count as misses; IDCG still sums over
 * min(k, npos) positions (the original's formula). */
void er_metrics_user(const int32_t *ranked, int n, const int32_t *pos, int64_t npos, const int *ks, int nk,
                  double *recall, double *ndcg);
double er_metrics_recall_at_k(const int32_t *ranked, int n, const int32_t *pos, int64_t npos, int k);
double er_metrics_ndcg_at_k(const int32_t *ranked, int n, const int32_t *pos, int64_t npos, int k);

/* ---- topk.c --------------------------------------------------------------------------- */

typedef struct {
    float s;
    int32_t i;
} er_topk_entry;

/* Indices of the k best of scores[0..n) (1 <= k <= n): higher score first, equal scores
 * in ascending index order; NaN ranks below everything. heap: caller scratch of k
 * entries. out (k) caller-owned. */
void er_topk_select(const float *scores, int32_t n, int k, er_topk_entry *heap, int32_t *out);

/* The same selection fed in pieces: push the scores of items i0, i0+1, ... in ascending
 * item order, in as many calls as wanted, then finish. The result equals er_topk_select over
 * the concatenation (it is that function's code). heap: caller scratch of k entries; at
 * least k items must be pushed before finish. */
typedef struct {
    er_topk_entry *heap;
    int k, held; /* entries in heap; a min-heap on rank once held == k */
} er_topk_stream;
void er_topk_stream_init(er_topk_stream *st, er_topk_entry *heap, int k);
void er_topk_stream_push(er_topk_stream *st, const float *scores, int32_t i0, int32_t n);
void er_topk_stream_finish(er_topk_stream *st, int32_t *out);
/* The same by sorting all n entries (reference for tests). */
int er_topk_select_naive(const float *scores, int32_t n, int k, int32_t *out);

/* A source of scores, in one of two forms:
 *   score() fills out (nu, I) row-major with the scores of users[0..nu) against every item;
 *   or begin() takes users[0..nu) (a block) and score_items() then fills out (nj, nu),
 *   item-major with row stride ldo, with their scores against items j0 .. j0+nj-1
 *   (nj <= ER_RANK_ITEM_CHUNK), for consecutive ranges of the same block; the ranking then
 *   masks and selects each range while it is in cache and never holds a whole (nu, I)
 *   block (the dense scorer).
 * Called concurrently from several threads, each with its own scratch of
 * nu * scratch_per_user + scratch_extra floats; must not fail. Bind functions set every
 * field. */
#define ER_RANK_ITEM_CHUNK 256
typedef struct {
    void (*score)(const void *ctx, const int32_t *users, int nu, float *out, float *scratch);
    void (*begin)(const void *ctx, const int32_t *users, int nu, float *scratch);
    void (*score_items)(const void *ctx, int nu, int32_t j0, int32_t nj, float *out, size_t ldo, float *scratch);
    const void *ctx;
    size_t scratch_per_user, scratch_extra;
} er_scorer;

typedef struct {
    int32_t n_items;       /* I */
    int k;                 /* list length, 1 <= k <= I */
    const er_csr *mask[2]; /* items to push to ER_MASK_SCORE (train; optionally val); NULL: none */
    int threads;           /* OpenMP threads; <= 0: 1 */
    size_t block_bytes;    /* score block per thread (nu * I floats, or ER_RANK_ITEM_CHUNK * nu
                              with score_items); 0: 64 MiB; at most 256 users a block */
} er_rank_opts;

/* Rank every item for users[0..E): ranked (E, k) caller-owned, row e = users[e]'s top k.
 * Users are scored in blocks, each thread owning its block's scores, so memory is
 * threads * block_bytes and the result does not depend on the thread count. */
int er_topk_rank(const er_scorer *sc, const int32_t *users, int32_t E, const er_rank_opts *o, int32_t *ranked);
/* Users a block of er_topk_rank scores at once for E users with sc. A scorer's bits may
 * depend on the block (the dense one takes a GEMM for more than ER_DENSE_SMALL_Q users, dot
 * products for fewer), so work split across processes is split in whole blocks of this size. */
size_t er_topk_block_users(const er_scorer *sc, int32_t E, const er_rank_opts *o);

/* ---- scorers.c ------------------------------------------------------------------------ */

#define ER_DENSE_SMALL_Q 8 /* blocks of at most this many users: dot products, not the GEMM */

typedef struct {
    const float *user; /* (U, D) */
    const float *item; /* (I, D) */
    int32_t n_items;
    int dim;
} er_dense_scorer;
/* s_ui = user[u] . item[i] by item ranges (begin / score_items), the item matrix read in
 * place: the GEMM (AVX-512 kernel with the block's users packed once, or CBLAS) or dot
 * products for blocks of at most ER_DENSE_SMALL_Q users, single-threaded. A score does not
 * depend on the item range it is computed in; it may on the block size (GEMM or dot
 * products: er_topk_block_users). `easyrec serve` / `recommend` rank by a bf16 scan with exact
 * rescoring instead (topk_bf16.h). */
void er_dense_scorer_bind(const er_dense_scorer *d, er_scorer *out);

typedef struct {
    float *count; /* (I) training interactions per item */
    int32_t n_items;
} er_popularity;
int er_popularity_init(er_popularity *p, const er_csr *trn);
void er_popularity_free(er_popularity *p);
void er_popularity_scorer_bind(const er_popularity *p, er_scorer *out);

typedef struct {
    uint64_t seed;
    int32_t n_items;
} er_random_scorer;
/* uniform [0,1) scores from a generator seeded by (seed, user): reproducible for any
 * blocking or thread count. */
void er_random_scorer_bind(const er_random_scorer *r, er_scorer *out);

/* ---- lexical.c ------------------------------------------------------------------------ */

typedef enum { ER_LEX_BM25 = 1, ER_LEX_TFIDF = 2 } er_lex_kind;
typedef struct er_lexical er_lexical;

#define ER_BM25_K1 1.2
#define ER_BM25_B 0.75

/* Index the item texts (documents) and turn each user text into a query. Terms: ASCII
 * letters lower-cased, maximal runs of [a-z0-9] and bytes >= 0x80 (so UTF-8 words stay
 * whole); query terms absent from every item are dropped. *out owned by the caller. */
int er_lexical_build(er_lex_kind kind, const er_texts *items, const er_texts *users, er_lexical **out);
void er_lexical_free(er_lexical *lx);
void er_lexical_scorer_bind(const er_lexical *lx, er_scorer *out);
/* Terms of text[0..len) as the index sees them, for tests: calls fn(term, tlen, user). */
void er_lexical_terms(const char *text, size_t len, void (*fn)(const char *, size_t, void *), void *user);

/* ---- embed_cache.c -------------------------------------------------------------------- */

/* What er_embed_texts reports while it works (nothing is printed by the library):
 * ER_EMBED_PROGRESS  done of total texts encoded so far (after each batch)
 * ER_EMBED_ENCODED   all total texts encoded in `seconds`
 * ER_EMBED_CACHED    served from the cache file `path` (no encoding) */
typedef enum { ER_EMBED_PROGRESS = 1, ER_EMBED_ENCODED = 2, ER_EMBED_CACHED = 3 } er_embed_event;
typedef void (*er_embed_notify)(void *user, er_embed_event ev, const char *label, size_t done, size_t total,
                                double seconds, const char *path);

typedef struct {
    easyrec_model *model;
    const char *model_dir;
    easyrec_encode_opts opts;
    const char *cache_dir;  /* NULL: no cache */
    er_embed_notify notify; /* optional */
    void *notify_user;
    er_comm *comm;          /* NULL or one rank: encode here; else each rank its share, all-gathered */
} er_embedder;

/* Embeddings (n, D) of the texts t under e->model. With e->comm of R > 1 ranks every rank
 * calls this with the same texts: rank r encodes rows [n r/R, n (r+1)/R) and all receive all
 * rows (the same bits as one process: a text's embedding does not depend on its batch); a
 * cache entry is used only when every rank finds it, and rank 0 writes it. With a cache directory, the file
 * "<label>-<hash>.npy" is used when its sidecar "<label>-<hash>.json" holds exactly the key
 * of this request: the model (real path; size and mtime of config, weights and tokenizer
 * files; its precision unless fp32), the encode options that change results (max_length, pooling, normalisation), the
 * sources (size and mtime of each file the texts came from), the text rule (how texts were
 * built from them) and a hash of the texts themselves. Otherwise the texts are encoded and
 * the .npy then the sidecar written atomically. Layout: docs/eval.md. *out malloc'd (n*D),
 * caller frees. */
int er_embed_texts(const er_embedder *e, const char *label, const char *const *sources, int n_sources,
                const char *text_rule, const er_texts *t, float **out, int *dim);

/* ---- eval.c --------------------------------------------------------------------------- */

typedef enum { ER_UTEXT_PROFILES = 0, ER_UTEXT_ITEMS = 1, ER_UTEXT_AUTO = 2 } er_utext_mode;

typedef struct {
    const er_dataset *ds;
    int split;            /* ER_SPLIT_TST or ER_SPLIT_VAL */
    int mask_val;         /* also push validation items down (off in the original) */
    int ks[ER_MAX_KS], nk;
    int threads;
    er_comm *comm;        /* NULL or one rank: rank every user here; else each rank its share */
} er_eval_setup;

typedef struct {
    char name[24];
    double recall[ER_MAX_KS], ndcg[ER_MAX_KS];
} er_set_result;

/* Users with >= 1 interaction in the split, ascending. *users malloc'd. */
int er_eval_users(const er_eval_setup *s, int32_t **users, int32_t *n);
/* Rank with sc and average the metrics over the split's users into out (name untouched).
 * With s->comm of R > 1 ranks every rank calls it alike: rank r ranks its share of the blocks
 * of er_topk_rank (users in order),
 * the per-user metrics are all-gathered and every rank averages them in ascending user id,
 * so all get the one-process values bit for bit. */
int er_eval_run(const er_eval_setup *s, const er_scorer *sc, er_set_result *out);

typedef struct {
    er_utext_mode mode;
    int k; /* items:K / auto:K */
} er_utext;

/* Whether profile set `set` of ds can be evaluated with user text rule ut: it needs item
 * profiles, and user profiles unless ut builds user text from items. NULL when usable,
 * else a static reason ("no item profiles", "no user profiles"). */
const char *er_eval_set_unusable(const er_dataset *ds, int set, er_utext ut);
/* Read the item texts of set `set` and make its user texts under ut (profiles file, or
 * from the training items' profiles of the same set). rule (cap bytes) receives how the
 * user text was made: "profiles" or "items:K". On success both are caller-owned. */
int er_eval_set_texts(const er_dataset *ds, int set, er_utext ut, er_texts *items, er_texts *users, char *rule,
                   size_t cap);

/* The user text of --user-text items:K — the profiles of the user's first k training
 * items in ascending item id, joined by a single space; "" for a user with no training
 * items. *out owned by the caller. */
int er_eval_user_text_from_items(const er_csr *trn, const er_texts *items, int k, er_texts *out);


/* ---- runner.c ------------------------------------------------------------------------- */

typedef enum {
    ER_EVAL_MODEL = 1,      /* encode the texts of each profile set with a model */
    ER_EVAL_EMBEDDINGS = 2, /* given user / item embeddings (one run) */
    ER_EVAL_BM25 = 3,       /* lexical baselines, per profile set */
    ER_EVAL_TFIDF = 4,
    ER_EVAL_POPULARITY = 5, /* training-interaction counts (one run) */
    ER_EVAL_RANDOM = 6,     /* seeded uniform scores (one run) */
} er_eval_scorer;

typedef enum { ER_PROFILES_ALL = 0, ER_PROFILES_ORIGINAL = 1, ER_PROFILES_DIVERSE = 2 } er_profiles_choice;

typedef struct {
    er_eval_scorer scorer;
    er_eval_setup setup;         /* split, mask_val, ks, threads (setup.ds is ignored) */
    const char *where;           /* names the data in messages (a directory or file); NULL: "dataset" */
    /* ER_EVAL_MODEL */
    const easyrec_model *model;  /* caller-owned, loaded */
    const char *model_dir;       /* for the cache key; NULL: the directory the model came from */
    easyrec_encode_opts encode;  /* threads, max_length, pooling, cancel, ... */
    const char *cache_dir;       /* NULL: no embedding cache */
    er_embed_notify notify;      /* optional progress / cache events */
    void *notify_user;
    /* ER_EVAL_MODEL, BM25, TFIDF */
    er_profiles_choice profiles; /* which sets (default all: the original's 1+3) */
    int max_sets;                /* > 0: only the dataset's first max_sets sets (original first) */
    int skip_unusable;           /* 1: leave out sets that cannot be evaluated instead of failing */
    er_utext ut;                 /* how users are described */
    /* ER_EVAL_EMBEDDINGS: (user_rows, user_dim) and (item_rows, item_dim), caller-owned */
    const float *user_emb, *item_emb;
    int64_t user_rows, item_rows;
    int user_dim, item_dim;
    const char *user_emb_name, *item_emb_name; /* in messages; NULL: "user/item embeddings" */
    /* ER_EVAL_RANDOM */
    uint64_t seed;
} er_eval_request;

typedef struct {
    int n;                                             /* runs */
    er_set_result sets[ER_MAX_PROFILE_SETS];           /* per run: name = set or scorer name */
    char user_text[ER_MAX_PROFILE_SETS][32];           /* per run: "profiles", "items:K", "given", "-" */
    er_set_result mean;                                /* over the runs; "mean (1+3)" with 4 sets */
    int32_t n_users;                                   /* E: users evaluated (>= 1 interaction in the split) */
    int32_t n_items;
    double seconds;                                    /* ranking and metrics (lexical: with indexing) */
} er_eval_report;

/* Defaults: split tst, ks 10 and 20, 1 thread, all profile sets, user text "profiles". */
void er_eval_request_init(er_eval_request *rq);
/* The split and training matrix that rq needs are present in ds (EASYREC_ERR_ARG naming what
 * is missing otherwise); er_eval_dataset checks it too. */
int er_eval_check(const er_dataset *ds, const er_eval_request *rq);
/* Evaluate rq on ds into *out. ds may grow (text inputs with numeric ids: rows of given
 * embeddings or profiles past the largest id become users/items). Prints nothing. */
int er_eval_dataset(er_dataset *ds, const er_eval_request *rq, er_eval_report *out);
/* Mean of n runs' metrics (nk cutoffs); name "mean (1+3)" when n == 4, else "mean". */
void er_eval_mean(const er_set_result *runs, int n, int nk, er_set_result *mean);
/* "model", "embeddings", "bm25", "tfidf", "popularity", "random". */
const char *er_eval_scorer_name(er_eval_scorer s);
/* A float32 .npy matrix (rows, D) of finite values, read in place where the file allows
 * (er_npy_open_f32; the values checked on `threads` threads); out->data valid until
 * er_npy_close(out). */
int er_eval_read_embeddings(const char *path, int threads, er_npy_view *out, int64_t *rows, int *dim);

#endif
