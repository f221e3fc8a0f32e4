/* test_serve.c — `easyrec serve` over real HTTP on 127.0.0.1 (libcurl as the client; the
 * server is a child process on a free port, stopped by pid): every route and error, the same
 * vector through /v1/embeddings, /embed and `easyrec encode`, /recommend following a changed
 * profile as offline `easyrec recommend` predicts, dozens of concurrent clients, kill -9
 * during acknowledged writes then restart, SIGTERM exit 0; an item write the catalog refuses
 * leaves the store as it was (no model needed). Needs ../shared/vocab for the random model
 * (skipped if absent). */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "io/tensors.h"
#include "serve/server_impl.h"

static const char *tmp(void) { return check_tmpdir("serve"); }

static void write_file(const char *name, const char *text) { check_write_file(tmp(), name, text); }

static const char *item_texts[] = {"A classic wooden chess set with hand-carved pieces.",
                                   "Running shoes made for long distance road races.",
                                   "An acoustic guitar for beginners, with spare strings.",
                                   "A cookbook of quick vegetarian dinners.",
                                   "Noise-cancelling headphones for music lovers.",
                                   "A trail running backpack with a water bladder."};
static const char *item_ids[] = {"\"sku-0\"", "1", "\"sku-2\"", "3", "\"sku-4\"", "5"};
#define N_ITEMS 6

static int model_ready;
static void setup(void) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for a random model");
    if (model_ready) return;
    const char *t = tmp();
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 1 --hidden 32 --heads 2 "
                     "--ffn 64 --seed 11 2>/dev/null",
                     check_bin(), t) == 0);
    char p[256];
    snprintf(p, sizeof p, "%s/items.jsonl", t);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    for (int i = 0; i < N_ITEMS; i++)
        fprintf(f, "{\"item_id\": %s, \"profile\": \"%s\", \"rank\": %d}\n", item_ids[i], item_texts[i], i);
    fclose(f);
    write_file("key", "s3cret-key\n");
    model_ready = 1;
}

