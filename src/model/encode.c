/* encode.c — the public model API: load/free, contexts, and batched encoding.
 *
 * easyrec_encode tokenizes (exactly like the reference tokenizer, truncating to
 * max_length), sorts sequences by length, packs consecutive ones into batches of about
 * batch_tokens real tokens (no padding rows), runs the encoder on worker threads that each
 * own an er_acts scratch, pools, L2-normalises and writes row i for input i. Sorting and
 * batching change which sequences share a GEMM, never the math of a sequence, so results
 * equal a one-at-a-time encode up to float summation order of the BLAS.
 */
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "model/model.h"

#define DEFAULT_MAX_LENGTH 512
#define DEFAULT_BATCH_TOKENS 2048

struct easyrec_ctx {
    const easyrec_model *m;
    er_acts *acts; /* one per worker thread */
    int nacts;
};

/* ---- model ---- */

int easyrec_model_load(const char *dir, easyrec_model **out) { return er_model_load(dir, 0, out); }

/* Every loaded tensor must be finite: NaN/Inf weights would only show up as NaN embeddings.
 * The error names the first offending tensor as the checkpoint names it. */
static int check_finite(const easyrec_model *m, const char *dir) {
    const easyrec_config *c = &m->cfg;
    for (int t = 0; t < er_param_table_len; t++) {
        const er_param_spec *s = &er_param_table[t];
        for (int l = 0; l < (s->per_layer ? c->n_layers : 1); l++) {
            char name[160];
            snprintf(name, sizeof name, s->key, l);
            size_t n = 0;
            const float *x = er_params_find(c, &m->w, name, &n);
            for (size_t i = 0; x && i < n; i++)
                if (!isfinite(x[i]))
                    return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s%s holds a non-finite value (%s at element %zu)",
                                    dir, s->prefixed ? (c->is_roberta ? "roberta." : "bert.") : "", name,
                                    isnan(x[i]) ? "NaN" : "Inf", i);
        }
    }
    return EASYREC_OK;
}

int er_model_load(const char *dir, int with_lm, easyrec_model **out) {
    *out = NULL;
    er_clear_error();
    char resolved[4096]; /* "org/name" that is not a directory: its Hub cache snapshot */
    if (easyrec_resolve_model(dir, resolved, sizeof resolved)) return EASYREC_ERR_IO;
    dir = resolved;
    easyrec_model *m = er_calloc(1, sizeof(*m));
    if (!m) return EASYREC_ERR_NOMEM;
    char *cfg = er_path_join(dir, "config.json");
    int rc = cfg ? er_config_load(cfg, &m->cfg) : EASYREC_ERR_NOMEM;
    free(cfg);
    if (rc) goto fail;
    if ((rc = er_params_load_dir(m, dir, with_lm))) goto fail;
    if ((rc = check_finite(m, dir))) goto fail;
    m->dir = er_strdup(dir);
    if (!m->dir) {
        rc = EASYREC_ERR_NOMEM;
        goto fail;
    }
    /* a directory without tokenizer files still encodes pre-tokenized ids; present but
     * broken tokenizer files are an error */
    static const char *tokfiles[] = {"vocab.json", "merges.txt", "vocab.txt", "tokenizer.json"};
    int has_tok = 0;
    for (int i = 0; i < 4; i++) {
        char *p = er_path_join(dir, tokfiles[i]);
        has_tok |= p && er_file_exists(p);
        free(p);
    }
    if (has_tok && (rc = easyrec_tokenizer_load(dir, &m->tok))) goto fail;
    if (m->tok && easyrec_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: tokenizer has %d ids but the model's vocab_size is %d", dir,
                      easyrec_tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
        goto fail;
    }
    er_clear_error();
    *out = m;
    return EASYREC_OK;
fail:
    easyrec_model_free(m);
    return rc;
}

void easyrec_model_free(easyrec_model *m) {
    if (!m) return;
    free(m->buf);
    er_model_lowp_free(m);
    easyrec_tokenizer_free(m->tok);
    free(m->dir);
    free(m);
}

const easyrec_config *easyrec_model_config(const easyrec_model *m) { return &m->cfg; }
const easyrec_tokenizer *easyrec_model_tokenizer(const easyrec_model *m) { return m->tok; }
int easyrec_model_dim(const easyrec_model *m) { return m->cfg.hidden; }

static int model_max_len(const easyrec_config *c);
int easyrec_model_max_length(const easyrec_model *m) { return model_max_len(&m->cfg); }

/* ---- context ---- */

