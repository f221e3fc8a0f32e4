/* tok_load.c — easyrec_tokenizer_load: recognise a model directory's tokenizer files, read
 * tokenizer_config.json, and set up the special tokens.
 *
 * Which files (first match wins):
 *   vocab.json + merges.txt   RoBERTa / GPT-2 byte-level BPE (HF slow RobertaTokenizer)
 *   vocab.txt                 BERT WordPiece (HF slow BertTokenizer)
 *   tokenizer.json            HF tokenizers file with model.type "BPE", run as the slow
 *                             byte-level BPE (its normalizer/pre_tokenizer are not read)
 * Special tokens: the defaults of the tokenizer class (<s> </s> <pad> <unk> <mask>, <mask>
 * with lstrip; or [CLS] [SEP] [PAD] [UNK] [MASK]), replaced by tokenizer_config.json's
 * *_token entries (a string or an {"content", "lstrip", "rstrip"} object),
 * additional_special_tokens, added_tokens_decoder ({"id": {content, lstrip, rstrip,
 * special}}) and tokenizer.json's added_tokens. A token gets its id from
 * added_tokens_decoder / added_tokens, else from the vocabulary; one with neither is
 * ignored (HF would append it to the vocabulary; no real checkpoint needs that). The
 * begin/end tokens (cls/sep) must resolve.
 * WordPiece options from tokenizer_config.json: do_lower_case (default true), strip_accents
 * (default null), tokenize_chinese_chars (default true).
 */
#include <jansson.h>
#include <stdlib.h>

#include "tokenizer/tok_impl.h"

enum { SP_CLS, SP_SEP, SP_PAD, SP_UNK, SP_MASK, SP_BOS, SP_EOS, SP_N };
static const char *const sp_keys[SP_N] = {"cls_token", "sep_token", "pad_token", "unk_token",
                                          "mask_token", "bos_token", "eos_token"};
static const char *const sp_bpe[SP_N] = {"<s>", "</s>", "<pad>", "<unk>", "<mask>", "<s>", "</s>"};
static const char *const sp_wp[SP_N] = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", NULL, NULL};

static int32_t vocab_id(const easyrec_tokenizer *t, const char *s, size_t n) {
    int32_t k;
    if (t->kind == EASYREC_TOKENIZER_BPE) {
        k = er_strmap_find(&t->bpe.syms, s, n);
        return k >= 0 ? t->bpe.syms.e[k].val : -1;
    }
    k = er_strmap_find(&t->wp.vocab, s, n);
    return k >= 0 ? t->wp.vocab.e[k].val : -1;
}

static tok_added *find_added(easyrec_tokenizer *t, const char *s, size_t n) {
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].text, s, n)) return &t->added[i];
    return NULL;
}

/* Add or update an added token. id < 0: keep the known id or look it up in the vocabulary.
 * lstrip/rstrip < 0: keep the current flags. */
static int put_added(easyrec_tokenizer *t, const char *s, int32_t id, int lstrip, int rstrip) {
    size_t n = strlen(s);
    if (n == 0) return EASYREC_OK;
    tok_added *a = find_added(t, s, n);
    if (!a) {
        if (t->n_added >= 4096) return er_error(EASYREC_ERR_FORMAT, "more than 4096 added tokens");
        tok_added *na = er_reallocarray(t->added, (size_t)t->n_added + 1, sizeof(*na));
        if (!na) return EASYREC_ERR_NOMEM;
        t->added = na;
        a = &t->added[t->n_added];
        *a = (tok_added){er_strdup(s), n, -1, 0, 0};
        if (!a->text) return EASYREC_ERR_NOMEM;
        t->n_added++;
    }
    if (id >= 0) a->id = id;
    if (lstrip >= 0) a->lstrip = lstrip;
    if (rstrip >= 0) a->rstrip = rstrip;
    return EASYREC_OK;
}

static int added_cb(void *user, const char *content, int32_t id, int lstrip, int rstrip) {
    return put_added(user, content, id, lstrip, rstrip);
}