/* ---- the server as a child process ---------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char url[64];
} server;

/* start `easyrec serve ARGS --port 0`, wait for its "serving ... on http://127.0.0.1:PORT" line */
static int start_server(server *s, const char *args) {
    char log[256], cmd[2048];
    snprintf(log, sizeof log, "%s/serve.log", tmp());
    unlink(log);
    snprintf(cmd, sizeof cmd, "exec %s serve --model %s/model --port 0 %s > /dev/null 2> %s", check_bin(), tmp(), args, log);
    s->pid = fork();
    if (s->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) {
        char *b = NULL;
        size_t n;
        if (er_read_file(log, &b, &n) == 0) {
            char *p = strstr(b, "on http://127.0.0.1:");
            if (p) {
                s->port = atoi(p + strlen("on http://127.0.0.1:"));
                snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
                free(b);
                return 1;
            }
            free(b);
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) return 0;
        usleep(50000);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    return 0;
}

/* SIGTERM; returns the exit status (-1 when it did not exit normally) */
static int stop_server(server *s) {
    kill(s->pid, SIGTERM);
    int st;
    if (waitpid(s->pid, &st, 0) != s->pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- HTTP client ------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len;
} sink;

static size_t on_data(char *p, size_t sz, size_t n, void *u) {
    sink *k = u;
    char *nb = realloc(k->buf, k->len + sz * n + 1);
    if (!nb) return 0;
    k->buf = nb;
    memcpy(k->buf + k->len, p, sz * n);
    k->len += sz * n;
    k->buf[k->len] = 0;
    return sz * n;
}

typedef struct {
    long status;
    char *body;
    char *headers;
    json_t *json;
} resp;

static void resp_free(resp *r) {
    free(r->body);
    free(r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* one request; key NULL: no Authorization header */
static resp http(const server *s, const char *method, const char *path, const char *body, const char *key) {
    resp r = {0};
    CURL *c = curl_easy_init();
    char url[512], auth[256];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    sink b = {0}, h = {0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    r.body = b.buf ? b.buf : calloc(1, 1);
    r.headers = h.buf ? h.buf : calloc(1, 1);
    r.json = json_loads(r.body, JSON_DECODE_ANY, NULL);
    return r;
}

/* status and, for errors, the OpenAI error shape with this code */
static int is_error(const resp *r, long status, const char *code) {
    json_t *e = json_object_get(r->json, "error");
    int ok = r->status == status && json_is_string(json_object_get(e, "message")) &&
             json_is_string(json_object_get(e, "type")) && (!code || !strcmp(json_string_value(json_object_get(e, "code")), code));
    if (!ok) printf("    expected %ld %s, got %ld %s\n", status, code ? code : "", r->status, r->body);
    return ok;
}

static int status_is(resp r, long status) {
    int ok = r.status == status;
    if (!ok) printf("    expected %ld, got %ld %s\n", status, r.status, r.body);
    resp_free(&r);
    return ok;
}

#define KEY "s3cret-key"

static void vec_of(json_t *arr, float *out, int D) {
    for (int d = 0; d < D; d++) out[d] = (float)json_real_value(json_array_get(arr, (size_t)d));
}

static int b64val(char ch) {
    const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(t, ch);
    return p && ch ? (int)(p - t) : -1;
}

static int b64decode(const char *s, unsigned char *out, size_t cap) {
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int x = b64val(*s);
        if (x < 0) return -1;
        v = (v << 6 | (unsigned)x) & 0xffffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n < cap) out[n] = (unsigned char)(v >> bits);
            n++;
        }
    }
    return (int)n;
}

/* ---- tests -------------------------------------------------------------------------------- */

TEST(routes_and_errors) {
    setup();
    server s;
    char args[1024];
    snprintf(args, sizeof args,
             "--catalog %s/items.jsonl --state %s/st1 --api-key-file %s/key --max-client-batch 4 --payload-limit 4096 "
             "--max-input-tokens 16 --max-batch-tokens 64 --threads 2",
             tmp(), tmp(), tmp());
    REQUIRE(start_server(&s, args));
    resp r = http(&s, "GET", "/health", NULL, NULL);
    CHECK(r.status == 200 && !strcmp(json_string_value(json_object_get(r.json, "status")), "ok"));
    resp_free(&r);
    r = http(&s, "GET", "/info", NULL, NULL);
    CHECK(is_error(&r, 401, "invalid_api_key") && strstr(r.headers, "WWW-Authenticate: Bearer"));
    resp_free(&r);
    r = http(&s, "GET", "/info", NULL, "s3cret-kez");
    CHECK(is_error(&r, 401, "invalid_api_key"));
    resp_free(&r);
    r = http(&s, "GET", "/info", NULL, "s3cret-key-longer");
    CHECK(is_error(&r, 401, "invalid_api_key"));
    resp_free(&r);
    r = http(&s, "GET", "/info", NULL, KEY);
    CHECK(r.status == 200 && json_integer_value(json_object_get(r.json, "dim")) == 32 &&
          json_integer_value(json_object_get(r.json, "catalog_size")) == N_ITEMS &&
          json_integer_value(json_object_get(json_object_get(r.json, "limits"), "max_input_tokens")) == 16);
    resp_free(&r);
    /* embeddings: float and base64 agree, usage counts tokens */
    r = http(&s, "POST", "/v1/embeddings", "{\"input\": [\"hello world\", \"chess\"], \"model\": \"m\"}", KEY);
    REQUIRE(r.status == 200);
    json_t *data = json_object_get(r.json, "data");
    CHECK(json_array_size(data) == 2 && !strcmp(json_string_value(json_object_get(r.json, "object")), "list"));
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "usage"), "prompt_tokens")) == 4 + 4); /* <s> hello Ġworld </s>, <s> ch ess </s> */
    float v[32], w[32];
    vec_of(json_object_get(json_array_get(data, 1), "embedding"), v, 32);
    CHECK(json_integer_value(json_object_get(json_array_get(data, 1), "index")) == 1);
    resp_free(&r);
    r = http(&s, "POST", "/v1/embeddings", "{\"input\": \"chess\", \"encoding_format\": \"base64\"}", KEY);
    REQUIRE(r.status == 200);
    const char *b64 = json_string_value(json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "embedding"));
    REQUIRE(b64);
    CHECK(b64decode(b64, (unsigned char *)w, sizeof w) == (int)sizeof w);
    double maxd = 0, norm = 0;
    for (int d = 0; d < 32; d++) {
        maxd = fmax(maxd, fabs(v[d] - w[d]));
        norm += (double)w[d] * w[d];
    }
    CHECK(maxd < 1e-6 && fabs(norm - 1) < 1e-5);
    resp_free(&r);
    /* TEI: normalize false gives the raw vector, a multiple of the normalised one */
    r = http(&s, "POST", "/embed", "{\"inputs\": \"chess\", \"normalize\": false}", KEY);
    REQUIRE(r.status == 200 && json_array_size(r.json) == 1);
    vec_of(json_array_get(r.json, 0), w, 32);
    norm = 0;
    for (int d = 0; d < 32; d++) norm += (double)w[d] * w[d];
    norm = sqrt(norm);
    maxd = 0;
    for (int d = 0; d < 32; d++) maxd = fmax(maxd, fabs(w[d] / norm - v[d]));
    CHECK(maxd < 1e-5);
    resp_free(&r);
    /* limits */
    r = http(&s, "POST", "/v1/embeddings", "{\"input\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", KEY);
    CHECK(is_error(&r, 413, "too_many_inputs"));
    resp_free(&r);
    static const char long_text[] = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
    char body[8192];
    snprintf(body, sizeof body, "{\"input\": \"%s\"}", long_text);
    r = http(&s, "POST", "/v1/embeddings", body, KEY);
    CHECK(is_error(&r, 400, "input_too_long"));
    resp_free(&r);
    snprintf(body, sizeof body, "{\"inputs\": \"%s\"}", long_text);
    r = http(&s, "POST", "/embed", body, KEY);
    CHECK(is_error(&r, 413, "input_too_long"));
    resp_free(&r);
    snprintf(body, sizeof body, "{\"inputs\": \"%s\", \"truncate\": true}", long_text);
    CHECK(status_is(http(&s, "POST", "/embed", body, KEY), 200));
    memset(body, 'x', 6000);
    memcpy(body, "{\"input\": \"", 11);
    strcpy(body + 5990, "\"}");
    r = http(&s, "POST", "/v1/embeddings", body, KEY);
    CHECK(is_error(&r, 413, "payload_too_large"));
    resp_free(&r);
    /* malformed requests */
    static const struct {
        const char *method, *path, *body, *code;
        long status;
    } bad[] = {{"POST", "/v1/embeddings", "{\"input\": ", "invalid_json", 400},
               {"POST", "/v1/embeddings", "[1, 2]", "invalid_json", 400},
               {"POST", "/v1/embeddings", "{\"input\": 5}", "invalid_type", 400},
               {"POST", "/v1/embeddings", "{\"input\": [\"a\", 5]}", "invalid_type", 400},
               {"POST", "/v1/embeddings", "{}", "missing_field", 400},
               {"POST", "/v1/embeddings", "{\"input\": []}", "invalid_value", 400},
               {"POST", "/v1/embeddings", "{\"input\": \"a\", \"encoding_format\": \"hex\"}", "invalid_value", 400},
               {"POST", "/v1/embeddings", "{\"input\": \"a\", \"dimensions\": 31}", "invalid_value", 400},
               {"POST", "/embed", "{\"inputs\": \"a\", \"normalize\": 1}", "invalid_type", 400},
               {"POST", "/recommend", "{\"k\": 3}", "invalid_value", 400},
               {"POST", "/recommend", "{\"profile\": \"a\", \"user_id\": 1}", "invalid_value", 400},
               {"POST", "/recommend", "{\"profile\": \"a\", \"k\": 0}", "invalid_value", 400},
               {"POST", "/recommend", "{\"profile\": \"a\", \"k\": \"3\"}", "invalid_value", 400},
               {"POST", "/recommend", "{\"profile\": \"a\", \"exclude\": [1.5]}", "invalid_type", 400},
               {"POST", "/recommend", "{\"user_id\": \"nobody\"}", "user_not_found", 404},
               {"PUT", "/users/u1/profile", "{\"profile\": 3}", "invalid_type", 400},
               {"POST", "/users/u1/interactions", "{\"items\": []}", "invalid_value", 400},
               {"POST", "/users/u1/interactions", "{\"items\": \"sku-0\"}", "invalid_type", 400},
               {"GET", "/users/nobody", NULL, "user_not_found", 404},
               {"PUT", "/items/x", "{\"price\": 3}", "missing_field", 400},
               {"DELETE", "/items/nothing", NULL, "item_not_found", 404},
               {"GET", "/items/nothing", NULL, "item_not_found", 404},
               {"GET", "/v1/embeddings", NULL, "method_not_allowed", 405},
               {"DELETE", "/users/u1", NULL, "method_not_allowed", 405},
               {"GET", "/nowhere", NULL, "unknown_route", 404},
               {"GET", "/users/a/b/c", NULL, "unknown_route", 404}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = http(&s, bad[i].method, bad[i].path, bad[i].body, KEY);
        if (!is_error(&r, bad[i].status, bad[i].code)) CHECK_FAILMSG("%s %s %s", bad[i].method, bad[i].path, bad[i].body ? bad[i].body : "");
        resp_free(&r);
    }
    /* a user with interactions but no profile cannot be recommended for (yet) */
    CHECK(status_is(http(&s, "POST", "/users/u1/interactions", "{\"items\": [\"sku-0\", 3, \"unknown\"]}", KEY), 200));
    r = http(&s, "POST", "/recommend", "{\"user_id\": \"u1\"}", KEY);
    CHECK(is_error(&r, 404, "user_not_found") && strstr(r.body, "no profile"));
    resp_free(&r);
    r = http(&s, "GET", "/users/u1", NULL, KEY);
    CHECK(r.status == 200 && json_is_null(json_object_get(r.json, "profile")) &&
          json_array_size(json_object_get(r.json, "interactions")) == 3 &&
          json_integer_value(json_array_get(json_object_get(r.json, "interactions"), 1)) == 3);
    resp_free(&r);
    /* items: put (created, then replaced), get with metadata, recommend sees it, delete */
    CHECK(status_is(http(&s, "PUT", "/items/new-1", "{\"profile\": \"A chess clock.\", \"color\": \"red\"}", KEY), 201));
    CHECK(status_is(http(&s, "PUT", "/items/new-1", "{\"profile\": \"A chess clock for blitz.\", \"color\": \"blue\"}", KEY), 200));
    r = http(&s, "GET", "/items/new-1", NULL, KEY);
    CHECK(r.status == 200 && !strcmp(json_string_value(json_object_get(r.json, "color")), "blue") &&
          !strcmp(json_string_value(json_object_get(r.json, "profile")), "A chess clock for blitz."));
    resp_free(&r);
    r = http(&s, "POST", "/recommend", "{\"profile\": \"A chess clock for blitz.\", \"k\": 100}", KEY);
    CHECK(r.status == 200 && json_array_size(r.json) == N_ITEMS + 1 &&
          !strcmp(json_string_value(json_object_get(json_array_get(r.json, 0), "item_id")), "new-1"));
    resp_free(&r);
    CHECK(status_is(http(&s, "DELETE", "/items/new-1", NULL, KEY), 200));
    r = http(&s, "POST", "/recommend", "{\"profile\": \"A chess clock for blitz.\", \"k\": 100, \"exclude\": [\"sku-0\", 1]}", KEY);
    CHECK(r.status == 200 && json_array_size(r.json) == N_ITEMS - 2);
    resp_free(&r);
    /* metrics */
    r = http(&s, "GET", "/metrics", NULL, KEY);
    CHECK(r.status == 200 && strstr(r.body, "easyrec_requests_total{route=\"/v1/embeddings\",status=\"200\"} 2") &&
          strstr(r.body, "easyrec_requests_total{route=\"/v1/embeddings\",status=\"413\"}") &&
          strstr(r.body, "easyrec_request_seconds_bucket{route=\"/recommend\",le=\"+Inf\"}") &&
          strstr(r.body, "easyrec_tokens_encoded_total") && strstr(r.body, "easyrec_encoder_queue_depth 0") &&
          strstr(r.body, "easyrec_catalog_items 6"));
    resp_free(&r);
    CHECK_EQ_INT(stop_server(&s), 0);
    /* inconsistent limits refuse to start, also from the environment */
    char log[256];
    snprintf(log, sizeof log, "%s/err.txt", tmp());
    CHECK(check_sh("%s serve --model %s/model --max-input-tokens 64 --max-batch-tokens 32 2> %s", check_bin(), tmp(), log) == 2);
    CHECK(check_sh("grep -q 'max-batch-tokens 32 is below --max-input-tokens 64' %s", log) == 0);
    CHECK(check_sh("EASYREC_MAX_INPUT_TOKENS=9999 %s serve --model %s/model 2> %s", check_bin(), tmp(), log) == 2);
    CHECK(check_sh("grep -q 'takes 2..512 tokens' %s", log) == 0);
}

