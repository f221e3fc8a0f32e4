/* cmd_profile.c — `easyrec profile items|users|diversify`: LLM-written profiles through any
 * OpenAI-compatible endpoint (src/profile/profile.h, docs/profile.md). The API key comes
 * from OPENAI_API_KEY or --api-key-file only, never from the command line, and is never
 * printed. Progress goes to stderr; Ctrl-C stops cleanly (finished records are kept). */
#include <curl/curl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/clock.h"
#include "core/err.h"
#include "easyrec.h"
#include "profile/profile.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}
static int stop_cb(void *ud) {
    (void)ud;
    return interrupted;
}

typedef struct {
    const char *task;
    int tty;
    double last_line;
} progress_ctx;

static void fmt_secs(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 1e8) snprintf(buf, cap, "?");
    else if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600) snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, cap, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

static void progress_cb(void *ud, const er_profile_progress *p) {
    progress_ctx *c = ud;
    double t = er_now();
    if (!c->tty && t - c->last_line < 5 && p->pending) return; /* a log: one line per 5 s */
    c->last_line = t;
    double rate = p->elapsed_s > 0 ? (double)(p->done + p->failed) / p->elapsed_s : 0;
    char eta[32];
    fmt_secs(rate > 0 ? (double)p->pending / rate : -1, eta, sizeof eta);
    fprintf(stderr, "%s[%s] %lld/%lld done (%lld earlier), %lld failed, %.1f/s, ETA %s, tokens %lld in / %lld out%s",
            c->tty ? "\r" : "", c->task, (long long)(p->skipped + p->done), (long long)p->total, (long long)p->skipped,
            (long long)p->failed, rate, eta, (long long)p->llm.prompt_tokens, (long long)p->llm.completion_tokens,
            c->tty ? "   " : "\n");
    fflush(stderr);
}

static void show_prompt(void *ud, const char *key, const char *system, const char *user) {
    (void)ud;
    printf("=== %s: system ===\n%s\n=== %s: user ===\n%s\n\n", key, system, key, user);
}

/* The prompts folder next to the binary: <bin>/../prompts or <bin>/../share/easyrec/prompts. */
static const char *default_prompts(char *buf, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = 0;
    const char *dir = dirname(exe);
    static const char *rel[] = {"../prompts", "../share/easyrec/prompts", "prompts"};
    for (size_t k = 0; k < sizeof rel / sizeof rel[0]; k++) {
        snprintf(buf, cap, "%s/%s/item_system.txt", dir, rel[k]);
        if (access(buf, R_OK) == 0) {
            snprintf(buf, cap, "%s/%s", dir, rel[k]);
            return buf;
        }
    }
    return NULL;
}

/* The key from OPENAI_API_KEY or a file (first line, white space trimmed); NULL: none. */
static char *api_key(const char *file, int *bad) {
    *bad = 0;
    if (file) {
        char *s;
        size_t n;
        if (er_read_file(file, &s, &n)) {
            *bad = 1;
            return NULL;
        }
        char *e = strpbrk(s, "\r\n");
        if (e) *e = 0;
        n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
        if (!n) {
            free(s);
            return NULL;
        }
        return s;
    }
    const char *k = getenv("OPENAI_API_KEY");
    return k && *k ? strdup(k) : NULL;
}

