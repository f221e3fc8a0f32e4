/* cmd_synth.c — `easyrec catalog --output DIR [--seed S] [--users N] [--items-per-interest N]
 * [--domains a,b]`: generate the built-in synthetic catalog (src/catalog/, docs/demo.md) and
 * print its statistics. */
#include <stdio.h>

#include "synth/synth.h"
#include "cli/cli.h"
#include "cli/opt.h"

int cmd_catalog(int argc, char **argv) {
    er_synth_opts o;
    er_synth_defaults(&o);
    const char *out = NULL;
    int64_t seed = (int64_t)o.seed;
    int quiet = 0;
    cli_opt opts[] = {
        {.name = "output", .type = OPT_STR, .dst = &out, .meta = "DIR", .required = 1,
         .help = "where the domains' dataset directories and shift.json go (created)"},
        {.name = "seed", .type = OPT_I64, .dst = &seed, .meta = "S", .min = 0, .max = 9007199254740991.0,
         .help = "random seed: the same seed and options give byte-identical files"},
        {.name = "users", .type = OPT_INT, .dst = &o.users, .meta = "N", .min = 2, .max = 1000000,
         .help = "users per domain"},
        {.name = "items-per-interest", .type = OPT_INT, .dst = &o.items_per_interest, .meta = "N", .min = 4,
         .max = 100000, .help = "items per interest (5 interests a domain)"},
        {.name = "domains", .type = OPT_STR, .dst = &o.domains, .meta = "LIST",
         .help = "comma-separated subset of sports,books,food,games,music,travel (default all)"},
        {.name = "quiet", .type = OPT_FLAG, .dst = &quiet, .help = "print no statistics"},
        {0}};
    cli_cmd cmd = {"catalog", "--output DIR [options]",
                   "generate the built-in synthetic catalog: per domain a dataset in the EasyRec release layout\n"
                   "(trn/val/tst_mat.pkl, item/user profiles + 3 diverse sets, labels), and DIR/shift.json",
                   opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    o.seed = (uint64_t)seed;
    er_synth_stats st;
    if (er_synth_write(out, &o, &st)) return cli_fail(NULL);
    if (quiet) return 0;
    printf("%-8s %6s %6s %8s %6s %5s %5s  %-16s %10s %10s %13s %13s\n", "domain", "users", "items", "inter", "trn",
           "val", "tst", "per user min/mean/max", "user words", "item words", "overlap own", "overlap other");
    for (int i = 0; i < st.n_domains; i++) {
        const er_synth_domain_stats *d = &st.d[i];
        printf("%-8s %6d %6d %8ld %6ld %5ld %5ld  %3d / %5.2f / %3d   %10.1f %10.1f %13.3f %13.3f\n", d->name,
               d->users, d->items, d->interactions, d->trn, d->val, d->tst, d->min_inter, d->mean_inter,
               d->max_inter, d->user_words, d->item_words, d->overlap_own, d->overlap_other);
    }
    printf("overlap = share of a user's content words (>= 4 letters, template words excluded) found in the\n"
           "profiles of their training items (own) vs. another user's training items (other)\n");
    if (st.shift_user >= 0) printf("preference-shift user: sports user %d (%s/shift.json)\n", st.shift_user, out);
    return 0;
}