/* encode `text` with the offline command at `precision`; out (32) */
static void offline_vec(const char *precision, const char *text, float *out) {
    write_file("one.txt", text);
    REQUIRE(check_sh("%s encode --model %s/model --text --input %s/one.txt --output %s/one.npy --quiet --precision %s",
                     check_bin(), tmp(), tmp(), tmp(), precision) == 0);
    char p[256];
    snprintf(p, sizeof p, "%s/one.npy", tmp());
    float *e;
    int nd;
    int64_t sh[8];
    REQUIRE(er_npy_read_f32(p, &e, &nd, sh) == 0 && sh[1] == 32);
    memcpy(out, e, 32 * sizeof(float));
    free(e);
}

TEST(same_vector_everywhere) {
    setup();
    server s;
    char args[512];
    snprintf(args, sizeof args, "--catalog %s/items.jsonl --threads 2", tmp());
    REQUIRE(start_server(&s, args));
    const char *text = "Enjoys long runs and vegetarian cooking.";
    float a[32], b[32], c[32];
    offline_vec("fp32", text, a);
    char body[512];
    snprintf(body, sizeof body, "{\"input\": [\"padding text to batch with\", \"%s\"]}", text);
    resp r = http(&s, "POST", "/v1/embeddings", body, NULL);
    REQUIRE(r.status == 200);
    vec_of(json_object_get(json_array_get(json_object_get(r.json, "data"), 1), "embedding"), b, 32);
    resp_free(&r);
    snprintf(body, sizeof body, "{\"inputs\": \"%s\"}", text);
    r = http(&s, "POST", "/embed", body, NULL);
    REQUIRE(r.status == 200);
    vec_of(json_array_get(r.json, 0), c, 32);
    resp_free(&r);
    double dab = 0, dac = 0;
    for (int d = 0; d < 32; d++) {
        dab = fmax(dab, fabs(a[d] - b[d]));
        dac = fmax(dac, fabs(a[d] - c[d]));
    }
    CHECK(dab < 1e-6 && dac < 1e-6);
    if (dab >= 1e-6 || dac >= 1e-6) printf("    max diff %g %g\n", dab, dac);
    CHECK_EQ_INT(stop_server(&s), 0);
}