int cmd_profile(int argc, char **argv) {
    const char *data = NULL, *endpoint = NULL, *model = NULL, *prompts = NULL, *reviews = NULL, *meta = NULL,
               *key_file = NULL;
    int concurrency = 8, retries = 6, n_diverse = 3, max_items = 15, dry = 0, max_tokens = 0;
    double timeout = 60, temperature = 1;
    int64_t seed = 2024, limit = 0;
    cli_opt opts[] = {
        {.name = "data", .type = OPT_STR, .dst = &data, .meta = "DIR", .help = "dataset in the release layout (easyrec data import)", .required = 1},
        {.name = "endpoint", .type = OPT_STR, .dst = &endpoint, .meta = "URL", .help = "OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1 (default none)", .env = "EASYREC_LLM_ENDPOINT"},
        {.name = "model", .type = OPT_STR, .dst = &model, .meta = "NAME", .help = "model name sent with each request (default none)", .env = "EASYREC_LLM_MODEL"},
        {.name = "api-key-file", .type = OPT_STR, .dst = &key_file, .meta = "FILE", .help = "read the API key from FILE (default: $OPENAI_API_KEY; never from argv)"},
        {.name = "concurrency", .type = OPT_INT, .dst = &concurrency, .meta = "N", .help = "requests in flight", .min = 1, .max = 1024},
        {.name = "max-retries", .type = OPT_INT, .dst = &retries, .meta = "N", .help = "retries per request (backoff with jitter, Retry-After honoured)", .min = 0, .max = 100},
        {.name = "timeout", .type = OPT_DOUBLE, .dst = &timeout, .meta = "SEC", .help = "per-request timeout", .min = 0.01, .max = 86400},
        {.name = "temperature", .type = OPT_DOUBLE, .dst = &temperature, .meta = "T", .help = "sampling temperature (default: the server's)", .min = 0, .max = 2},
        {.name = "max-tokens", .type = OPT_INT, .dst = &max_tokens, .meta = "N", .help = "answer length cap sent to the server (default none)", .min = 0, .max = 1 << 20},
        {.name = "prompts", .type = OPT_STR, .dst = &prompts, .meta = "DIR", .help = "prompt templates (default: the installed prompts/)", .env = "EASYREC_PROMPTS"},
        {.name = "n-diverse", .type = OPT_INT, .dst = &n_diverse, .meta = "N", .help = "diversify: rewrites per profile", .min = 1, .max = 100},
        {.name = "max-items-per-user", .type = OPT_INT, .dst = &max_items, .meta = "N", .help = "users: training items shown (seeded sample beyond)", .min = 1, .max = 10000},
        {.name = "reviews", .type = OPT_STR, .dst = &reviews, .meta = "FILE", .help = "users: JSON lines {\"user_id\", \"item_id\", \"review\"} (dense ids; default none)"},
        {.name = "meta", .type = OPT_STR, .dst = &meta, .meta = "FILE", .help = "item metadata JSON lines {\"item_id\": dense id, \"title\", ...} (default DIR/item_meta.json)"},
        {.name = "seed", .type = OPT_I64, .dst = &seed, .meta = "S", .help = "seed of the users' item sample", .min = 0, .max = 9007199254740991.0},
        {.name = "limit", .type = OPT_I64, .dst = &limit, .meta = "N", .help = "at most N new records in this run (0: all)", .min = 0, .max = 9007199254740991.0},
        {.name = "dry-run", .type = OPT_FLAG, .dst = &dry, .help = "print the first prompts and a token estimate; send nothing"},
        {0},
    };
    cli_cmd cmd = {"profile", "items|users|diversify --data DIR --endpoint URL --model NAME [options]",
                   "LLM-written item profiles, then user profiles (training interactions only), then N rewrites of\n"
                   "each, through any OpenAI-compatible /chat/completions endpoint (docs/profile.md). Finished\n"
                   "records are journaled in DIR/profile_journal/; a rerun resumes. API key: $OPENAI_API_KEY.",
                   opts, 1, 1, "items|users|diversify"};
    char **pos;
    int npos;
    int rc = opt_parse(&cmd, argc, argv, &pos, &npos);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    er_profile_task task;
    if (!strcmp(pos[0], "items")) task = ER_PROFILE_ITEMS;
    else if (!strcmp(pos[0], "users")) task = ER_PROFILE_USERS;
    else if (!strcmp(pos[0], "diversify")) task = ER_PROFILE_DIVERSE;
    else return opt_usage_error(&cmd, "unknown task '%s' (items, users or diversify)", pos[0]);
    if (!dry && (!endpoint || !model)) return opt_usage_error(&cmd, "--endpoint and --model are required (or --dry-run)");
    char pbuf[PATH_MAX + 64];
    if (!prompts && !(prompts = default_prompts(pbuf, sizeof pbuf)))
        return opt_usage_error(&cmd, "no prompt templates found next to the binary: give --prompts DIR");
    int bad = 0;
    char *key = dry ? NULL : api_key(key_file, &bad);
    if (bad) return cli_fail(NULL);
    progress_ctx pc = {pos[0], isatty(2), 0};
    er_profile_opts o = {.task = task, .data_dir = data, .meta_path = meta, .reviews_path = reviews,
                         .prompts_dir = prompts, .n_diverse = n_diverse, .max_items_per_user = max_items,
                         .seed = (uint64_t)seed, .limit = limit, .dry_run = dry,
                         .llm = {.endpoint = endpoint, .model = model, .api_key = key, .concurrency = concurrency,
                                 .max_retries = retries, .timeout_s = timeout, .temperature = temperature,
                                 .has_temperature = opt_find(&cmd, "temperature")->seen, .max_tokens = max_tokens,
                                 .seed = (uint64_t)seed},
                         .progress = dry ? NULL : progress_cb, .show_prompt = show_prompt, .stop = stop_cb, .ud = &pc};
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    er_profile_result res;
    rc = er_profile_run(&o, &res);
    curl_global_cleanup();
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (key) {
        memset(key, 0, strlen(key));
        free(key);
    }
    if (pc.tty && !dry) fputc('\n', stderr);
    if (rc) return cli_fail(NULL);
    const er_profile_progress *p = &res.p;
    if (dry) {
        int64_t todo = p->total - p->skipped;
        if (limit > 0 && todo > limit) todo = limit;
        printf("%s: %lld requests to send (%lld of %lld already done), about %lld prompt tokens (chars / 4)\n", pos[0],
               (long long)todo, (long long)p->skipped, (long long)p->total, (long long)res.est_prompt_tokens);
        return 0;
    }
    const er_llm_stats *s = &p->llm;
    fprintf(stderr,
            "easyrec: %s: %lld/%lld records (%lld earlier, %lld now), %lld failed, %lld not attempted; %lld requests, %lld "
            "retries (429: %lld, 5xx: %lld, timeouts: %lld, bad bodies: %lld); tokens %lld in / %lld out; %.1fs\n",
            pos[0], (long long)(p->skipped + p->done), (long long)p->total, (long long)p->skipped, (long long)p->done,
            (long long)p->failed, (long long)p->pending, (long long)s->requests, (long long)s->retries,
            (long long)s->http_429, (long long)s->http_5xx, (long long)s->timeouts, (long long)s->bad_bodies,
            (long long)s->prompt_tokens, (long long)s->completion_tokens, p->elapsed_s);
    fprintf(stderr, "easyrec: journal %s\n", res.journal);
    if (res.complete) fprintf(stderr, "easyrec: wrote %s in %s\n", res.outputs, data);
    if (p->failed)
        fprintf(stderr, "easyrec: %lld failed, listed in %s; rerun the same command to retry them\n",
                (long long)p->failed, res.failed_ids);
    else if (!res.complete)
        fprintf(stderr, "easyrec: %lld still to do; rerun the same command to continue\n", (long long)p->pending);
    if (interrupted) return 130;
    return p->failed ? 1 : 0;
}
