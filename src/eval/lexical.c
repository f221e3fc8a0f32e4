/* lexical.c — BM25 and TF-IDF baselines: the user text is the query, each item text a
 * document, scored through an inverted index of the items.
 *
 * Terms: ASCII letters lower-cased; a term is a maximal run of [a-z0-9] or bytes >= 0x80
 * (UTF-8 sequences stay inside words); everything else separates. No stemming, no stop
 * words. N = number of items, df(t) = items containing t, tf = count of t in the item,
 * dl = terms in the item, avgdl = mean dl, qtf = count of t in the query.
 *
 *   BM25 (Robertson/Lucene idf, never negative):
 *     score(u, i) = sum_t qtf * idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))
 *     idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)),  k1 = 1.2, b = 0.75
 *   TF-IDF (sklearn's smooth idf and sublinear tf), cosine of L2-normalised vectors:
 *     w(t, d) = (1 + ln tf) * (ln((1 + N) / (1 + df)) + 1)   for items and queries alike
 *
 * Postings are stored per term with the item weight precomputed; a query is a sorted list
 * of (term, weight). Scoring a user zeroes an I-float row and adds weight products along
 * the posting lists of the query's terms only (ascending term id: deterministic sums).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "eval/eval.h"
#include "tokenizer/hmap.h"

struct er_lexical {
    er_lex_kind kind;
    int32_t n_items, n_users, n_terms;
    int64_t *tptr;  /* (T + 1) postings of term t: [tptr[t], tptr[t+1]) */
    int32_t *pdoc;  /* (P) item ids, ascending within a term */
    float *pw;      /* (P) item-side weight */
    int64_t *qptr;  /* (U + 1) query terms of user u */
    int32_t *qterm; /* (Q) */
    float *qw;      /* (Q) query-side weight */
};

static int is_word(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80; }

