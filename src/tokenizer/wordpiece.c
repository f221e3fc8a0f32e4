/* wordpiece.c — BERT's slow tokenizer: BasicTokenizer + WordpieceTokenizer (HF
 * transformers, tokenization_bert.py), for one text segment without special tokens.
 *
 * Steps, in HF's order:
 *   0. when do_lower_case, PreTrainedTokenizer.tokenize() first lower-cases the text one
 *      character at a time (its `(.+?)` regex) — so U+0130 -> "i" U+0307 and Σ -> σ always;
 *   1. _clean_text: drop U+0000, U+FFFD and every C* character except \t \n \r; map
 *      " \t\n\r" and Zs to a space;
 *   2. tokenize_chinese_chars: put spaces around CJK Unified Ideographs (the BERT ranges);
 *   3. NFC (unicodedata.normalize("NFC")), then split on str.isspace() whitespace;
 *   4. per word: lower-case again if do_lower_case, then strip accents (NFD, drop Mn) if
 *      strip_accents is true, or unset and do_lower_case;
 *   5. split punctuation off (ASCII 33-47, 58-64, 91-96, 123-126 or Unicode P*), one char each;
 *   6. WordPiece: words over max_input_chars (100) code points -> [UNK]; else greedy
 *      longest-match-first with "##" on non-initial pieces; any unmatched rest -> one [UNK].
 * Normalisation uses utf8proc (its Unicode version may differ slightly from Python's).
 * Not supported: never_split lists, do_basic_tokenize=False.
 */
#include <stdlib.h>
#include <utf8proc.h>

#include "tokenizer/tok_impl.h"

int er_wp_load_vocab_txt(wp_model *m, const char *path) {
    char *data;
    size_t len;
    int rc = er_read_file(path, &data, &len);
    if (rc) return rc;
    if (!er_utf8_valid((const uint8_t *)data, len)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: not valid UTF-8", path);
        goto out;
    }
    if ((rc = er_strmap_init(&m->vocab, 32768))) goto out;
    /* readlines() in text mode: lines end at \n, \r\n or \r; token = line without its end. */
    size_t i = 0;
    int32_t id = 0;
    while (i < len) {
        size_t st = i;
        while (i < len && data[i] != '\n' && data[i] != '\r') i++;
        size_t en = i;
        if (i < len) i += (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') ? 2 : 1;
        if (id >= (1 << 24)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: more than 2^24 lines", path);
            goto out;
        }
        int added;
        int32_t k = er_strmap_intern(&m->vocab, data + st, en - st, id, &added);
        if (k < 0) {
            rc = k;
            goto out;
        }
        m->vocab.e[k].val = id++; /* a repeated token takes the later id */
    }
    m->n_ids = id;
    m->id_tok = er_mallocarray(id ? (size_t)id : 1, sizeof(*m->id_tok));
    if (!m->id_tok) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    for (int32_t j = 0; j < id; j++) m->id_tok[j] = -1;
    for (uint32_t k = 0; k < m->vocab.n; k++) m->id_tok[m->vocab.e[k].val] = (int32_t)k;
    m->max_input_chars = 100;
out:
    free(data);
    return rc;
}

void er_wp_model_free(wp_model *m) {
    er_strmap_free(&m->vocab);
    free(m->id_tok);
    memset(m, 0, sizeof(*m));
}

const char *er_wp_id_token(const wp_model *m, int32_t id, size_t *len) {
    if (id < 0 || id >= m->n_ids || m->id_tok[id] < 0) return NULL;
    *len = strmap_keylen(&m->vocab, m->id_tok[id]);
    return strmap_key(&m->vocab, m->id_tok[id]);
}

/* ---- character predicates of tokenization_bert.py ------------------------------------------- */

static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_punct(uint32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
    return c >= 0x80 && er_uc_is_category_p(c);
}

static int is_bert_space(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || (c >= 0x80 && er_uc_is_category_zs(c));
}

static int is_bert_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    if (c < 0x80) return c < 0x20 || c == 0x7F;
    return er_uc_is_category_c(c);
}

/* ---- code point buffers ---------------------------------------------------------------------- */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} cpbuf;

static int cp_push(cpbuf *b, uint32_t c) {
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        uint32_t *nv = er_reallocarray(b->v, ncap, sizeof(*nv));
        if (!nv) return EASYREC_ERR_NOMEM;
        b->v = nv;
        b->cap = ncap;
    }
    b->v[b->n++] = c;
    return EASYREC_OK;
}

/* Normalise a[0..n) with utf8proc (options: NFC or NFD), replacing b's contents. */
static int cp_normalize(const uint32_t *a, size_t n, int options, cpbuf *b) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += a[i] < 0x80 ? 1 : a[i] < 0x800 ? 2 : a[i] < 0x10000 ? 3 : 4;
    uint8_t *u = er_mallocarray(bytes + 1, 1), *q = u;
    if (!u) return EASYREC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) q += utf8_encode(a[i], q);
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t k = utf8proc_map(u, (utf8proc_ssize_t)bytes, &out, (utf8proc_option_t)options);
    free(u);
    if (k < 0) return er_error(EASYREC_ERR_NOMEM, "unicode normalisation failed: %s", utf8proc_errmsg(k));
    b->n = 0;
    int rc = EASYREC_OK;
    size_t adv;
    for (utf8proc_ssize_t i = 0; i < k && !rc; i += (utf8proc_ssize_t)adv)
        rc = cp_push(b, utf8_decode(out + i, (size_t)(k - i), &adv));
    free(out);
    return rc;
}

