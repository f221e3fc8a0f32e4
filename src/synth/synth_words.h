/* synth_words.h — the word banks of the catalog generator (synth_words.c): domains,
 * their interests with synonyms, item kinds and uses, and the attribute phrasings shared by
 * every domain. NULL ends each list. */
#ifndef ER_SYNTH_WORDS_H
#define ER_SYNTH_WORDS_H

#define ER_CAT_INTERESTS 5
#define ER_CAT_LIST 8

typedef struct {
    const char *name;               /* label: "basketball" */
    const char *topic[ER_CAT_LIST]; /* ways to name the topic: "hoops", "the NBA", ... */
    const char *fans[ER_CAT_LIST];  /* people who like it: "basketball fans", "hoopers" */
    const char *kinds[ER_CAT_LIST]; /* item kinds: "indoor basketball", "portable hoop" */
    const char *uses[ER_CAT_LIST];  /* "for pickup games at the park" (starts with for/to) */
} er_cat_interest;

typedef struct {
    const char *name;                /* "sports" */
    const char *things[ER_CAT_LIST]; /* generic item nouns, plural: "gear", "equipment" */
    er_cat_interest in[ER_CAT_INTERESTS];
} er_cat_domain;

extern const er_cat_domain er_cat_domains[];
extern const int er_cat_n_domains;

/* attributes: level 0..2 (beginner, intermediate, expert), price 0..1 (budget, premium) */
extern const char *const er_cat_level_people[3][ER_CAT_LIST]; /* "beginners", "newcomers" */
extern const char *const er_cat_level_adj[3][ER_CAT_LIST];    /* "beginner-friendly" */
extern const char *const er_cat_price_adj[2][ER_CAT_LIST];    /* "affordable", "premium" */
extern const char *const er_cat_brand_a[];                    /* made-up name parts */
extern const char *const er_cat_brand_b[];

/* number of entries before the NULL */
int er_cat_count(const char *const *list);

#endif
