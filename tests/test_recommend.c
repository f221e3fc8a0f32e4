/* test_recommend.c — the batched exact top-K of src/serve/recommender.h (bf16 scan, exact
 * rescoring) against a brute-force computation (double-precision dot products, full sort)
 * and, bit for bit, against the full fp32 exact scan (every item's exact score, ties by row)
 * for batches of every size, 1 and 2 threads (and fewer started than asked for: a caller's
 * parallel region, dynamic teams), exclusions and adversarial near-ties; the
 * catalog (ids, metadata, put/remove, its scan copy kept in step), and `easyrec recommend`
 * end to end on a small random model (needs ../shared/vocab; skipped if absent): its lists
 * equal brute force over `easyrec encode`'s embeddings of the same texts. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "core/err.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "eval/eval.h"
#include "io/tensors.h"
#include "serve/catalog.h"
#include "serve/recommender.h"

static double dotd(const float *a, const float *b, int D) {
    double s = 0;
    for (int d = 0; d < D; d++) s += (double)a[d] * b[d];
    return s;
}

/* hits of one query are a correct top-k: scores match brute force, descending, none
 * excluded, nothing left out scores higher, and the count is min(k, candidates) */
static int check_topk(const float *items, int I, int D, const float *q, int k, const int32_t *ex, int nex,
                      const er_hit *h, int n) {
    char *excl = calloc((size_t)I, 1), *in = calloc((size_t)I, 1);
    int cand = 0, ok = 1;
    for (int e = 0; e < nex; e++)
        if (ex[e] >= 0 && ex[e] < I) excl[ex[e]] = 1;
    for (int i = 0; i < I; i++) cand += !excl[i];
    if (n != (k < cand ? k : cand)) ok = 0;
    for (int j = 0; j < n && ok; j++) {
        double b = dotd(q, items + (size_t)h[j].row * D, D);
        if (excl[h[j].row] || in[h[j].row] || fabs(b - h[j].score) > 1e-4) ok = 0;
        if (j && h[j].score > h[j - 1].score) ok = 0;
        in[h[j].row] = 1;
    }
    if (ok && n > 0) {
        double last = dotd(q, items + (size_t)h[n - 1].row * D, D);
        for (int i = 0; i < I; i++)
            if (!excl[i] && !in[i] && dotd(q, items + (size_t)i * D, D) > last + 1e-5) ok = 0;
    }
    free(excl);
    free(in);
    return ok;
}

/* the full fp32 exact scan: every row's exact score (er_exact_dot), excluded rows out, the
 * best k by score then row; returns how many */
static int exact_scan(const float *items, int I, int D, const float *q, int k, const int32_t *ex, int nex, er_hit *h) {
    float *s = malloc(sizeof(float) * (size_t)(I ? I : 1));
    int32_t *ix = malloc(sizeof(int32_t) * (size_t)(I ? I : 1)), *out = malloc(sizeof(int32_t) * (size_t)(I ? I : 1));
    int m = 0;
    for (int i = 0; i < I; i++) {
        int skip = 0;
        for (int e = 0; e < nex; e++) skip |= ex[e] == i;
        if (!skip) {
            s[m] = er_exact_dot(q, items + (size_t)i * D, D);
            ix[m++] = i;
        }
    }
    int n = k < m ? k : m;
    if (n > 0) REQUIRE(er_topk_select_naive(s, m, n, out) == 0);
    for (int j = 0; j < n; j++) h[j] = (er_hit){ix[out[j]], s[out[j]]};
    free(s), free(ix), free(out);
    return n;
}

/* er_recommend on the packed copy of items equals exact_scan for every query, with 1 and 2
 * threads, as one batch and one query at a time; returns the number of queries that differ */