/* Content of a *_token entry (string or object), with its flags (-1 when not given). */
static const char *token_entry(json_t *v, int *lstrip, int *rstrip) {
    *lstrip = *rstrip = -1;
    if (json_is_string(v)) return json_string_value(v);
    if (!json_is_object(v) || !json_is_string(json_object_get(v, "content"))) return NULL;
    json_t *l = json_object_get(v, "lstrip"), *r = json_object_get(v, "rstrip");
    if (json_is_boolean(l)) *lstrip = json_is_true(l);
    if (json_is_boolean(r)) *rstrip = json_is_true(r);
    return json_string_value(json_object_get(v, "content"));
}

/* Special tokens from defaults + config; fills t->sp. cfg may be NULL. */
static int setup_specials(easyrec_tokenizer *t, json_t *cfg, const char *cfg_path) {
    const char *const *defs = t->kind == EASYREC_TOKENIZER_BPE ? sp_bpe : sp_wp;
    const char *content[SP_N];
    int rc;
    for (int k = 0; k < SP_N; k++) {
        int l = -1, r = -1;
        json_t *v = json_object_get(cfg, sp_keys[k]);
        content[k] = v ? token_entry(v, &l, &r) : defs[k];
        if (!content[k]) continue; /* null in the config: no such token */
        /* RobertaTokenizer makes <mask> lstrip unless a file says otherwise */
        if (l < 0 && k == SP_MASK && t->kind == EASYREC_TOKENIZER_BPE && !find_added(t, content[k], strlen(content[k])))
            l = 1;
        if ((rc = put_added(t, content[k], -1, l, r))) return rc;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(cfg, "additional_special_tokens"), i, v) {
        int l, r;
        const char *c = token_entry(v, &l, &r);
        if (c && (rc = put_added(t, c, -1, l, r))) return rc;
    }
    const char *key;
    json_object_foreach(json_object_get(cfg, "added_tokens_decoder"), key, v) {
        char *end;
        long id = strtol(key, &end, 10);
        int l, r;
        const char *c = token_entry(v, &l, &r);
        if (*end || id < 0 || id >= (1 << 24) || !c)
            return er_error(EASYREC_ERR_FORMAT, "%s: bad added_tokens_decoder entry \"%s\"", cfg_path, key);
        if ((rc = put_added(t, c, (int32_t)id, l, r))) return rc;
    }
    /* Resolve ids; drop tokens without one. */
    int k = 0;
    for (int j = 0; j < t->n_added; j++) {
        tok_added *a = &t->added[j];
        if (a->id < 0) a->id = vocab_id(t, a->text, a->len);
        if (a->id >= 0) t->added[k++] = *a;
        else free(a->text);
    }
    t->n_added = k;
    int32_t *ids[SP_N] = {&t->sp.bos, &t->sp.eos, &t->sp.pad, &t->sp.unk, &t->sp.mask, NULL, NULL};
    for (int s = 0; s < SP_N; s++) {
        if (!ids[s]) continue;
        tok_added *a = content[s] ? find_added(t, content[s], strlen(content[s])) : NULL;
        *ids[s] = a ? a->id : -1;
    }
    if (t->sp.bos < 0 || t->sp.eos < 0)
        return er_error(EASYREC_ERR_FORMAT, "the vocabulary has no %s/%s token", content[SP_CLS] ? content[SP_CLS] : "cls",
                        content[SP_SEP] ? content[SP_SEP] : "sep");
    if (t->kind == EASYREC_TOKENIZER_WORDPIECE && t->sp.unk < 0)
        return er_error(EASYREC_ERR_FORMAT, "the WordPiece vocabulary has no unk token");
    return EASYREC_OK;
}

static int cmp_added(const void *a, const void *b) {
    const tok_added *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return memcmp(x->text, y->text, x->len);
}

static int wp_options(wp_model *m, json_t *cfg, const char *path) {
    json_t *lc = json_object_get(cfg, "do_lower_case"), *sa = json_object_get(cfg, "strip_accents"),
           *cc = json_object_get(cfg, "tokenize_chinese_chars");
    if ((lc && !json_is_boolean(lc)) || (sa && !json_is_boolean(sa) && !json_is_null(sa)) ||
        (cc && !json_is_boolean(cc)))
        return er_error(EASYREC_ERR_FORMAT, "%s: do_lower_case, strip_accents, tokenize_chinese_chars must be booleans",
                        path);
    m->do_lower_case = lc ? json_is_true(lc) : 1;
    m->strip_accents = sa && !json_is_null(sa) ? json_is_true(sa) : -1;
    m->tokenize_chinese_chars = cc ? json_is_true(cc) : 1;
    return EASYREC_OK;
}

