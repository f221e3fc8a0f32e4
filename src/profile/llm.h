/* llm.h — a dependable client for OpenAI-compatible chat completions (POST
 * <endpoint>/chat/completions) over libcurl multi: up to `concurrency` requests in flight,
 * a per-request timeout, exponential backoff with jitter, Retry-After honoured on 429/503,
 * and a truncated or non-JSON body treated as a retry, never a crash.
 *
 * The caller drives it with two callbacks: `next` hands out the next call to make (or none
 * for now), `done` receives each call's outcome (the answer text, or a failure after
 * max_retries retries, or a non-retryable HTTP status). `done` may queue more work that
 * `next` then hands out (e.g. a repair request). er_llm_run returns when `next` has nothing
 * and nothing is in flight or waiting for a retry.
 *
 * The library never prints and never logs the API key; the caller must have called
 * curl_global_init() once (the CLI does, in main's thread, before any thread starts).
 */
#ifndef ER_LLM_H
#define ER_LLM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;  /* "http://127.0.0.1:8080/v1" or the full ".../chat/completions" URL */
    const char *model;
    const char *api_key;   /* NULL or "": no Authorization header */
    int concurrency;       /* requests in flight, >= 1 */
    int max_retries;       /* retries after the first attempt, >= 0 */
    double timeout_s;      /* per request, whole transfer */
    double temperature;    /* sent when has_temperature */
    int has_temperature;
    int max_tokens;        /* sent when > 0 */
    double backoff_base_s; /* first retry waits base * (0.5 .. 1); doubles per attempt (0: 0.5 s) */
    double backoff_max_s;  /* cap of one wait, Retry-After included (0: 60 s) */
    uint64_t seed;         /* jitter */
} er_llm_opts;

/* One chat request: messages are (role, content) pairs, borrowed until `done`. */
#define ER_LLM_MAX_MSGS 4
typedef struct {
    int64_t key;                        /* caller's */
    void *ud;                           /* caller's */
    int n_msgs;
    const char *role[ER_LLM_MAX_MSGS];  /* "system", "user", "assistant" */
    const char *content[ER_LLM_MAX_MSGS];
} er_llm_call;

typedef struct {
    int64_t requests, retries, failures;       /* HTTP attempts, of them retries, calls failed */
    int64_t prompt_tokens, completion_tokens;  /* from the answers' "usage" */
    int64_t http_429, http_5xx, timeouts, bad_bodies;
} er_llm_stats;

typedef struct er_llm er_llm;

typedef struct {
    /* Fill *call with the next request; return 1, or 0 when there is none right now. */
    int (*next)(void *ctx, er_llm_call *call);
    /* ok = 1: text[0..len) is the answer's message content (NUL-terminated);
     * ok = 0: text is the reason it failed (no key or body in it). */
    void (*done)(void *ctx, const er_llm_call *call, int ok, const char *text, size_t len);
    /* Called about every 200 ms while running (may be NULL). Return nonzero to stop early:
     * calls in flight are abandoned (neither done nor failed). */
    int (*tick)(void *ctx);
    void *ctx;
} er_llm_driver;

int er_llm_new(const er_llm_opts *o, er_llm **out);
void er_llm_free(er_llm *c);
int er_llm_run(er_llm *c, const er_llm_driver *d);
const er_llm_stats *er_llm_get_stats(const er_llm *c);

/* Seconds from a Retry-After header value (delta-seconds or an HTTP date, relative to now);
 * -1 when unparseable. Exposed for tests. */
double er_llm_retry_after(const char *value, double now_epoch);

#endif