static int same_as_exact_scan(const float *items, int I, int D, const float *q, int Q, int k, const er_exclude *ex) {
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, I, D) == 0);
    er_hit *h = malloc(sizeof(er_hit) * (size_t)Q * k), *ref = malloc(sizeof(er_hit) * (size_t)k);
    int *nh = malloc(sizeof(int) * (size_t)Q), differ = 0;
    er_rec_scratch s = {0};
    for (int pass = 0; pass < 4; pass++) {
        int threads = 1 + pass % 2;
        if (pass < 2) REQUIRE(er_recommend(&b, q, Q, k, ex, threads, &s, h, nh) == 0);
        else
            for (int i = 0; i < Q; i++)
                REQUIRE(er_recommend(&b, q + (size_t)i * D, 1, k, ex ? ex + i : NULL, threads, NULL, h + (size_t)i * k, nh + i) == 0);
        for (int i = 0; i < Q; i++) {
            int n = exact_scan(items, I, D, q + (size_t)i * D, k, ex ? ex[i].rows : NULL, ex ? ex[i].n : 0, ref);
            if (n != nh[i] || memcmp(ref, h + (size_t)i * k, sizeof(er_hit) * (size_t)n)) differ++;
        }
    }
    er_rec_scratch_free(&s);
    er_bf16_items_free(&b);
    free(h), free(ref), free(nh);
    return differ;
}

static void rand_unit(er_rng *r, float *x, size_t n, int D) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < D; d++) {
            x[i * D + d] = (float)(er_rng_uniform(r) * 2 - 1);
            s += (double)x[i * D + d] * x[i * D + d];
        }
        for (int d = 0; d < D; d++) x[i * D + d] /= (float)sqrt(s);
    }
}

TEST(topk_equals_brute_force) {
    er_rng r;
    er_rng_seed(&r, 7);
    const int I = 5000, D = 48, Q = 70; /* Q > one block of 64 queries; I > one panel */
    float *items = malloc(sizeof(float) * I * D), *q = malloc(sizeof(float) * Q * D);
    rand_unit(&r, items, I, D);
    rand_unit(&r, q, Q, D);
    int k = 20;
    er_hit *h1 = malloc(sizeof(er_hit) * Q * k), *h2 = malloc(sizeof(er_hit) * Q * k);
    int n1[Q], n2[Q];
    er_exclude ex[Q];
    int32_t exrows[Q][5];
    for (int i = 0; i < Q; i++) {
        for (int e = 0; e < 5; e++) exrows[i][e] = (int32_t)(er_rng_next(&r) % (I + 3)) - 1; /* some out of range */
        ex[i] = (er_exclude){exrows[i], i % 3 ? 5 : 0};
    }
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, I, D) == 0);
    REQUIRE(er_recommend(&b, q, Q, k, ex, 1, NULL, h1, n1) == 0);
    er_rec_scratch s = {0};
    REQUIRE(er_recommend(&b, q, Q, k, ex, 2, &s, h2, n2) == 0);
    int bad = 0, same = 1;
    for (int i = 0; i < Q; i++) {
        bad += !check_topk(items, I, D, q + (size_t)i * D, k, ex[i].rows, ex[i].n, h1 + i * k, n1[i]);
        same &= n1[i] == n2[i] && !memcmp(h1 + i * k, h2 + i * k, sizeof(er_hit) * n1[i]);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(same); /* thread count does not change the result */
    CHECK_EQ_INT(same_as_exact_scan(items, I, D, q, Q, k, ex), 0);
    /* the excluded best item of query 1 is really gone: exclude its own top hit */
    int32_t top = h1[1 * k].row;
    er_exclude one = {&top, 1};
    REQUIRE(er_recommend(&b, q + D, 1, k, &one, 2, &s, h2, n2) == 0);
    CHECK(h2[0].row == h1[1 * k + 1].row && n2[0] == k);
    er_bf16_items_free(&b);
    /* k above the number of candidates: every remaining item, in order */
    int32_t all_but[3] = {0, 1, 2};
    er_exclude ab = {all_but, 3};
    er_hit hs[8];
    int ns;
    REQUIRE(er_bf16_items_init(&b, items, 5, D) == 0);
    REQUIRE(er_recommend(&b, q, 1, 8, &ab, 1, NULL, hs, &ns) == 0);
    CHECK_EQ_INT(ns, 2);
    CHECK(check_topk(items, 5, D, q, 8, all_but, 3, hs, ns));
    er_bf16_items_free(&b);
    /* an empty catalogue */
    REQUIRE(er_bf16_items_init(&b, items, 0, D) == 0);
    REQUIRE(er_recommend(&b, q, 1, 8, NULL, 1, NULL, hs, &ns) == 0);
    CHECK_EQ_INT(ns, 0);
    er_bf16_items_free(&b);
    /* a query that is not finite: an error, not a ranking */
    REQUIRE(er_bf16_items_init(&b, items, I, D) == 0);
    q[3] = NAN;
    CHECK(check_failed_with(er_recommend(&b, q, 2, k, NULL, 2, &s, h1, n1), EASYREC_ERR_ARG, "query 0"));
    er_bf16_items_free(&b);
    er_rec_scratch_free(&s);
    free(items);
    free(q);
    free(h1);
    free(h2);
}

