/* http.h — the service (server.h) behind libmicrohttpd: a fixed pool of worker threads with
 * internal polling, request bodies read up to the payload limit, graceful drain on stop. */
#ifndef ER_SERVE_HTTP_H
#define ER_SERVE_HTTP_H

#include <stddef.h>

#include "serve/server.h"

typedef struct er_http er_http;

/* Listen on host (an IPv4 or IPv6 literal) and port (0: any free port) with `workers`
 * threads. */
int er_http_start(er_server *s, const char *host, int port, int workers, size_t payload_limit, er_http **out);
/* The port actually bound. */
int er_http_port(const er_http *h);
/* Stop accepting connections, let requests in progress finish (at most drain_seconds), stop
 * the threads and free. */
void er_http_stop(er_http *h, double drain_seconds);

#endif
