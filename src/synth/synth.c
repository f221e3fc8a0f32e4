/* synth.c — generate the built-in catalog (synth.h): items, users, interaction
 * histories, splits, profiles and statistics, one domain at a time.
 *
 * Every random draw comes from a generator seeded by (seed, domain, stream, id), so a
 * domain's content does not depend on which other domains are generated, and the same
 * options give the same bytes. */
#include "synth/synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "synth/synth_text.h"
#include "synth/synth_words.h"
#include "core/err.h"
#include "core/rng.h"
#include "io/sparse_pickle.h"

enum { S_ITEM, S_USER, S_HIST, S_TEXT_ITEM, S_TEXT_USER = S_TEXT_ITEM + 4, S_SHIFT = S_TEXT_USER + 4, S_PERM };

static void seeded(er_rng *r, uint64_t seed, int domain, int stream, int64_t id) {
    uint64_t k = seed;
    uint64_t parts[3] = {(uint64_t)domain + 1, (uint64_t)stream + 1, (uint64_t)id + 1};
    for (int i = 0; i < 3; i++) { /* splitmix64 finaliser chained over the parts */
        k += 0x9E3779B97F4A7C15ull * parts[i];
        k = (k ^ (k >> 30)) * 0xBF58476D1CE4E5B9ull;
        k = (k ^ (k >> 27)) * 0x94D049BB133111EBull;
        k ^= k >> 31;
    }
    er_rng_seed(r, k);
}

void er_synth_defaults(er_synth_opts *o) {
    memset(o, 0, sizeof(*o));
    o->seed = 2024;
    o->users = 300;
    o->items_per_interest = 40;
}

const char *er_synth_domain_names(void) { return "sports,books,food,games,music,travel"; }

/* ---- growable text buffer for file contents ---- */
typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} obuf;

static void oput(obuf *o, const char *s, size_t n) {
    if (o->oom) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1 << 16;
        while (cap < o->n + n + 1) cap *= 2;
        char *nb = realloc(o->b, cap);
        if (!nb) {
            o->oom = 1;
            return;
        }
        o->b = nb;
        o->cap = cap;
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
    o->b[o->n] = 0;
}
static void oputs(obuf *o, const char *s) { oput(o, s, strlen(s)); }
static void ojson_str(obuf *o, const char *s) {
    oputs(o, "\"");
    for (; *s; s++) {
        char e[8];
        if (*s == '"' || *s == '\\') {
            e[0] = '\\', e[1] = *s, e[2] = 0;
            oputs(o, e);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", (unsigned char)*s);
            oputs(o, e);
        } else {
            oput(o, s, 1);
        }
    }
    oputs(o, "\"");
}
static int oflush(obuf *o, const char *dir, const char *name) {
    if (o->oom) return er_error(EASYREC_ERR_NOMEM, "catalog: out of memory writing %s", name);
    char *path = er_path_join(dir, name);
    if (!path) return er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
    int rc = er_write_file_atomic(path, o->b ? o->b : "", o->n);
    free(path);
    o->n = 0;
    if (o->b) o->b[0] = 0;
    return rc;
}

static int mkdir_p(const char *dir) {
    if (mkdir(dir, 0777) && errno != EEXIST) return er_error(EASYREC_ERR_IO, "%s: cannot create directory", dir);
    return 0;
}

/* ---- content words (for the overlap statistic) ---- */
#define MAXW 96
typedef struct {
    int n;
    uint64_t h[MAXW];
} wset;

