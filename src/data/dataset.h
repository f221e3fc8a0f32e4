/* dataset.h — a recommendation dataset as evaluation needs it: train / val / test
 * interaction matrices (binarised CSR, one shape) and the profile text sets.
 *
 * Two sources:
 *   - a directory in the EasyRec release layout (../shared/docs/easyrec-spec.md §5), also
 *     used by the converted xrec-yelp:
 *       trn_mat.pkl val_mat.pkl tst_mat.pkl           pickled scipy.sparse [U, I]
 *       item_profile.json user_profile.json           profile set "original"
 *       diverse_profile/diverse_{item,user}_profile_{k}.json, k = 0..2   sets "diverse0..2"
 *     Any file may be missing; what is missing is reported when it is needed.
 *   - interaction text files (TSV or RecBole .inter, see interactions.h), one per split,
 *     with optional profile files given explicitly (one set, "original").
 * Profile files are only located here; er_dataset_read_profiles reads one and checks that it
 * covers every id 0..n-1 of its side.
 */
#ifndef ER_DATASET_H
#define ER_DATASET_H

#include <stdint.h>

#include "data/interactions.h"
#include "data/profiles.h"

#define ER_MAX_PROFILE_SETS 4

typedef struct {
    char name[16];    /* "original", "diverse0", "diverse1", "diverse2" */
    char *item_path;  /* item profiles; NULL when the set has none */
    char *user_path;  /* user profiles; NULL when the set has none */
} er_profile_set;

enum { ER_SPLIT_TRN = 0, ER_SPLIT_VAL = 1, ER_SPLIT_TST = 2 };

typedef struct {
    int32_t n_users, n_items;             /* U, I */
    er_csr split[3];                      /* trn, val, tst: all (U, I); absent ones empty */
    int has_split[3];
    char *split_path[3];                  /* file each split came from (NULL if absent) */
    er_profile_set sets[ER_MAX_PROFILE_SETS];
    int n_sets;                           /* sets whose item or user profiles exist */
    int from_text;                        /* 1: interaction text files (ids mapped) */
    er_idmap users, items;                /* from_text only */
} er_dataset;

/* Open an EasyRec-layout directory: read every *_mat.pkl present (at least one; shapes must
 * agree) and locate the profile files. On failure *ds is zeroed. */
int er_dataset_open_dir(const char *dir, er_dataset *ds);

/* Open interaction text files (val may be NULL; trn and tst required) and optional
 * profile files (NULL: none) as profile set "original". */
int er_dataset_open_text(const char *trn, const char *val, const char *tst, const char *item_profiles,
                      const char *user_profiles, er_dataset *ds);

/* Widen a dataset read from text files with numeric ids to at least (n_users, n_items),
 * e.g. to the rows of given embeddings: items nobody interacted with become candidates.
 * Smaller values are a no-op. Any other dataset: EASYREC_ERR_ARG. */
int er_dataset_grow(er_dataset *ds, int32_t n_users, int32_t n_items);

/* Read the profiles at path for the users (users = 1) or items of ds: JSON lines as in
 * er_profiles_read_jsonl; must hold exactly one profile per id 0..n-1 (clear error naming the
 * file otherwise). *out owned by the caller (er_texts_free). */
int er_dataset_read_profiles(const er_dataset *ds, const char *path, int users, er_texts *out);

void er_dataset_free(er_dataset *ds);
/* "trn", "val", "tst" */
const char *er_dataset_split_name(int split);

#endif
