/* metrics.h — request counters and latency histograms of the server, rendered as
 * Prometheus text (GET /metrics) together with the batchers' counters. Thread-safe. */
#ifndef ER_SERVE_METRICS_H
#define ER_SERVE_METRICS_H

#include <pthread.h>
#include <stdint.h>

enum {
    ER_RT_EMBEDDINGS, ER_RT_EMBED, ER_RT_RECOMMEND, ER_RT_USER_PROFILE, ER_RT_USER_INTERACTIONS, ER_RT_USER_GET,
    ER_RT_ITEM_PUT, ER_RT_ITEM_DELETE, ER_RT_ITEM_GET, ER_RT_HEALTH, ER_RT_INFO, ER_RT_METRICS, ER_RT_OTHER, ER_RT_N
};
#define ER_N_STATUS 10
#define ER_N_BUCKETS 12

typedef struct {
    pthread_mutex_t mu;
    uint64_t count[ER_RT_N][ER_N_STATUS];
    uint64_t hist[ER_RT_N][ER_N_BUCKETS + 1]; /* cumulative at render; raw per bucket here */
    double sum[ER_RT_N];
    uint64_t n[ER_RT_N];
    uint64_t inputs_tokens; /* tokens of embedding inputs */
} er_metrics;

void er_metrics_init(er_metrics *m);
void er_metrics_destroy(er_metrics *m);
void er_metrics_observe(er_metrics *m, int route, int status, double seconds);
void er_metrics_add_tokens(er_metrics *m, uint64_t tokens);
const char *er_route_name(int route);

/* Append the request metrics as Prometheus text to buf (malloc'd, grown; *len updated).
 * Returns 0 or EASYREC_ERR_NOMEM. */
int er_metrics_render(er_metrics *m, char **buf, size_t *len, size_t *cap);
/* printf-append helper for the same buffer */
int er_buf_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
