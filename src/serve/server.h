/* server.h — the recommendation/embedding service, independent of the HTTP library:
 * er_server_open loads the catalog and the durable state, encodes what has no embedding
 * yet and starts the batchers; er_server_handle answers one request (method, path,
 * Authorization header, body) with a status and a JSON (or Prometheus text) body. http.c
 * puts it behind libmicrohttpd; docs/serve.md lists the routes.
 *
 * Threads: er_server_handle is called concurrently by the HTTP workers. Texts are encoded by
 * the encoder pool, recommend queries scored by the scoring queue (batcher.h); catalog and
 * users sit behind a read/write lock, writes are serialised and acknowledged only after the
 * store made them durable.
 */
#ifndef ER_SERVE_SERVER_H
#define ER_SERVE_SERVER_H

#include <stddef.h>

#include "easyrec.h"

typedef struct {
    const char *model_dir;  /* for /info and the fingerprint */
    const char *catalog;    /* item source (catalog.h); NULL: start empty */
    const char *state;      /* state directory (SQLite); NULL: in memory only */
    int threads;            /* encoder threads */
    int score_threads;      /* threads of one recommend product */
    int max_batch_tokens;   /* token budget of one encoder batch */
    int max_client_batch;   /* inputs per embeddings request */
    int max_concurrent;     /* requests being processed at once; more get 503 */
    int max_input_tokens;   /* tokens per input incl. specials */
    int max_k;              /* largest "k" of /recommend */
    size_t payload_limit;   /* request body bytes */
    const char *api_key;    /* NULL: no authentication */
    /* start-up progress: (what, done, total), e.g. ("catalog", 4096, 100000) */
    void (*progress)(void *user, const char *what, size_t done, size_t total);
    void *progress_user;
} er_server_opts;

/* Defaults: 1 thread, 1 score thread, batch tokens 8192, client batch 64, concurrent 64,
 * input tokens 512, max k 1000, payload 4 MiB. */
void er_server_opts_init(er_server_opts *o);

/* NULL when the limits are consistent with each other and with the model, else a message
 * (static storage of the calling thread). */
const char *er_server_check_opts(const er_server_opts *o, const easyrec_model *m);

typedef struct er_server er_server;

/* The model stays owned by the caller and must outlive the server. */
int er_server_open(const er_server_opts *o, const easyrec_model *m, er_server **out);
/* Stop the batchers (after what is queued) and free. */
void er_server_close(er_server *s);

typedef struct {
    const char *method, *path;
    const char *authorization; /* header value or NULL */
    const char *body;
    size_t len;
    int body_too_large;        /* the HTTP layer stopped reading at payload_limit */
} er_http_req;

typedef struct {
    int status;
    char *body; /* malloc'd */
    size_t len;
    const char *content_type;
    int retry_after; /* seconds; 0: no header */
} er_http_resp;

void er_server_handle(er_server *s, const er_http_req *rq, er_http_resp *rs);

/* Number of catalog items and users now (for logs and tests). */
void er_server_sizes(er_server *s, int *items, int *users);

#endif
