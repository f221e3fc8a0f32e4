/* import_read.c — read one raw interaction file (CSV, TSV, whitespace, "::" or JSON lines)
 * into rows of interned user/item ids with optional rating and timestamp (import.h). */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "data/import.h"
#include "tokenizer/hmap.h"

static const char *const role_names[4][10] = {
    {"user", "user_id", "userid", "uid", "reviewerid", "reviewer_id", "visitorid", NULL},
    {"item", "item_id", "itemid", "iid", "movieid", "movie_id", "business_id", "asin", "parent_asin", NULL},
    {"rating", "score", "stars", "overall", "rate", NULL},
    {"timestamp", "time", "ts", "unixreviewtime", "unix_review_time", "date", NULL},
};

int er_import_column_role(const char *name, size_t len) {
    while (len && isspace((unsigned char)*name)) name++, len--;
    while (len && isspace((unsigned char)name[len - 1])) len--;
    if (len >= 2 && name[0] == '"' && name[len - 1] == '"') name++, len -= 2;
    const char *colon = memchr(name, ':', len); /* RecBole "user_id:token" */
    if (colon) len = (size_t)(colon - name);
    for (int r = 0; r < 4; r++)
        for (int k = 0; role_names[r][k]; k++)
            if (strlen(role_names[r][k]) == len && !strncasecmp(role_names[r][k], name, len)) return r;
    return -1;
}

typedef struct {
    const char *path;
    strmap users, items;
    er_raw_inter *out;
    size_t cap;
} reader;

static int add_row(reader *rd, const char *u, size_t ul, const char *it, size_t il, double rating, double tsd,
                   int64_t line) {
    if (!(fabs(tsd) < 9.2e18))
        return er_error(EASYREC_ERR_FORMAT, "%s:%lld: timestamp out of range", rd->path, (long long)line);
    int64_t ts = (int64_t)tsd;
    if (!ul || !il) return er_error(EASYREC_ERR_FORMAT, "%s:%lld: empty %s id", rd->path, (long long)line, ul ? "item" : "user");
    if (memchr(u, '\t', ul) || memchr(it, '\t', il) || memchr(u, '\n', ul) || memchr(it, '\n', il))
        return er_error(EASYREC_ERR_FORMAT, "%s:%lld: an id contains a tab or newline", rd->path, (long long)line);
    int added;
    int32_t a = er_strmap_intern(&rd->users, u, ul, 0, &added);
    if (a < 0) return a;
    int32_t b = er_strmap_intern(&rd->items, it, il, 0, &added);
    if (b < 0) return b;
    er_raw_inter *o = rd->out;
    if (o->n == rd->cap) {
        size_t c = rd->cap ? rd->cap * 2 : 4096;
        er_raw_row *nr = er_reallocarray(o->rows, c, sizeof(*nr));
        if (!nr) return EASYREC_ERR_NOMEM;
        o->rows = nr;
        rd->cap = c;
    }
    o->rows[o->n++] = (er_raw_row){a, b, rating, ts, line};
    return EASYREC_OK;
}