/* threads asked for but not started: inside a caller's parallel region with nesting off, or
 * with dynamic teams, er_recommend's regions get fewer threads than asked (here one) and must
 * still scan every panel. The scratch is filled first by other queries, so a panel left
 * unscanned would rank their stale scores. */
TEST(fewer_threads_than_asked) {
#ifndef _OPENMP
    SKIP("built without OpenMP");
#else
    er_rng r;
    er_rng_seed(&r, 5);
    const int I = 3000, D = 32, Q = 3, k = 10; /* 94 panels */
    float *items = malloc(sizeof(float) * I * D), *q = malloc(sizeof(float) * Q * D), *neg = malloc(sizeof(float) * Q * D);
    rand_unit(&r, items, I, D);
    rand_unit(&r, q, Q, D);
    for (int i = 0; i < Q * D; i++) neg[i] = -q[i];
    er_hit ref[Q * 10], h[Q * 10];
    int nref[Q], nh[Q], differ = 0;
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, I, D) == 0);
    for (int i = 0; i < Q; i++) nref[i] = exact_scan(items, I, D, q + (size_t)i * D, k, NULL, 0, ref + i * k);
    er_rec_scratch s = {0};
    int levels = omp_get_max_active_levels(), dyn = omp_get_dynamic();
    for (int way = 0; way < 2; way++) {
        REQUIRE(er_recommend(&b, neg, Q, k, NULL, 4, &s, h, nh) == 0); /* stale scores: the opposite ranking */
        int rc = -1;
        if (way == 0) {
            omp_set_max_active_levels(1);
#pragma omp parallel num_threads(2)
            {
#pragma omp single
                rc = er_recommend(&b, q, Q, k, NULL, 4, &s, h, nh); /* nested: a team of one */
            }
            omp_set_max_active_levels(levels);
        } else {
            omp_set_dynamic(1);
            rc = er_recommend(&b, q, Q, k, NULL, 4, &s, h, nh);
            omp_set_dynamic(dyn);
        }
        REQUIRE(rc == 0);
        for (int i = 0; i < Q; i++)
            if (nh[i] != nref[i] || memcmp(ref + i * k, h + i * k, sizeof(er_hit) * (size_t)k)) differ++;
    }
    CHECK_EQ_INT(differ, 0);
    er_rec_scratch_free(&s);
    er_bf16_items_free(&b);
    free(items), free(q), free(neg);
#endif
}

/* near-ties the bf16 scan cannot see: groups of items equal up to a few fp32 ulps, exact
 * duplicates (ties go by row), and queries close to the groups; exclusions that remove part of
 * a group. Bit for bit the fp32 exact scan. */
