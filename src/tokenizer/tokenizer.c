/* tokenizer.c — encoding and decoding through a loaded tokenizer (loading: tok_load.c).
 *
 * Encoding follows HF's slow PreTrainedTokenizer.tokenize + build_inputs_with_special_tokens:
 *   1. the added (special) tokens written in the text are split out first, the leftmost
 *      occurrence winning and the longest token at that position; a token with lstrip eats
 *      the whitespace (str.isspace) at the end of the text before it, one with rstrip the
 *      whitespace at the start of the text after it (RoBERTa's <mask> has lstrip);
 *   2. each text segment in between goes through the model on its own (GPT-2 pre-tokenisation
 *      + byte-level BPE, or BERT's basic tokenizer + WordPiece);
 *   3. content is truncated to its first max_length-2 ids (HF truncation=True, one sequence),
 *      and the begin/end ids are put around it (<s> ... </s> or [CLS] ... [SEP]).
 * Invalid UTF-8 is read as U+FFFD per maximal invalid subsequence (Python's errors="replace").
 * Work stops as soon as the truncation budget is used up, so a long text costs only what is
 * kept.
 *
 * Decoding: BPE joins the tokens' byte-level strings, maps them back to bytes and decodes
 * with errors="replace" (slow tokenizer's convert_tokens_to_string); WordPiece joins with
 * spaces, removes " ##" and strips. No clean_up_tokenization_spaces. Added tokens are written
 * as their text; skip_special drops every added token.
 */
#include <limits.h>
#include <stdlib.h>

#include "tokenizer/tok_impl.h"

/* ---- encoding ------------------------------------------------------------------------------- */

#define PIECE_STACK 256

static int encode_bpe_segment(const easyrec_tokenizer *t, const uint8_t *s, size_t n, tok_sink *sink) {
    int valid = er_utf8_valid(s, n), rc = 0;
    pretok_iter it = {s, n, 0};
    size_t a, b;
    uint8_t stack[PIECE_STACK];
    while (!rc && er_pretok_next(&it, &a, &b)) {
        const uint8_t *p = s + a;
        size_t len = b - a;
        uint8_t *heap = NULL;
        if (!valid && !er_utf8_valid(p, len)) {
            size_t rl = er_utf8_replaced_len(p, len);
            uint8_t *buf = rl <= sizeof(stack) ? stack : (heap = er_mallocarray(rl, 1));
            if (!buf) return EASYREC_ERR_NOMEM;
            er_utf8_replace(p, len, buf);
            p = buf;
            len = rl;
        }
        rc = er_bpe_encode_piece(&t->bpe, t->sp.unk, p, len, sink);
        free(heap);
    }
    return rc;
}

static int encode_segment(const easyrec_tokenizer *t, const uint8_t *s, size_t n, tok_sink *sink) {
    if (n == 0) return 0;
    if (t->kind == EASYREC_TOKENIZER_BPE) return encode_bpe_segment(t, s, n, sink);
    return er_wp_encode_segment(&t->wp, t->sp.unk, s, n, sink);
}

/* The added token at s[i..n), or NULL. */
static const tok_added *added_at(const easyrec_tokenizer *t, const uint8_t *s, size_t n, size_t i) {
    if (!t->added_first[s[i]]) return NULL;
    for (int k = 0; k < t->n_added; k++) {
        const tok_added *a = &t->added[k];
        if (a->len <= n - i && !memcmp(s + i, a->text, a->len)) return a;
    }
    return NULL;
}

/* Python's str.lstrip() / str.rstrip() on s[*a..*b). */
static void strip_left(const uint8_t *s, size_t *a, size_t b) {
    size_t adv;
    while (*a < b && uc_is_py_space(utf8_decode(s + *a, b - *a, &adv))) *a += adv;
}

static void strip_right(const uint8_t *s, size_t a, size_t *b) {
    size_t end = a, adv;
    for (size_t i = a; i < *b; i += adv)
        if (!uc_is_py_space(utf8_decode(s + i, *b - i, &adv))) end = i + adv;
    *b = end;
}