/* offline `easyrec recommend --profiles` list at `precision` as (id text, score) */
static json_t *offline_recs(const char *precision, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/u.jsonl", tmp());
    json_t *u = json_pack("{s:s,s:s}", "user_id", "x", "profile", text);
    json_dump_file(u, p, JSON_COMPACT);
    json_decref(u);
    if (check_sh("%s recommend --model %s/model --catalog %s/items.jsonl --profiles %s/u.jsonl --k 6 --quiet --output %s/o.jsonl "
                 "--precision %s",
                 check_bin(), tmp(), tmp(), tmp(), tmp(), precision))
        return NULL;
    snprintf(p, sizeof p, "%s/o.jsonl", tmp());
    json_t *o = json_load_file(p, 0, NULL), *items = json_incref(json_object_get(o, "items"));
    json_decref(o);
    return items;
}

/* same ids with the same scores (1e-5; order may differ only between near-equal scores) */
static int same_list(json_t *a, json_t *b) {
    if (!a || !b || json_array_size(a) != json_array_size(b)) return 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i);
        int found = 0;
        for (size_t j = 0; j < json_array_size(b); j++) {
            json_t *y = json_array_get(b, j);
            if (json_equal(json_object_get(x, "item_id"), json_object_get(y, "item_id")) &&
                fabs(json_real_value(json_object_get(x, "score")) - json_real_value(json_object_get(y, "score"))) < 1e-5 &&
                (i == j || fabs(json_real_value(json_object_get(x, "score")) -
                                json_real_value(json_object_get(json_array_get(a, j), "score"))) < 2e-6))
                found = 1;
        }
        if (!found) return 0;
    }
    return 1;
}