easyrec_ctx *easyrec_ctx_new(const easyrec_model *m) {
    easyrec_ctx *ctx = er_calloc(1, sizeof(*ctx));
    if (ctx) ctx->m = m;
    return ctx;
}

void easyrec_ctx_free(easyrec_ctx *ctx) {
    if (!ctx) return;
    for (int i = 0; i < ctx->nacts; i++) er_acts_free(&ctx->acts[i]);
    free(ctx->acts);
    free(ctx);
}

/* make nthreads scratches of at least (cap_tokens, cap_len) */
static int ctx_reserve(easyrec_ctx *ctx, int nthreads, size_t cap_tokens, int cap_len) {
    if (nthreads > ctx->nacts) {
        er_acts *na = er_reallocarray(ctx->acts, (size_t)nthreads, sizeof(*na));
        if (!na) return EASYREC_ERR_NOMEM;
        memset(na + ctx->nacts, 0, (size_t)(nthreads - ctx->nacts) * sizeof(*na));
        ctx->acts = na;
        ctx->nacts = nthreads;
    }
    for (int i = 0; i < nthreads; i++) {
        er_acts *a = &ctx->acts[i];
        if (a->x && a->cap_tokens >= cap_tokens && a->cap_len >= cap_len) continue;
        size_t tok = cap_tokens > a->cap_tokens ? cap_tokens : a->cap_tokens;
        int len = cap_len > a->cap_len ? cap_len : a->cap_len;
        er_acts_free(a);
        if (tok > (size_t)INT32_MAX) return er_error(EASYREC_ERR_ARG, "batch of %zu tokens too large", tok);
        int rc = er_acts_init(a, &ctx->m->cfg, tok, (int)tok, len);
        if (rc) return rc;
    }
    return EASYREC_OK;
}

/* ---- encoding ---- */

void easyrec_encode_opts_init(easyrec_encode_opts *o) {
    memset(o, 0, sizeof(*o));
    o->max_length = DEFAULT_MAX_LENGTH;
    o->batch_tokens = DEFAULT_BATCH_TOKENS;
    o->threads = 1;
}

/* Longest sequence the position table allows (RoBERTa positions start at pad + 1). */
static int model_max_len(const easyrec_config *c) {
    return c->is_roberta ? c->max_positions - c->pad_id - 1 : c->max_positions;
}

static easyrec_pooling resolve_pool(const easyrec_model *m, easyrec_pooling p) {
    if (p == EASYREC_POOL_DEFAULT) return m->cfg.has_mlp ? EASYREC_POOL_EASYREC : EASYREC_POOL_CLS;
    return p;
}

typedef struct {
    const int32_t *const *ids;
    const int *len;  /* effective (truncated) lengths */
    const int *full; /* lengths as given */
    size_t *order;  /* indices sorted by decreasing length */
    size_t *bstart; /* batch b = order[bstart[b] .. bstart[b+1]) */
    size_t nbatches;
} plan;

static int cmp_len_desc(const void *a, const void *b, void *arg) {
    const int *len = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (len[i] != len[j]) return len[i] > len[j] ? -1 : 1;
    return i < j ? -1 : (i > j); /* stable */
}

/* Returns the input index of a row whose embedding is not finite, or SIZE_MAX. */
static size_t run_batch(const easyrec_model *m, er_acts *a, const plan *p, size_t bi, easyrec_pooling pool,
                        int normalize, float *out) {
    size_t bad = SIZE_MAX;
    size_t s0 = p->bstart[bi], s1 = p->bstart[bi + 1];
    int B = (int)(s1 - s0), C = m->cfg.hidden;
    a->off[0] = 0;
    for (int b = 0; b < B; b++) {
        size_t i = p->order[s0 + b];
        int n = p->len[i];
        int32_t *dst = a->ids + a->off[b];
        memcpy(dst, p->ids[i], (size_t)n * sizeof(int32_t));
        dst[n - 1] = p->ids[i][p->full[i] - 1]; /* truncated: keep the end token */
        a->off[b + 1] = a->off[b] + n;
    }
    er_encoder_forward(m, a, a->ids, B, pool != EASYREC_POOL_MEAN);
    float *pooled = a->a; /* (B, C): the attention-block buffer is free after the forward */
    er_pool_forward(m, a, B, pool, pooled);
    for (int b = 0; b < B; b++) {
        float *y = pooled + (size_t)b * C;
        if (normalize) {
            double ss = 0.0;
            for (int k = 0; k < C; k++) ss += (double)y[k] * y[k];
            float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12)); /* F.normalize's eps */
            for (int k = 0; k < C; k++) y[k] *= inv;
        }
        for (int k = 0; k < C; k++)
            if (!isfinite(y[k])) {
                if (p->order[s0 + b] < bad) bad = p->order[s0 + b];
                break;
            }
        memcpy(out + p->order[s0 + b] * C, y, (size_t)C * sizeof(float));
    }
    return bad;
}