static const char *const stop[] = {"this", "that", "with", "from", "user", "they", "their", "them", "likely", "enjoy",
                                   "about", "into", "towards", "made", "great", "good", "enough", "well", "person",
                                   "shopper", "anyone", "works", "which", "makes", "choice", "pick", "offers",
                                   "worth", "look", "built", "suited", "natural", "match", "price", "point",
                                   "options", "products", "favouring", "prefers", "also", "will", "fans", "appeals",
                                   "designed", "aimed", "ideal", "targets", "love", "loves", "perfect", "suits",
                                   "reviewers", "describe", "mention", "find", "looking", "keeps", "coming",
                                   "back", "mostly", "choosing", "strong", "interest", "lean", "typical",
                                   "passionate", "among", "shops", "interested", "history", "suggests", "drawn",
                                   "heart", "taste", "favours", "meant", "picks", "tends", "appreciates", "looks",
                                   "appreciate", "enthusiastic", "gravitates", "values", "shows", "choices", "easy",
                                   "recommend", "delve", "make", "tag", "will", NULL};

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}
static int is_stop(const char *w, size_t n) {
    for (int i = 0; stop[i]; i++)
        if (strlen(stop[i]) == n && !memcmp(stop[i], w, n)) return 1;
    return 0;
}
static int wset_has(const wset *s, uint64_t h) {
    for (int i = 0; i < s->n; i++)
        if (s->h[i] == h) return 1;
    return 0;
}
static void words_of(const char *t, wset *s, int *n_words) {
    s->n = 0;
    int total = 0;
    char w[64];
    size_t n = 0;
    for (const char *p = t;; p++) {
        char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            if (n < sizeof w) w[n++] = (char)(c | 0x20);
            continue;
        }
        if (n) {
            total++;
            if (n >= 4 && n < sizeof w && !is_stop(w, n)) {
                uint64_t h = fnv(w, n);
                if (!wset_has(s, h) && s->n < MAXW) s->h[s->n++] = h;
            }
        }
        n = 0;
        if (!c) break;
    }
    if (n_words) *n_words = total;
}

/* ---- one domain ---- */
typedef struct {
    const er_cat_domain *d;
    int di, n_items, n_users;
    er_cat_item *items;
    er_cat_user *users;
    int32_t *hist, *hist_off; /* user u's items: hist[hist_off[u] .. hist_off[u+1]) */
    int8_t *split;            /* per history entry: 0 trn, 1 val, 2 tst */
} domain_gen;

static int pick_weighted(er_rng *r, const double *w, int n) {
    double t = 0;
    for (int i = 0; i < n; i++) t += w[i];
    double x = er_rng_uniform(r) * t;
    for (int i = 0; i < n; i++) {
        x -= w[i];
        if (x < 0) return i;
    }
    return n - 1;
}