TEST(recommend_follows_profile) {
    setup();
    server s;
    char args[512];
    snprintf(args, sizeof args, "--catalog %s/items.jsonl --threads 2", tmp());
    REQUIRE(start_server(&s, args));
    for (int round = 0; round < 2; round++) {
        const char *text = item_texts[round ? 3 : 0]; /* the profile says exactly what item 3 / 0 says */
        char body[512];
        snprintf(body, sizeof body, "{\"profile\": \"%s\"}", text);
        CHECK(status_is(http(&s, "PUT", "/users/alice/profile", body, NULL), 200));
        resp r = http(&s, "POST", "/recommend", "{\"user_id\": \"alice\", \"k\": 6}", NULL);
        REQUIRE(r.status == 200);
        json_t *off = offline_recs("fp32", text);
        CHECK(same_list(r.json, off));
        json_t *top = json_object_get(json_array_get(r.json, 0), "item_id");
        CHECK(round ? json_integer_value(top) == 3 : !strcmp(json_string_value(top) ? json_string_value(top) : "", "sku-0"));
        if (!same_list(r.json, off)) printf("    server %s\n", r.body);
        CHECK(json_integer_value(json_object_get(json_array_get(r.json, 0), "rank")) == (round ? 3 : 0)); /* metadata */
        json_decref(off);
        resp_free(&r);
    }
    /* exclude_seen leaves the interacted item out */
    CHECK(status_is(http(&s, "POST", "/users/alice/interactions", "{\"items\": [3]}", NULL), 200));
    resp r = http(&s, "POST", "/recommend", "{\"user_id\": \"alice\", \"k\": 6, \"exclude_seen\": true}", NULL);
    CHECK(r.status == 200 && json_array_size(r.json) == N_ITEMS - 1 &&
          json_integer_value(json_object_get(json_array_get(r.json, 0), "item_id")) != 3);
    resp_free(&r);
    CHECK_EQ_INT(stop_server(&s), 0);
}

/* ---- precision ------------------------------------------------------------------------------- */

static double max_abs_diff(const float *a, const float *b, int D) {
    double m = 0;
    for (int d = 0; d < D; d++) m = fmax(m, fabs((double)a[d] - b[d]));
    return m;
}

static double cosine(const float *a, const float *b, int D) {
    double ab = 0, aa = 0, bb = 0;
    for (int d = 0; d < D; d++) ab += (double)a[d] * b[d], aa += (double)a[d] * a[d], bb += (double)b[d] * b[d];
    return ab / sqrt(aa * bb);
}

/* /info's precision and fingerprint (fp: 80 bytes); 1 when the server answered */
static int info_precision(const server *s, char *precision, char *fp) {
    resp r = http(s, "GET", "/info", NULL, NULL);
    const char *p = json_string_value(json_object_get(r.json, "precision")),
               *f = json_string_value(json_object_get(r.json, "fingerprint")),
               *isa = json_string_value(json_object_get(r.json, "isa"));
    int ok = r.status == 200 && p && f && isa && *isa && json_integer_value(json_object_get(r.json, "weight_bytes")) > 0;
    if (ok) snprintf(precision, 16, "%s", p), snprintf(fp, 80, "%s", f);
    else printf("    /info: %ld %s\n", r.status, r.body);
    resp_free(&r);
    return ok;
}

/* 1 when the last start-up log says it encoded `what` (e.g. "catalog 6/6") */
static int log_encoded(const char *what) {
    return check_sh("grep -q 'encoding %s' %s/serve.log", what, tmp()) == 0;
}