static int cancelled(const easyrec_encode_opts *o) { return o->cancel && *o->cancel; }

int easyrec_encode_ids(easyrec_ctx *ctx, const int32_t *const *ids, const int *n_ids, size_t n,
                       const easyrec_encode_opts *opts, float *out) {
    easyrec_encode_opts dflt;
    if (!opts) {
        easyrec_encode_opts_init(&dflt);
        opts = &dflt;
    }
    const easyrec_model *m = ctx->m;
    const easyrec_config *c = &m->cfg;
    easyrec_pooling pool = resolve_pool(m, opts->pooling);
    if (pool == EASYREC_POOL_EASYREC && !c->has_mlp)
        return er_error(EASYREC_ERR_ARG, "pooling easyrec needs the mlp.dense head, which this checkpoint lacks");
    if (pool < EASYREC_POOL_DEFAULT || pool > EASYREC_POOL_MEAN)
        return er_error(EASYREC_ERR_ARG, "unknown pooling %d", (int)pool);
    if (n == 0) return EASYREC_OK;
    int maxlen = opts->max_length > 0 ? opts->max_length : DEFAULT_MAX_LENGTH;
    if (maxlen > model_max_len(c)) maxlen = model_max_len(c);
    size_t btok = opts->batch_tokens > 0 ? (size_t)opts->batch_tokens : DEFAULT_BATCH_TOKENS;
    int threads = opts->threads > 0 ? opts->threads : 1;

    int rc = EASYREC_OK;
    plan p = {ids, NULL, n_ids, NULL, NULL, 0};
    int *len = er_mallocarray(n, sizeof(int));
    p.order = er_mallocarray(n, sizeof(size_t));
    p.bstart = er_mallocarray(n + 1, sizeof(size_t));
    if (!len || !p.order || !p.bstart) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    p.len = len;
    int longest = 1;
    for (size_t i = 0; i < n; i++) {
        if (n_ids[i] <= 0) {
            rc = er_error(EASYREC_ERR_ARG, "sequence %zu is empty", i);
            goto out;
        }
        for (int t = 0; t < n_ids[i]; t++)
            if (ids[i][t] < 0 || ids[i][t] >= c->vocab_size) {
                rc = er_error(EASYREC_ERR_ARG, "sequence %zu: token id %d outside the vocabulary [0, %d)", i,
                              ids[i][t], c->vocab_size);
                goto out;
            }
        len[i] = n_ids[i] < maxlen ? n_ids[i] : maxlen;
        if (len[i] > longest) longest = len[i];
        p.order[i] = i;
    }
    qsort_r(p.order, n, sizeof(size_t), cmp_len_desc, len);
    size_t tokens = 0;
    p.bstart[0] = 0;
    for (size_t k = 0; k < n; k++) {
        size_t l = (size_t)len[p.order[k]];
        size_t in_batch = k - p.bstart[p.nbatches];
        if (tokens > 0 && (tokens + l > btok || (opts->batch_size > 0 && in_batch >= (size_t)opts->batch_size))) {
            p.bstart[++p.nbatches] = k;
            tokens = 0;
        }
        tokens += l;
    }
    p.bstart[++p.nbatches] = n;
    size_t cap = btok > (size_t)longest ? btok : (size_t)longest;
    if (threads > (int)p.nbatches) threads = (int)p.nbatches;
    if ((rc = ctx_reserve(ctx, threads, cap, longest))) goto out;

    size_t done = 0, nonfinite = SIZE_MAX;
    int stop = 0;
#pragma omp parallel num_threads(threads)
    {
        int old_backend = er_gemm_set_backend(opts->gemm); /* this call's GEMM choice, per worker */
#pragma omp for schedule(dynamic, 1)
    for (size_t bi = 0; bi < p.nbatches; bi++) {
#ifdef _OPENMP
        int tid = omp_get_thread_num();
#else
        int tid = 0;
#endif
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED)) continue;
        if (cancelled(opts)) {
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            continue;
        }
        er_acts *a = &ctx->acts[tid];
        size_t bad = run_batch(m, a, &p, bi, pool, !opts->no_normalize, out);
        if (bad != SIZE_MAX) {
#pragma omp critical(easyrec_nonfinite)
            if (bad < nonfinite) nonfinite = bad;
        }
        if (opts->progress) {
#pragma omp critical(easyrec_progress)
            {
                done += p.bstart[bi + 1] - p.bstart[bi];
                opts->progress(opts->progress_user, done, n);
            }
        }
    }
        er_gemm_set_backend(old_backend);
    }
    if (stop) rc = er_error(EASYREC_ERR_CANCELLED, "encoding cancelled");
    else if (nonfinite != SIZE_MAX)
        rc = er_error(EASYREC_ERR_FORMAT,
                      "input %zu: the embedding is not finite (NaN or Inf): the model's activations overflowed",
                      nonfinite);