static int gen_items(domain_gen *g, const er_synth_opts *o) {
    int m = o->items_per_interest, n = g->n_items;
    er_rng r;
    seeded(&r, o->seed, g->di, S_PERM, 0);
    int *perm = er_mallocarray((size_t)n, sizeof(int));
    if (!perm) return er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { /* item ids are not grouped by interest */
        int j = (int)er_rng_below(&r, (uint64_t)i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int na = 0, nb = 0;
    while (er_cat_brand_a[na]) na++;
    while (er_cat_brand_b[nb]) nb++;
    for (int k = 0; k < n; k++) {
        er_cat_item *it = &g->items[perm[k]];
        seeded(&r, o->seed, g->di, S_ITEM, k);
        it->interest = k / m;
        it->kind = (int)er_rng_below(&r, (uint64_t)er_cat_count(g->d->in[it->interest].kinds));
        it->level = (int)er_rng_below(&r, 3);
        it->price = (int)er_rng_below(&r, 2);
        const char *a = er_cat_brand_a[er_rng_below(&r, (uint64_t)na)], *b = er_cat_brand_b[er_rng_below(&r, (uint64_t)nb)];
        int num = (int)er_rng_below(&r, 12);
        if (num < 9) snprintf(it->name, sizeof it->name, "%s %s %d", a, b, num + 1);
        else snprintf(it->name, sizeof it->name, "%s %s", a, b);
        /* popularity: Zipf-like in a random rank within the interest */
        it->pop = 1.0 / pow(1.0 + (double)er_rng_below(&r, (uint64_t)m), 0.5);
    }
    free(perm);
    return 0;
}

static void gen_user(domain_gen *g, const er_synth_opts *o, int u, er_cat_user *us) {
    er_rng r;
    seeded(&r, o->seed, g->di, S_USER, u);
    double x = er_rng_uniform(&r);
    us->n_interests = x < 0.5 ? 1 : x < 0.85 ? 2 : 3;
    for (int i = 0; i < us->n_interests; i++) {
        int c;
        do c = (int)er_rng_below(&r, ER_CAT_INTERESTS);
        while ((i > 0 && c == us->interests[0]) || (i > 1 && c == us->interests[1]));
        us->interests[i] = c;
        us->weight[i] = i == 0 ? 1.0 : 0.2 + 0.6 * er_rng_uniform(&r);
    }
    us->level = (int)er_rng_below(&r, 3);
    us->price = (int)er_rng_below(&r, 2);
    if (u == 0 && !strcmp(g->d->name, "sports")) { /* the preference-shift user: basketball only */
        us->n_interests = 1;
        us->interests[0] = 0;
        us->weight[0] = 1.0;
    }
}

static int gen_histories(domain_gen *g, const er_synth_opts *o) {
    int n = g->n_items, cap = 25 < n / 2 ? 25 : n / 2;
    double *w = er_mallocarray((size_t)n, sizeof(double));
    int32_t *mine = er_mallocarray((size_t)n, sizeof(int32_t));
    g->hist_off = er_mallocarray((size_t)g->n_users + 1, sizeof(int32_t));
    g->hist = er_mallocarray((size_t)g->n_users * (size_t)cap + 1, sizeof(int32_t));
    g->split = er_mallocarray((size_t)g->n_users * (size_t)cap + 1, 1);
    if (!w || !mine || !g->hist_off || !g->hist || !g->split) {
        free(w);
        free(mine);
        return er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
    }
    int32_t at = 0;
    for (int u = 0; u < g->n_users; u++) {
        const er_cat_user *us = &g->users[u];
        er_rng r;
        seeded(&r, o->seed, g->di, S_HIST, u);
        int len = 4 + (int)floor(-log(1.0 - er_rng_uniform(&r)) * 6.0);
        if (len > cap) len = cap;
        g->hist_off[u] = at;
        memset(mine, 0, (size_t)n * sizeof(int32_t));
        for (int k = 0; k < len; k++) {
            for (int tries = 0; tries < 64; tries++) {
                int noise = er_rng_uniform(&r) < 0.1;
                int want = us->interests[pick_weighted(&r, us->weight, us->n_interests)];
                for (int i = 0; i < n; i++) {
                    const er_cat_item *it = &g->items[i];
                    w[i] = noise ? it->pop
                           : it->interest != want
                               ? 0
                               : it->pop * (it->level == us->level ? 3.0 : 1.0) * (it->price == us->price ? 2.0 : 1.0);
                }
                int i = pick_weighted(&r, w, n);
                if (!mine[i]) {
                    mine[i] = 1;
                    g->hist[at++] = i;
                    break;
                }
            }
        }
        /* split: shuffle, then tst = max(1, n/5), val = max(1, n/10) when n >= 6, trn the rest */
        int32_t *h = g->hist + g->hist_off[u];
        int len_u = at - g->hist_off[u];
        for (int i = len_u - 1; i > 0; i--) {
            int j = (int)er_rng_below(&r, (uint64_t)i + 1);
            int32_t t = h[i];
            h[i] = h[j];
            h[j] = t;
        }
        int n_tst = len_u / 5 > 1 ? len_u / 5 : 1, n_val = len_u >= 6 ? (len_u / 10 > 1 ? len_u / 10 : 1) : 0;
        for (int i = 0; i < len_u; i++)
            g->split[g->hist_off[u] + i] = (int8_t)(i < n_tst ? 2 : i < n_tst + n_val ? 1 : 0);
    }
    g->hist_off[g->n_users] = at;
    free(w);
    free(mine);
    return 0;
}

static int write_splits(domain_gen *g, const char *dir, er_synth_domain_stats *st) {
    static const char *const names[3] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"};
    size_t tot = (size_t)g->hist_off[g->n_users];
    int32_t *row = er_mallocarray(tot + 1, sizeof(int32_t)), *col = er_mallocarray(tot + 1, sizeof(int32_t));
    int rc = row && col ? 0 : er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
    for (int s = 0; s < 3 && !rc; s++) {
        size_t nnz = 0;
        for (int u = 0; u < g->n_users; u++) { /* row-major, columns ascending (canonical COO) */
            int32_t a = g->hist_off[u], b = g->hist_off[u + 1];
            for (int i = 0; i < g->n_items; i++)
                for (int32_t k = a; k < b; k++)
                    if (g->hist[k] == i && g->split[k] == s) {
                        row[nnz] = u;
                        col[nnz++] = i;
                    }
        }
        long *cnt = s == 0 ? &st->trn : s == 1 ? &st->val : &st->tst;
        *cnt = (long)nnz;
        char *path = er_path_join(dir, names[s]);
        rc = path ? er_sparse_pickle_write(path, g->n_users, g->n_items, row, col, nnz, 1)
                  : er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
        free(path);
    }
    free(row);
    free(col);
    return rc;
}

/* profiles of the four sets + labels + corpus; fills the text statistics */
static int write_profiles(domain_gen *g, const er_synth_opts *o, const char *dir, er_synth_domain_stats *st) {
    static const char *const item_files[4] = {"item_profile.json", "diverse_profile/diverse_item_profile_0.json",
                                              "diverse_profile/diverse_item_profile_1.json",
                                              "diverse_profile/diverse_item_profile_2.json"};
    static const char *const user_files[4] = {"user_profile.json", "diverse_profile/diverse_user_profile_0.json",
                                              "diverse_profile/diverse_user_profile_1.json",
                                              "diverse_profile/diverse_user_profile_2.json"};
    char text[ER_CAT_TEXT_MAX], num[64];
    obuf f = {0}, corpus = {0};
    wset *iw = er_calloc((size_t)g->n_items, sizeof(wset));
    int rc = iw ? 0 : er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
    long item_words = 0, user_words = 0;
    double own = 0, other = 0;
    for (int set = 0; set < 4 && !rc; set++) {
        for (int i = 0; i < g->n_items; i++) {
            er_rng r;
            seeded(&r, o->seed, g->di, S_TEXT_ITEM + set, i);
            er_cat_item_text(text, g->d, &g->items[i], &r);
            snprintf(num, sizeof num, "{\"item_id\": %d, \"profile\": ", i);
            oputs(&f, num);
            ojson_str(&f, text);
            oputs(&f, "}\n");
            oputs(&corpus, text);
            oputs(&corpus, "\n");
            if (set == 0) {
                int nw;
                words_of(text, &iw[i], &nw);
                item_words += nw;
            }
        }
        rc = oflush(&f, dir, item_files[set]);
        for (int u = 0; u < g->n_users && !rc; u++) {
            er_rng r;
            seeded(&r, o->seed, g->di, S_TEXT_USER + set, u);
            er_cat_user_text(text, g->d, &g->users[u], &r);
            snprintf(num, sizeof num, "{\"user_id\": %d, \"profile\": ", u);
            oputs(&f, num);
            ojson_str(&f, text);
            oputs(&f, "}\n");
            oputs(&corpus, text);
            oputs(&corpus, "\n");
            if (set) continue;
            wset uw;
            int nw;
            words_of(text, &uw, &nw);
            user_words += nw;
            /* share of the user's content words found in their training items (and another user's) */
            int other_u = (int)((u * 7919L + 13) % g->n_users);
            if (other_u == u) other_u = (u + 1) % g->n_users;
            for (int pass = 0; pass < 2; pass++) {
                int who = pass ? other_u : u, hit = 0;
                for (int w = 0; w < uw.n; w++) {
                    int found = 0;
                    for (int32_t k = g->hist_off[who]; k < g->hist_off[who + 1] && !found; k++)
                        if (g->split[k] == 0 && wset_has(&iw[g->hist[k]], uw.h[w])) found = 1;
                    hit += found;
                }
                double share = uw.n ? (double)hit / uw.n : 0;
                if (pass) other += share;
                else own += share;
            }
        }
        if (!rc) rc = oflush(&f, dir, user_files[set]);
    }
    for (int i = 0; i < g->n_items && !rc; i++) {
        oputs(&f, g->d->in[g->items[i].interest].name);
        oputs(&f, "\n");
    }
    if (!rc) rc = oflush(&f, dir, "item_labels.txt");
    for (int u = 0; u < g->n_users && !rc; u++) {
        oputs(&f, g->d->in[g->users[u].interests[0]].name);
        oputs(&f, "\n");
    }
    if (!rc) rc = oflush(&f, dir, "user_labels.txt");
    if (!rc) rc = oflush(&corpus, dir, "profiles.txt");
    st->item_words = (double)item_words / g->n_items;
    st->user_words = (double)user_words / g->n_users;
    st->overlap_own = own / g->n_users;
    st->overlap_other = other / g->n_users;
    free(f.b);
    free(corpus.b);
    free(iw);
    return rc;
}

static int write_shift(domain_gen *g, const er_synth_opts *o, const char *root) {
    char before[ER_CAT_TEXT_MAX], after[ER_CAT_TEXT_MAX];
    er_rng r;
    seeded(&r, o->seed, g->di, S_TEXT_USER, 0);
    er_cat_user_text(before, g->d, &g->users[0], &r);
    er_cat_user moved = g->users[0];
    moved.interests[0] = 1; /* swimming */
    seeded(&r, o->seed, g->di, S_SHIFT, 0);
    er_cat_user_text(after, g->d, &moved, &r);
    obuf f = {0};
    oputs(&f, "{\"domain\": \"sports\", \"user_id\": 0, \"from\": \"basketball\", \"to\": \"swimming\",\n \"before\": ");
    ojson_str(&f, before);
    oputs(&f, ",\n \"after\": ");
    ojson_str(&f, after);
    oputs(&f, "}\n");
    int rc = oflush(&f, root, "shift.json");
    free(f.b);
    return rc;
}

static int gen_domain(const char *root, const er_synth_opts *o, int di, er_synth_domain_stats *st) {
    domain_gen g = {0};
    g.d = &er_cat_domains[di];
    g.di = di;
    g.n_items = ER_CAT_INTERESTS * o->items_per_interest;
    g.n_users = o->users;
    memset(st, 0, sizeof(*st));
    snprintf(st->name, sizeof st->name, "%s", g.d->name);
    char *dir = er_path_join(root, g.d->name), *div = dir ? er_path_join(dir, "diverse_profile") : NULL;
    g.items = er_calloc((size_t)g.n_items, sizeof(er_cat_item));
    g.users = er_calloc((size_t)g.n_users, sizeof(er_cat_user));
    int rc = dir && div && g.items && g.users ? 0 : er_error(EASYREC_ERR_NOMEM, "catalog: out of memory");
    if (!rc) rc = mkdir_p(dir);
    if (!rc) rc = mkdir_p(div);
    if (!rc) rc = gen_items(&g, o);
    for (int u = 0; u < g.n_users && !rc; u++) gen_user(&g, o, u, &g.users[u]);
    if (!rc) rc = gen_histories(&g, o);
    if (!rc) {
        st->users = g.n_users;
        st->items = g.n_items;
        st->interactions = g.hist_off[g.n_users];
        st->min_inter = 1 << 30;
        for (int u = 0; u < g.n_users; u++) {
            int n = g.hist_off[u + 1] - g.hist_off[u];
            if (n < st->min_inter) st->min_inter = n;
            if (n > st->max_inter) st->max_inter = n;
        }
        st->mean_inter = (double)st->interactions / g.n_users;
        rc = write_splits(&g, dir, st);
    }
    if (!rc) rc = write_profiles(&g, o, dir, st);
    if (!rc && !strcmp(g.d->name, "sports")) rc = write_shift(&g, o, root);
    free(dir);
    free(div);
    free(g.items);
    free(g.users);
    free(g.hist);
    free(g.hist_off);
    free(g.split);
    return rc;
}

int er_synth_write(const char *dir, const er_synth_opts *o, er_synth_stats *st) {
    memset(st, 0, sizeof(*st));
    st->shift_user = -1;
    if (o->users < 2 || o->users > 1000000)
        return er_error(EASYREC_ERR_ARG, "catalog: users per domain must be in [2, 1000000], got %d", o->users);
    if (o->items_per_interest < 4 || o->items_per_interest > 100000)
        return er_error(EASYREC_ERR_ARG, "catalog: items per interest must be in [4, 100000], got %d",
                        o->items_per_interest);
    int want[ER_SYNTH_MAX_DOMAINS] = {0}, any = 0;
    if (o->domains && *o->domains) {
        for (const char *p = o->domains; *p;) {
            size_t n = strcspn(p, ",");
            int found = -1;
            for (int d = 0; d < er_cat_n_domains; d++)
                if (strlen(er_cat_domains[d].name) == n && !strncmp(er_cat_domains[d].name, p, n)) found = d;
            if (found < 0)
                return er_error(EASYREC_ERR_ARG, "catalog: unknown domain '%.*s' (known: %s)", (int)n, p,
                                er_synth_domain_names());
            want[found] = any = 1;
            p += n;
            if (*p == ',') p++;
        }
    } else {
        for (int d = 0; d < er_cat_n_domains; d++) want[d] = any = 1;
    }
    int rc = mkdir_p(dir);
    for (int d = 0; d < er_cat_n_domains && !rc; d++) {
        if (!want[d]) continue;
        rc = gen_domain(dir, o, d, &st->d[st->n_domains]);
        if (!rc) st->n_domains++;
        if (!rc && !strcmp(er_cat_domains[d].name, "sports")) st->shift_user = 0;
    }
    return rc;
}