/* ---- WordPiece of one word ------------------------------------------------------------------- */

static int wordpiece(const wp_model *m, int32_t unk_id, const uint32_t *w, size_t n, tok_sink *sink) {
    if (n == 0) return 0;
    if (n > (size_t)m->max_input_chars) return sink_push(sink, unk_id);
    uint8_t u[2 + 4 * 100 + 4];
    size_t off[101];
    off[0] = 0;
    for (size_t i = 0; i < n; i++) off[i + 1] = off[i] + (size_t)utf8_encode(w[i], u + 2 + off[i]);
    int32_t pieces[100];
    int np = 0;
    size_t start = 0;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        for (; end > start; end--) {
            uint8_t *k = u + 2 + off[start];
            size_t kl = off[end] - off[start];
            if (start > 0) {
                k -= 2;
                kl += 2;
                uint8_t save0 = k[0], save1 = k[1];
                k[0] = '#';
                k[1] = '#';
                found = er_strmap_find(&m->vocab, k, kl);
                k[0] = save0;
                k[1] = save1;
            } else {
                found = er_strmap_find(&m->vocab, k, kl);
            }
            if (found >= 0) break;
        }
        if (found < 0) return sink_push(sink, unk_id);
        pieces[np++] = m->vocab.e[found].val;
        start = end;
    }
    for (int i = 0; i < np; i++)
        if (sink_push(sink, pieces[i])) return 1;
    return 0;
}

/* Steps 4-6 for one whitespace-delimited word w[0..n). */
static int encode_word(const wp_model *m, int32_t unk_id, const uint32_t *w, size_t n, cpbuf *tmp, tok_sink *sink) {
    int strip = m->strip_accents == 1 || (m->strip_accents == -1 && m->do_lower_case);
    int ascii = 1;
    tmp->n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t lo[2];
        int k = m->do_lower_case ? er_uc_py_lower(w[i], lo) : (lo[0] = w[i], 1);
        for (int j = 0; j < k; j++) {
            if (cp_push(tmp, lo[j])) return EASYREC_ERR_NOMEM;
            ascii &= lo[j] < 0x80;
        }
    }
    if (strip && !ascii) {
        cpbuf nfd = {0};
        int rc = cp_normalize(tmp->v, tmp->n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, &nfd);
        size_t k = 0;
        for (size_t i = 0; i < nfd.n; i++)
            if (!er_uc_is_category_mn(nfd.v[i])) nfd.v[k++] = nfd.v[i];
        free(tmp->v);
        *tmp = nfd;
        tmp->n = k;
        if (rc) return rc;
    }
    size_t st = 0;
    for (size_t i = 0; i <= tmp->n; i++) {
        if (i < tmp->n && !is_punct(tmp->v[i])) continue;
        int rc = wordpiece(m, unk_id, tmp->v + st, i - st, sink);
        if (!rc && i < tmp->n) rc = wordpiece(m, unk_id, tmp->v + i, 1, sink);
        if (rc) return rc;
        st = i + 1;
    }
    return 0;
}

int er_wp_encode_segment(const wp_model *m, int32_t unk_id, const uint8_t *s, size_t n, tok_sink *sink) {
    cpbuf a = {0}, b = {0}, tmp = {0};
    int rc = 0, ascii = 1;
    size_t adv;
    for (size_t i = 0; i < n && !rc; i += adv) {
        uint32_t c = utf8_decode(s + i, n - i, &adv), lo[2];
        int k = m->do_lower_case ? er_uc_py_lower(c, lo) : (lo[0] = c, 1);
        for (int j = 0; j < k && !rc; j++) {
            c = lo[j];
            if (c == 0 || c == UTF8_REPLACEMENT || is_bert_control(c)) continue;
            if (is_bert_space(c)) c = ' ';
            ascii &= c < 0x80;
            if (m->tokenize_chinese_chars && is_cjk(c)) {
                rc = cp_push(&a, ' ');
                if (!rc) rc = cp_push(&a, c);
                if (!rc) rc = cp_push(&a, ' ');
            } else {
                rc = cp_push(&a, c);
            }
        }
    }
    if (!rc && !ascii) {
        rc = cp_normalize(a.v, a.n, UTF8PROC_STABLE | UTF8PROC_COMPOSE, &b);
        cpbuf t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < a.n && !rc;) {
        while (i < a.n && uc_is_py_space(a.v[i])) i++;
        size_t st = i;
        while (i < a.n && !uc_is_py_space(a.v[i])) i++;
        if (i > st) rc = encode_word(m, unk_id, a.v + st, i - st, &tmp, sink);
    }
    free(a.v);
    free(b.v);
    free(tmp.v);
    return rc;
}