void er_lexical_terms(const char *text, size_t len, void (*fn)(const char *, size_t, void *), void *user) {
    char buf[256];
    size_t i = 0;
    while (i < len) {
        while (i < len && !is_word((unsigned char)text[i])) i++;
        size_t s = i;
        while (i < len && is_word((unsigned char)text[i])) i++;
        if (i == s) break;
        /* lower-case into buf; longer terms are cut at 256 bytes (still one term) */
        size_t n = i - s < sizeof buf ? i - s : sizeof buf;
        for (size_t k = 0; k < n; k++) {
            unsigned char c = (unsigned char)text[s + k];
            buf[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        fn(buf, n, user);
    }
}

/* ---- term collection ------------------------------------------------------------------ */

typedef struct {
    strmap *vocab;
    int intern;     /* 1: add unseen terms (items); 0: drop them (queries) */
    int32_t *ids;   /* growing list of the current text's term ids */
    size_t n, cap;
    int rc;
} collect;

static void collect_term(const char *t, size_t n, void *user) {
    collect *c = user;
    if (c->rc) return;
    int32_t id;
    if (c->intern) {
        int added;
        id = er_strmap_intern(c->vocab, t, n, 0, &added);
        if (id < 0) {
            c->rc = id;
            return;
        }
    } else if ((id = er_strmap_find(c->vocab, t, n)) < 0) {
        return;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        int32_t *ni = er_reallocarray(c->ids, nc, sizeof(*ni));
        if (!ni) {
            c->rc = EASYREC_ERR_NOMEM;
            return;
        }
        c->ids = ni;
        c->cap = nc;
    }
    c->ids[c->n++] = id;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* A bag of (term, count) pairs for many texts, CSR by text. */
typedef struct {
    int64_t *ptr;   /* (n + 1) */
    int32_t *term;  /* ascending within a text */
    int32_t *count;
    int64_t *len;   /* (n) terms in the text (with repeats) */
    size_t nnz, cap;
} bags;

static void bags_free(bags *b) {
    free(b->ptr);
    free(b->term);
    free(b->count);
    free(b->len);
    memset(b, 0, sizeof(*b));
}

static int bags_build(const er_texts *t, strmap *vocab, int intern, bags *b) {
    collect c = {vocab, intern, NULL, 0, 0, EASYREC_OK};
    memset(b, 0, sizeof(*b));
    b->ptr = er_calloc(t->n + 1, sizeof(*b->ptr));
    b->len = er_calloc(t->n ? t->n : 1, sizeof(*b->len));
    if (!b->ptr || !b->len) c.rc = EASYREC_ERR_NOMEM;
    for (size_t d = 0; d < t->n && !c.rc; d++) {
        c.n = 0;
        er_lexical_terms(t->text[d], t->len[d], collect_term, &c);
        if (c.rc) break;
        b->len[d] = (int64_t)c.n;
        qsort(c.ids, c.n, sizeof(*c.ids), cmp_i32);
        for (size_t k = 0; k < c.n; k++) {
            if (k > 0 && c.ids[k] == c.ids[k - 1]) {
                b->count[b->nnz - 1]++;
                continue;
            }
            if (b->nnz == b->cap) {
                size_t nc = b->cap ? b->cap * 2 : 4096;
                int32_t *nt = er_reallocarray(b->term, nc, sizeof(*nt));
                if (!nt) goto nomem;
                b->term = nt;
                int32_t *nn = er_reallocarray(b->count, nc, sizeof(*nn));
                if (!nn) goto nomem;
                b->count = nn;
                b->cap = nc;
            }
            b->term[b->nnz] = c.ids[k];
            b->count[b->nnz++] = 1;
        }
        b->ptr[d + 1] = (int64_t)b->nnz;
        continue;
    nomem:
        c.rc = EASYREC_ERR_NOMEM;
    }
    free(c.ids);
    if (c.rc) bags_free(b);
    return c.rc;
}

/* ---- index ---------------------------------------------------------------------------- */

void er_lexical_free(er_lexical *lx) {
    if (!lx) return;
    free(lx->tptr);
    free(lx->pdoc);
    free(lx->pw);
    free(lx->qptr);
    free(lx->qterm);
    free(lx->qw);
    free(lx);
}

/* item-side weights, postings transposed from the item bags */
static int build_postings(er_lexical *lx, const bags *docs, const double *idf) {
    size_t P = docs->nnz, N = (size_t)lx->n_items;
    lx->tptr = er_calloc((size_t)lx->n_terms + 1, sizeof(*lx->tptr));
    lx->pdoc = er_mallocarray(P ? P : 1, sizeof(*lx->pdoc));
    lx->pw = er_mallocarray(P ? P : 1, sizeof(*lx->pw));
    double *w = er_mallocarray(P ? P : 1, sizeof(*w));
    if (!lx->tptr || !lx->pdoc || !lx->pw || !w) {
        free(w);
        return EASYREC_ERR_NOMEM;
    }
    double total = 0;
    for (size_t d = 0; d < N; d++) total += (double)docs->len[d];
    double avgdl = N ? total / (double)N : 0.0;
    for (size_t d = 0; d < N; d++) {
        double norm = 0;
        for (int64_t p = docs->ptr[d]; p < docs->ptr[d + 1]; p++) {
            double tf = docs->count[p], id = idf[docs->term[p]];
            if (lx->kind == ER_LEX_BM25) {
                double dl = avgdl > 0 ? (double)docs->len[d] / avgdl : 0.0;
                w[p] = id * tf * (ER_BM25_K1 + 1) / (tf + ER_BM25_K1 * (1 - ER_BM25_B + ER_BM25_B * dl));
            } else {
                w[p] = (1 + log(tf)) * id;
                norm += w[p] * w[p];
            }
        }
        if (lx->kind == ER_LEX_TFIDF && norm > 0)
            for (int64_t p = docs->ptr[d]; p < docs->ptr[d + 1]; p++) w[p] /= sqrt(norm);
    }
    for (size_t p = 0; p < P; p++) lx->tptr[docs->term[p] + 1]++;
    for (int32_t t = 0; t < lx->n_terms; t++) lx->tptr[t + 1] += lx->tptr[t];
    int64_t *cur = er_mallocarray((size_t)lx->n_terms + 1, sizeof(*cur));
    if (!cur) {
        free(w);
        return EASYREC_ERR_NOMEM;
    }
    memcpy(cur, lx->tptr, ((size_t)lx->n_terms + 1) * sizeof(*cur));
    for (size_t d = 0; d < N; d++)
        for (int64_t p = docs->ptr[d]; p < docs->ptr[d + 1]; p++) {
            int64_t q = cur[docs->term[p]]++;
            lx->pdoc[q] = (int32_t)d;
            lx->pw[q] = (float)w[p];
        }
    free(cur);
    free(w);
    return EASYREC_OK;
}

/* query weights from the counts of the query bags (whose ptr/term lx now owns) */
static void build_queries(er_lexical *lx, const int32_t *count, const double *idf) {
    for (int32_t u = 0; u < lx->n_users; u++) {
        double norm = 0;
        int64_t a = lx->qptr[u], b = lx->qptr[u + 1];
        for (int64_t p = a; p < b; p++) {
            double tf = count[p];
            double w = lx->kind == ER_LEX_BM25 ? tf : (1 + log(tf)) * idf[lx->qterm[p]];
            lx->qw[p] = (float)w;
            norm += w * w;
        }
        if (lx->kind == ER_LEX_TFIDF && norm > 0)
            for (int64_t p = a; p < b; p++) lx->qw[p] = (float)(lx->qw[p] / sqrt(norm));
    }
}

int er_lexical_build(er_lex_kind kind, const er_texts *items, const er_texts *users, er_lexical **out) {
    *out = NULL;
    if (items->n > INT32_MAX || users->n > INT32_MAX) return er_error(EASYREC_ERR_ARG, "lexical index: too many texts");
    er_lexical *lx = er_calloc(1, sizeof(*lx));
    strmap vocab;
    bags docs = {0}, qs = {0};
    double *idf = NULL;
    if (!lx) return EASYREC_ERR_NOMEM;
    lx->kind = kind;
    lx->n_items = (int32_t)items->n;
    lx->n_users = (int32_t)users->n;
    int rc = er_strmap_init(&vocab, 1 << 14);
    if (rc) goto out_free_lx;
    if ((rc = bags_build(items, &vocab, 1, &docs))) goto out_free_vocab;
    if ((rc = bags_build(users, &vocab, 0, &qs))) goto out_free_vocab;
    lx->n_terms = (int32_t)vocab.n;
    int64_t *df = er_calloc(vocab.n + 1, sizeof(*df));
    idf = er_mallocarray(vocab.n + 1, sizeof(*idf));
    if (!df || !idf) {
        free(df);
        rc = EASYREC_ERR_NOMEM;
        goto out_free_vocab;
    }
    for (size_t p = 0; p < docs.nnz; p++) df[docs.term[p]]++;
    double N = (double)lx->n_items;
    for (int32_t t = 0; t < lx->n_terms; t++)
        idf[t] = kind == ER_LEX_BM25 ? log(1 + (N - df[t] + 0.5) / (df[t] + 0.5)) : log((1 + N) / (1 + df[t])) + 1;
    free(df);
    if ((rc = build_postings(lx, &docs, idf))) goto out_free_vocab;
    /* the query bags become the query arrays */
    lx->qptr = qs.ptr;
    lx->qterm = qs.term ? qs.term : er_mallocarray(1, sizeof(*lx->qterm));
    lx->qw = er_mallocarray(qs.nnz ? qs.nnz : 1, sizeof(*lx->qw));
    qs.ptr = NULL;
    qs.term = NULL;
    if (!lx->qterm || !lx->qw) {
        rc = EASYREC_ERR_NOMEM;
        goto out_free_vocab;
    }
    build_queries(lx, qs.count, idf);
out_free_vocab:
    free(idf);
    bags_free(&docs);
    bags_free(&qs);
    er_strmap_free(&vocab);
out_free_lx:
    if (rc) er_lexical_free(lx);
    else *out = lx;
    return rc;
}

static void lexical_score(const void *ctx, const int32_t *users, int nu, float *out, float *scratch) {
    const er_lexical *lx = ctx;
    for (int r = 0; r < nu; r++) {
        float *row = out + (size_t)r * lx->n_items;
        memset(row, 0, (size_t)lx->n_items * sizeof(float));
        int32_t u = users[r];
        for (int64_t q = lx->qptr[u]; q < lx->qptr[u + 1]; q++) {
            int32_t t = lx->qterm[q];
            float qw = lx->qw[q];
            for (int64_t p = lx->tptr[t]; p < lx->tptr[t + 1]; p++) row[lx->pdoc[p]] += qw * lx->pw[p];
        }
    }
}

void er_lexical_scorer_bind(const er_lexical *lx, er_scorer *out) {
    *out = (er_scorer){.score = lexical_score, .ctx = lx};
}
