/* tokenizer.h — what the rest of the library (model, training, CLI) may use of the
 * tokenizers beyond the public easyrec_tokenize*: special-token ids and encoding without
 * the special tokens or with a content budget.
 */
#ifndef ER_TOKENIZER_H
#define ER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "easyrec.h"

/* Ids of the special tokens; -1 when the vocabulary has no such token. For RoBERTa
 * bos = <s> (cls), eos = </s> (sep); for BERT bos = [CLS], eos = [SEP]. */
typedef struct {
    int32_t bos, eos, pad, unk, mask;
} tokenizer_specials;

/* Owned by tok; valid until easyrec_tokenizer_free. */
const tokenizer_specials *er_tokenizer_specials_of(const easyrec_tokenizer *tok);

/* Tokenize text[0..len) into at most max_content content ids (<= 0: no limit), adding the
 * begin/end tokens around them when add_specials != 0. Same buffer contract as
 * easyrec_tokenize: writes at most cap ids, returns the full count or a negative error. */
int er_tokenizer_encode(const easyrec_tokenizer *tok, const char *text, size_t len, int max_content,
                     int add_specials, int32_t *ids, int cap);

/* The token string of id (for BPE in its byte-level form, e.g. "Ġthe"), or NULL when id is
 * unknown; *len receives its length. Owned by tok. */
const char *er_tokenizer_id_to_token(const easyrec_tokenizer *tok, int32_t id, size_t *len);

/* Free the calling thread's BPE piece caches (they are otherwise freed at thread exit). */
void er_tokenizer_thread_cleanup(void);

/* ---- byte-level BPE training (er_bpe_train.c) ---- */

typedef struct {
    int vocab_size;    /* total, including <s> <pad> </s> <unk>, the 256 bytes and <mask> */
    int min_frequency; /* stop when the best pair occurs fewer times (<= 0: 1) */
} bpe_train_opts;

typedef struct {
    int64_t pieces;          /* pre-tokenised pieces read */
    int64_t distinct_pieces; /* distinct ones */
    int merges, vocab_size;  /* learnt merges; vocabulary size written */
} bpe_train_stats;

/* Learn a byte-level BPE vocabulary from the text files and write vocab.json, merges.txt
 * and tokenizer_config.json (RobertaTokenizer) into out_dir, created when missing; each
 * file is written atomically. Deterministic: the same files give the same bytes.
 * stats may be NULL. Returns EASYREC_OK or a negative error. */
int er_bpe_train(const char *const *files, int n_files, const bpe_train_opts *opts, const char *out_dir,
              bpe_train_stats *stats);

#endif
