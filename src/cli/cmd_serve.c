/* cmd_serve.c — `easyrec serve`: the HTTP service of src/serve/ (routes in docs/serve.md).
 * Loads the model (converted to --precision), the catalog and the state (encoding what has no
 * embedding yet, progress on stderr), listens (127.0.0.1 unless --host says otherwise) and
 * serves until SIGTERM/SIGINT, then stops accepting, lets requests in progress finish and
 * exits 0. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/clock.h"
#include "core/err.h"
#include "serve/http.h"
#include "serve/server.h"

static double t_start;

static void progress(void *user, const char *what, size_t done, size_t total) {
    (void)user;
    static size_t last;
    if (done == total || done - last >= 1024 || done < last) {
        fprintf(stderr, "easyrec: encoding %s %zu/%zu (%.1f s)\n", what, done, total, er_now() - t_start);
        last = done;
    }
}

/* the key: the file's first line without surrounding whitespace */
static char *read_key(const char *path) {
    char *buf;
    size_t len;
    if (er_read_file(path, &buf, &len)) return NULL;
    char *s = buf;
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    size_t n = strcspn(s, "\r\n");
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n == 0) {
        free(buf);
        er_error(EASYREC_ERR_FORMAT, "%s: the API key file is empty", path);
        return NULL;
    }
    memmove(buf, s, n);
    buf[n] = 0;
    return buf;
}

int cmd_serve(int argc, char **argv) {
    const char *model = NULL, *catalog = NULL, *state = NULL, *host = "127.0.0.1", *key_file = NULL, *isa = NULL;
    int precision = EASYREC_PRECISION_FP32;
    er_server_opts so;
    er_server_opts_init(&so);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    int port = 8080, workers = 0, max_k = so.max_k;
    int64_t payload = (int64_t)so.payload_limit;
    so.threads = nproc > 0 ? (int)nproc : 1;
    so.score_threads = so.threads;
    cli_opt opts[] = {
        {.name = "model", .type = OPT_STR, .dst = &model, .meta = "DIR", .help = "model directory", .env = "EASYREC_MODEL",
         .required = 1},
        {.name = "catalog", .type = OPT_STR, .dst = &catalog, .meta = "SRC",
         .help = "items: dataset dir or JSON lines {\"item_id\", \"profile\", metadata...} (default: none)",
         .env = "EASYREC_CATALOG"},
        {.name = "state", .type = OPT_STR, .dst = &state, .meta = "DIR",
         .help = "durable state (SQLite): users, interactions, items, embeddings (default: memory only)",
         .env = "EASYREC_STATE"},
        {.name = "host", .type = OPT_STR, .dst = &host, .meta = "ADDR", .help = "address to listen on", .env = "EASYREC_HOST"},
        {.name = "port", .type = OPT_INT, .dst = &port, .meta = "N", .help = "port (0: any free port, printed)",
         .min = 0, .max = 65535, .env = "EASYREC_PORT"},
        {.name = "threads", .type = OPT_INT, .dst = &so.threads, .meta = "N",
         .help = "encoder threads, and threads of one recommend product (default: all cores)", .min = 1, .max = 1024,
         .env = "EASYREC_THREADS"},
        {.name = "http-threads", .type = OPT_INT, .dst = &workers, .meta = "N",
         .help = "HTTP worker threads (default: --max-concurrent + 4)", .min = 0, .max = 4096,
         .env = "EASYREC_HTTP_THREADS"},
        {.name = "max-batch-tokens", .type = OPT_INT, .dst = &so.max_batch_tokens, .meta = "N",
         .help = "tokens per encoder batch", .min = 2, .max = 1 << 24, .env = "EASYREC_MAX_BATCH_TOKENS"},
        {.name = "max-client-batch", .type = OPT_INT, .dst = &so.max_client_batch, .meta = "N",
         .help = "inputs per embeddings request", .min = 1, .max = 1 << 20, .env = "EASYREC_MAX_CLIENT_BATCH"},
        {.name = "max-concurrent", .type = OPT_INT, .dst = &so.max_concurrent, .meta = "N",
         .help = "requests processed at once; more get 503 + Retry-After", .min = 1, .max = 4096,
         .env = "EASYREC_MAX_CONCURRENT"},
        {.name = "payload-limit", .type = OPT_I64, .dst = &payload, .meta = "BYTES", .help = "request body limit (413 above)",
         .min = 1, .max = (double)(1LL << 32), .env = "EASYREC_PAYLOAD_LIMIT"},
        {.name = "max-input-tokens", .type = OPT_INT, .dst = &so.max_input_tokens, .meta = "N",
         .help = "tokens per input incl. specials (longer: 400/413 unless truncation is asked)", .min = 2, .max = 1 << 20,
         .env = "EASYREC_MAX_INPUT_TOKENS"},
        {.name = "max-k", .type = OPT_INT, .dst = &max_k, .meta = "N", .help = "largest k of /recommend", .min = 1,
         .max = 1 << 20, .env = "EASYREC_MAX_K"},
        {.name = "api-key-file", .type = OPT_STR, .dst = &key_file, .meta = "F",
         .help = "require 'Authorization: Bearer <first line of F>' (default: no key)", .env = "EASYREC_API_KEY_FILE"},
        CLI_PRECISION_OPT(&precision),
        CLI_ISA_OPT(&isa),
        {0}};
    cli_cmd cmd = {"serve", "--model DIR [--catalog SRC] [--state DIR] [options]",
                   "Serve embeddings (OpenAI /v1/embeddings, TEI /embed) and live recommendations over HTTP\n"
                   "(routes: docs/serve.md). SIGTERM/SIGINT: finish requests in progress, exit 0.",
                   opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    so.model_dir = model;
    so.catalog = catalog;
    so.state = state;
    so.payload_limit = (size_t)payload;
    so.max_k = max_k;
    so.score_threads = so.threads;
    if (!workers) workers = so.max_concurrent + 4;
    t_start = er_now();
    so.progress = progress;

    /* every thread started from here on inherits the blocked signals; main waits for them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *key = NULL;
    if (key_file && !(key = read_key(key_file))) return cli_fail(NULL);
    so.api_key = key;
    easyrec_model *m = NULL;
    if (cli_load_model(model, precision, isa, 1, &m)) { /* it printed the error */
        free(key);
        return 1;
    }

    er_server *srv = NULL;
    er_http *http = NULL;
    int status = 1;
    const char *bad = er_server_check_opts(&so, m);
    if (bad) {
        status = opt_usage_error(&cmd, "%s", bad);
        goto done;
    }
    if (er_server_open(&so, m, &srv)) goto done;
    if (er_http_start(srv, host, port, workers, so.payload_limit, &http)) goto done;
    int items, users;
    er_server_sizes(srv, &items, &users);
    fprintf(stderr, "easyrec: serving %d items, %d users on http://%s%s%s:%d (%.1f s to start)\n", items, users,
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", er_http_port(http), er_now() - t_start);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "easyrec: %s: finishing requests in progress\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    er_http_stop(http, 30.0);
    http = NULL;
    status = 0;
done:
    if (status == 1) cli_fail(NULL);
    er_http_stop(http, 0);
    er_server_close(srv);
    easyrec_model_free(m);
    free(key);
    if (status == 0) fprintf(stderr, "easyrec: stopped\n");
    return status;
}
