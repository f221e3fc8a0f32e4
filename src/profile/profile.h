/* profile.h — LLM-written profiles for a dataset in the release layout (`easyrec profile
 * items|users|diversify`, docs/profile.md).
 *
 *   items:     one request per item id: the item's metadata (item_meta.json written by
 *              `data import`, or --meta) -> {"summarization", "reasoning"} -> item_profile.json
 *   users:     one request per user id: up to max_items_per_user items of the user's
 *              TRAINING interactions (trn_mat.pkl only; a seeded sample when there are more),
 *              each with its title, its item profile (item_profile.json, when present) and
 *              the user's review (reviews file, when given) -> user_profile.json
 *   diversify: n_diverse rewrites of every item and user profile present, the answer's
 *              "REVISED PROFILE:" prefix stripped -> diverse_profile/diverse_{item,user}_profile_{k}.json
 *
 * Finished records go to <data>/profile_journal/<task>.jsonl as they arrive (journal.h); a
 * rerun skips them. An answer of the wrong shape gets one repair request, then the id is
 * failed; failures are listed in <data>/profile_journal/<task>_failed_ids.txt. When every id
 * of the task is in the journal the release files are written atomically from it.
 */
#ifndef ER_PROFILE_H
#define ER_PROFILE_H

#include <stdint.h>

#include "profile/llm.h"

typedef enum { ER_PROFILE_ITEMS = 0, ER_PROFILE_USERS = 1, ER_PROFILE_DIVERSE = 2 } er_profile_task;

typedef struct {
    int64_t total;      /* records this task needs */
    int64_t skipped;    /* already in the journal when the run started */
    int64_t done;       /* finished in this run */
    int64_t failed;     /* failed in this run */
    int64_t pending;    /* not attempted (limit, or stopped) */
    double elapsed_s;
    er_llm_stats llm;
} er_profile_progress;

typedef struct {
    er_profile_task task;
    const char *data_dir;     /* release-layout dataset (trn_mat.pkl, item_meta.json, ...) */
    const char *meta_path;    /* NULL: <data>/item_meta.json */
    const char *reviews_path; /* NULL or JSON lines {"user_id", "item_id", "review"} (dense ids) */
    const char *prompts_dir;  /* required: templates (prompts/README.md) */
    int n_diverse;            /* rewrites per profile */
    int max_items_per_user;
    uint64_t seed;            /* item sampling of users */
    int64_t limit;            /* > 0: at most this many new records in this run */
    int dry_run;              /* build the prompts, call show_prompt for the first 3, no requests */
    er_llm_opts llm;
    void (*progress)(void *ud, const er_profile_progress *p); /* ~2 per second and at the end */
    void (*show_prompt)(void *ud, const char *key, const char *system, const char *user);
    int (*stop)(void *ud);    /* nonzero: stop soon (e.g. after SIGINT); may be NULL */
    void *ud;
} er_profile_opts;

typedef struct {
    er_profile_progress p;
    int complete;              /* every record present: the release files were written */
    int64_t est_prompt_tokens; /* dry run: about chars / 4 of the prompts still to send */
    char journal[512], failed_ids[512]; /* paths */
    char outputs[512];         /* what was written, e.g. "item_profile.json" */
} er_profile_result;

int er_profile_run(const er_profile_opts *o, er_profile_result *r);
const char *er_profile_task_name(er_profile_task t);

/* ---- internals shared by profile.c and profile_input.c -------------------------------- */
typedef struct {
    char key[48];
    int32_t id;      /* item or user id */
    int side;        /* 0 item, 1 user */
    int k;           /* diversify: rewrite number */
    char *input;     /* the template's {{input}} (owned) */
} er_prof_unit;

typedef struct {
    char *system[2];      /* [side] */
    char *user_tmpl[2];   /* [side], holds {{input}} */
    char *repair;         /* holds {{error}} */
} er_prof_prompts;

int er_prof_load_prompts(const char *dir, er_profile_task t, er_prof_prompts *p);
void er_prof_free_prompts(er_prof_prompts *p);
/* Replace every "{{name}}" in tmpl with value (malloc'd result). */
char *er_prof_fill(const char *tmpl, const char *name, const char *value);
/* The units of the task, in id order (diversify: items k = 0.., then users). */
int er_prof_build_units(const er_profile_opts *o, er_prof_unit **units, size_t *n);
void er_prof_free_units(er_prof_unit *u, size_t n);
/* Check an answer: items/users -> *a, *b = summarization, reasoning (malloc'd);
 * diversify -> *a = the rewrite without its prefix. Returns NULL when fine, else what is
 * wrong (static text). */
const char *er_prof_validate(er_profile_task t, const char *text, size_t len, char **a, char **b);

#endif