/* Content ids of s[0..n) into sink. Returns 0 (or 1 when the sink filled) or an error. */
static int encode_content(const easyrec_tokenizer *t, const uint8_t *s, size_t n, tok_sink *sink) {
    size_t seg = 0;
    int rstrip_next = 0;
    for (size_t i = 0; i < n; i++) {
        const tok_added *a = added_at(t, s, n, i);
        if (!a) continue;
        size_t sa = seg, sb = i;
        if (rstrip_next) strip_left(s, &sa, sb);
        if (a->lstrip) strip_right(s, sa, &sb);
        int rc = encode_segment(t, s + sa, sb - sa, sink);
        if (rc) return rc;
        if (sink_push(sink, a->id)) return 1;
        seg = i + a->len;
        i = seg - 1;
        rstrip_next = a->rstrip;
    }
    size_t sa = seg;
    if (rstrip_next) strip_left(s, &sa, n);
    return encode_segment(t, s + sa, n - sa, sink);
}

/* limit < 0: no truncation. */
static int encode_impl(const easyrec_tokenizer *t, const char *text, size_t len, int64_t limit, int add_specials,
                       int32_t *ids, int cap) {
    if (!t || (!text && len) || cap < 0 || (cap > 0 && !ids))
        return er_error(EASYREC_ERR_ARG, "easyrec_tokenize: bad arguments");
    int off = add_specials ? 1 : 0;
    tok_sink sink = {cap > off ? ids + off : NULL, cap > off ? cap - off : 0, 0, limit >= 0 ? limit : INT64_MAX};
    if (limit != 0) {
        int rc = encode_content(t, (const uint8_t *)text, len, &sink);
        if (rc < 0) return rc;
    }
    int64_t total = sink.n + 2 * off;
    if (total > INT_MAX) return er_error(EASYREC_ERR_ARG, "easyrec_tokenize: text gives more than INT_MAX tokens");
    if (add_specials) {
        if (cap > 0) ids[0] = t->sp.bos;
        if (total - 1 < cap) ids[total - 1] = t->sp.eos;
    }
    return (int)total;
}

int er_tokenizer_encode(const easyrec_tokenizer *tok, const char *text, size_t len, int max_content, int add_specials,
                     int32_t *ids, int cap) {
    return encode_impl(tok, text, len, max_content > 0 ? max_content : -1, add_specials, ids, cap);
}

int easyrec_tokenize(const easyrec_tokenizer *tok, const char *text, size_t len, int max_length, int32_t *ids,
                     int cap) {
    if (max_length > 0 && max_length < 2)
        return er_error(EASYREC_ERR_ARG, "easyrec_tokenize: max_length %d leaves no room for the 2 special tokens",
                        max_length);
    return encode_impl(tok, text, len, max_length > 0 ? max_length - 2 : -1, 1, ids, cap);
}

/* ---- decoding ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytebuf;

static int bb_put(bytebuf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->n + n) ncap *= 2;
        uint8_t *np = er_reallocarray(b->p, ncap, 1);
        if (!np) return EASYREC_ERR_NOMEM;
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return EASYREC_OK;
}

static const tok_added *added_by_id(const easyrec_tokenizer *t, int32_t id) {
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k].id == id) return &t->added[k];
    return NULL;
}

const char *er_tokenizer_id_to_token(const easyrec_tokenizer *tok, int32_t id, size_t *len) {
    const tok_added *a = added_by_id(tok, id);
    if (a) {
        *len = a->len;
        return a->text;
    }
    if (tok->kind == EASYREC_TOKENIZER_BPE) return er_bpe_id_token(&tok->bpe, id, len);
    return er_wp_id_token(&tok->wp, id, len);
}

/* Byte-level string -> bytes; a character outside the byte alphabet is kept as UTF-8. */
static int put_bpe_token(bytebuf *b, const char *s, size_t n) {
    size_t adv;
    for (size_t i = 0; i < n; i += adv) {
        uint32_t cp = utf8_decode((const uint8_t *)s + i, n - i, &adv);
        int byte = er_bpe_cp_byte(cp);
        uint8_t c = (uint8_t)byte;
        int rc = byte >= 0 ? bb_put(b, &c, 1) : bb_put(b, s + i, adv);
        if (rc) return rc;
    }
    return EASYREC_OK;
}

