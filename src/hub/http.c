/* http.c — the few HTTP operations the Hub client needs, over libcurl: one request without
 * redirects (metadata, as huggingface_hub's HEAD with follow_relative_redirects done by the
 * caller) and a resumable download that follows redirects (the CDN). The token only ever
 * goes into the Authorization header; curl does not send it on to another host. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "hub/hub.h"

struct er_http {
    CURL *curl;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
};

er_http *er_http_new(const char *token) {
    er_http *h = er_calloc(1, sizeof *h);
    if (!h) return NULL;
    h->curl = curl_easy_init();
    if (!h->curl) {
        free(h);
        er_error(EASYREC_ERR_NOMEM, "curl_easy_init failed");
        return NULL;
    }
    h->headers = curl_slist_append(NULL, "User-Agent: easyrec/" EASYREC_VERSION "; hf_hub-compatible");
    if (token && *token) {
        size_t n = strlen(token) + 32;
        char *a = er_mallocarray(n, 1);
        if (a) {
            snprintf(a, n, "Authorization: Bearer %s", token);
            h->headers = curl_slist_append(h->headers, a);
            memset(a, 0, n);
            free(a);
        }
    }
    return h;
}

void er_http_free(er_http *h) {
    if (!h) return;
    curl_slist_free_all(h->headers);
    curl_easy_cleanup(h->curl);
    free(h);
}

void er_http_resp_free(er_http_resp *r) {
    free(r->body);
    free(r->location);
    free(r->repo_commit);
    free(r->etag);
    free(r->error_code);
    free(r->error_message);
    memset(r, 0, sizeof *r);
}

char *er_http_quote(const char *s, int keep_slash) {
    size_t n = strlen(s);
    char *o = er_mallocarray(n * 3 + 1, 1);
    if (!o) return NULL;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int c = *p;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (plain) o[k++] = (char)c;
        else k += (size_t)sprintf(o + k, "%%%02X", c);
    }
    o[k] = 0;
    return o;
}

typedef struct {
    er_http_resp *r;
    int64_t linked_size, content_length;
    char *plain_etag;
} hdr_state;

static char *trim_dup(const char *v, size_t n) {
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) n--;
    char *o = er_mallocarray(n + 1, 1);
    if (o) {
        memcpy(o, v, n);
        o[n] = 0;
    }
    return o;
}

/* ETag normalisation of huggingface_hub (_normalize_etag): drop "W/" and the quotes */
static char *norm_etag(char *e) {
    if (!e) return NULL;
    char *s = e;
    if (!strncmp(s, "W/", 2)) s += 2;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') s++, n -= 2;
    memmove(e, s, n);
    e[n] = 0;
    return e;
}

static size_t on_header(char *buf, size_t size, size_t n, void *user) {
    hdr_state *st = user;
    size_t len = size * n;
    const char *colon = memchr(buf, ':', len);
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) { /* a new response (after a redirect): reset */
        er_http_resp *r = st->r;
        free(r->location), free(r->repo_commit), free(r->etag), free(r->error_code), free(r->error_message);
        free(st->plain_etag);
        r->location = r->repo_commit = r->etag = r->error_code = r->error_message = st->plain_etag = NULL;
        st->linked_size = st->content_length = -1;
        return len;
    }
    if (!colon) return len;
    size_t kn = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vn = len - kn - 1;
#define IS(name) (kn == strlen(name) && !strncasecmp(buf, name, kn))
    char **dst = NULL;
    if (IS("Location")) dst = &st->r->location;
    else if (IS("X-Repo-Commit")) dst = &st->r->repo_commit;
    else if (IS("X-Linked-Etag")) dst = &st->r->etag;
    else if (IS("ETag")) dst = &st->plain_etag;
    else if (IS("X-Error-Code")) dst = &st->r->error_code;
    else if (IS("X-Error-Message")) dst = &st->r->error_message;
    else if (IS("X-Linked-Size") || IS("Content-Length")) {
        char tmp[32] = {0};
        char *t = trim_dup(v, vn);
        if (t) {
            snprintf(tmp, sizeof tmp, "%s", t);
            free(t);
        }
        char *end;
        long long x = strtoll(tmp, &end, 10);
        if (*tmp && !*end && x >= 0) *(IS("X-Linked-Size") ? &st->linked_size : &st->content_length) = x;
    }
#undef IS
    if (dst) {
        free(*dst);
        *dst = trim_dup(v, vn);
    }
    return len;
}