static int parse_num(const char *s, size_t n, double *v) {
    char tmp[64];
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    if (!n || n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    *v = strtod(tmp, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

/* ---- delimited text ------------------------------------------------------------------- */
typedef struct {
    const char *s;
    size_t n;
} span;

/* Split line [s, e) into at most max fields; quotes ("...", "" inside) honoured for ','. */
static int split_fields(const char *s, const char *e, int delim, span *f, int max) {
    int nf = 0;
    if (delim == ' ') {
        while (s < e && nf < max) {
            while (s < e && (*s == ' ' || *s == '\t')) s++;
            if (s == e) break;
            const char *b = s;
            while (s < e && *s != ' ' && *s != '\t') s++;
            f[nf++] = (span){b, (size_t)(s - b)};
        }
        return nf;
    }
    for (;;) {
        const char *b = s;
        if (delim == ',' && s < e && *s == '"') {
            s++;
            while (s < e && !(*s == '"' && (s + 1 == e || s[1] != '"'))) s += (*s == '"') ? 2 : 1;
            if (s < e) s++;
        }
        if (delim == ':') {
            while (s < e && !(s + 1 < e && s[0] == ':' && s[1] == ':')) s++;
        } else {
            while (s < e && *s != delim) s++;
        }
        if (nf < max) f[nf++] = (span){b, (size_t)(s - b)};
        if (s >= e) break;
        s += delim == ':' ? 2 : 1;
    }
    return nf;
}

/* Copy a field without its surrounding quotes, undoubling "" (into buf, NUL-terminated). */
static size_t unquote(span f, char *buf, size_t cap) {
    while (f.n && (f.s[0] == ' ')) f.s++, f.n--;
    while (f.n && (f.s[f.n - 1] == ' ')) f.n--;
    size_t w = 0;
    if (f.n >= 2 && f.s[0] == '"' && f.s[f.n - 1] == '"') {
        for (size_t k = 1; k + 1 < f.n && w + 1 < cap; k++) {
            buf[w++] = f.s[k];
            if (f.s[k] == '"' && k + 2 < f.n && f.s[k + 1] == '"') k++;
        }
    } else {
        for (size_t k = 0; k < f.n && w + 1 < cap; k++) buf[w++] = f.s[k];
    }
    buf[w] = 0;
    return w;
}

static int read_delimited(reader *rd, const char *buf, size_t len) {
    const char *p = buf, *end = buf + len;
    int delim = 0, col[4] = {0, 1, -1, -1}, line_no = 0, header_done = 0;
    char ubuf[1024], ibuf[1024];
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        const char *next = e < end ? e + 1 : end;
        if (e > p && e[-1] == '\r') e--;
        line_no++;
        const char *q = p;
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q == e || *q == '#') {
            p = next;
            continue;
        }
        if (!delim) { /* first data line decides */
            delim = memchr(p, '\t', (size_t)(e - p)) ? '\t'
                    : memmem(p, (size_t)(e - p), "::", 2) ? ':'
                    : memchr(p, ',', (size_t)(e - p)) ? ','
                                                      : ' ';
        }
        span f[64];
        int nf = split_fields(p, e, delim, f, 64);
        if (!header_done) {
            header_done = 1;
            int roles[4] = {-1, -1, -1, -1}, named = 0;
            for (int k = 0; k < nf; k++) {
                int r = er_import_column_role(f[k].s, f[k].n);
                if (r >= 0 && roles[r] < 0) roles[r] = k, named++;
            }
            double dummy;
            if (named && (roles[0] >= 0 || roles[1] >= 0) && parse_num(f[0].s, f[0].n, &dummy) != 0) {
                if (roles[0] < 0 || roles[1] < 0)
                    return er_error(EASYREC_ERR_FORMAT, "%s:%d: header names no %s column", rd->path, line_no,
                                    roles[0] < 0 ? "user" : "item");
                memcpy(col, roles, sizeof col);
                p = next;
                continue;
            }
            if (nf >= 3) col[2] = 2;
            if (nf >= 4) col[3] = 3;
            rd->out->has_rating = col[2] >= 0;
            rd->out->has_time = col[3] >= 0;
        }
        rd->out->has_rating = col[2] >= 0;
        rd->out->has_time = col[3] >= 0;
        int need = col[0] > col[1] ? col[0] : col[1];
        for (int r = 2; r < 4; r++)
            if (col[r] > need) need = col[r];
        if (nf <= need)
            return er_error(EASYREC_ERR_FORMAT, "%s:%d: %d fields, expected at least %d", rd->path, line_no, nf,
                            need + 1);
        double rating = NAN, ts = 0;
        if (col[2] >= 0 && parse_num(f[col[2]].s, f[col[2]].n, &rating))
            return er_error(EASYREC_ERR_FORMAT, "%s:%d: rating is not a number", rd->path, line_no);
        if (col[3] >= 0 && parse_num(f[col[3]].s, f[col[3]].n, &ts))
            return er_error(EASYREC_ERR_FORMAT, "%s:%d: timestamp is not a number", rd->path, line_no);
        size_t ul = unquote(f[col[0]], ubuf, sizeof ubuf), il = unquote(f[col[1]], ibuf, sizeof ibuf);
        int rc = add_row(rd, ubuf, ul, ibuf, il, rating, ts, line_no);
        if (rc) return rc;
        p = next;
    }
    return EASYREC_OK;
}

/* ---- JSON lines ----------------------------------------------------------------------- */
/* The value of the first key of object o with role r (NULL if none). */
static json_t *role_value(json_t *o, int r) {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) if (er_import_column_role(k, strlen(k)) == r) return v;
    return NULL;
}

/* An id value as text: strings as they are, integers in decimal. */
int er_import_json_id(json_t *v, char *buf, size_t cap, size_t *len) {
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        if (n + 1 > cap) return -1;
        memcpy(buf, json_string_value(v), n + 1);
        *len = n;
        return 0;
    }
    if (json_is_integer(v)) {
        *len = (size_t)snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
        return 0;
    }
    return -1;
}

