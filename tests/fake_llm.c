/* fake_llm.c — a fake OpenAI-compatible server for tests/test_profile.c and
 * bench/bench_profile.sh (libmicrohttpd, 127.0.0.1, a free port written to --port-file).
 *
 *   POST .../chat/completions -> {"choices":[{"message":{"content": ...}}], "usage": {...}}
 * Good answers: a JSON {"summarization", "reasoning"} for item/user prompts, "REVISED
 * PROFILE: ..." when the system prompt asks for that. Faults, for the first --faults N
 * attempts of each prompt (keyed by its first user message; -1: every attempt):
 *   --mode 429        429 with Retry-After: --retry-after S
 *   --mode 500        500
 *   --mode slow       answers after --slow-ms (past the client's timeout)
 *   --mode malformed  200 with a body that is not JSON
 *   --mode truncated  200 whose body stops halfway (connection closed)
 *   --mode wrongshape 200 with valid JSON of the wrong shape as the answer
 *   --mode mixed      each prompt gets one of the above, chosen by its hash
 * --fail-match STR: prompts whose user message contains STR always get 500.
 * --latency-ms L: every answer waits L ms. --key-file F: the expected API key (else 401).
 * --record FILE: each request body appended as one line (the tests read the prompts).
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *mode = "good", *fail_match, *record_path;
static int faults = 1, retry_after = 1, slow_ms = 3000, latency_ms;
static char expected_auth[512];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *record;
#define NSEEN (1 << 16)
static uint64_t seen_key[NSEEN];
static int seen_n[NSEEN];

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h | 1;
}

/* attempts already made for key (then counts this one) */
static int attempt_of(uint64_t key) {
    pthread_mutex_lock(&mu);
    uint32_t i = (uint32_t)key & (NSEEN - 1);
    while (seen_key[i] && seen_key[i] != key) i = (i + 1) & (NSEEN - 1);
    seen_key[i] = key;
    int a = seen_n[i]++;
    pthread_mutex_unlock(&mu);
    return a;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

typedef struct {
    char *buf;
    size_t len;
} body_t;

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body, const char *ctype) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", ctype);
    if (status == 429 || status == 503) {
        char v[32];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

typedef struct {
    char *data;
    size_t len, sent;
} trunc_t;
static ssize_t trunc_read(void *cls, uint64_t pos, char *buf, size_t max) {
    trunc_t *t = cls;
    size_t half = t->len / 2;
    if (pos >= half) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = half - (size_t)pos < max ? half - (size_t)pos : max;
    memcpy(buf, t->data + pos, n);
    return (ssize_t)n;
}
static void trunc_free(void *cls) {
    trunc_t *t = cls;
    free(t->data);
    free(t);
}

static char *completion(const char *content, int prompt_tokens) {
    json_t *r = json_pack("{s:s,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:i,s:i,s:i}}", "id", "fake-1", "object",
                          "chat.completion", "choices", "index", 0, "message", "role", "assistant", "content", content,
                          "finish_reason", "stop", "usage", "prompt_tokens", prompt_tokens, "completion_tokens", 20,
                          "total_tokens", prompt_tokens + 20);
    char *s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    return s;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_len, void **con_cls) {
    (void)cls, (void)version;
    body_t *b = *con_cls;
    if (!b) {
        *con_cls = calloc(1, sizeof(body_t));
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_len) {
        char *nb = realloc(b->buf, b->len + *upload_len + 1);
        if (!nb) return MHD_NO;
        b->buf = nb;
        memcpy(b->buf + b->len, upload, *upload_len);
        b->len += *upload_len;
        b->buf[b->len] = 0;
        *upload_len = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") || !strstr(url, "/chat/completions"))
        return reply(c, 404, "{\"error\":{\"message\":\"not found\"}}", "application/json");
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (expected_auth[0] && (!auth || strcmp(auth, expected_auth)))
        return reply(c, 401, "{\"error\":{\"message\":\"bad key\"}}", "application/json");
    if (record && b->buf) {
        pthread_mutex_lock(&mu);
        fprintf(record, "%s\n", b->buf);
        fflush(record);
        pthread_mutex_unlock(&mu);
    }
    json_error_t je;
    json_t *req = b->buf ? json_loads(b->buf, 0, &je) : NULL;
    json_t *msgs = json_object_get(req, "messages");
    const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
    const char *user = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
    if (!sys || !user) {
        json_decref(req);
        return reply(c, 400, "{\"error\":{\"message\":\"bad request\"}}", "application/json");
    }
    if (latency_ms) sleep_ms(latency_ms);
    uint64_t key = fnv(user);
    int attempt = attempt_of(key);
    const char *m = mode;
    static const char *mixed[] = {"429", "500", "slow", "malformed", "truncated", "wrongshape", "good"};
    if (!strcmp(m, "mixed")) m = mixed[(key >> 7) % 7];
    int faulty = strcmp(m, "good") && (faults < 0 || attempt < faults);
    if (fail_match && strstr(user, fail_match)) m = "500", faulty = 1;
    int diverse = strstr(sys, "REVISED PROFILE") != NULL;
    char content[512];
    if (faulty && !strcmp(m, "wrongshape"))
        snprintf(content, sizeof content, diverse ? "Here is a rewrite of %016llx" : "{\"profile\": \"%016llx\"}",
                 (unsigned long long)key);
    else if (diverse) snprintf(content, sizeof content, "REVISED PROFILE: a rewrite of %016llx", (unsigned long long)key);
    else snprintf(content, sizeof content, "```json\n{\"summarization\": \"profile %016llx\", \"reasoning\": \"r\"}\n```",
                  (unsigned long long)key);
    int ptoks = (int)(strlen(sys) + strlen(user)) / 4;
    json_decref(req);
    if (faulty && !strcmp(m, "429")) return reply(c, 429, "{\"error\":{\"message\":\"slow down\"}}", "application/json");
    if (faulty && !strcmp(m, "500")) return reply(c, 500, "{\"error\":{\"message\":\"oops\"}}", "application/json");
    if (faulty && !strcmp(m, "malformed")) return reply(c, 200, "{\"choices\": [{\"message\": {\"content\": \"x", "application/json");
    if (faulty && !strcmp(m, "slow")) sleep_ms(slow_ms);
    char *body = completion(content, ptoks);
    if (faulty && !strcmp(m, "truncated")) {
        trunc_t *t = calloc(1, sizeof(*t));
        t->data = body;
        t->len = strlen(body);
        struct MHD_Response *r = MHD_create_response_from_callback(t->len, 1024, trunc_read, t, trunc_free);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    enum MHD_Result ret = reply(c, 200, body, "application/json");
    free(body);
    return ret;
}

static void done_cb(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode tc) {
    (void)cls, (void)c, (void)tc;
    body_t *b = *con_cls;
    if (b) free(b->buf);
    free(b);
    *con_cls = NULL;
}

int main(int argc, char **argv) {
    const char *port_file = NULL, *key_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--port-file")) port_file = v;
        else if (!strcmp(o, "--mode")) mode = v;
        else if (!strcmp(o, "--faults")) faults = atoi(v);
        else if (!strcmp(o, "--retry-after")) retry_after = atoi(v);
        else if (!strcmp(o, "--slow-ms")) slow_ms = atoi(v);
        else if (!strcmp(o, "--latency-ms")) latency_ms = atoi(v);
        else if (!strcmp(o, "--fail-match")) fail_match = v;
        else if (!strcmp(o, "--record")) record_path = v;
        else if (!strcmp(o, "--key-file")) key_file = v;
        else {
            fprintf(stderr, "fake_llm: unknown option %s\n", o);
            return 2;
        }
    }
    if (!port_file) {
        fprintf(stderr, "usage: fake_llm --port-file F [--mode M] ...\n");
        return 2;
    }
    if (key_file) {
        FILE *f = fopen(key_file, "r");
        char k[400] = "";
        if (!f || !fgets(k, sizeof k, f)) return 2;
        fclose(f);
        k[strcspn(k, "\r\n")] = 0;
        snprintf(expected_auth, sizeof expected_auth, "Bearer %s", k);
    }
    if (record_path && !(record = fopen(record_path, "a"))) return 2;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 256) || getsockname(s, (struct sockaddr *)&a, &al)) {
        perror("fake_llm: socket");
        return 1;
    }
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                                            NULL, handle, NULL, MHD_OPTION_LISTEN_SOCKET, s,
                                            MHD_OPTION_NOTIFY_COMPLETED, done_cb, NULL,
                                            MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_llm: cannot start\n");
        return 1;
    }
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f) return 1;
    fprintf(f, "%d\n", ntohs(a.sin_port));
    fclose(f);
    rename(tmp, port_file);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    if (record) fclose(record);
    return 0;
}
