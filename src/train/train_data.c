/* train_data.c — datasets to training batches (see train_data.h for the rules). */
#include "train/train_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/rng.h"
#include "tokenizer/tokenizer.h"

/* generator for draw `what` of global example position p */
static void rng_at(er_rng *r, uint64_t seed, uint64_t what, uint64_t p) {
    er_rng_seed(r, seed ^ (what * 0x9e3779b97f4a7c15ULL) ^ (p * 0xd1b54a32d192ed03ULL));
}

static int open_domain(er_domain *d, const char *dir, int diverse) {
    memset(d, 0, sizeof(*d));
    d->dir = er_strdup(dir);
    if (!d->dir) return EASYREC_ERR_NOMEM;
    int rc = er_dataset_open_dir(dir, &d->ds);
    if (rc) return rc;
    if (!d->ds.has_split[ER_SPLIT_TRN])
        return er_error(EASYREC_ERR_FORMAT, "%s: no trn_mat.pkl: a training dataset needs training interactions", dir);
    for (int s = 0; s < d->ds.n_sets; s++) {
        const er_profile_set *ps = &d->ds.sets[s];
        if (s > diverse) break; /* set 0 = original, 1..3 = diverse */
        if (ps->item_path) {
            if ((rc = er_dataset_read_profiles(&d->ds, ps->item_path, 0, &d->items[d->n_item_sets]))) return rc;
            d->n_item_sets++;
        }
        if (ps->user_path) {
            if ((rc = er_dataset_read_profiles(&d->ds, ps->user_path, 1, &d->users[d->n_user_sets]))) return rc;
            d->n_user_sets++;
        }
    }
    char *raw = er_path_join(dir, "diverse_profile/item_raw_meta_profile.json");
    if (!raw) return EASYREC_ERR_NOMEM;
    if (er_file_exists(raw)) rc = er_dataset_read_profiles(&d->ds, raw, 0, &d->items[d->n_item_sets++]);
    free(raw);
    if (rc) return rc;
    if (d->n_item_sets == 0)
        return er_error(EASYREC_ERR_FORMAT, "%s: no item profiles (item_profile.json or diverse_profile/)", dir);
    return EASYREC_OK;
}

static void close_domain(er_domain *d) {
    free(d->dir);
    for (int i = 0; i < d->n_item_sets; i++) er_texts_free(&d->items[i]);
    for (int i = 0; i < d->n_user_sets; i++) er_texts_free(&d->users[i]);
    er_dataset_free(&d->ds);
    memset(d, 0, sizeof(*d));
}

int er_train_data_open(er_train_data *td, const char *const *dirs, int n, const easyrec_tokenizer *tok,
                    uint64_t seed, int max_length, int user_items_k, float mlm_prob, int diverse) {
    memset(td, 0, sizeof(*td));
    td->dom = er_calloc((size_t)n, sizeof(*td->dom));
    if (!td->dom) return EASYREC_ERR_NOMEM;
    td->seed = seed;
    td->max_length = max_length;
    td->user_items_k = user_items_k;
    td->mlm_prob = mlm_prob;
    td->diverse = diverse;
    td->tok = tok;
    const tokenizer_specials *sp = er_tokenizer_specials_of(tok);
    td->bos = sp->bos, td->eos = sp->eos, td->pad = sp->pad, td->unk = sp->unk, td->mask = sp->mask;
    td->vocab = easyrec_tokenizer_vocab_size(tok);
    if (td->mask < 0) return er_error(EASYREC_ERR_FORMAT, "tokenizer has no mask token: MLM needs one");
    int rc = EASYREC_OK;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        td->n_dom++;
        if ((rc = open_domain(&td->dom[i], dirs[i], diverse))) goto fail;
        total += (size_t)td->dom[i].ds.n_users;
    }
    td->ex = er_mallocarray(total ? total : 1, sizeof(*td->ex));
    if (!td->ex) {
        rc = EASYREC_ERR_NOMEM;
        goto fail;
    }
    for (int d = 0; d < n; d++) {
        const er_csr *trn = &td->dom[d].ds.split[ER_SPLIT_TRN];
        for (int32_t u = 0; u < td->dom[d].ds.n_users; u++)
            if (csr_row_len(trn, u) > 0) {
                td->ex[td->n_ex].d = d;
                td->ex[td->n_ex].u = u;
                td->n_ex++;
            }
    }
    if (td->n_ex == 0) {
        rc = er_error(EASYREC_ERR_FORMAT, "no user with a training interaction in the training datasets");
        goto fail;
    }
    return EASYREC_OK;