TEST(adversarial_near_ties) {
    er_rng r;
    er_rng_seed(&r, 11);
    const int I = 3000, D = 96, Q = 67, G = 6;
    float *items = malloc(sizeof(float) * I * D), *q = malloc(sizeof(float) * Q * D), *base = malloc(sizeof(float) * G * D);
    rand_unit(&r, base, G, D);
    for (int i = 0; i < I; i++) {
        float *v = items + (size_t)i * D;
        memcpy(v, base + (size_t)(i % G) * D, sizeof(float) * D);
        int kind = (int)(er_rng_next(&r) % 4);
        if (kind == 1) /* one ulp here and there */
            for (int d = 0; d < D; d++) v[d] = nextafterf(v[d], er_rng_next(&r) % 2 ? 2.0f : -2.0f);
        else if (kind == 2) /* below bf16 resolution, above fp32's */
            v[er_rng_next(&r) % D] *= 1.0f + 1e-4f * (float)(er_rng_uniform(&r) * 2 - 1);
        else if (kind == 3) /* a different item altogether */
            rand_unit(&r, v, 1, D);
    }
    for (int i = 0; i < Q; i++) {
        for (int d = 0; d < D; d++) q[(size_t)i * D + d] = base[(size_t)(i % G) * D + d] + 0.02f * (float)(er_rng_uniform(&r) * 2 - 1);
        if (i % 5 == 0) memcpy(q + (size_t)i * D, base + (size_t)(i % G) * D, sizeof(float) * D); /* exactly a group's base */
    }
    er_exclude ex[67];
    int32_t rows[67][8];
    for (int i = 0; i < Q; i++) {
        for (int e = 0; e < 8; e++) rows[i][e] = (int32_t)((i % G) + G * (int)(er_rng_next(&r) % 40));
        ex[i] = (er_exclude){rows[i], i % 2 ? 8 : 0};
    }
    static const int ks[] = {1, 20, 100};
    for (int c = 0; c < 3; c++) CHECK_EQ_INT(same_as_exact_scan(items, I, D, q, Q, ks[c], ex), 0);
    free(items), free(q), free(base);
}

TEST(ties_by_row) {
    float items[4 * 2] = {1, 0, 0, 1, 1, 0, 1, 0}, q[2] = {1, 0};
    er_hit h[4];
    int n;
    er_bf16_items b;
    REQUIRE(er_bf16_items_init(&b, items, 4, 2) == 0);
    REQUIRE(er_recommend(&b, q, 1, 4, NULL, 1, NULL, h, &n) == 0);
    CHECK(n == 4 && h[0].row == 0 && h[1].row == 2 && h[2].row == 3 && h[3].row == 1);
    er_bf16_items_free(&b);
}

/* the catalog's scan copy follows puts (new ids past the first allocation, replaced ids) and
 * removes (the last row moving into the hole): recommendations equal the exact scan of the
 * catalog's embeddings after every round; a non-finite embedding is refused, nothing changed */
