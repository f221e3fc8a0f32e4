/* llm.c — OpenAI-compatible chat completions over libcurl multi (llm.h).
 *
 * One easy handle per concurrency slot (kept for connection reuse). A call is in one of
 * three places: with the caller (next/done), in a slot (in flight), or in the wait list
 * (a retry due at `wake`). Every attempt's outcome is classified:
 *   200 + a JSON body with choices[0].message.content (a string) -> done(ok)
 *   transport error (timeout, refused, reset, partial body), 200 with a bad body,
 *   408/409/425/429/5xx -> retry after backoff (429/503: Retry-After when given)
 *   any other status -> done(fail) at once (a wrong key or model does not get better)
 */
#include "profile/llm.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"

#define MAX_BODY (8u << 20)

typedef struct {
    er_llm_call call;
    int attempt;   /* attempts already made */
    char *req;     /* JSON request body, owned */
    double wake;   /* wait list: monotonic time it is due */
} job;

typedef struct {
    CURL *h;
    int busy;
    job j;
    char *body;
    size_t blen, bcap;
    int overflow;
    double retry_after; /* from this attempt's headers, -1 none */
} slot;

struct er_llm {
    er_llm_opts o;
    char *url, *auth;
    CURLM *m;
    struct curl_slist *hdrs;
    slot *slots;
    job *wait;
    int nwait, capwait;
    er_rng rng;
    er_llm_stats st;
};

double er_llm_retry_after(const char *v, double now_epoch) {
    while (*v == ' ' || *v == '\t') v++;
    if (!*v) return -1;
    char *end;
    double s = strtod(v, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end != v && !*end && s >= 0 && isfinite(s)) return s;
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1) return -1;
    double d = (double)t - now_epoch;
    return d > 0 ? d : 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    slot *s = ud;
    size_t len = sz * n;
    if (s->blen + len + 1 > MAX_BODY) {
        s->overflow = 1;
        return 0; /* aborts the transfer: a retry */
    }
    if (s->blen + len + 1 > s->bcap) {
        size_t c = s->bcap ? s->bcap : 4096;
        while (c < s->blen + len + 1) c *= 2;
        char *nb = realloc(s->body, c);
        if (!nb) return 0;
        s->body = nb;
        s->bcap = c;
    }
    memcpy(s->body + s->blen, p, len);
    s->blen += len;
    s->body[s->blen] = 0;
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    slot *s = ud;
    size_t len = sz * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 256 && !strncasecmp(p, name, sizeof name - 1)) {
        char v[256];
        memcpy(v, p + sizeof name - 1, len - (sizeof name - 1));
        v[len - (sizeof name - 1)] = 0;
        s->retry_after = er_llm_retry_after(v, (double)time(NULL));
    }
    return len;
}

int er_llm_new(const er_llm_opts *o, er_llm **out) {
    *out = NULL;
    if (!o->endpoint || !*o->endpoint || !o->model || !*o->model)
        return er_error(EASYREC_ERR_ARG, "an endpoint URL and a model name are required");
    if (o->concurrency < 1 || o->concurrency > 1024) return er_error(EASYREC_ERR_ARG, "concurrency must be 1..1024");
    if (o->max_retries < 0 || !(o->timeout_s > 0)) return er_error(EASYREC_ERR_ARG, "bad retries or timeout");
    er_llm *c = er_calloc(1, sizeof(*c));
    if (!c) return EASYREC_ERR_NOMEM;
    c->o = *o;
    if (!(c->o.backoff_base_s > 0)) c->o.backoff_base_s = 0.5;
    if (!(c->o.backoff_max_s > 0)) c->o.backoff_max_s = 60;
    er_rng_seed(&c->rng, o->seed ^ 0x5DEECE66Dull);
    size_t el = strlen(o->endpoint);
    while (el && o->endpoint[el - 1] == '/') el--;
    static const char suffix[] = "/chat/completions";
    int full = el >= sizeof suffix - 1 && !strncmp(o->endpoint + el - (sizeof suffix - 1), suffix, sizeof suffix - 1);
    c->url = malloc(el + sizeof suffix);
    c->slots = er_calloc((size_t)o->concurrency, sizeof(*c->slots));
    c->m = curl_multi_init();
    if (!c->url || !c->slots || !c->m) goto oom;
    memcpy(c->url, o->endpoint, el);
    if (full) c->url[el] = 0;
    else memcpy(c->url + el, suffix, sizeof suffix);
    c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    c->hdrs = curl_slist_append(c->hdrs, "Expect:"); /* no 100-continue round trip for bodies > 1 KiB */
    if (o->api_key && *o->api_key) {
        size_t kl = strlen(o->api_key) + 32;
        if (!(c->auth = malloc(kl))) goto oom;
        snprintf(c->auth, kl, "Authorization: Bearer %s", o->api_key);
        c->hdrs = curl_slist_append(c->hdrs, c->auth);
    }
    if (!c->hdrs) goto oom;
    curl_multi_setopt(c->m, CURLMOPT_MAXCONNECTS, (long)o->concurrency);
    for (int k = 0; k < o->concurrency; k++) {
        slot *s = &c->slots[k];
        if (!(s->h = curl_easy_init())) goto oom;
        curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->h, CURLOPT_URL, c->url);
        curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, c->hdrs);
        curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
        curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
        curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS, (long)fmin(o->timeout_s * 1000, 15000));
        curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->h, CURLOPT_ACCEPT_ENCODING, "");
    }
    *out = c;
    return EASYREC_OK;
