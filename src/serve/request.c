/* request.c — parse and validate route bodies (request.h). */
#include "serve/request.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "serve/catalog.h"

int er_http_error(er_http_err *err, int status, const char *type, const char *code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->type = type;
    err->code = code;
    return status;
}

char *er_http_error_body(const er_http_err *err) {
    json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", err->message, "type",
                          err->type ? err->type : "invalid_request_error", "code", err->code ? err->code : "error");
    char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    return s;
}

void er_req_free(er_req *r) {
    if (!r) return;
    json_decref(r->root);
    free(r->texts);
    free(r->lens);
    free(r->ids);
    free(r->meta);
    memset(r, 0, sizeof(*r));
}

#define BAD(code, ...) er_http_error(err, 400, "invalid_request_error", code, __VA_ARGS__)

static int load(const char *body, size_t len, er_req *r, er_http_err *err) {
    memset(r, 0, sizeof(*r));
    r->normalize = 1;
    r->k = 20;
    json_error_t je;
    r->root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!r->root) return BAD("invalid_json", "body is not valid JSON: %s (at byte %d)", je.text, je.position);
    if (!json_is_object(r->root)) return BAD("invalid_json", "body must be a JSON object");
    return 0;
}

static int json_id(json_t *v, er_json_id *out) {
    if (json_is_integer(v)) {
        snprintf(out->text, sizeof out->text, "%" PRId64, (int64_t)json_integer_value(v));
        out->is_int = 1;
        return 1;
    }
    if (!json_is_string(v)) return 0;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n >= sizeof out->text || memchr(s, 0, n)) return 0;
    memcpy(out->text, s, n + 1);
    out->is_int = er_id_is_int(s, n);
    return 1;
}

/* a string or array of strings field into r->texts */
static int texts_field(er_req *r, const char *name, int max_inputs, er_http_err *err) {
    json_t *in = json_object_get(r->root, name);
    if (!in) return BAD("missing_field", "missing field \"%s\"", name);
    size_t n = json_is_array(in) ? json_array_size(in) : 1;
    if (!json_is_array(in) && !json_is_string(in))
        return BAD("invalid_type", "\"%s\" must be a string or an array of strings", name);
    if (n == 0) return BAD("invalid_value", "\"%s\" is empty", name);
    if (n > (size_t)max_inputs)
        return er_http_error(err, 413, "invalid_request_error", "too_many_inputs",
                             "\"%s\" has %zu inputs; at most %d per request (--max-client-batch)", name, n, max_inputs);
    r->texts = er_calloc(n, sizeof(*r->texts));
    r->lens = er_calloc(n, sizeof(*r->lens));
    if (!r->texts || !r->lens) return er_http_error(err, 500, "server_error", "out_of_memory", "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(in) ? json_array_get(in, i) : in;
        if (!json_is_string(s)) return BAD("invalid_type", "\"%s\"[%zu] must be a string", name, i);
        r->texts[i] = json_string_value(s);
        r->lens[i] = json_string_length(s);
    }
    r->n = (int)n;
    return 0;
}

static int bool_field(er_req *r, const char *name, int *dst, er_http_err *err) {
    json_t *v = json_object_get(r->root, name);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return BAD("invalid_type", "\"%s\" must be true or false", name);
    *dst = json_is_true(v);
    return 0;
}

int er_parse_embeddings(const char *body, size_t len, int max_inputs, int dim, er_req *r, er_http_err *err) {
    int st = load(body, len, r, err);
    if (st || (st = texts_field(r, "input", max_inputs, err))) return st;
    json_t *f = json_object_get(r->root, "encoding_format"), *m = json_object_get(r->root, "model"),
           *d = json_object_get(r->root, "dimensions");
    if (f && !json_is_null(f)) {
        const char *s = json_string_value(f);
        if (!s || (strcmp(s, "float") && strcmp(s, "base64")))
            return BAD("invalid_value", "\"encoding_format\" must be \"float\" or \"base64\"");
        r->base64 = !strcmp(s, "base64");
    }
    if (m && !json_is_null(m) && !json_is_string(m)) return BAD("invalid_type", "\"model\" must be a string");
    r->model = json_string_value(m);
    if (d && !json_is_null(d) && (!json_is_integer(d) || json_integer_value(d) != dim))
        return BAD("invalid_value", "\"dimensions\" must be %d (this model's width)", dim);
    return 0;
}