TEST(precision_takes_effect_and_state_follows_it) {
    setup();
    server s;
    char args[512], prec[16], fp16[80], fp32[80], fp8[80];
    snprintf(args, sizeof args, "--catalog %s/items.jsonl --state %s/st4 --threads 2", tmp(), tmp());
    char args16[600];
    snprintf(args16, sizeof args16, "%s --precision bf16", args);
    REQUIRE(start_server(&s, args16));
    CHECK(info_precision(&s, prec, fp16) && !strcmp(prec, "bf16") && strstr(fp16, "-bf16"));
    /* /v1/embeddings runs at bf16: offline bf16 encode's vector, not fp32's, yet close to it */
    const char *text = "Enjoys long runs and vegetarian cooking.";
    float a32[32], a16[32], v[32];
    offline_vec("fp32", text, a32);
    offline_vec("bf16", text, a16);
    char body[512];
    snprintf(body, sizeof body, "{\"input\": \"%s\"}", text);
    resp r = http(&s, "POST", "/v1/embeddings", body, NULL);
    REQUIRE(r.status == 200);
    vec_of(json_object_get(json_array_get(json_object_get(r.json, "data"), 0), "embedding"), v, 32);
    resp_free(&r);
    double d16 = max_abs_diff(v, a16, 32), d32 = max_abs_diff(v, a32, 32), c32 = cosine(v, a32, 32);
    CHECK(d16 < 1e-6);
    CHECK(d32 > 1e-6); /* bf16 really ran */
    CHECK(c32 >= 0.9999);
    if (d16 >= 1e-6 || d32 <= 1e-6 || c32 < 0.9999) printf("    vs bf16 %g, vs fp32 %g, cosine to fp32 %.7f\n", d16, d32, c32);
    snprintf(body, sizeof body, "{\"profile\": \"%s\"}", item_texts[3]);
    CHECK(status_is(http(&s, "PUT", "/users/alice/profile", body, NULL), 200));
    CHECK_EQ_INT(stop_server(&s), 0);

    /* the same state at fp32: every item and user embedding bf16 made is encoded again */
    REQUIRE(start_server(&s, args));
    CHECK(log_encoded("catalog 6/6") && log_encoded("users 1/1"));
    CHECK(info_precision(&s, prec, fp32) && !strcmp(prec, "fp32") && strcmp(fp32, fp16) && !strchr(fp32 + 9, '-'));
    r = http(&s, "POST", "/recommend", "{\"user_id\": \"alice\", \"k\": 6}", NULL);
    json_t *off32 = offline_recs("fp32", item_texts[3]);
    CHECK(r.status == 200 && same_list(r.json, off32));
    resp_free(&r);
    CHECK_EQ_INT(stop_server(&s), 0);
    /* ... and stored at fp32: a second fp32 start encodes nothing */
    REQUIRE(start_server(&s, args));
    CHECK(!log_encoded(""));
    CHECK_EQ_INT(stop_server(&s), 0);

    /* EASYREC_PRECISION=int8: encoded again, ranked as offline int8 does (not as fp32) */
    setenv("EASYREC_PRECISION", "int8", 1);
    int up = start_server(&s, args);
    unsetenv("EASYREC_PRECISION");
    REQUIRE(up);
    CHECK(log_encoded("catalog 6/6") && log_encoded("users 1/1"));
    CHECK(info_precision(&s, prec, fp8) && !strcmp(prec, "int8") && strstr(fp8, "-int8"));
    r = http(&s, "POST", "/recommend", "{\"user_id\": \"alice\", \"k\": 6}", NULL);
    json_t *off8 = offline_recs("int8", item_texts[3]);
    CHECK(r.status == 200 && same_list(r.json, off8));
    CHECK(!same_list(r.json, off32)); /* int8 scores differ from fp32 ones by more than 1e-5 */
    if (!same_list(r.json, off8)) printf("    server %s\n", r.body);
    resp_free(&r);
    json_decref(off32);
    json_decref(off8);
    CHECK_EQ_INT(stop_server(&s), 0);

    /* a wrong value refuses to start, from the command line and from the environment */
    char log[256];
    snprintf(log, sizeof log, "%s/err.txt", tmp());
    CHECK(check_sh("%s serve --model %s/model --precision fp16 2> %s", check_bin(), tmp(), log) == 2);
    CHECK(check_sh("grep -q \"precision must be fp32, bf16 or int8, got 'fp16'\" %s", log) == 0);
    CHECK(check_sh("EASYREC_PRECISION=int4 %s serve --model %s/model 2> %s", check_bin(), tmp(), log) == 2);
    CHECK(check_sh("grep -q 'environment variable EASYREC_PRECISION' %s", log) == 0);
    CHECK(check_sh("%s serve --model %s/model --precision int8 --isa avx9 2> %s", check_bin(), tmp(), log) == 1);
    CHECK(check_sh("grep -q 'avx9' %s", log) == 0);
}

/* ---- concurrency ------------------------------------------------------------------------------- */

typedef struct {
    const server *s;
    int id, errors, inconsistent;
} client;

static void *client_main(void *arg) {
    client *c = arg;
    char path[128], body[512];
    for (int it = 0; it < 8; it++) {
        int item = (c->id + it) % N_ITEMS;
        snprintf(path, sizeof path, "/users/c%d/profile", c->id);
        snprintf(body, sizeof body, "{\"profile\": \"%s\"}", item_texts[item]);
        resp r = http(c->s, "PUT", path, body, NULL);
        c->errors += r.status != 200;
        resp_free(&r);
        /* read your write: the user's profile and the top recommendation follow it */
        snprintf(path, sizeof path, "/users/c%d", c->id);
        r = http(c->s, "GET", path, NULL, NULL);
        c->inconsistent += r.status != 200 || strcmp(json_string_value(json_object_get(r.json, "profile")) ?: "", item_texts[item]);
        resp_free(&r);
        snprintf(body, sizeof body, "{\"user_id\": \"c%d\", \"k\": 3}", c->id);
        r = http(c->s, "POST", "/recommend", body, NULL);
        json_t *top = json_object_get(json_array_get(r.json, 0), "rank");
        c->inconsistent += r.status != 200 || json_integer_value(top) != item;
        resp_free(&r);
        /* catalog writes by some clients, embeddings by others */
        if (c->id % 4 == 0) {
            snprintf(path, sizeof path, "/items/tmp-%d", c->id);
            r = http(c->s, "PUT", path, "{\"profile\": \"A temporary item that comes and goes.\"}", NULL);
            c->errors += r.status != 201;
            resp_free(&r);
            r = http(c->s, "DELETE", path, NULL, NULL);
            c->errors += r.status != 200;
            resp_free(&r);
        } else {
            r = http(c->s, "POST", "/v1/embeddings", "{\"input\": [\"a\", \"b c\", \"d e f\"]}", NULL);
            c->errors += r.status != 200 || json_array_size(json_object_get(r.json, "data")) != 3;
            resp_free(&r);
        }
    }
    return NULL;
}