static int load_model(easyrec_tokenizer *t, const char *dir) {
    char *vj = er_path_join(dir, "vocab.json"), *mt = er_path_join(dir, "merges.txt");
    char *vt = er_path_join(dir, "vocab.txt"), *tj = er_path_join(dir, "tokenizer.json");
    int rc = EASYREC_OK;
    if (!vj || !mt || !vt || !tj) {
        rc = EASYREC_ERR_NOMEM;
    } else if (er_file_exists(vj) && er_file_exists(mt)) {
        t->kind = EASYREC_TOKENIZER_BPE;
        rc = er_bpe_model_init(&t->bpe, 65536, 65536);
        if (!rc) rc = er_bpe_load_vocab_json(&t->bpe, vj);
        if (!rc) rc = er_bpe_load_merges_txt(&t->bpe, mt);
        if (!rc) rc = er_bpe_model_finish(&t->bpe);
    } else if (er_file_exists(vt)) {
        t->kind = EASYREC_TOKENIZER_WORDPIECE;
        rc = er_wp_load_vocab_txt(&t->wp, vt);
    } else if (er_file_exists(tj)) {
        t->kind = EASYREC_TOKENIZER_BPE;
        rc = er_bpe_model_init(&t->bpe, 65536, 65536);
        if (!rc) rc = er_bpe_load_tokenizer_json(&t->bpe, tj, added_cb, t);
        if (!rc) rc = er_bpe_model_finish(&t->bpe);
    } else {
        rc = er_error(EASYREC_ERR_IO, "%s: no tokenizer files (vocab.json + merges.txt, vocab.txt or tokenizer.json)",
                      dir);
    }
    free(vj);
    free(mt);
    free(vt);
    free(tj);
    return rc;
}

int easyrec_tokenizer_load(const char *dir, easyrec_tokenizer **out) {
    if (!dir || !out) return er_error(EASYREC_ERR_ARG, "easyrec_tokenizer_load: NULL argument");
    *out = NULL;
    char resolved[4096]; /* "org/name" that is not a directory: its Hub cache snapshot */
    if (easyrec_resolve_model(dir, resolved, sizeof resolved)) return EASYREC_ERR_IO;
    dir = resolved;
    easyrec_tokenizer *t = er_calloc(1, sizeof(*t));
    if (!t) return EASYREC_ERR_NOMEM;
    json_t *cfg = NULL;
    char *cp = er_path_join(dir, "tokenizer_config.json");
    int rc = cp ? load_model(t, dir) : EASYREC_ERR_NOMEM;
    if (!rc && er_file_exists(cp)) {
        json_error_t jerr;
        cfg = json_load_file(cp, 0, &jerr);
        if (!cfg || !json_is_object(cfg))
            rc = er_error(EASYREC_ERR_FORMAT, "%s: line %d: %s", cp, jerr.line, cfg ? "not an object" : jerr.text);
    }
    if (!rc && t->kind == EASYREC_TOKENIZER_WORDPIECE) rc = wp_options(&t->wp, cfg, cp);
    if (!rc) rc = setup_specials(t, cfg, cp);
    if (!rc) {
        qsort(t->added, (size_t)t->n_added, sizeof(*t->added), cmp_added);
        t->vocab_size = t->kind == EASYREC_TOKENIZER_BPE ? t->bpe.n_ids : t->wp.n_ids;
        for (int i = 0; i < t->n_added; i++) {
            t->added_first[(uint8_t)t->added[i].text[0]] = 1;
            if (t->added[i].id >= t->vocab_size) t->vocab_size = t->added[i].id + 1;
        }
    }
    json_decref(cfg);
    if (rc) {
        if (cp) er_error_prefix(rc, "tokenizer %s", dir);
        easyrec_tokenizer_free(t);
    } else {
        *out = t;
    }
    free(cp);
    return rc;
}

void easyrec_tokenizer_free(easyrec_tokenizer *tok) {
    if (!tok) return;
    er_bpe_model_free(&tok->bpe);
    er_wp_model_free(&tok->wp);
    for (int i = 0; i < tok->n_added; i++) free(tok->added[i].text);
    free(tok->added);
    free(tok);
}
