/* synth.h — the built-in synthetic catalog: a deterministic generator of recommendation
 * datasets in the EasyRec release layout (docs/demo.md), the embedded default of `make demo`
 * and a dataset tests may use. No data ships with the project; the same options give the
 * same bytes.
 *
 * Several domains (sports, books, food, games, music, travel), each with five interests;
 * items have an interest, a kind, a level (beginner/intermediate/expert), a price band and a
 * made-up name; users have one to three interests plus level and price preferences, and
 * interaction histories drawn from them with noise and popularity skew. Item and user
 * profiles are written like EasyRec's LLM profiles from a dozen templates each and synonym
 * banks, independently for the four profile sets (original + three diverse), so a user and
 * their items share meaning more than words.
 *
 * Output, for each domain D:
 *   DIR/D/trn_mat.pkl val_mat.pkl tst_mat.pkl     pickled scipy coo_matrix [users, items]
 *   DIR/D/item_profile.json user_profile.json       set "original" (JSON lines)
 *   DIR/D/diverse_profile/diverse_{item,user}_profile_{0,1,2}.json
 *   DIR/D/item_labels.txt user_labels.txt           interest of each item / first interest of
 *                                                   each user, one per line (row order)
 *   DIR/D/profiles.txt                              every profile text, one per line (corpus)
 * and DIR/shift.json: one sports user whose only interest is basketball, with their profile
 * and the same user described as a swimming fan (the preference-shift demo).
 */
#ifndef ER_SYNTH_H
#define ER_SYNTH_H
#include <stdint.h>

#define ER_SYNTH_MAX_DOMAINS 8

typedef struct {
    uint64_t seed;          /* default 2024 */
    int users;              /* users per domain (default 300) */
    int items_per_interest; /* items per interest (default 40): a domain has 5x that */
    const char *domains;    /* comma-separated subset of the domain names, NULL = all */
} er_synth_opts;

typedef struct {
    char name[16];
    int users, items;
    long interactions, trn, val, tst;
    int min_inter, max_inter;
    double mean_inter;            /* interactions per user */
    double user_words, item_words; /* mean words per original profile */
    double overlap_own;   /* mean share of a user's content words found in their training items' profiles */
    double overlap_other; /* the same against another random user's training items (control) */
} er_synth_domain_stats;

typedef struct {
    int n_domains;
    er_synth_domain_stats d[ER_SYNTH_MAX_DOMAINS];
    int shift_user; /* user id of DIR/shift.json in sports, -1 when sports is not generated */
} er_synth_stats;

void er_synth_defaults(er_synth_opts *o);
/* Names of all domains, comma-separated ("sports,books,..."). */
const char *er_synth_domain_names(void);
/* Generate the catalog into dir (created; files written atomically). */
int er_synth_write(const char *dir, const er_synth_opts *o, er_synth_stats *st);

#endif