out:
    free(len);
    free(p.order);
    free(p.bstart);
    return rc;
}

int easyrec_encode(easyrec_ctx *ctx, const char *const *texts, const size_t *lens, size_t n,
                   const easyrec_encode_opts *opts, float *out) {
    const easyrec_model *m = ctx->m;
    if (!m->tok) return er_error(EASYREC_ERR_ARG, "%s: model directory has no tokenizer files", m->dir);
    easyrec_encode_opts dflt;
    if (!opts) {
        easyrec_encode_opts_init(&dflt);
        opts = &dflt;
    }
    int maxlen = opts->max_length > 0 ? opts->max_length : DEFAULT_MAX_LENGTH;
    if (maxlen > model_max_len(&m->cfg)) maxlen = model_max_len(&m->cfg);
    int threads = opts->threads > 0 ? opts->threads : 1;
    (void)threads; /* only the OpenMP pragma reads it */
    int rc = EASYREC_OK;
    int32_t **ids = er_calloc(n ? n : 1, sizeof(*ids));
    int *nids = er_calloc(n ? n : 1, sizeof(int));
    int32_t *flat = er_mallocarray(n ? n : 1, (size_t)maxlen * sizeof(int32_t));
    if (!ids || !nids || !flat) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    /* the first failure (lowest index) with its message: er_error's text is per thread, so
     * a worker's message is copied out here and raised again on the caller's thread */
    int failed = 0, stop = 0;
    size_t bad = SIZE_MAX;
    char why[512] = "";
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
    for (size_t i = 0; i < n; i++) {
        ids[i] = flat + i * (size_t)maxlen;
        nids[i] = 1;
        if (__atomic_load_n(&stop, __ATOMIC_RELAXED)) continue;
        if (cancelled(opts)) {
            __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
            continue;
        }
        const char *t = texts[i] ? texts[i] : "";
        size_t L = lens ? lens[i] : strlen(t);
        int k = easyrec_tokenize(m->tok, t, L, maxlen, ids[i], maxlen);
        if (k < 0 || k > maxlen) {
#pragma omp critical(easyrec_tok_err)
            if (i < bad) {
                failed = k < 0 ? k : EASYREC_ERR_FORMAT;
                bad = i;
                snprintf(why, sizeof why, "%s", k < 0 ? easyrec_last_error() : "more ids than max_length");
            }
            k = 1;
        }
        nids[i] = k;
    }
    if (stop) {
        rc = er_error(EASYREC_ERR_CANCELLED, "encoding cancelled");
        goto out;
    }
    if (failed) {
        rc = er_error(failed, "text %zu: %s", bad, why);
        goto out;
    }
    rc = easyrec_encode_ids(ctx, (const int32_t *const *)ids, nids, n, opts, out);
out:
    free(ids);
    free(nids);
    free(flat);
    return rc;
}

int easyrec_hidden_states(easyrec_ctx *ctx, const int32_t *ids, int n_ids, float *out) {
    const easyrec_config *c = &ctx->m->cfg;
    if (n_ids <= 0 || n_ids > model_max_len(c))
        return er_error(EASYREC_ERR_ARG, "sequence length %d outside [1, %d]", n_ids, model_max_len(c));
    for (int t = 0; t < n_ids; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab_size)
            return er_error(EASYREC_ERR_ARG, "token id %d outside the vocabulary [0, %d)", ids[t], c->vocab_size);
    int rc = ctx_reserve(ctx, 1, (size_t)n_ids, n_ids);
    if (rc) return rc;
    er_acts *a = &ctx->acts[0];
    a->off[0] = 0;
    a->off[1] = n_ids;
    er_encoder_forward(ctx->m, a, ids, 1, 0);
    memcpy(out, a->x, (size_t)n_ids * c->hidden * sizeof(float));
    return EASYREC_OK;
}
