/* test_demo.c — `make demo` in its reduced mode (DEMO_QUICK=1: tiny catalog, one short
 * epoch): tools/demo.sh runs end to end with the binary under test, and what it writes
 * exists and parses — the catalog's pickles, the evaluation JSON (four scorers), the
 * recommendation JSON lines before/after the preference shift, shift.json, and the t-SNE
 * picture as PNG and SVG. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/err.h"
#include "io/sparse_pickle.h"

static char dir[64];

static char *path(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

TEST(test_quick_demo) {
    strcpy(dir, "/tmp/easyrec-demo-XXXXXX");
    REQUIRE(mkdtemp(dir));
    int rc = check_sh("DEMO_QUICK=1 DEMO_OUT=%s EASYREC_BIN=%s tools/demo.sh > %s 2>&1", dir, check_bin(),
                      path("log.txt"));
    char *log = NULL;
    size_t n;
    if (rc) {
        if (er_read_file(path("log.txt"), &log, &n) == 0) printf("    demo output:\n%s\n", log);
        free(log);
    }
    REQUIRE(rc == 0);
    REQUIRE(er_read_file(path("log.txt"), &log, &n) == 0);
    CHECK(strstr(log, "[6/6,") && strstr(log, "Summary"));
    free(log);
    /* catalog */
    er_sparse m;
    REQUIRE(er_sparse_pickle_load(path("catalog/travel/tst_mat.pkl"), &m) == 0);
    CHECK(m.nnz > 0);
    er_sparse_free(&m);
    json_error_t je;
    json_t *j = json_load_file(path("catalog/shift.json"), 0, &je);
    CHECK(j && json_is_string(json_object_get(j, "before")) && json_is_string(json_object_get(j, "after")));
    json_decref(j);
    /* evaluation JSON of each scorer */
    static const char *const scorers[] = {"trained", "untrained", "bm25", "popularity"};
    for (int s = 0; s < 4; s++) {
        char name[64];
        snprintf(name, sizeof name, "eval_heldout_%s.json", scorers[s]);
        j = json_load_file(path(name), 0, &je);
        if (!j) CHECK_FAILMSG("%s: %s", name, je.text);
        json_decref(j);
    }
    /* recommendations: JSON lines with 10 items each */
    for (int w = 0; w < 2; w++) {
        const char *name = w ? "recs_after.jsonl" : "recs_before.jsonl";
        char *txt = NULL;
        REQUIRE(er_read_file(path(name), &txt, &n) == 0);
        int lines = 0;
        for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n"), lines++) {
            json_t *r = json_loads(line, 0, &je);
            CHECK(r && json_array_size(json_object_get(r, "items")) == 10);
            json_decref(r);
        }
        CHECK_EQ_INT(lines, 1);
        free(txt);
    }
    /* the picture */
    char *png = NULL, *svg = NULL;
    REQUIRE(er_read_file(path("tsne.png"), &png, &n) == 0);
    CHECK(n > 1000 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8));
    REQUIRE(er_read_file(path("tsne.svg"), &svg, &n) == 0);
    CHECK(!strncmp(svg, "<?xml", 5) && strstr(svg, "</svg>") && strstr(svg, "user 0 after") && strstr(svg, "swimming"));
    free(png);
    free(svg);
    check_sh("rm -rf %s", dir);
}

CHECK_MAIN(CASE(test_quick_demo))
