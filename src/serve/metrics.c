/* metrics.c — Prometheus text of the server's request counters (metrics.h). */
#include "serve/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

static const int statuses[ER_N_STATUS] = {200, 201, 400, 401, 404, 405, 413, 500, 503, 0};
static const double buckets[ER_N_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
static const char *const routes[ER_RT_N] = {"/v1/embeddings", "/embed", "/recommend", "/users/{id}/profile",
                                            "/users/{id}/interactions", "GET /users/{id}", "PUT /items/{id}",
                                            "DELETE /items/{id}", "GET /items/{id}", "/health", "/info", "/metrics",
                                            "other"};

const char *er_route_name(int route) { return route >= 0 && route < ER_RT_N ? routes[route] : "other"; }

void er_metrics_init(er_metrics *m) {
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
}

void er_metrics_destroy(er_metrics *m) { pthread_mutex_destroy(&m->mu); }

void er_metrics_observe(er_metrics *m, int route, int status, double seconds) {
    if (route < 0 || route >= ER_RT_N) route = ER_RT_OTHER;
    int si = ER_N_STATUS - 1;
    for (int i = 0; i < ER_N_STATUS - 1; i++)
        if (statuses[i] == status) si = i;
    int b = 0;
    while (b < ER_N_BUCKETS && seconds > buckets[b]) b++;
    pthread_mutex_lock(&m->mu);
    m->count[route][si]++;
    m->hist[route][b]++;
    m->sum[route] += seconds;
    m->n[route]++;
    pthread_mutex_unlock(&m->mu);
}

void er_metrics_add_tokens(er_metrics *m, uint64_t tokens) {
    pthread_mutex_lock(&m->mu);
    m->inputs_tokens += tokens;
    pthread_mutex_unlock(&m->mu);
}

int er_buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return EASYREC_ERR_NOMEM;
        if (*buf && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t nc = (*cap ? *cap * 2 : 4096) + (size_t)n;
        char *p = realloc(*buf, nc);
        if (!p) return EASYREC_ERR_NOMEM;
        *buf = p;
        *cap = nc;
    }
}

int er_metrics_render(er_metrics *m, char **buf, size_t *len, size_t *cap) {
    er_metrics c;
    pthread_mutex_lock(&m->mu);
    memcpy(c.count, m->count, sizeof c.count);
    memcpy(c.hist, m->hist, sizeof c.hist);
    memcpy(c.sum, m->sum, sizeof c.sum);
    memcpy(c.n, m->n, sizeof c.n);
    c.inputs_tokens = m->inputs_tokens;
    pthread_mutex_unlock(&m->mu);
    int rc = er_buf_printf(buf, len, cap, "# HELP easyrec_requests_total HTTP requests by route and status.\n"
                                          "# TYPE easyrec_requests_total counter\n");
    for (int r = 0; r < ER_RT_N && !rc; r++)
        for (int s = 0; s < ER_N_STATUS && !rc; s++)
            if (c.count[r][s])
                rc = er_buf_printf(buf, len, cap, "easyrec_requests_total{route=\"%s\",status=\"%s%d\"} %llu\n", routes[r],
                                   statuses[s] ? "" : "other", statuses[s] ? statuses[s] : 0,
                                   (unsigned long long)c.count[r][s]);
    if (!rc) rc = er_buf_printf(buf, len, cap, "# HELP easyrec_request_seconds Request latency by route.\n"
                                               "# TYPE easyrec_request_seconds histogram\n");
    for (int r = 0; r < ER_RT_N && !rc; r++) {
        if (!c.n[r]) continue;
        uint64_t cum = 0;
        for (int b = 0; b < ER_N_BUCKETS && !rc; b++) {
            cum += c.hist[r][b];
            rc = er_buf_printf(buf, len, cap, "easyrec_request_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", routes[r],
                               buckets[b], (unsigned long long)cum);
        }
        if (!rc)
            rc = er_buf_printf(buf, len, cap,
                               "easyrec_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                               "easyrec_request_seconds_sum{route=\"%s\"} %.6f\n"
                               "easyrec_request_seconds_count{route=\"%s\"} %llu\n",
                               routes[r], (unsigned long long)c.n[r], routes[r], c.sum[r], routes[r],
                               (unsigned long long)c.n[r]);
    }
    if (!rc)
        rc = er_buf_printf(buf, len, cap,
                           "# HELP easyrec_input_tokens_total Tokens of texts received for encoding.\n"
                           "# TYPE easyrec_input_tokens_total counter\neasyrec_input_tokens_total %llu\n",
                           (unsigned long long)c.inputs_tokens);
    return rc;
}
