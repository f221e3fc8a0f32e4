/* tok_impl.h — what the tokenizer files share with each other (not with the rest of the
 * library: that is tokenizer/tokenizer.h).
 *
 *   utf8.c       decoding with replacement, character classes
 *   hmap.c       interning string table, pair table
 *   pretok.c     GPT-2 pre-tokenisation
 *   bpe.c        byte-level BPE model: build from vocabulary + merges, encode one piece
 *   bpe_cache.c  per-thread piece -> ids cache
 *   bpe_load.c   vocab.json / merges.txt / tokenizer.json readers
 *   wordpiece.c  BERT BasicTokenizer + WordPiece
 *   tokenizer.c  public API: loading a directory, special tokens, truncation, decoding
 *   er_bpe_train.c  byte-level BPE trainer
 */
#ifndef ER_TOK_IMPL_H
#define ER_TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "easyrec.h"
#include "tokenizer/hmap.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

/* ---- output sink ------------------------------------------------------------------------ */

/* Ids go to ids[0..cap); n counts all of them; producers stop once n reaches limit. */
typedef struct {
    int32_t *ids;
    int64_t cap, n, limit;
} tok_sink;

/* Append id; returns 1 when the sink is full (stop), else 0. */
static inline int sink_push(tok_sink *s, int32_t id) {
    if (s->n < s->cap) s->ids[s->n] = id;
    s->n++;
    return s->n >= s->limit;
}

/* ---- GPT-2 pre-tokenisation --------------------------------------------------------------- */

typedef struct {
    const uint8_t *s;
    size_t n, pos;
} pretok_iter;

/* Next piece [*start, *end) of it->s; returns 0 when the text is exhausted. */
int er_pretok_next(pretok_iter *it, size_t *start, size_t *end);

/* ---- byte-level BPE --------------------------------------------------------------------------- */

/* GPT-2 bytes_to_unicode: byte -> code point, and code point (< 324) -> byte or -1. */
extern const uint16_t er_bpe_byte_cp[256];
int er_bpe_cp_byte(uint32_t cp);

typedef struct {
    strmap syms;        /* byte-level strings: vocabulary keys, merge parts and results, the
                           256 one-byte symbols; val = vocabulary id or -1 */
    u64map ranks;       /* (left symbol << 32 | right symbol) -> merge rank (last line wins) */
    int32_t *merge_out; /* (n_merges) symbol made by the merge of each rank (-1: not a pair) */
    int32_t n_merges, merges_cap;
    int32_t byte_sym[256]; /* symbol of the one-character string er_bpe_byte_cp[b] */
    int32_t *id_sym;    /* (n_ids) symbol of the token of each id (-1: no such id) */
    int32_t n_ids;      /* max vocabulary id + 1 */
    int32_t n_vocab;    /* distinct vocabulary keys */
    uint64_t serial;    /* names this model in the per-thread caches */
} bpe_model;

int er_bpe_model_init(bpe_model *m, uint32_t expect_vocab, uint32_t expect_merges);
void er_bpe_model_free(bpe_model *m);
/* A vocabulary entry (a later entry for the same key replaces the id, like json.load). */
int er_bpe_model_add_token(bpe_model *m, const char *tok, size_t len, int32_t id);
/* The next merges line: a pair, or (a == NULL) a line that is not a pair but takes a rank. */
int er_bpe_model_add_merge(bpe_model *m, const char *a, size_t alen, const char *b, size_t blen);
/* After all tokens and merges: intern the byte alphabet and build the id table. */
int er_bpe_model_finish(bpe_model *m);
/* BPE of one piece of well-formed UTF-8 p[0..n): pushes vocabulary ids (unk_id for a symbol
 * outside the vocabulary). Returns 1 when the sink filled up, 0 when done, or a negative
 * error. */
int er_bpe_encode_piece(const bpe_model *m, int32_t unk_id, const uint8_t *p, size_t n, tok_sink *sink);
/* The token string of id (byte-level form), or NULL. */
const char *er_bpe_id_token(const bpe_model *m, int32_t id, size_t *len);

/* Per-thread cache of piece -> ids (bpe_cache.c). Pieces longer than BPE_CACHE_MAX_KEY bytes
 * or with more than BPE_CACHE_MAX_IDS ids are not cached. */
#define BPE_CACHE_MAX_KEY 64
#define BPE_CACHE_MAX_IDS 64
int er_bpe_cache_get(uint64_t serial, uint64_t hash, const uint8_t *p, size_t n, const int32_t **ids);
void er_bpe_cache_put(uint64_t serial, uint64_t hash, const uint8_t *p, size_t n, const int32_t *ids, int nids);
uint64_t er_bpe_next_serial(void);

/* File readers (bpe_load.c). `path` is used in messages; the parse_ forms read a buffer. */
int er_bpe_load_vocab_json(bpe_model *m, const char *path);
int er_bpe_load_merges_txt(bpe_model *m, const char *path);
int er_bpe_parse_vocab_json(bpe_model *m, const char *data, size_t len, const char *path);
int er_bpe_parse_merges_txt(bpe_model *m, const char *data, size_t len, const char *path);
/* tokenizer.json of model type BPE; added tokens are reported through the callback. */
typedef int (*bpe_added_fn)(void *user, const char *content, int32_t id, int lstrip, int rstrip);
int er_bpe_load_tokenizer_json(bpe_model *m, const char *path, bpe_added_fn added, void *user);

/* ---- WordPiece ------------------------------------------------------------------------------ */

typedef struct {
    strmap vocab;     /* token -> id */
    int32_t *id_tok;  /* (n_ids) vocabulary index of the token of each id, -1 if none */
    int32_t n_ids;
    int do_lower_case;          /* default 1 */
    int strip_accents;          /* -1 unset (follows do_lower_case), 0, 1 */
    int tokenize_chinese_chars; /* default 1 */
    int max_input_chars;        /* 100 */
} wp_model;

int er_wp_load_vocab_txt(wp_model *m, const char *path);
void er_wp_model_free(wp_model *m);
/* BasicTokenizer + WordPiece of one text segment (no special tokens in it). */
int er_wp_encode_segment(const wp_model *m, int32_t unk_id, const uint8_t *s, size_t n, tok_sink *sink);
/* The token string of id, or NULL. */
const char *er_wp_id_token(const wp_model *m, int32_t id, size_t *len);

/* ---- the tokenizer ---------------------------------------------------------------------- */

/* A token matched literally in the text before the model runs (special tokens). */
typedef struct {
    char *text;
    size_t len;
    int32_t id;
    int lstrip, rstrip; /* absorb the whitespace before / after it */
} tok_added;

struct easyrec_tokenizer {
    easyrec_tokenizer_kind kind;
    bpe_model bpe;
    wp_model wp;
    tok_added *added; /* sorted by decreasing length, so the first match is the longest */
    int n_added;
    uint8_t added_first[256]; /* 1 when some added token starts with this byte */
    tokenizer_specials sp;
    int32_t vocab_size;
};

#endif