int er_parse_tei(const char *body, size_t len, int max_inputs, er_req *r, er_http_err *err) {
    int st = load(body, len, r, err);
    if (st || (st = texts_field(r, "inputs", max_inputs, err))) return st;
    if ((st = bool_field(r, "normalize", &r->normalize, err))) return st;
    return bool_field(r, "truncate", &r->truncate, err);
}

static int ids_field(er_req *r, const char *name, int max_ids, int required, er_http_err *err) {
    json_t *a = json_object_get(r->root, name);
    if (!a || json_is_null(a)) return required ? BAD("missing_field", "missing field \"%s\"", name) : 0;
    if (!json_is_array(a)) return BAD("invalid_type", "\"%s\" must be an array of ids", name);
    size_t n = json_array_size(a);
    if (required && n == 0) return BAD("invalid_value", "\"%s\" is empty", name);
    if (n > (size_t)max_ids)
        return er_http_error(err, 413, "invalid_request_error", "too_many_ids", "\"%s\" has %zu ids; at most %d", name, n,
                             max_ids);
    r->ids = er_calloc(n ? n : 1, sizeof(*r->ids));
    if (!r->ids) return er_http_error(err, 500, "server_error", "out_of_memory", "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!json_id(json_array_get(a, i), &r->ids[i]))
            return BAD("invalid_type", "\"%s\"[%zu] must be an integer or a non-empty string of < 128 bytes", name, i);
    r->n_ids = (int)n;
    return 0;
}

static int profile_field(er_req *r, int required, er_http_err *err) {
    json_t *p = json_object_get(r->root, "profile");
    if (!p || json_is_null(p)) return required ? BAD("missing_field", "missing field \"profile\"") : 0;
    if (!json_is_string(p)) return BAD("invalid_type", "\"profile\" must be a string");
    r->profile = json_string_value(p);
    r->profile_len = json_string_length(p);
    return 0;
}

int er_parse_recommend(const char *body, size_t len, int max_k, int max_ids, er_req *r, er_http_err *err) {
    int st = load(body, len, r, err);
    if (st || (st = profile_field(r, 0, err))) return st;
    json_t *u = json_object_get(r->root, "user_id"), *k = json_object_get(r->root, "k");
    if (u && !json_is_null(u)) {
        if (!json_id(u, &r->user)) return BAD("invalid_type", "\"user_id\" must be an integer or a non-empty string of < 128 bytes");
        r->has_user = 1;
    }
    if (!!r->profile == r->has_user) return BAD("invalid_value", "give exactly one of \"profile\" and \"user_id\"");
    if (k && !json_is_null(k)) {
        if (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > max_k)
            return BAD("invalid_value", "\"k\" must be an integer in 1..%d", max_k);
        r->k = (int)json_integer_value(k);
    }
    if (r->k > max_k) r->k = max_k;
    if ((st = bool_field(r, "exclude_seen", &r->exclude_seen, err))) return st;
    return ids_field(r, "exclude", max_ids, 0, err);
}

int er_parse_profile(const char *body, size_t len, er_req *r, er_http_err *err) {
    int st = load(body, len, r, err);
    return st ? st : profile_field(r, 1, err);
}

int er_parse_interactions(const char *body, size_t len, int max_ids, er_req *r, er_http_err *err) {
    int st = load(body, len, r, err);
    return st ? st : ids_field(r, "items", max_ids, 1, err);
}

int er_parse_item(const char *body, size_t len, er_req *r, er_http_err *err) {
    int st = load(body, len, r, err);
    if (st || (st = profile_field(r, 1, err))) return st;
    json_t *m = json_deep_copy(r->root);
    if (!m) return er_http_error(err, 500, "server_error", "out_of_memory", "out of memory");
    json_object_del(m, "profile");
    json_object_del(m, "item_id");
    r->meta = json_dumps(m, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(m);
    return r->meta ? 0 : er_http_error(err, 500, "server_error", "out_of_memory", "out of memory");
}

int er_path_id(const char *s, size_t len, er_json_id *out, er_http_err *err) {
    if (len == 0 || len >= sizeof out->text) return BAD("invalid_id", "ids are 1..127 bytes");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return BAD("invalid_id", "ids may not contain control characters");
    memcpy(out->text, s, len);
    out->text[len] = 0;
    out->is_int = er_id_is_int(s, len);
    return 0;
}

void er_base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = 0;
}