TEST(concurrent_clients) {
    setup();
    server s;
    char args[512];
    snprintf(args, sizeof args, "--catalog %s/items.jsonl --state %s/st2 --threads 2", tmp(), tmp());
    REQUIRE(start_server(&s, args));
    enum { NC = 32 };
    pthread_t th[NC];
    client cl[NC];
    for (int i = 0; i < NC; i++) {
        cl[i] = (client){&s, i, 0, 0};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    int errors = 0, inconsistent = 0;
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        errors += cl[i].errors;
        inconsistent += cl[i].inconsistent;
    }
    CHECK_EQ_INT(errors, 0);
    CHECK_EQ_INT(inconsistent, 0);
    resp r = http(&s, "GET", "/info", NULL, NULL);
    CHECK(json_integer_value(json_object_get(r.json, "catalog_size")) == N_ITEMS &&
          json_integer_value(json_object_get(r.json, "users")) == NC);
    resp_free(&r);
    r = http(&s, "GET", "/metrics", NULL, NULL);
    CHECK(strstr(r.body, "easyrec_recommend_queries_total " "256") != NULL); /* 32 clients x 8 */
    resp_free(&r);
    CHECK_EQ_INT(stop_server(&s), 0);
}

TEST(overload_is_503_with_retry_after) {
    setup();
    server s;
    char args[512];
    snprintf(args, sizeof args, "--max-concurrent 1 --http-threads 8 --threads 1");
    REQUIRE(start_server(&s, args));
    /* rounds of 8 simultaneous requests until one finds the server busy */
    int got503 = 0, other = 0;
    for (int round = 0; round < 30 && !got503; round++) {
        CURLM *mh = curl_multi_init();
        CURL *e[8];
        sink sinks[8] = {{0}}, hs[8] = {{0}};
        char big[16384] = "{\"input\": [";
        for (int i = 0; i < 60; i++) strcat(big, i ? ", \"a somewhat longer text to encode, again and again\"" : "\"x\"");
        strcat(big, "]}");
        char url[128];
        snprintf(url, sizeof url, "%s/v1/embeddings", s.url);
        for (int i = 0; i < 8; i++) {
            e[i] = curl_easy_init();
            curl_easy_setopt(e[i], CURLOPT_URL, url);
            curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, big);
            curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, on_data);
            curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &sinks[i]);
            curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, on_data);
            curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &hs[i]);
            curl_multi_add_handle(mh, e[i]);
        }
        int running = 1;
        while (running) {
            curl_multi_perform(mh, &running);
            if (running) curl_multi_poll(mh, NULL, 0, 100, NULL);
        }
        for (int i = 0; i < 8; i++) {
            long st = 0;
            curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
            if (st == 503) {
                got503++;
                CHECK(hs[i].buf && strstr(hs[i].buf, "Retry-After: 1") && strstr(sinks[i].buf, "\"overloaded\""));
            } else if (st != 200) {
                other++;
            }
            curl_multi_remove_handle(mh, e[i]);
            curl_easy_cleanup(e[i]);
            free(sinks[i].buf);
            free(hs[i].buf);
        }
        curl_multi_cleanup(mh);
    }
    CHECK(got503 > 0);
    CHECK_EQ_INT(other, 0);
    CHECK_EQ_INT(stop_server(&s), 0);
}

/* ---- durability ---------------------------------------------------------------------------------- */

typedef struct {
    const server *s;
    atomic_int acked; /* writes 0..acked-1 were acknowledged */
    atomic_int stop;
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    char path[128], body[256];
    for (int i = 0; !atomic_load(&w->stop); i++) {
        int ok;
        if (i % 3 == 0) {
            snprintf(path, sizeof path, "/users/w%d/profile", i);
            snprintf(body, sizeof body, "{\"profile\": \"profile number %d\"}", i);
            resp r = http(w->s, "PUT", path, body, NULL);
            ok = r.status == 200;
            resp_free(&r);
        } else if (i % 3 == 1) {
            snprintf(path, sizeof path, "/users/w%d/interactions", i - 1);
            resp r = http(w->s, "POST", path, "{\"items\": [\"sku-0\", 5]}", NULL);
            ok = r.status == 200;
            resp_free(&r);
        } else {
            snprintf(path, sizeof path, "/items/it-%d", i);
            snprintf(body, sizeof body, "{\"profile\": \"item number %d\", \"n\": %d}", i, i);
            resp r = http(w->s, "PUT", path, body, NULL);
            ok = r.status == 201;
            resp_free(&r);
        }
        if (!ok) break; /* the server died under us: this write was not acknowledged */
        atomic_store(&w->acked, i + 1);
    }
    return NULL;
}

