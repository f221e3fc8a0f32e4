/* http.c — libmicrohttpd glue of the service (http.h). */
#include "serve/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"

struct er_http {
    struct MHD_Daemon *d;
    er_server *s;
    size_t limit;
    atomic_int active; /* requests begun and not yet completed */
};

typedef struct {
    char *buf;
    size_t len, cap;
    int too_large;
} upload;

static enum MHD_Result respond(struct MHD_Connection *conn, const er_http_resp *rs) {
    struct MHD_Response *r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(rs->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", rs->content_type ? rs->content_type : "application/json");
    if (rs->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", rs->retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    if (rs->status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls) {
    er_http *h = cls;
    (void)version;
    upload *u = *con_cls;
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u) return MHD_NO;
        *con_cls = u;
        atomic_fetch_add(&h->active, 1);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->limit) u->too_large = 1;
        return MHD_YES;
    }
    if (*data_size) {
        if (!u->too_large && u->len + *data_size > h->limit) u->too_large = 1;
        if (!u->too_large) {
            if (u->len + *data_size + 1 > u->cap) {
                size_t nc = u->cap ? u->cap : 4096;
                while (nc < u->len + *data_size + 1) nc *= 2;
                char *nb = realloc(u->buf, nc);
                if (!nb) return MHD_NO;
                u->buf = nb;
                u->cap = nc;
            }
            memcpy(u->buf + u->len, data, *data_size);
            u->len += *data_size;
        }
        *data_size = 0;
        return MHD_YES;
    }
    er_http_req rq = {method, url, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                      u->buf ? u->buf : "", u->len, u->too_large};
    er_http_resp rs;
    er_server_handle(h->s, &rq, &rs);
    return respond(conn, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    er_http *h = cls;
    (void)conn;
    (void)toe;
    upload *u = *con_cls;
    if (!u) return;
    free(u->buf);
    free(u);
    *con_cls = NULL;
    atomic_fetch_sub(&h->active, 1);
}

int er_http_start(er_server *s, const char *host, int port, int workers, size_t payload_limit, er_http **out) {
    if (port < 0 || port > 65535) return er_error(EASYREC_ERR_ARG, "port %d out of range", port);
    er_http *h = er_calloc(1, sizeof(*h));
    if (!h) return EASYREC_ERR_NOMEM;
    h->s = s;
    h->limit = payload_limit;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_POLL;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        return er_error(EASYREC_ERR_ARG, "--host '%s' is not an IPv4 or IPv6 address", host);
    }
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)workers,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)workers * 2, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return er_error(EASYREC_ERR_IO, "cannot listen on %s:%d (in use, or not an address of this machine)", host, port);
    }
    *out = h;
    return EASYREC_OK;
}

int er_http_port(const er_http *h) {
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : -1;
}

void er_http_stop(er_http *h, double drain_seconds) {
    if (!h) return;
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (double waited = 0; atomic_load(&h->active) > 0 && waited < drain_seconds; waited += 0.01) nanosleep(&ts, NULL);
    MHD_stop_daemon(h->d);
    free(h);
}