TEST(catalog_scan_in_step) {
    er_rng r;
    er_rng_seed(&r, 3);
    const int D = 24, Q = 5, k = 9;
    er_catalog c;
    REQUIRE(er_catalog_init(&c) == 0);
    REQUIRE(er_catalog_set_dim(&c, D) == 0);
    float e[24], *q = malloc(sizeof(float) * Q * D);
    char id[32];
    for (int i = 0; i < 700; i++) {
        rand_unit(&r, e, 1, D);
        snprintf(id, sizeof id, "i%d", i);
        REQUIRE(er_catalog_put(&c, id, 0, "t", 1, NULL, e) == i);
    }
    REQUIRE(er_catalog_index(&c) == 0);
    rand_unit(&r, q, Q, D);
    er_hit h[5 * 9], ref[9];
    int nh[5], differ = 0, next = 700;
    for (int round = 0; round < 8; round++) {
        for (int op = 0; op < 150; op++) {
            uint64_t x = er_rng_next(&r);
            if (x % 3 == 0 && c.n > 1) { /* remove a random item */
                int32_t row = (int32_t)(x / 3 % (uint64_t)c.n);
                REQUIRE(er_catalog_remove(&c, c.id[row], strlen(c.id[row])) == 0);
            } else { /* a new item, or a new embedding for an old one; some aimed at a query */
                rand_unit(&r, e, 1, D);
                if (x % 7 == 0) memcpy(e, q + (size_t)(x % Q) * D, sizeof e);
                if (x % 3 == 1 || c.n == 0) snprintf(id, sizeof id, "i%d", next++);
                else snprintf(id, sizeof id, "%s", c.id[x / 3 % (uint64_t)c.n]);
                REQUIRE(er_catalog_put(&c, id, 0, "t", 1, NULL, e) >= 0);
            }
        }
        CHECK(c.scan.n == c.n && c.scan.f32 == c.emb);
        REQUIRE(er_recommend(&c.scan, q, Q, k, NULL, 2, NULL, h, nh) == 0);
        for (int i = 0; i < Q; i++) {
            int n = exact_scan(c.emb, c.n, D, q + (size_t)i * D, k, NULL, 0, ref);
            differ += n != nh[i] || memcmp(ref, h + (size_t)i * k, sizeof(er_hit) * (size_t)n);
        }
    }
    CHECK(next > 1024); /* the catalog (and its copy) grew past the first allocation */
    CHECK_EQ_INT(differ, 0);
    int32_t n0 = c.n;
    e[2] = NAN;
    CHECK(check_failed_with(er_catalog_put(&c, "bad", 0, "t", 1, NULL, e), EASYREC_ERR_ARG, "item 'bad': the embedding"));
    CHECK(c.n == n0 && c.scan.n == n0 && er_catalog_find(&c, "bad", 3) == -1);
    er_catalog_free(&c);
    free(q);
}

static const char *tmp(void) { return check_tmpdir("rec"); }

static void write_file(const char *name, const char *text) { check_write_file(tmp(), name, text); }

static const char items_jsonl[] =
    "{\"item_id\": \"sku-1\", \"profile\": \"A classic wooden chess set.\", \"price\": 30, \"tags\": [\"game\"]}\n"
    "{\"item_id\": 7, \"profile\": \"Running shoes for long distance road races.\"}\n"
    "\n"
    "{\"item_id\": \"sku-3\", \"profile\": \"An acoustic guitar for beginners.\", \"brand\": \"X\"}\n"
    "{\"item_id\": 9, \"profile\": \"A cookbook of quick vegetarian dinners.\"}\n";