TEST(kill9_keeps_acknowledged_writes) {
    setup();
    server s;
    char args[512];
    snprintf(args, sizeof args, "--catalog %s/items.jsonl --state %s/st3 --threads 1", tmp(), tmp());
    REQUIRE(start_server(&s, args));
    writer w = {&s, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, writer_main, &w);
    for (int i = 0; i < 200 && atomic_load(&w.acked) < 60; i++) usleep(20000);
    kill(s.pid, SIGKILL);
    waitpid(s.pid, NULL, 0);
    atomic_store(&w.stop, 1);
    pthread_join(th, NULL);
    int acked = atomic_load(&w.acked);
    CHECK(acked >= 3);
    /* restart on the same state: everything acknowledged is there, nothing re-encoded */
    REQUIRE(start_server(&s, args));
    char log[256];
    snprintf(log, sizeof log, "%s/serve.log", tmp());
    CHECK(check_sh("! grep -q 'encoding' %s", log) == 0);
    int missing = 0;
    for (int i = 0; i < acked; i++) {
        char path[128];
        if (i % 3 == 0) {
            snprintf(path, sizeof path, "/users/w%d", i);
            resp r = http(&s, "GET", path, NULL, NULL);
            char want[64];
            snprintf(want, sizeof want, "profile number %d", i);
            missing += r.status != 200 || strcmp(json_string_value(json_object_get(r.json, "profile")) ?: "", want);
            if (i + 1 < acked) missing += json_array_size(json_object_get(r.json, "interactions")) != 2;
            resp_free(&r);
        } else if (i % 3 == 2) {
            snprintf(path, sizeof path, "/items/it-%d", i);
            resp r = http(&s, "GET", path, NULL, NULL);
            missing += r.status != 200 || json_integer_value(json_object_get(r.json, "n")) != i;
            resp_free(&r);
        }
    }
    CHECK_EQ_INT(missing, 0);
    /* the restored user is served from its stored embedding */
    resp r = http(&s, "POST", "/recommend", "{\"user_id\": \"w0\", \"k\": 2}", NULL);
    CHECK(r.status == 200 && json_array_size(r.json) == 2);
    resp_free(&r);
    CHECK_EQ_INT(stop_server(&s), 0);
}

/* what a restart does with the stored items: each into a catalog with its stored embedding,
 * then the scan copy (er_catalog_index refuses a non-finite embedding) */
static int restart_item(const er_store_row *r, void *user) {
    er_catalog *c = user;
    if (r->deleted) return er_catalog_find(c, r->id, strlen(r->id)) >= 0 ? er_catalog_remove(c, r->id, strlen(r->id)) : 0;
    int32_t row = er_catalog_put(c, r->id, r->id_int, r->text ? r->text : "", r->text ? r->len : 0, r->meta, r->emb);
    return row < 0 ? row : EASYREC_OK;
}

/* PUT /items' write (er_server_put_item) refuses an embedding the catalog would refuse before
 * the store sees it: the store keeps agreeing with the catalog and the next start succeeds.
 * (Over HTTP the encoder refuses non-finite embeddings first, so this is tested directly.) */
TEST(item_write_keeps_store_and_catalog_in_step) {
    enum { D = 8 };
    er_server s;
    memset(&s, 0, sizeof s);
    s.D = D;
    snprintf(s.fingerprint, sizeof s.fingerprint, "test-fingerprint");
    pthread_rwlock_init(&s.lock, NULL);
    pthread_mutex_init(&s.wmu, NULL);
    REQUIRE(er_catalog_init(&s.cat) == 0 && er_catalog_set_dim(&s.cat, D) == 0 && er_catalog_index(&s.cat) == 0);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/put_item_state", tmp());
    check_sh("rm -rf %s", dir);
    REQUIRE(er_store_open_sqlite(dir, D, &s.store) == 0);
    float good[D], bad[D];
    for (int d = 0; d < D; d++) good[d] = bad[d] = 0.1f * (float)(d + 1);
    bad[3] = NAN;
    int created = 0;
    er_store_row a = {"a", 0, "text a", 6, "{}", good, s.fingerprint, 1, 0};
    REQUIRE(er_server_put_item(&s, &a, &created) == 0);
    CHECK_EQ_INT(created, 1);
    er_store_row b = {"b", 0, "text b", 6, "{}", bad, s.fingerprint, 1, 0}, a2 = a;
    CHECK(check_failed_with(er_server_put_item(&s, &b, &created), EASYREC_ERR_ARG,
                            "item 'b': its embedding has a component that is not finite"));
    a2.text = "text a, changed";
    a2.len = strlen(a2.text);
    a2.emb = bad;
    CHECK(check_failed_with(er_server_put_item(&s, &a2, &created), EASYREC_ERR_ARG, "item 'a'"));
    CHECK(s.cat.n == 1 && !strcmp(s.cat.text[0], "text a"));
    s.store->ops->close(s.store);
    /* the restart */
    er_catalog c;
    REQUIRE(er_catalog_init(&c) == 0 && er_catalog_set_dim(&c, D) == 0);
    REQUIRE(er_store_open_sqlite(dir, D, &s.store) == 0);
    CHECK(s.store->ops->each_item(s.store, restart_item, &c) == 0);
    CHECK(er_catalog_index(&c) == 0);
    CHECK(c.n == 1 && !strcmp(c.id[0], "a") && !strcmp(c.text[0], "text a") && !memcmp(c.emb, good, sizeof good));
    s.store->ops->close(s.store);
    er_catalog_free(&c);
    er_catalog_free(&s.cat);
    pthread_rwlock_destroy(&s.lock);
    pthread_mutex_destroy(&s.wmu);
}

TEST(cleanup) {
    if (check_tmpdir_path[0]) check_sh("rm -rf %s", check_tmpdir_path);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    static const check_case cases[] = {CASE(routes_and_errors), CASE(same_vector_everywhere), CASE(recommend_follows_profile),
                                       CASE(precision_takes_effect_and_state_follows_it),
                                       CASE(concurrent_clients), CASE(overload_is_503_with_retry_after),
                                       CASE(kill9_keeps_acknowledged_writes),
                                       CASE(item_write_keeps_store_and_catalog_in_step), CASE(cleanup)};
    int rc = check_run(cases, (int)(sizeof cases / sizeof cases[0]));
    curl_global_cleanup();
    return rc;
}
