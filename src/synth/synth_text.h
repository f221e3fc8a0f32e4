/* synth_text.h — rendering item and user profiles of the catalog (synth_text.c). */
#ifndef ER_SYNTH_TEXT_H
#define ER_SYNTH_TEXT_H
#include "synth/synth_words.h"
#include "core/rng.h"

#define ER_CAT_TEXT_MAX 640 /* bytes per rendered profile, NUL included (longest is ~330) */

typedef struct {
    int interest, kind, level, price;
    char name[32];
    double pop; /* popularity weight */
} er_cat_item;

typedef struct {
    int n_interests, interests[3]; /* first = main interest */
    double weight[3];
    int level, price;
} er_cat_user;

/* Render one profile into out[ER_CAT_TEXT_MAX], drawing template and words from r. */
void er_cat_item_text(char *out, const er_cat_domain *d, const er_cat_item *it, er_rng *r);
void er_cat_user_text(char *out, const er_cat_domain *d, const er_cat_user *u, er_rng *r);

#endif