TEST(catalog) {
    write_file("items.jsonl", items_jsonl);
    char p[256];
    snprintf(p, sizeof p, "%s/items.jsonl", tmp());
    er_catalog c;
    REQUIRE(er_catalog_init(&c) == 0);
    REQUIRE(er_catalog_load(p, &c) == 0);
    CHECK_EQ_INT(c.n, 4);
    CHECK(er_catalog_find(&c, "7", 1) == 1 && c.id_int[1] && !c.id_int[0]);
    CHECK(!strcmp(c.meta[0], "{\"price\":30,\"tags\":[\"game\"]}") && !strcmp(c.meta[1], "{}"));
    REQUIRE(er_catalog_set_dim(&c, 2) == 0);
    float e[2] = {1, 2};
    CHECK(er_catalog_put(&c, "new", 0, "x", 1, NULL, e) == 4);
    CHECK(er_catalog_remove(&c, "sku-1", 5) == 0);
    CHECK(c.n == 4 && er_catalog_find(&c, "new", 3) == 0 && c.emb[1] == 2 && er_catalog_find(&c, "sku-1", 5) == -1);
    CHECK(check_failed_with(er_catalog_remove(&c, "sku-1", 5), EASYREC_ERR_ARG, "no item 'sku-1'"));
    CHECK(er_catalog_put(&c, "sku-1", 0, "back", 4, NULL, e) == 4);
    er_catalog_free(&c);
    CHECK(er_id_is_int("12", 2) && er_id_is_int("-3", 2) && er_id_is_int("0", 1));
    CHECK(!er_id_is_int("012", 3) && !er_id_is_int("-0", 2) && !er_id_is_int("1e3", 3) && !er_id_is_int("", 0));
    /* bad sources name file and line */
    static const struct {
        const char *text, *msg;
    } bad[] = {{"{\"item_id\": 1}\n", ":1: missing string field \"profile\""},
               {"{\"profile\": \"a\"}\n", ":1: \"item_id\" must be"},
               {"{\"item_id\": 1, \"profile\": \"a\"}\n{\"item_id\": \"1\", \"profile\": \"b\"}\n", ":2: item_id 1 appears twice"},
               {"{\"item_id\": 1.5, \"profile\": \"a\"}\n", ":1: \"item_id\" must be"},
               {"[1]\n", ":1: not a JSON object"},
               {"{\"item_id\": 1, \"profile\": \"a\"\n", ":1: "}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file("bad.jsonl", bad[i].text);
        snprintf(p, sizeof p, "%s/bad.jsonl", tmp());
        REQUIRE(er_catalog_init(&c) == 0);
        CHECK(check_failed_with(er_catalog_load(p, &c), EASYREC_ERR_FORMAT, bad[i].msg));
        er_catalog_free(&c);
    }
}

/* ---- the command ---------------------------------------------------------------------- */

static json_t *read_jsonl(const char *path, int *n) {
    json_t *arr = json_array();
    char *buf;
    size_t len;
    *n = 0;
    if (er_read_file(path, &buf, &len)) return arr;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        if (o) json_array_append_new(arr, o);
        (*n)++;
    }
    free(buf);
    return arr;
}

/* `easyrec encode --text` of t/NAME.txt at precision into a malloc'd (rows, D) matrix */
static float *encode_txt(const char *t, const char *name, const char *precision, int *D) {
    REQUIRE(check_sh("%s encode --model %s/model --text --input %s/%s.txt --output %s/%s-%s.npy --quiet --precision %s",
                     check_bin(), t, t, name, t, name, precision, precision) == 0);
    char p[256];
    float *e = NULL;
    int nd;
    int64_t sh[8];
    snprintf(p, sizeof p, "%s/%s-%s.npy", t, name, precision);
    REQUIRE(er_npy_read_f32(p, &e, &nd, sh) == 0 && nd == 2);
    *D = (int)sh[1];
    return e;
}

/* Compare `easyrec recommend`'s JSON lines at path (users alice and 42 of users.jsonl, k 3,
 * sku-3 excluded for alice) with brute force over the embeddings I (4, D) and U (2, D).
 * Returns the number of users whose list is not a correct top-3 (scores within 1e-4); *dev
 * gets the largest |score - brute-force dot product| over every listed item. */
static int recs_vs(const char *path, const float *I, const float *U, int D, double *dev) {
    static const char *ids[] = {"sku-1", "7", "sku-3", "9"};
    int n, bad = 0;
    json_t *recs = read_jsonl(path, &n);
    *dev = 0;
    REQUIRE(n == 2 && json_array_size(recs) == 2);
    for (int u = 0; u < 2; u++) {
        json_t *o = json_array_get(recs, u), *items = json_object_get(o, "items");
        CHECK(u ? json_integer_value(json_object_get(o, "user_id")) == 42
                : !strcmp(json_string_value(json_object_get(o, "user_id")), "alice"));
        er_hit h[4];
        int nh = (int)json_array_size(items);
        REQUIRE(nh <= 4);
        for (int j = 0; j < nh; j++) {
            json_t *it = json_array_get(items, j), *id = json_object_get(it, "item_id");
            char buf[32];
            const char *s = json_is_integer(id) ? (snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(id)), buf)
                                                : json_string_value(id);
            int row = -1;
            for (int r = 0; r < 4; r++)
                if (s && !strcmp(ids[r], s)) row = r;
            REQUIRE(row >= 0);
            h[j] = (er_hit){row, (float)json_real_value(json_object_get(it, "score"))};
            *dev = fmax(*dev, fabs(h[j].score - dotd(U + (size_t)u * D, I + (size_t)row * D, D)));
            CHECK(json_is_string(json_object_get(it, "profile")));
            if (row == 0) CHECK(json_integer_value(json_object_get(it, "price")) == 30);
            if (row == 2) CHECK(!strcmp(json_string_value(json_object_get(it, "brand")), "X"));
        }
        int32_t ex = 2;
        bad += !check_topk(I, 4, D, U + (size_t)u * D, 3, &ex, u == 0, h, nh);
    }
    json_decref(recs);
    return bad;
}