oom:
    er_llm_free(c);
    return er_error(EASYREC_ERR_NOMEM, "out of memory (HTTP client)");
}

void er_llm_free(er_llm *c) {
    if (!c) return;
    for (int k = 0; c->slots && k < c->o.concurrency; k++) {
        slot *s = &c->slots[k];
        if (s->h) {
            if (s->busy) curl_multi_remove_handle(c->m, s->h);
            curl_easy_cleanup(s->h);
        }
        free(s->j.req);
        free(s->body);
    }
    for (int k = 0; k < c->nwait; k++) free(c->wait[k].req);
    free(c->wait);
    free(c->slots);
    if (c->m) curl_multi_cleanup(c->m);
    curl_slist_free_all(c->hdrs);
    if (c->auth) {
        memset(c->auth, 0, strlen(c->auth));
        free(c->auth);
    }
    free(c->url);
    free(c);
}

const er_llm_stats *er_llm_get_stats(const er_llm *c) { return &c->st; }

static char *build_request(const er_llm *c, const er_llm_call *call) {
    json_t *msgs = json_array();
    for (int k = 0; k < call->n_msgs; k++)
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", call->role[k], "content", call->content[k]));
    json_t *r = json_pack("{s:s,s:o}", "model", c->o.model, "messages", msgs);
    if (!r) return NULL;
    if (c->o.has_temperature) json_object_set_new(r, "temperature", json_real(c->o.temperature));
    if (c->o.max_tokens > 0) json_object_set_new(r, "max_tokens", json_integer(c->o.max_tokens));
    char *s = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(r);
    return s;
}

static int start(er_llm *c, slot *s, job *j) {
    s->j = *j;
    s->blen = 0;
    s->overflow = 0;
    s->retry_after = -1;
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->j.req);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)strlen(s->j.req));
    if (curl_multi_add_handle(c->m, s->h) != CURLM_OK) return er_error(EASYREC_ERR_IO, "curl_multi_add_handle failed");
    s->busy = 1;
    c->st.requests++;
    return EASYREC_OK;
}

/* The answer text of a 200 body, or NULL (then *why says what was wrong). */
static char *answer_of(const char *body, size_t len, size_t *alen, const char **why, er_llm_stats *st) {
    json_error_t e;
    json_t *r = json_loadb(body, len, 0, &e);
    json_t *ch = json_object_get(r, "choices");
    json_t *msg = json_object_get(json_array_get(ch, 0), "message");
    json_t *content = json_object_get(msg, "content");
    char *out = NULL;
    if (!r) *why = "the body is not JSON";
    else if (!json_is_string(content)) *why = "no choices[0].message.content string";
    else {
        *alen = json_string_length(content);
        if ((out = malloc(*alen + 1))) {
            memcpy(out, json_string_value(content), *alen);
            out[*alen] = 0;
        }
        json_t *u = json_object_get(r, "usage");
        json_t *pt = json_object_get(u, "prompt_tokens"), *ct = json_object_get(u, "completion_tokens");
        if (json_is_integer(pt)) st->prompt_tokens += json_integer_value(pt);
        if (json_is_integer(ct)) st->completion_tokens += json_integer_value(ct);
    }
    json_decref(r);
    return out;
}

static int push_wait(er_llm *c, job *j) {
    if (c->nwait == c->capwait) {
        int cap = c->capwait ? c->capwait * 2 : 16;
        job *w = er_reallocarray(c->wait, (size_t)cap, sizeof(*w));
        if (!w) return EASYREC_ERR_NOMEM;
        c->wait = w;
        c->capwait = cap;
    }
    c->wait[c->nwait++] = *j;
    return EASYREC_OK;
}

static void finish(er_llm *c, const er_llm_driver *d, job *j, int ok, const char *text, size_t len) {
    if (!ok) c->st.failures++;
    d->done(d->ctx, &j->call, ok, text, len);
    free(j->req);
    j->req = NULL;
}

