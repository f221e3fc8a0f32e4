/* test_synth.c — the built-in catalog generator (src/synth/):
 * same seed -> byte-identical files, another seed -> different ones; the splits read back
 * with the release-layout reader, are disjoint and cover every user; profile files cover
 * every id; the statistics make sense (a user's words are found in their own items more
 * often than in another user's); `easyrec catalog` runs and rejects bad options. The pickle
 * writer itself is tested in its own test. */
#include <stdlib.h>
#include <string.h>

#include "synth/synth.h"
#include "check.h"
#include "core/err.h"
#include "data/dataset.h"
#include "io/sparse_pickle.h"

static const char *tmp(void) { return check_tmpdir("catalog"); }

static const char *const files[] = {
    "trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl", "item_profile.json", "user_profile.json",
    "diverse_profile/diverse_item_profile_0.json", "diverse_profile/diverse_item_profile_2.json",
    "diverse_profile/diverse_user_profile_1.json", "item_labels.txt", "user_labels.txt", "profiles.txt", NULL};

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int ok = er_read_file(a, &x, &nx) == 0 && er_read_file(b, &y, &ny) == 0 && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return ok;
}

static int gen(const char *sub, uint64_t seed, er_synth_stats *st) {
    er_synth_opts o;
    er_synth_defaults(&o);
    o.seed = seed;
    o.users = 40;
    o.items_per_interest = 8;
    o.domains = "sports,books";
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", tmp(), sub);
    return er_synth_write(dir, &o, st);
}

TEST(test_deterministic) {
    er_synth_stats a, b, c;
    REQUIRE(gen("a", 7, &a) == 0);
    REQUIRE(gen("b", 7, &b) == 0);
    REQUIRE(gen("c", 8, &c) == 0);
    CHECK_EQ_INT(a.n_domains, 2);
    CHECK_EQ_INT(a.shift_user, 0);
    int differ = 0;
    for (int d = 0; d < 2; d++)
        for (int i = 0; files[i]; i++) {
            char pa[512], pb[512], pc[512];
            const char *dom = d ? "books" : "sports";
            snprintf(pa, sizeof pa, "%s/a/%s/%s", tmp(), dom, files[i]);
            snprintf(pb, sizeof pb, "%s/b/%s/%s", tmp(), dom, files[i]);
            snprintf(pc, sizeof pc, "%s/c/%s/%s", tmp(), dom, files[i]);
            if (!same_file(pa, pb)) CHECK_FAILMSG("%s differs between two runs with seed 7", pa);
            differ += !same_file(pa, pc);
        }
    CHECK(differ >= 18); /* another seed changes (nearly) everything */
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/a/shift.json", tmp());
    snprintf(pb, sizeof pb, "%s/b/shift.json", tmp());
    CHECK(same_file(pa, pb));
}

TEST(test_layout_and_splits) {
    er_synth_stats st;
    REQUIRE(gen("d", 2024, &st) == 0);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/d/sports", tmp());
    er_dataset ds;
    REQUIRE(er_dataset_open_dir(dir, &ds) == 0);
    CHECK_EQ_INT(ds.n_users, 40);
    CHECK_EQ_INT(ds.n_items, 40);
    CHECK_EQ_INT(ds.n_sets, 4);
    for (int s = 0; s < ds.n_sets; s++) {
        er_texts t;
        REQUIRE(er_dataset_read_profiles(&ds, ds.sets[s].item_path, 0, &t) == 0);
        er_texts_free(&t);
        REQUIRE(er_dataset_read_profiles(&ds, ds.sets[s].user_path, 1, &t) == 0);
        er_texts_free(&t);
    }
    er_dataset_free(&ds);
    /* splits: disjoint, every user has >= 1 test and >= 3 training items */
    er_sparse m[3];
    static const char *const names[3] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"};
    static unsigned char seen[40][40];
    memset(seen, 0, sizeof seen);
    int trn_per_user[40] = {0}, tst_per_user[40] = {0};
    long total = 0;
    for (int s = 0; s < 3; s++) {
        char p[300];
        snprintf(p, sizeof p, "%s/%s", dir, names[s]);
        REQUIRE(er_sparse_pickle_load(p, &m[s]) == 0);
        CHECK_EQ_INT(m[s].nrows, 40);
        CHECK_EQ_INT(m[s].ncols, 40);
        for (size_t k = 0; k < m[s].nnz; k++) {
            int u = m[s].row[k], i = m[s].col[k];
            if (seen[u][i]) CHECK_FAILMSG("user %d item %d in two splits", u, i);
            seen[u][i] = 1;
            CHECK(m[s].val[k] == 1.0f);
            if (s == 0) trn_per_user[u]++;
            if (s == 2) tst_per_user[u]++;
        }
        total += (long)m[s].nnz;
        er_sparse_free(&m[s]);
    }
    CHECK_EQ_INT(total, st.d[0].interactions);
    for (int u = 0; u < 40; u++) {
        CHECK(trn_per_user[u] >= 3);
        CHECK(tst_per_user[u] >= 1);
    }
    for (int d = 0; d < st.n_domains; d++) {
        CHECK(st.d[d].min_inter >= 4 && st.d[d].max_inter <= 25);
        CHECK(st.d[d].user_words > 8 && st.d[d].item_words > 8);
        CHECK(st.d[d].overlap_own > st.d[d].overlap_other);
        CHECK(st.d[d].overlap_own < 0.9); /* not one template: users and items share meaning more than words */
    }
}

TEST(test_cli) {
    CHECK_EQ_INT(check_sh("%s catalog --output %s/e --users 10 --items-per-interest 4 --domains sports > %s/out.txt",
                          check_bin(), tmp(), tmp()),
                 0);
    char p[256], *txt = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/out.txt", tmp());
    REQUIRE(er_read_file(p, &txt, &n) == 0);
    CHECK(strstr(txt, "sports") && strstr(txt, "overlap"));
    free(txt);
    snprintf(p, sizeof p, "%s/e/shift.json", tmp());
    CHECK(er_file_exists(p));
    CHECK_EQ_INT(check_sh("%s catalog --output %s/f --domains sports,nope 2>/dev/null", check_bin(), tmp()), 1);
    CHECK_EQ_INT(check_sh("%s catalog --output %s/f --users 1 2>/dev/null", check_bin(), tmp()), 2);
    check_sh("rm -rf %s", tmp());
}

CHECK_MAIN(CASE(test_deterministic), CASE(test_layout_and_splits), CASE(test_cli))
