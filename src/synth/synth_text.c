/* synth_text.c — profile texts of the catalog generator: a dozen templates per side,
 * filled from the synonym banks of synth_words.c with an independent draw per slot, so
 * two renderings of the same item or user rarely share their wording.
 *
 * Slots: {N} item name, {K} kind, {U} use, {F} fans, {T} topic, {P} price adjective,
 * {L} level adjective, {E} level people, {G} the domain's generic noun, {TS}/{FS} the
 * user's topics / fan groups joined, {KS} one item kind per interest ("a, b and c"); a '^' after the letter(s)
 * capitalises. "a" before a vowel becomes "an". */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "synth/synth_text.h"
#include "synth/synth_words.h"
#include "core/rng.h"

static const char *const item_tpl[] = {
    "{N} is a {P} {K} {U}. It appeals to {F} and is {L} enough for {E}.",
    "Designed for {E}, the {N} {K} is a {P} choice {U}. {F^} will appreciate it.",
    "A {L} {K} from {N} aimed at {F}: {P} and ideal {U}.",
    "This {P} {K}, the {N}, targets {E} who love {T}, and works well {U}.",
    "{N}: a {L} {K} {U}. A {P} pick for anyone into {T}.",
    "Perfect for {F}, {N} is a {L} {K} at a {P} price point, made {U}.",
    "The {N} is a {K} that suits {E}. It is {P}, {L}, and great {U}, a natural fit for {F}.",
    "If you are into {T}, the {P} {N} {K} is worth a look: {L} and built {U}.",
    "{N} offers {E} a {P} {K}. Reviewers describe it as {L} and say it is great {U}.",
    "A {K} for {F}. The {N} is {P} and {L}, a good match {U}.",
    "Delve into {T} with the {N}, a {L} {K} {U}; its {P} price makes it easy to recommend to {E}.",
    "Fans of {T} looking for a {P} {K} will find the {N} {L} and well suited {U}.",
};
static const char *const user_tpl[] = {
    "This user is likely to enjoy {TS}, favouring {P} {G} suited to {E}.",
    "Someone who appreciates {TS} and looks for {P} {G} that fit {E}.",
    "Enthusiastic about {TS}, this user gravitates towards {P} {G} and values options made for {E}.",
    "Likely to appreciate {TS}; prefers {L} and {P} {G}.",
    "A fan of {TS} who tends to buy {P}, {L} {G}.",
    "This user shows a strong interest in {TS}. They lean towards {P} choices and {L} {G}, typical of {E}.",
    "Passionate about {TS}, this person is among the {E} and shops for {P} {G}.",
    "Interested in {TS}; their history suggests {P} {G} aimed at {E}.",
    "One of the {FS}, this user enjoys {P} {G} and picks products meant for {E}.",
    "This user keeps coming back to {TS}, mostly choosing {P}, {L} {G}.",
    "{E^} at heart, this user is drawn to {TS} and to {P} {G}.",
    "With a taste for {TS}, this shopper favours {L} {G} with a {P} price tag.",
};
/* optional second sentence of a user profile: things they bought */
static const char *const user_tail[] = {
    " Past purchases include {KS}.", " They have recently looked at {KS}.", " Their basket often holds {KS}.",
    " Typical buys: {KS}.",
};
#define N_ITEM_TPL ((int)(sizeof item_tpl / sizeof item_tpl[0]))
#define N_USER_TPL ((int)(sizeof user_tpl / sizeof user_tpl[0]))

typedef struct {
    char *b;
    size_t n, cap;
} sbuf;

static void add(sbuf *s, const char *t, size_t n) {
    for (size_t i = 0; i < n && s->n + 1 < s->cap; i++) s->b[s->n++] = t[i];
    s->b[s->n] = 0;
}
static void adds(sbuf *s, const char *t) { add(s, t, strlen(t)); }

static const char *pick(er_rng *r, const char *const *list) {
    return list[er_rng_below(r, (uint64_t)er_cat_count(list))];
}