/* Outcome of the attempt in slot s (already removed from the multi handle). */
static int complete(er_llm *c, const er_llm_driver *d, slot *s, CURLcode cc) {
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    job j = s->j;
    memset(&s->j, 0, sizeof s->j);
    s->busy = 0;
    char reason[160];
    double ra = -1;
    if (cc != CURLE_OK) {
        if (cc == CURLE_OPERATION_TIMEDOUT) c->st.timeouts++;
        else c->st.bad_bodies += s->overflow || cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR;
        snprintf(reason, sizeof reason, "%s", s->overflow ? "answer over 8 MiB" : curl_easy_strerror(cc));
    } else if (status == 200) {
        size_t alen = 0;
        const char *why = NULL;
        char *a = answer_of(s->body ? s->body : "", s->blen, &alen, &why, &c->st);
        if (a) {
            finish(c, d, &j, 1, a, alen);
            free(a);
            return EASYREC_OK;
        }
        if (!why) return er_error(EASYREC_ERR_NOMEM, "out of memory");
        c->st.bad_bodies++;
        snprintf(reason, sizeof reason, "HTTP 200 but %s", why);
    } else if (status == 429 || status == 503 || status == 408 || status == 409 || status == 425 || status >= 500) {
        if (status == 429) c->st.http_429++;
        else if (status >= 500) c->st.http_5xx++;
        if (status == 429 || status == 503) ra = s->retry_after;
        snprintf(reason, sizeof reason, "HTTP %ld", status);
    } else {
        snprintf(reason, sizeof reason, "HTTP %ld (not retried)", status);
        finish(c, d, &j, 0, reason, strlen(reason));
        return EASYREC_OK;
    }
    if (j.attempt + 1 > c->o.max_retries) {
        char r2[220];
        snprintf(r2, sizeof r2, "%s (after %d attempts)", reason, j.attempt + 1);
        finish(c, d, &j, 0, r2, strlen(r2));
        return EASYREC_OK;
    }
    double wait = c->o.backoff_base_s * ldexp(1.0, j.attempt < 30 ? j.attempt : 30);
    wait = fmin(wait, c->o.backoff_max_s) * (0.5 + 0.5 * er_rng_uniform(&c->rng)); /* jitter */
    if (ra >= 0) wait = fmin(ra, c->o.backoff_max_s);
    j.attempt++;
    j.wake = er_now() + wait;
    c->st.retries++;
    return push_wait(c, &j);
}

int er_llm_run(er_llm *c, const er_llm_driver *d) {
    double last_tick = er_now();
    int rc = EASYREC_OK;
    for (;;) {
        double now = er_now();
        int active = 0, source_empty = 0;
        for (int k = 0; k < c->o.concurrency; k++) active += c->slots[k].busy;
        /* fill free slots: due retries first, then new calls */
        for (int k = 0; k < c->o.concurrency && !rc; k++) {
            slot *s = &c->slots[k];
            if (s->busy) continue;
            int due = -1;
            for (int w = 0; w < c->nwait; w++)
                if (c->wait[w].wake <= now && (due < 0 || c->wait[w].wake < c->wait[due].wake)) due = w;
            job j;
            if (due >= 0) {
                j = c->wait[due];
                c->wait[due] = c->wait[--c->nwait];
            } else if (!source_empty) {
                memset(&j, 0, sizeof j);
                if (!d->next(d->ctx, &j.call)) {
                    source_empty = 1;
                    continue;
                }
                ER_ASSERT(j.call.n_msgs >= 1 && j.call.n_msgs <= ER_LLM_MAX_MSGS);
                if (!(j.req = build_request(c, &j.call))) {
                    rc = er_error(EASYREC_ERR_NOMEM, "out of memory (request)");
                    break;
                }
            } else {
                continue;
            }
            rc = start(c, s, &j);
            if (rc) free(j.req);
            else active++;
        }
        if (rc) break;
        if (!active && !c->nwait && source_empty) break;
        int running = 0;
        curl_multi_perform(c->m, &running);
        CURLMsg *msg;
        int left;
        while (!rc && (msg = curl_multi_info_read(c->m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode cc = msg->data.result;
            curl_multi_remove_handle(c->m, s->h);
            rc = complete(c, d, s, cc);
        }
        if (rc) break;
        now = er_now();
        if (d->tick && now - last_tick >= 0.2) {
            last_tick = now;
            if (d->tick(d->ctx)) break;
        }
        /* sleep until network activity, the next due retry, or 10 ms. The cap matters: with
         * libcurl 7.88, curl_multi_poll was seen not to wake for an answer that arrived on a
         * reused connection while other transfers were running (each round of requests then
         * lost up to the whole timeout: 0.5x the ideal rate at concurrency 2 with a 100 ms cap,
         * bench/bench_profile.sh); 10 ms bounds that loss at ~100 idle wake-ups per second. */
        double until = 0.01;
        for (int w = 0; w < c->nwait; w++) until = fmin(until, fmax(0, c->wait[w].wake - now));
        int any_busy = 0;
        for (int k = 0; k < c->o.concurrency; k++) any_busy |= c->slots[k].busy;
        int free_slot = !any_busy || active < c->o.concurrency;
        if (free_slot && !source_empty) until = 0; /* more to start now */
        if (until > 0) curl_multi_poll(c->m, NULL, 0, (int)(until * 1000) + 1, NULL);
    }
    /* stopped (tick or error): abandon what is in flight or waiting */
    for (int k = 0; k < c->o.concurrency; k++) {
        slot *s = &c->slots[k];
        if (s->busy) {
            curl_multi_remove_handle(c->m, s->h);
            s->busy = 0;
            free(s->j.req);
            memset(&s->j, 0, sizeof s->j);
        }
    }
    for (int w = 0; w < c->nwait; w++) free(c->wait[w].req);
    c->nwait = 0;
    return rc;
}
