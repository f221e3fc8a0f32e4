/* profiles.c — profile text readers (see profiles.h). jansson parses each JSON line;
 * invalid UTF-8 inside a JSON string is rejected by jansson with the line number. */
#include "data/profiles.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

void er_texts_free(er_texts *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) free(t->text[i]);
    free(t->text);
    free(t->len);
    memset(t, 0, sizeof(*t));
}

static int texts_push(er_texts *t, size_t *cap, char *s, size_t len) {
    if (t->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        char **nt = er_reallocarray(t->text, nc, sizeof(*nt));
        if (!nt) return EASYREC_ERR_NOMEM;
        t->text = nt;
        size_t *nl = er_reallocarray(t->len, nc, sizeof(*nl));
        if (!nl) return EASYREC_ERR_NOMEM;
        t->len = nl;
        *cap = nc;
    }
    t->text[t->n] = s;
    t->len[t->n] = len;
    t->n++;
    return EASYREC_OK;
}

/* next line of buf[*pos..len): returns its start, sets *ll to its length without \r\n */
static const char *next_line(const char *buf, size_t len, size_t *pos, size_t *ll) {
    if (*pos >= len) return NULL;
    const char *s = buf + *pos;
    const char *nl = memchr(s, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - s) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    if (n > 0 && s[n - 1] == '\r') n--;
    *ll = n;
    return s;
}

/* A UTF-8 byte-order mark at the start of a file (editors on Windows write one) is skipped. */
static size_t bom_length(const char *buf, size_t len) {
    return len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3) ? 3 : 0;
}

int er_profiles_read_lines(const char *path, er_texts *out) {
    memset(out, 0, sizeof(*out));
    char *buf;
    size_t len, pos = 0, cap = 0, ll;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    pos = bom_length(buf, len);
    const char *s;
    while ((s = next_line(buf, len, &pos, &ll))) {
        char *t = er_mallocarray(ll + 1, 1);
        if (!t) {
            rc = EASYREC_ERR_NOMEM;
            break;
        }
        memcpy(t, s, ll);
        t[ll] = 0;
        if ((rc = texts_push(out, &cap, t, ll))) {
            free(t);
            break;
        }
    }
    free(buf);
    if (rc) er_texts_free(out);
    return rc;
}

int er_profiles_read_jsonl(const char *path, er_texts *out) {
    memset(out, 0, sizeof(*out));
    char *buf;
    size_t len, pos = 0, cap = 0, ll, lineno = 0;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    pos = bom_length(buf, len);
    int64_t *ids = NULL;
    size_t idcap = 0;
    int with_id = -1; /* unknown until the first object */
    const char *s;
    while ((s = next_line(buf, len, &pos, &ll))) {
        lineno++;
        size_t k = 0;
        while (k < ll && (s[k] == ' ' || s[k] == '\t')) k++;
        if (k == ll) continue;
        json_error_t e;
        json_t *o = json_loadb(s, ll, 0, &e);
        if (!o || !json_is_object(o)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%zu: %s", path, lineno, o ? "not a JSON object" : e.text);
            json_decref(o);
            goto fail;
        }
        json_t *p = json_object_get(o, "profile");
        json_t *id = json_object_get(o, "user_id");
        if (!id) id = json_object_get(o, "item_id");
        if (!json_is_string(p)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%zu: missing string field \"profile\"", path, lineno);
            json_decref(o);
            goto fail;
        }
        int this_id = id != NULL;
        if (with_id < 0) with_id = this_id;
        if (this_id != with_id || (id && !json_is_integer(id))) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s:%zu: %s", path, lineno,
                          id && !json_is_integer(id) ? "id is not an integer"
                                                     : "some lines have user_id/item_id and some do not");
            json_decref(o);
            goto fail;
        }
        size_t plen = json_string_length(p);
        char *t = er_mallocarray(plen + 1, 1);
        if (!t) {
            rc = EASYREC_ERR_NOMEM;
            json_decref(o);
            goto fail;
        }
        memcpy(t, json_string_value(p), plen);
        t[plen] = 0;
        if (with_id) {
            if (out->n == idcap) {
                idcap = idcap ? idcap * 2 : 1024;
                int64_t *ni = er_reallocarray(ids, idcap, sizeof(*ni));
                if (!ni) {
                    free(t);
                    json_decref(o);
                    rc = EASYREC_ERR_NOMEM;
                    goto fail;
                }
                ids = ni;
            }
            ids[out->n] = json_integer_value(id);
        }
        json_decref(o);
        if ((rc = texts_push(out, &cap, t, plen))) {
            free(t);
            goto fail;
        }
    }
    if (with_id == 1) {
        /* place row with id k at k; ids must be a permutation of 0..n-1 */
        size_t n = out->n;
        char **nt = er_calloc(n, sizeof(*nt));
        size_t *nl = er_calloc(n, sizeof(*nl));
        if (!nt || !nl) {
            free(nt);
            free(nl);
            rc = EASYREC_ERR_NOMEM;
            goto fail;
        }
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || (uint64_t)ids[i] >= n || nt[ids[i]]) {
                rc = er_error(EASYREC_ERR_FORMAT, "%s: id %lld is %s (ids must be 0..%zu, each once)", path,
                              (long long)ids[i], ids[i] >= 0 && (uint64_t)ids[i] < n ? "repeated" : "out of range",
                              n - 1);
                free(nt);
                free(nl);
                goto fail;
            }
            nt[ids[i]] = out->text[i];
            nl[ids[i]] = out->len[i];
        }
        free(out->text);
        free(out->len);
        out->text = nt;
        out->len = nl;
        out->has_ids = 1;
    }
    free(ids);
    free(buf);
    return EASYREC_OK;
fail:
    free(ids);
    free(buf);
    er_texts_free(out);
    return rc;
}