static int read_jsonl(reader *rd, const char *buf, size_t len) {
    const char *p = buf, *end = buf + len;
    int line_no = 0;
    char ubuf[1024], ibuf[1024];
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        const char *next = e < end ? e + 1 : end;
        line_no++;
        const char *q = p;
        while (q < e && isspace((unsigned char)*q)) q++;
        if (q == e) {
            p = next;
            continue;
        }
        json_error_t jerr;
        json_t *o = json_loadb(p, (size_t)(e - p), 0, &jerr);
        if (!o || !json_is_object(o)) {
            json_decref(o);
            return er_error(EASYREC_ERR_FORMAT, "%s:%d: not a JSON object (%s)", rd->path, line_no, o ? "" : jerr.text);
        }
        json_t *uv = role_value(o, 0), *iv = role_value(o, 1), *rv = role_value(o, 2), *tv = role_value(o, 3);
        size_t ul, il;
        int rc = EASYREC_OK;
        double rating = NAN, ts = 0;
        if (!uv || er_import_json_id(uv, ubuf, sizeof ubuf, &ul))
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: no user id (string or integer \"user_id\")", rd->path, line_no);
        else if (!iv || er_import_json_id(iv, ibuf, sizeof ibuf, &il))
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: no item id (string or integer \"item_id\")", rd->path, line_no);
        else if (rv && !json_is_number(rv) && !(json_is_string(rv) && !parse_num(json_string_value(rv), json_string_length(rv), &rating)))
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: \"rating\" is not a number", rd->path, line_no);
        else if (tv && !json_is_number(tv) && !(json_is_string(tv) && !parse_num(json_string_value(tv), json_string_length(tv), &ts)))
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%d: \"timestamp\" is not a number", rd->path, line_no);
        if (!rc) {
            if (rv && json_is_number(rv)) rating = json_number_value(rv);
            if (tv && json_is_number(tv)) ts = json_number_value(tv);
            if (rv) rd->out->has_rating = 1;
            if (tv) rd->out->has_time = 1;
            rc = add_row(rd, ubuf, ul, ibuf, il, rating, ts, line_no);
        }
        json_decref(o);
        if (rc) return rc;
        p = next;
    }
    return EASYREC_OK;
}

static char **names_of(const strmap *m) {
    char **v = er_calloc(m->n ? m->n : 1, sizeof(*v));
    if (!v) return NULL;
    for (uint32_t k = 0; k < m->n; k++)
        if (!(v[k] = er_strdup(strmap_key(m, (int32_t)k)))) {
            for (uint32_t j = 0; j < k; j++) free(v[j]);
            free(v);
            return NULL;
        }
    return v;
}

int er_import_parse(const char *bytes, size_t len, const char *what, int json, er_raw_inter *out) {
    memset(out, 0, sizeof(*out));
    reader rd = {.path = what, .out = out};
    const char *text = bytes;
    if (len >= 3 && !memcmp(bytes, "\xEF\xBB\xBF", 3)) text += 3, len -= 3; /* a UTF-8 BOM (Excel's CSV) */
    int rc;
    if ((rc = er_strmap_init(&rd.users, 1024)) || (rc = er_strmap_init(&rd.items, 1024))) goto done;
    const char *q = text;
    while (q < text + len && isspace((unsigned char)*q)) q++;
    if (json < 0) json = q < text + len && *q == '{';
    rc = json ? read_jsonl(&rd, text, len) : read_delimited(&rd, text, len);
    if (!rc && !out->n) rc = er_error(EASYREC_ERR_FORMAT, "%s: no interactions", what);
    if (!rc) {
        out->n_user_names = (int32_t)rd.users.n;
        out->n_item_names = (int32_t)rd.items.n;
        if (!(out->user_names = names_of(&rd.users)) || !(out->item_names = names_of(&rd.items))) rc = EASYREC_ERR_NOMEM;
    }
done:
    if (rd.users.slots) er_strmap_free(&rd.users);
    if (rd.items.slots) er_strmap_free(&rd.items);
    if (rc) er_raw_inter_free(out);
    return rc;
}

int er_import_read(const char *path, er_raw_inter *out) {
    memset(out, 0, sizeof(*out));
    char *buf;
    size_t len;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    size_t pl = strlen(path);
    int json = (pl > 6 && !strcmp(path + pl - 6, ".jsonl")) || (pl > 5 && !strcmp(path + pl - 5, ".json")) ? 1 : -1;
    rc = er_import_parse(buf, len, path, json, out);
    free(buf);
    return rc;
}

void er_raw_inter_free(er_raw_inter *r) {
    if (!r) return;
    for (int32_t k = 0; r->user_names && k < r->n_user_names; k++) free(r->user_names[k]);
    for (int32_t k = 0; r->item_names && k < r->n_item_names; k++) free(r->item_names[k]);
    free(r->user_names);
    free(r->item_names);
    free(r->rows);
    memset(r, 0, sizeof(*r));
}
