/* cmd_data.c — `easyrec data import`: raw interactions (CSV/TSV/JSON lines) → a dataset in
 * the EasyRec release layout (src/data/import.h, docs/profile.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "data/import.h"
#include "easyrec.h"

static int parse_split(const char *s, double p[3]) {
    char *end;
    for (int k = 0; k < 3; k++) {
        p[k] = strtod(s, &end);
        if (end == s || (k < 2 && *end != ',') || (k == 2 && *end)) return -1;
        s = end + 1;
    }
    return 0;
}

static int data_import(int argc, char **argv) {
    const char *inter = NULL, *items = NULL, *output = NULL, *split = "0.8,0.1,0.1";
    double min_rating = 0;
    int k_core = 0, by = 0, force = 0;
    int64_t seed = 2024;
    cli_opt opts[] = {
        {.name = "interactions", .type = OPT_STR, .dst = &inter, .meta = "FILE", .help = "user, item[, rating][, timestamp]: CSV, TSV, \"::\" or JSON lines", .required = 1},
        {.name = "items", .type = OPT_STR, .dst = &items, .meta = "META.jsonl", .help = "item metadata, JSON lines {\"item_id\": original id, \"title\": ..., ...} (default none)"},
        {.name = "output", .type = OPT_STR, .dst = &output, .meta = "DIR", .help = "dataset directory to create (release layout)", .required = 1},
        {.name = "min-rating", .type = OPT_DOUBLE, .dst = &min_rating, .meta = "R", .help = "keep interactions rated >= R (default all)", .min = -1e300, .max = 1e300},
        {.name = "k-core", .type = OPT_INT, .dst = &k_core, .meta = "K", .help = "iterated k-core: every user and item keeps >= K interactions (0: off)", .min = 0, .max = 1 << 30},
        {.name = "split", .type = OPT_STR, .dst = &split, .meta = "TRN,VAL,TST", .help = "split proportions"},
        {.name = "split-by", .type = OPT_CHOICE, .dst = &by, .meta = "HOW", .help = "random: seeded per user; time: each user's latest go to val/test", .choices = "random|time"},
        {.name = "seed", .type = OPT_I64, .dst = &seed, .meta = "S", .help = "seed of the random split", .min = 0, .max = 9007199254740991.0},
        {.name = "force", .type = OPT_FLAG, .dst = &force, .meta = NULL, .help = "write into an existing non-empty directory"},
        {0},
    };
    cli_cmd cmd = {"data import", "--interactions FILE --output DIR [options]",
                   "Import raw interactions: rating filter, duplicates dropped, iterated k-core, dense ids in\n"
                   "original-id order (user_id_map.tsv, item_id_map.tsv), per-user split into trn/val/tst_mat.pkl\n"
                   "(scipy coo_matrix pickles) and item_meta.json for `easyrec profile` (docs/profile.md).",
                   opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    er_import_opts o = {.interactions = inter, .items = items, .output = output, .min_rating = min_rating,
                        .has_min_rating = opt_find(&cmd, "min-rating")->seen, .k_core = k_core, .by_time = by == 1,
                        .seed = (uint64_t)seed, .force = force};
    if (parse_split(split, o.p)) return opt_usage_error(&cmd, "--split wants three numbers TRN,VAL,TST, e.g. 0.8,0.1,0.1");
    er_import_stats st;
    if (er_import_run(&o, &st)) return cli_fail(NULL);
    size_t total = st.nnz[0] + st.nnz[1] + st.nnz[2];
    fprintf(stderr, "easyrec: read %zu interactions; dropped %zu below the rating, %zu duplicates, %zu by the %d-core (%d rounds)\n",
            st.rows, st.below_rating, st.duplicates, st.kcore_removed, k_core, st.kcore_rounds);
    fprintf(stderr, "easyrec: %d users x %d items, %zu interactions: trn %zu / val %zu / tst %zu (%s split)\n", st.users,
            st.items, total, st.nnz[0], st.nnz[1], st.nnz[2], o.by_time ? "time" : "random");
    if (st.moved_to_train) fprintf(stderr, "easyrec: %zu interactions moved to train so every item is trained on\n", st.moved_to_train);
    if (st.items_without_train) fprintf(stderr, "easyrec: %d items appear only in val/test\n", st.items_without_train);
    if (items) fprintf(stderr, "easyrec: item metadata for %d items, %d without\n", st.meta_found, st.meta_missing);
    printf("%s\n", output);
    return 0;
}

int cmd_data(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "import")) return data_import(argc - 1, argv + 1);
    FILE *f = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr;
    fprintf(f, "usage: easyrec data import --interactions FILE --output DIR [options]   (--help for details)\n");
    return f == stdout ? 0 : 2;
}