/* join one phrase per interest: "a", "a and b", "a, b and c" */
static void join(sbuf *s, er_rng *r, const er_cat_domain *d, const int *in, int n, int what) {
    for (int i = 0; i < n; i++) {
        if (i) adds(s, i == n - 1 ? " and " : ", ");
        const er_cat_interest *c = &d->in[in[i]];
        if (what == 2) adds(s, "a "); /* kinds are singular */
        adds(s, pick(r, what == 0 ? c->topic : what == 1 ? c->fans : c->kinds));
    }
}

/* "a" -> "an" before a vowel; capitalise the first letter */
static void tidy(char *t) {
    size_t n = strlen(t);
    for (size_t i = 0; i + 2 < n; i++) {
        int start = i == 0 || t[i - 1] == ' ';
        if (start && (t[i] == 'a' || t[i] == 'A') && t[i + 1] == ' ' && strchr("aeiouAEIOU", t[i + 2]) &&
            n + 1 < ER_CAT_TEXT_MAX) {
            memmove(t + i + 2, t + i + 1, n - i); /* includes the NUL */
            t[i + 1] = 'n';
            n++;
        }
    }
    if (t[0]) t[0] = (char)toupper((unsigned char)t[0]);
}

static void render(char *out, const char *tpl, er_rng *r, const er_cat_domain *d, const er_cat_item *it,
                   const er_cat_user *u) {
    sbuf s = {out, 0, ER_CAT_TEXT_MAX};
    out[0] = 0;
    int in0 = it ? it->interest : u->interests[0];
    int level = it ? it->level : u->level, price = it ? it->price : u->price;
    for (const char *p = tpl; *p;) {
        if (*p != '{') {
            add(&s, p++, 1);
            continue;
        }
        const char *e = strchr(p, '}');
        char key[8] = {0};
        size_t kl = (size_t)(e - p - 1);
        memcpy(key, p + 1, kl < 7 ? kl : 7);
        p = e + 1;
        int cap = key[strlen(key) - 1] == '^';
        if (cap) key[strlen(key) - 1] = 0;
        size_t at = s.n;
        const er_cat_interest *ci = &d->in[in0];
        if (!strcmp(key, "N")) adds(&s, it->name);
        else if (!strcmp(key, "K")) adds(&s, ci->kinds[it->kind]);
        else if (!strcmp(key, "U")) adds(&s, pick(r, ci->uses));
        else if (!strcmp(key, "F")) adds(&s, pick(r, ci->fans));
        else if (!strcmp(key, "T")) adds(&s, pick(r, ci->topic));
        else if (!strcmp(key, "P")) adds(&s, pick(r, er_cat_price_adj[price]));
        else if (!strcmp(key, "L")) adds(&s, pick(r, er_cat_level_adj[level]));
        else if (!strcmp(key, "E")) adds(&s, pick(r, er_cat_level_people[level]));
        else if (!strcmp(key, "G")) adds(&s, pick(r, d->things));
        else if (!strcmp(key, "TS")) join(&s, r, d, u->interests, u->n_interests, 0);
        else if (!strcmp(key, "FS")) join(&s, r, d, u->interests, u->n_interests, 1);
        else if (!strcmp(key, "KS")) join(&s, r, d, u->interests, u->n_interests, 2);
        if (cap && at < s.n) s.b[at] = (char)toupper((unsigned char)s.b[at]);
    }
    tidy(out);
}

void er_cat_item_text(char *out, const er_cat_domain *d, const er_cat_item *it, er_rng *r) {
    render(out, item_tpl[er_rng_below(r, N_ITEM_TPL)], r, d, it, NULL);
}

void er_cat_user_text(char *out, const er_cat_domain *d, const er_cat_user *u, er_rng *r) {
    er_cat_user v = *u; /* mention the interests in a random order */
    for (int i = v.n_interests - 1; i > 0; i--) {
        int j = (int)er_rng_below(r, (uint64_t)i + 1), t = v.interests[i];
        v.interests[i] = v.interests[j];
        v.interests[j] = t;
    }
    char tpl[256];
    snprintf(tpl, sizeof tpl, "%s%s", user_tpl[er_rng_below(r, N_USER_TPL)],
             er_rng_uniform(r) < 0.6 ? user_tail[er_rng_below(r, sizeof user_tail / sizeof user_tail[0])] : "");
    render(out, tpl, r, d, NULL, &v);
}