/* WordPiece: " ".join(tokens).replace(" ##", "").strip() */
static size_t wp_finish(uint8_t *p, size_t n) {
    if (!p) return 0; /* nothing was written */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ' && i + 2 < n && p[i + 1] == '#' && p[i + 2] == '#') {
            i += 2;
            continue;
        }
        p[k++] = p[i];
    }
    size_t a = 0, b = k;
    strip_left(p, &a, b);
    strip_right(p, a, &b);
    memmove(p, p + a, b - a);
    return b - a;
}

int easyrec_detokenize(const easyrec_tokenizer *tok, const int32_t *ids, int n, int skip_special, char *out,
                       size_t cap) {
    if (!tok || n < 0 || (n > 0 && !ids) || (cap > 0 && !out))
        return er_error(EASYREC_ERR_ARG, "easyrec_detokenize: bad arguments");
    bytebuf b = {0};
    int rc = EASYREC_OK, first = 1;
    for (int i = 0; i < n && !rc; i++) {
        const tok_added *a = added_by_id(tok, ids[i]);
        if (a && skip_special) continue;
        size_t len;
        const char *s = a ? a->text : er_tokenizer_id_to_token(tok, ids[i], &len);
        if (!s) {
            rc = er_error(EASYREC_ERR_ARG, "easyrec_detokenize: id %d is not in the vocabulary", (int)ids[i]);
            break;
        }
        if (a) len = a->len;
        if (tok->kind == EASYREC_TOKENIZER_WORDPIECE && !first) rc = bb_put(&b, " ", 1);
        if (!rc) rc = (tok->kind == EASYREC_TOKENIZER_BPE && !a) ? put_bpe_token(&b, s, len) : bb_put(&b, s, len);
        first = 0;
    }
    if (!rc && tok->kind == EASYREC_TOKENIZER_WORDPIECE) b.n = wp_finish(b.p, b.n);
    if (rc) {
        free(b.p);
        return rc;
    }
    size_t need = er_utf8_replaced_len(b.p, b.n);
    if (need > INT_MAX) {
        free(b.p);
        return er_error(EASYREC_ERR_ARG, "easyrec_detokenize: text longer than INT_MAX bytes");
    }
    if (cap > 0) {
        if (need < cap) {
            er_utf8_replace(b.p, b.n, (uint8_t *)out);
            out[need] = 0;
        } else {
            uint8_t *tmp = er_mallocarray(need + 1, 1);
            if (!tmp) {
                free(b.p);
                return EASYREC_ERR_NOMEM;
            }
            er_utf8_replace(b.p, b.n, tmp);
            memcpy(out, tmp, cap - 1);
            out[cap - 1] = 0;
            free(tmp);
        }
    }
    free(b.p);
    return (int)need;
}

/* ---- accessors ---------------------------------------------------------------------------- */

easyrec_tokenizer_kind easyrec_tokenizer_kind_of(const easyrec_tokenizer *tok) { return tok->kind; }

int easyrec_tokenizer_vocab_size(const easyrec_tokenizer *tok) { return tok->vocab_size; }

int easyrec_tokenizer_pad_id(const easyrec_tokenizer *tok) { return tok->sp.pad; }

const tokenizer_specials *er_tokenizer_specials_of(const easyrec_tokenizer *tok) { return &tok->sp; }

int easyrec_tokenizer_token_id(const easyrec_tokenizer *tok, const char *token) {
    if (!tok || !token) return er_error(EASYREC_ERR_ARG, "easyrec_tokenizer_token_id: NULL argument");
    size_t n = strlen(token);
    for (int k = 0; k < tok->n_added; k++)
        if (tok->added[k].len == n && !memcmp(tok->added[k].text, token, n)) return tok->added[k].id;
    const strmap *m = tok->kind == EASYREC_TOKENIZER_BPE ? &tok->bpe.syms : &tok->wp.vocab;
    int32_t k = er_strmap_find(m, token, n);
    if (k >= 0 && m->e[k].val >= 0) return m->e[k].val;
    return er_error(EASYREC_ERR_ARG, "token '%s' is not in the vocabulary", token);
}
