/* bpe_load.c — readers of the byte-level BPE files: vocab.json, merges.txt, tokenizer.json.
 *
 * vocab.json is read by a small hand parser (a flat JSON object of string -> non-negative
 * integer; 50k entries in a few milliseconds, where a general JSON tree costs several times
 * that). It accepts exactly JSON (RFC 8259) for that shape, plus a leading UTF-8 BOM; a
 * repeated key keeps its first position and takes the last value, like Python's json.load.
 * merges.txt is read like HF's slow tokenizer does: `read().split("\n")[1:-1]` in text mode
 * (universal newlines), so the first line (the "#version" header) is skipped whatever it is
 * and text after the last newline is ignored; each line is split on whitespace (Python's
 * str.split()) and a line that is not exactly two fields takes a rank but never matches.
 * tokenizer.json (HF tokenizers, model.type "BPE") is read with jansson; its merges may be
 * "a b" strings or ["a", "b"] pairs.
 */
#include <jansson.h>
#include <stdlib.h>

#include "tokenizer/tok_impl.h"

#define VOCAB_MAX_ID (1 << 24)

/* ---- a flat JSON object of string -> integer ------------------------------------------------- */

typedef struct {
    const char *s, *end, *path;
    char *buf; /* decoded key */
    size_t cap;
} jp;

static void jp_ws(jp *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static int jp_fail(jp *p, const char *what, const char *start) {
    return er_error(EASYREC_ERR_FORMAT, "%s: %s at byte %zu", p->path, what, (size_t)(p->s - start));
}

static int hex4(const char *s, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v << 4 | (uint32_t)d;
    }
    return 0;
}

/* Parse a string at p->s (which is at '"') into p->buf; *len = its byte length. */
static int jp_string(jp *p, size_t *len, const char *start) {
    size_t n = 0;
    p->s++;
    for (;;) {
        if (p->s >= p->end) return jp_fail(p, "unterminated string", start);
        if (n + 8 > p->cap) {
            size_t ncap = p->cap ? p->cap * 2 : 256;
            char *nb = er_reallocarray(p->buf, ncap, 1);
            if (!nb) return EASYREC_ERR_NOMEM;
            p->buf = nb;
            p->cap = ncap;
        }
        unsigned char c = (unsigned char)*p->s;
        if (c == '"') break;
        if (c < 0x20) return jp_fail(p, "control character in string", start);
        if (c != '\\') {
            p->buf[n++] = (char)c;
            p->s++;
            continue;
        }
        if (p->end - p->s < 2) return jp_fail(p, "bad escape", start);
        char e = p->s[1];
        p->s += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            p->buf[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        uint32_t cp, lo;
        if (e != 'u' || p->end - p->s < 4 || hex4(p->s, &cp)) return jp_fail(p, "bad escape", start);
        p->s += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u' &&
            !hex4(p->s + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p->s += 6;
        }
        /* A lone surrogate is kept as its 3-byte form: such a key can never match a text. */
        n += (size_t)utf8_encode(cp, (uint8_t *)p->buf + n);
    }
    p->s++;
    *len = n;
    return EASYREC_OK;
}

int er_bpe_parse_vocab_json(bpe_model *m, const char *data, size_t len, const char *path) {
    int rc = EASYREC_OK;
    jp p = {data, data + len, path, NULL, 0};
    if (!er_utf8_valid((const uint8_t *)data, len)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: not valid UTF-8", path);
        goto out;
    }
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) p.s += 3;
    jp_ws(&p);
    if (p.s >= p.end || *p.s != '{') {
        rc = jp_fail(&p, "expected a JSON object", data);
        goto out;
    }
    p.s++;
    jp_ws(&p);
    int first = 1;
    while (!(p.s < p.end && *p.s == '}')) {
        if (!first) {
            if (p.s >= p.end || *p.s != ',') {
                rc = jp_fail(&p, "expected ',' or '}'", data);
                goto out;
            }
            p.s++;
            jp_ws(&p);
        }
        first = 0;
        size_t klen = 0;
        if (p.s >= p.end || *p.s != '"') {
            rc = jp_fail(&p, "expected a string key", data);
            goto out;
        }
        if ((rc = jp_string(&p, &klen, data))) goto out;
        jp_ws(&p);
        if (p.s >= p.end || *p.s != ':') {
            rc = jp_fail(&p, "expected ':'", data);
            goto out;
        }
        p.s++;
        jp_ws(&p);
        int64_t v = 0;
        const char *d0 = p.s;
        if (p.s < p.end && *p.s == '0') {
            p.s++;
        } else {
            while (p.s < p.end && *p.s >= '0' && *p.s <= '9' && v <= VOCAB_MAX_ID) v = v * 10 + (*p.s++ - '0');
        }
        if (p.s == d0 || (p.s < p.end && strchr("0123456789.eE-+", *p.s))) {
            rc = jp_fail(&p, "token id is not a non-negative integer below 2^24", data);
            goto out;
        }
        if (v >= VOCAB_MAX_ID) {
            rc = jp_fail(&p, "token id too large", data);
            goto out;
        }
        if ((rc = er_bpe_model_add_token(m, p.buf, klen, (int32_t)v))) goto out;
        jp_ws(&p);
    }
    p.s++;
    jp_ws(&p);
    if (p.s != p.end) rc = jp_fail(&p, "trailing data after the object", data);
out:
    free(p.buf);
    return rc;
}

