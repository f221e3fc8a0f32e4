/* train_data.h — EasyRec training examples (spec §3.1–3.2): one example per (dataset, user)
 * per epoch; positive uniform over the user's training items; negative uniform over all
 * items, rejecting the user's training items; text variants drawn uniformly from each
 * side's pool (original + diverse profiles, + raw-meta item profiles when present); MLM
 * 80/10/10 on the user, positive and negative texts.
 *
 * Every random choice is drawn from a generator seeded by (seed, what, position), so an
 * example depends only on the seed and its place in the run — resuming at any step
 * reproduces the same data without saving generator state.
 *
 * Users without any profile text are described by the profiles of up to K of their
 * training items (ascending item id) joined by " ", EXCLUDING the example's positive item
 * (otherwise the positive's own text would sit inside the user text). Users with no
 * training item are skipped (the original would crash on them).
 */
#ifndef ER_TRAIN_DATA_H
#define ER_TRAIN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "easyrec.h"
#include "train/train.h"

#define ER_TRAIN_MAX_SETS 5

typedef struct {
    char *dir;
    er_dataset ds;
    er_texts items[ER_TRAIN_MAX_SETS]; /* item text pool: original, diverse 0..2, raw meta */
    int n_item_sets;
    er_texts users[ER_MAX_PROFILE_SETS]; /* user text pool (may be empty) */
    int n_user_sets;
} er_domain;

typedef struct {
    er_domain *dom;
    int n_dom;
    struct {
        int32_t d, u;
    } *ex;                /* examples in construction order */
    size_t n_ex;
    uint64_t seed;
    int max_length;       /* truncation of every text (64 in the original) */
    int user_items_k;     /* items:K for users without profiles */
    float mlm_prob;       /* 0: batches carry no MLM copies (half the encoder work) */
    int diverse;          /* how many diverse sets enter the pools (0..3) */
    const easyrec_tokenizer *tok;
    int32_t bos, eos, pad, unk, mask, vocab;
} er_train_data;

/* Open each dataset directory of dirs (comma-free list of n paths). */
int er_train_data_open(er_train_data *td, const char *const *dirs, int n, const easyrec_tokenizer *tok,
                    uint64_t seed, int max_length, int user_items_k, float mlm_prob, int diverse);
void er_train_data_free(er_train_data *td);

/* Example order of an epoch: a permutation of 0..n_ex-1 from (seed, epoch). perm (n_ex).
 * group > 1: consecutive runs of `group` examples (one step) come from one dataset — each
 * dataset's shuffled examples cut into runs, the runs shuffled; what is left of each
 * dataset (< group) ends the epoch, mixed. Fails only on allocation. */
int er_train_data_epoch_order(const er_train_data *td, long epoch, size_t group, size_t *perm);

/* Fill batch b (caller buffers sized by train_data_batch_caps) with the n examples whose
 * global positions are pos0..pos0+n-1 (position p = epoch * n_ex + index in that epoch's
 * order, so p alone fixes the example and its random draws). perm: that epoch's order. */
int er_train_data_batch(const er_train_data *td, const size_t *perm, long epoch, size_t first, int n, er_batch *b);
/* Tokens a batch of n examples can hold at most. */
size_t er_train_data_batch_tokens(const er_train_data *td, int n);

#endif