fail:
    er_train_data_free(td);
    return rc;
}

void er_train_data_free(er_train_data *td) {
    for (int i = 0; i < td->n_dom; i++) close_domain(&td->dom[i]);
    free(td->dom);
    free(td->ex);
    memset(td, 0, sizeof(*td));
}

static void shuffle(er_rng *r, size_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = er_rng_below(r, i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

int er_train_data_epoch_order(const er_train_data *td, long epoch, size_t group, size_t *perm) {
    er_rng r;
    rng_at(&r, td->seed, 1, (uint64_t)epoch);
    for (size_t i = 0; i < td->n_ex; i++) perm[i] = i;
    shuffle(&r, perm, td->n_ex);
    if (group <= 1 || td->n_dom < 2) return EASYREC_OK;
    /* bucket by dataset keeping the shuffled order: start[d] .. start[d + 1] in `by` */
    size_t *start = er_calloc((size_t)td->n_dom + 1, sizeof(size_t)), *fill = er_calloc((size_t)td->n_dom, sizeof(size_t));
    size_t *by = er_mallocarray(td->n_ex, sizeof(size_t)), *runs = er_mallocarray(td->n_ex / group + 1, sizeof(size_t));
    int rc = start && fill && by && runs ? EASYREC_OK : EASYREC_ERR_NOMEM;
    if (!rc) {
        for (size_t i = 0; i < td->n_ex; i++) start[td->ex[i].d + 1]++;
        for (int d = 0; d < td->n_dom; d++) start[d + 1] += start[d];
        for (size_t i = 0; i < td->n_ex; i++) {
            int d = td->ex[perm[i]].d;
            by[start[d] + fill[d]++] = perm[i];
        }
        /* full runs (by their first index in `by`), shuffled; then each dataset's remainder */
        size_t nr = 0, o = 0;
        for (int d = 0; d < td->n_dom; d++)
            for (size_t s = start[d]; s + group <= start[d + 1]; s += group) runs[nr++] = s;
        rng_at(&r, td->seed, 7, (uint64_t)epoch);
        shuffle(&r, runs, nr);
        for (size_t k = 0; k < nr; k++, o += group) memcpy(perm + o, by + runs[k], group * sizeof(size_t));
        for (int d = 0; d < td->n_dom; d++) {
            size_t n = start[d + 1] - start[d], rest = n % group;
            memcpy(perm + o, by + start[d + 1] - rest, rest * sizeof(size_t));
            o += rest;
        }
        ER_ASSERT(o == td->n_ex);
    }
    free(start), free(fill), free(by), free(runs);
    return rc;
}

size_t er_train_data_batch_tokens(const er_train_data *td, int n) { return (size_t)6 * n * td->max_length; }

/* append tokenized text (truncated to max_length, specials added) at ids + *tok */
static int push_text(const er_train_data *td, const char *text, size_t len, er_batch *b, int *k, int *tok) {
    int cap = td->max_length;
    int got = er_tokenizer_encode(td->tok, text, len, cap - 2, 1, b->ids + *tok, cap);
    if (got < 0) return got;
    ER_ASSERT(got <= cap);
    b->off[*k] = *tok;
    *tok += got;
    (*k)++;
    b->off[*k] = *tok;
    return EASYREC_OK;
}

/* user text built from up to K training items, skipping `skip`; malloc'd */
static char *items_text(const er_domain *d, int32_t u, int32_t skip, int set, int K, size_t *len) {
    const er_csr *trn = &d->ds.split[ER_SPLIT_TRN];
    const er_texts *it = &d->items[set];
    size_t total = 0;
    int used = 0;
    for (int64_t p = trn->indptr[u]; p < trn->indptr[u + 1] && used < K; p++) {
        if (trn->indices[p] == skip) continue;
        total += it->len[trn->indices[p]] + 1;
        used++;
    }
    char *s = er_mallocarray(total + 1, 1);
    if (!s) return NULL;
    size_t o = 0;
    used = 0;
    for (int64_t p = trn->indptr[u]; p < trn->indptr[u + 1] && used < K; p++) {
        int32_t i = trn->indices[p];
        if (i == skip) continue;
        if (used++) s[o++] = ' ';
        memcpy(s + o, it->text[i], it->len[i]);
        o += it->len[i];
    }
    s[o] = 0;
    *len = o;
    return s;
}

int er_train_data_batch(const er_train_data *td, const size_t *perm, long epoch, size_t first, int n, er_batch *b) {
    int32_t *draws = er_calloc((size_t)n, 3 * sizeof(int32_t)); /* user set, pos, neg per example */
    char **utext = er_calloc((size_t)n, sizeof(char *));
    size_t *ulen = er_calloc((size_t)n, sizeof(size_t));
    int rc = EASYREC_OK;
    if (!draws || !utext || !ulen) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    b->n = n;
    b->n_seq = td->mlm_prob > 0 ? 6 * n : 3 * n;
    /* draw the examples */
    for (int e = 0; e < n; e++) {
        size_t idx = perm[(first + (size_t)e) % td->n_ex];
        uint64_t p = (uint64_t)epoch * td->n_ex + first + (uint64_t)e;
        const er_domain *d = &td->dom[td->ex[idx].d];
        int32_t u = td->ex[idx].u;
        const er_csr *trn = &d->ds.split[ER_SPLIT_TRN];
        er_rng r;
        rng_at(&r, td->seed, 2, p);
        int64_t nu = csr_row_len(trn, u);
        int32_t pos = trn->indices[trn->indptr[u] + (int64_t)er_rng_below(&r, (uint64_t)nu)];
        int32_t neg = -1;
        for (int tries = 0; tries < 10000; tries++) { /* a user with every item has no negative */
            neg = (int32_t)er_rng_below(&r, (uint64_t)d->ds.n_items);
            if (!er_csr_has(trn, u, neg)) break;
        }
        draws[3 * e + 1] = pos;
        draws[3 * e + 2] = neg;
        int uset = d->n_user_sets ? (int)er_rng_below(&r, (uint64_t)d->n_user_sets) : -1;
        int iset = (int)er_rng_below(&r, (uint64_t)d->n_item_sets);
        if (uset >= 0) {
            utext[e] = d->users[uset].text[u];
            ulen[e] = d->users[uset].len[u];
        } else {
            utext[e] = items_text(d, u, pos, iset, td->user_items_k, &ulen[e]);
            if (!utext[e]) {
                rc = EASYREC_ERR_NOMEM;
                goto out;
            }
        }
        draws[3 * e] = uset;
    }
    /* tokenize: users, positives, negatives, then the MLM copies */
    int k = 0, tok = 0;
    for (int part = 0; part < 3 && !rc; part++)
        for (int e = 0; e < n && !rc; e++) {
            size_t idx = perm[(first + (size_t)e) % td->n_ex];
            const er_domain *d = &td->dom[td->ex[idx].d];
            uint64_t p = (uint64_t)epoch * td->n_ex + first + (uint64_t)e;
            if (part == 0) {
                rc = push_text(td, utext[e], ulen[e], b, &k, &tok);
            } else {
                er_rng r;
                rng_at(&r, td->seed, 3 + (uint64_t)part, p);
                int set = (int)er_rng_below(&r, (uint64_t)d->n_item_sets);
                int32_t it = draws[3 * e + part];
                rc = push_text(td, d->items[set].text[it], d->items[set].len[it], b, &k, &tok);
            }
        }
    if (rc || b->n_seq == 3 * n) goto out;
    /* MLM copies interleaved u1 p1 n1 u2 ..., 80/10/10 masking of non-special tokens */
    int t0 = tok;
    for (int e = 0; e < n; e++) {
        uint64_t p = (uint64_t)epoch * td->n_ex + first + (uint64_t)e;
        er_rng r;
        rng_at(&r, td->seed, 6, p);
        for (int part = 0; part < 3; part++) {
            int src = part * n + e;
            int s0 = b->off[src], s1 = b->off[src + 1];
            b->off[k] = tok;
            for (int t = s0; t < s1; t++) {
                int32_t id = b->ids[t];
                int32_t lab = -100;
                int special = id == td->bos || id == td->eos || id == td->pad || id == td->unk || id == td->mask;
                if (!special && er_rng_uniform(&r) < td->mlm_prob) {
                    lab = id;
                    double v = er_rng_uniform(&r);
                    if (v < 0.8)
                        id = td->mask;
                    else if (v < 0.9) {
                        /* random id over the whole vocabulary as the original, except the pad id,
                         * which the original's collator would turn into padding mid-sequence */
                        do id = (int32_t)er_rng_below(&r, (uint64_t)td->vocab);
                        while (id == td->pad);
                    }
                }
                b->ids[tok] = id;
                b->labels[tok - t0] = lab;
                tok++;
            }
            k++;
            b->off[k] = tok;
        }
    }
out:
    if (utext)
        for (int e = 0; e < n; e++)
            if (draws && draws[3 * e] < 0) free(utext[e]);
    free(draws);
    free(utext);
    free(ulen);
    return rc;
}