int er_bpe_load_vocab_json(bpe_model *m, const char *path) {
    char *data;
    size_t len;
    int rc = er_read_file(path, &data, &len);
    if (rc) return rc;
    rc = er_bpe_parse_vocab_json(m, data, len, path);
    free(data);
    return rc;
}

/* ---- merges.txt --------------------------------------------------------------------------- */

/* Split line[0..n) on Python whitespace; handles the two-field case, else a non-pair rank. */
static int add_merge_line(bpe_model *m, const char *line, size_t n) {
    const uint8_t *s = (const uint8_t *)line;
    size_t fs[3], fe[3], nf = 0, i = 0, adv;
    while (i < n) {
        while (i < n && uc_is_py_space(utf8_decode(s + i, n - i, &adv))) i += adv;
        if (i >= n) break;
        size_t st = i;
        while (i < n && !uc_is_py_space(utf8_decode(s + i, n - i, &adv))) i += adv;
        if (nf < 3) {
            fs[nf] = st;
            fe[nf] = i;
        }
        nf++;
    }
    if (nf != 2) return er_bpe_model_add_merge(m, NULL, 0, NULL, 0);
    return er_bpe_model_add_merge(m, line + fs[0], fe[0] - fs[0], line + fs[1], fe[1] - fs[1]);
}

int er_bpe_parse_merges_txt(bpe_model *m, const char *data, size_t len, const char *path) {
    int rc = EASYREC_OK;
    if (!er_utf8_valid((const uint8_t *)data, len)) return er_error(EASYREC_ERR_FORMAT, "%s: not valid UTF-8", path);
    /* Lines end at \n, \r\n or \r; the first line and the text after the last end are dropped. */
    size_t i = 0, line_no = 0;
    while (i < len) {
        size_t st = i;
        while (i < len && data[i] != '\n' && data[i] != '\r') i++;
        if (i >= len) break; /* no line end: Python's [:-1] drops it */
        size_t en = i;
        i += (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n') ? 2 : 1;
        if (line_no++ == 0) continue;
        if ((rc = add_merge_line(m, data + st, en - st))) return er_error_prefix(rc, "%s: line %zu", path, line_no);
    }
    return rc;
}

int er_bpe_load_merges_txt(bpe_model *m, const char *path) {
    char *data;
    size_t len;
    int rc = er_read_file(path, &data, &len);
    if (rc) return rc;
    rc = er_bpe_parse_merges_txt(m, data, len, path);
    free(data);
    return rc;
}

/* ---- tokenizer.json --------------------------------------------------------------------------- */

static int tj_merges(bpe_model *m, json_t *merges, const char *path) {
    size_t i;
    json_t *it;
    json_array_foreach(merges, i, it) {
        int rc;
        if (json_is_string(it)) {
            rc = add_merge_line(m, json_string_value(it), json_string_length(it));
        } else if (json_is_array(it) && json_array_size(it) == 2 && json_is_string(json_array_get(it, 0)) &&
                   json_is_string(json_array_get(it, 1))) {
            json_t *a = json_array_get(it, 0), *b = json_array_get(it, 1);
            rc = er_bpe_model_add_merge(m, json_string_value(a), json_string_length(a), json_string_value(b),
                                     json_string_length(b));
        } else {
            return er_error(EASYREC_ERR_FORMAT, "%s: model.merges[%zu] is neither \"a b\" nor [a, b]", path, i);
        }
        if (rc) return rc;
    }
    return EASYREC_OK;
}

int er_bpe_load_tokenizer_json(bpe_model *m, const char *path, bpe_added_fn added, void *user) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return er_error(EASYREC_ERR_FORMAT, "%s: line %d: %s", path, jerr.line, jerr.text);
    int rc = EASYREC_OK;
    json_t *model = json_object_get(root, "model");
    json_t *type = json_object_get(model, "type");
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(model) || (type && !json_is_string(type))) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: no \"model\" object", path);
        goto out;
    }
    if (type && strcmp(json_string_value(type), "BPE")) {
        rc = er_error(EASYREC_ERR_UNSUPPORTED, "%s: model type %s (only BPE is read from tokenizer.json)", path,
                      json_string_value(type));
        goto out;
    }
    if (!json_is_object(vocab) || !json_is_array(merges)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: model.vocab must be an object and model.merges an array", path);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= VOCAB_MAX_ID) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: model.vocab[\"%s\"] is not an id in [0, 2^24)", path, key);
            goto out;
        }
        if ((rc = er_bpe_model_add_token(m, key, strlen(key), (int32_t)id))) goto out;
    }
    if ((rc = tj_merges(m, merges, path))) goto out;
    size_t i;
    json_t *at;
    json_array_foreach(json_object_get(root, "added_tokens"), i, at) {
        json_t *c = json_object_get(at, "content"), *id = json_object_get(at, "id");
        if (!json_is_string(c) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= VOCAB_MAX_ID) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: added_tokens[%zu] needs a string content and an id", path, i);
            goto out;
        }
        if ((rc = added(user, json_string_value(c), (int32_t)json_integer_value(id),
                        json_is_true(json_object_get(at, "lstrip")), json_is_true(json_object_get(at, "rstrip")))))
            goto out;
    }
out:
    json_decref(root);
    return rc;
}