typedef struct {
    char *buf;
    size_t len, cap;
} membuf;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    membuf *m = user;
    size_t len = size * n;
    if (m->len + len + 1 > m->cap) {
        size_t cap = (m->len + len + 1) * 2;
        if (cap > ((size_t)64 << 20)) return 0; /* metadata is small; refuse huge bodies */
        char *b = realloc(m->buf, cap);
        if (!b) return 0;
        m->buf = b, m->cap = cap;
    }
    memcpy(m->buf + m->len, p, len);
    m->len += len;
    m->buf[m->len] = 0;
    return len;
}

static void common(er_http *h, const char *url) {
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* a stalled transfer (< 1 byte/s for 60 s) is a failure, as requests' read timeout */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    h->errbuf[0] = 0;
}

static int transport_error(er_http *h, CURLcode cc, const char *url) {
    return er_error(EASYREC_ERR_IO, "cannot reach %s: %s", url, h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
}

int er_http_request(er_http *h, const char *method, const char *url, er_http_resp *r) {
    memset(r, 0, sizeof *r);
    hdr_state st = {r, -1, -1, NULL};
    membuf body = {0};
    common(h, url);
    CURL *c = h->curl;
    int head = !strcmp(method, "HEAD");
    if (head) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    /* huggingface_hub asks for the identity encoding so that sizes are the file's */
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, head ? "identity" : "");
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &st);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        free(body.buf);
        free(st.plain_etag);
        er_http_resp_free(r);
        return transport_error(h, cc, url);
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->etag) r->etag = st.plain_etag;
    else free(st.plain_etag);
    norm_etag(r->etag);
    r->size = st.linked_size >= 0 ? st.linked_size : st.content_length;
    if (!head) {
        r->body = body.buf ? body.buf : er_strdup("");
        r->body_len = body.len;
    } else {
        free(body.buf);
    }
    return EASYREC_OK;
}

typedef struct {
    FILE *f;
    CURL *c;
    long status;
    int started; /* status checked */
    int restart; /* server ignored the Range: truncate before writing */
    int failed;
    uint64_t done, total;
    void (*progress)(void *, uint64_t, uint64_t);
    void *user;
} dl_state;

static size_t on_file(char *p, size_t size, size_t n, void *user) {
    dl_state *d = user;
    size_t len = size * n;
    if (!d->started) {
        d->started = 1;
        curl_easy_getinfo(d->c, CURLINFO_RESPONSE_CODE, &d->status);
        if (d->status != 200 && d->status != 206) return 0;
        if (d->status == 200 && d->done > 0) { /* range ignored: start over */
            if (fflush(d->f) || ftruncate(fileno(d->f), 0) || fseek(d->f, 0, SEEK_SET)) {
                d->failed = 1;
                return 0;
            }
            d->done = 0;
        }
    }
    if (fwrite(p, 1, len, d->f) != len) {
        d->failed = 1;
        return 0;
    }
    d->done += len;
    if (d->progress) d->progress(d->user, d->done, d->total);
    return len;
}

int er_http_download(er_http *h, const char *url, const char *path, uint64_t expected, int retries,
                     void (*progress)(void *, uint64_t, uint64_t), void *user) {
    for (int attempt = 0;; attempt++) {
        struct stat sb;
        uint64_t have = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        if (expected && have == expected) return EASYREC_OK; /* complete: verified by the caller */
        if (expected && have > expected) { /* longer than it can be: start over */
            if (truncate(path, 0)) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
            have = 0;
        }
        FILE *f = fopen(path, "ab");
        if (!f) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
        dl_state d = {f, h->curl, 0, 0, 0, 0, have, expected, progress, user};
        common(h, url);
        CURL *c = h->curl;
        char range[64];
        if (have) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)have);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
        CURLcode cc = curl_easy_perform(c);
        int closed = fclose(f);
        if (!d.started) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &d.status);
        if (d.failed || closed) return er_error(EASYREC_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        if (cc == CURLE_OK && (d.status == 200 || d.status == 206)) return EASYREC_OK;
        if (d.status == 416 && have) { /* range not satisfiable: our partial file is stale */
            if (truncate(path, 0)) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
            if (attempt < retries) continue;
        }
        if (d.status >= 300 && d.status != 416)
            return er_error(EASYREC_ERR_IO, "GET %s: HTTP %ld", url, d.status);
        if (attempt >= retries) return transport_error(h, cc, url);
        /* transfer cut (connection closed, partial file, timeout): resume from what we have */
    }
}