static void command_inputs(const char *t) {
    static int done;
    if (done) return;
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 1 --hidden 32 --heads 2 "
                     "--ffn 64 --seed 5 2>/dev/null",
                     check_bin(), t) == 0);
    write_file("items.jsonl", items_jsonl);
    write_file("users.jsonl", "{\"user_id\": \"alice\", \"profile\": \"Plays chess and guitar.\", \"exclude\": [\"sku-3\"]}\n"
                              "{\"user_id\": 42, \"profile\": \"Runs marathons and cooks.\"}\n");
    /* items and users as plain text lines for `easyrec encode --text` */
    write_file("items.txt", "A classic wooden chess set.\nRunning shoes for long distance road races.\n"
                            "An acoustic guitar for beginners.\nA cookbook of quick vegetarian dinners.\n");
    write_file("users.txt", "Plays chess and guitar.\nRuns marathons and cooks.\n");
    done = 1;
}

TEST(command_end_to_end) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for a random model");
    const char *t = tmp();
    command_inputs(t);
    REQUIRE(check_sh("%s recommend --model %s/model --catalog %s/items.jsonl --profiles %s/users.jsonl --k 3 "
                     "--output %s/recs.jsonl --threads 2 2>/dev/null",
                     check_bin(), t, t, t, t) == 0);
    int D, D2;
    float *I = encode_txt(t, "items", "fp32", &D), *U = encode_txt(t, "users", "fp32", &D2);
    REQUIRE(D == D2);
    char p[256];
    double dev;
    CHECK_EQ_INT(recs_vs((snprintf(p, sizeof p, "%s/recs.jsonl", t), p), I, U, D, &dev), 0);
    CHECK(dev < 1e-6);
    free(I);
    free(U);
    json_t *recs;
    int n;
    /* --text, and a dataset with --data/--exclude-train (the tiny eval fixture) */
    CHECK(check_sh("%s recommend --model %s/model --catalog %s/items.jsonl --text 'chess' --k 1 --quiet | "
                   "grep -q '\"text\":\"chess\",\"items\":\\[{\"item_id\":'",
                   check_bin(), t, t) == 0);
    const char *tiny = ER_FIXTURES "/eval/tiny";
    REQUIRE(check_sh("%s recommend --model %s/model --catalog %s --data %s --exclude-train --k 8 --quiet --output %s/d.jsonl",
                     check_bin(), t, tiny, tiny, t) == 0);
    er_dataset ds;
    REQUIRE(er_dataset_open_dir(tiny, &ds) == 0);
    recs = read_jsonl((snprintf(p, sizeof p, "%s/d.jsonl", t), p), &n);
    int32_t *rows, nr;
    REQUIRE(er_csr_nonempty_rows(&ds.split[ER_SPLIT_TST], &rows, &nr) == 0);
    CHECK_EQ_INT(n, nr);
    int leaked = 0, counts_ok = 1;
    for (int i = 0; i < n && i < nr; i++) {
        json_t *o = json_array_get(recs, i), *items = json_object_get(o, "items");
        int u = (int)json_integer_value(json_object_get(o, "user_id"));
        CHECK_EQ_INT(u, rows[i]);
        counts_ok &= (int64_t)json_array_size(items) == ds.n_items - csr_row_len(&ds.split[ER_SPLIT_TRN], u);
        for (size_t j = 0; j < json_array_size(items); j++)
            leaked += er_csr_has(&ds.split[ER_SPLIT_TRN], u, (int32_t)json_integer_value(json_object_get(json_array_get(items, j), "item_id")));
    }
    CHECK(counts_ok);
    CHECK_EQ_INT(leaked, 0);
    free(rows);
    json_decref(recs);
    er_dataset_free(&ds);
    /* usage errors */
    CHECK(check_sh("%s recommend --model %s/model --catalog %s/items.jsonl 2>/dev/null", check_bin(), t, t) == 2);
    CHECK(check_sh("%s recommend --model %s/model --catalog %s/items.jsonl --text a --exclude-train 2>&1 | grep -q 'needs a training matrix'",
                   check_bin(), t, t) == 0);
    CHECK(check_sh("%s recommend --model %s/model --catalog %s/nope.jsonl --text a 2>&1 | grep -q 'nope.jsonl'", check_bin(), t, t) == 0);
}

/* --precision (and EASYREC_PRECISION): the lists are brute force over `easyrec encode`'s
 * embeddings at the same precision, and measurably not the fp32 ones */
TEST(command_precision) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for a random model");
    const char *t = tmp();
    command_inputs(t);
    int D, D2;
    float *I32 = encode_txt(t, "items", "fp32", &D), *U32 = encode_txt(t, "users", "fp32", &D2);
    REQUIRE(D == D2);
    static const char *how[] = {"--precision int8", "--precision bf16", "EASYREC_PRECISION=bf16"};
    for (int i = 0; i < 3; i++) {
        const char *prec = strstr(how[i], "int8") ? "int8" : "bf16";
        int env = how[i][0] == 'E';
        REQUIRE(check_sh("%s %s recommend --model %s/model --catalog %s/items.jsonl --profiles %s/users.jsonl --k 3 "
                         "--output %s/recs-%d.jsonl --threads 2 --quiet %s",
                         env ? how[i] : "", check_bin(), t, t, t, t, i, env ? "" : how[i]) == 0);
        float *I = encode_txt(t, "items", prec, &D2), *U = encode_txt(t, "users", prec, &D2);
        char p[256];
        snprintf(p, sizeof p, "%s/recs-%d.jsonl", t, i);
        double dev, dev32;
        CHECK_EQ_INT(recs_vs(p, I, U, D, &dev), 0);
        recs_vs(p, I32, U32, D, &dev32);
        CHECK(dev < 1e-6);   /* the same embeddings as encode at this precision */
        CHECK(dev32 > 1e-6); /* and not fp32's: the precision took effect */
        if (dev >= 1e-6 || dev32 <= 1e-6) printf("    %s: |score - dot| %g at %s, %g at fp32\n", how[i], dev, prec, dev32);
        free(I);
        free(U);
    }
    free(I32);
    free(U32);
    CHECK(check_sh("%s recommend --model %s/model --catalog %s/items.jsonl --text a --precision fp16 2>&1 | "
                   "grep -q \"precision must be fp32, bf16 or int8, got 'fp16'\"",
                   check_bin(), t, t) == 0);
    CHECK(check_sh("EASYREC_PRECISION=x %s recommend --model %s/model --catalog %s/items.jsonl --text a 2>/dev/null",
                   check_bin(), t, t) == 2);
}

CHECK_MAIN(CASE(topk_equals_brute_force), CASE(fewer_threads_than_asked), CASE(adversarial_near_ties), CASE(ties_by_row),
           CASE(catalog), CASE(catalog_scan_in_step), CASE(command_end_to_end), CASE(command_precision))
