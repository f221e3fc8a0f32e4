/* test_profile.c — `easyrec profile` against a fake OpenAI-compatible server
 * (tests/fake_llm.c, started on 127.0.0.1 and killed by pid): good answers; 429 with
 * Retry-After, 500s, answers slower than the timeout, malformed JSON, truncated bodies and
 * JSON of the wrong shape (all retried or repaired into a complete run); answers that stay
 * wrong after the repair request are failed and listed; a run killed with SIGKILL midway
 * and resumed ends with every id exactly once; the API key reaches the server but no file,
 * log line or /proc/<pid>/cmdline; users' prompts hold exactly their training items. Plus
 * the pieces: Retry-After parsing, answer checks, the journal's torn-line recovery. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"
#include "core/rng.h"
#include "data/import.h"
#include "data/interactions.h"
#include "data/profiles.h"
#include "io/sparse_pickle.h"
#include "profile/journal.h"
#include "profile/llm.h"
#include "profile/profile.h"

#define KEY "sk-test-SECRET-4242-zz"
#define N_USERS 24
#define N_ITEMS 40
static const char *tmp(void) { return check_tmpdir("profile"); }
static char *tpath(const char *name) {
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", tmp(), name);
    return p[k];
}
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int count_lines(const char *path) {
    char *s;
    size_t n;
    if (er_read_file(path, &s, &n)) return -1;
    int c = 0;
    for (size_t k = 0; k < n; k++) c += s[k] == '\n';
    free(s);
    return c;
}
static int file_has(const char *path, const char *needle) {
    char *s;
    size_t n;
    if (er_read_file(path, &s, &n)) return 0;
    int r = memmem(s, n, needle, strlen(needle)) != NULL;
    free(s);
    return r;
}

/* ---- the fake server ------------------------------------------------------------------ */
static pid_t server_pid;
static int server_port;

static void server_start(const char *args) {
    char self[PATH_MAX], helper[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = 0;
    snprintf(helper, sizeof helper, "%s/fake_llm", dirname(self));
    char *port_file = tpath("port");
    unlink(port_file);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "exec %s --port-file %s --key-file %s %s", helper, port_file, tpath("key.txt"), args);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    server_pid = pid;
    server_port = 0;
    for (int k = 0; k < 500 && !server_port; k++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &server_port) != 1) server_port = 0;
            fclose(f);
        }
        if (!server_port) usleep(10000);
    }
    REQUIRE(server_port > 0);
}
static void server_stop(void) {
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    server_pid = 0;
}

/* ---- the dataset ---------------------------------------------------------------------- */
static er_csr splits[3];

static void make_dataset(const char *name) {
    char *dir = tpath(name);
    if (access(dir, F_OK) == 0) check_sh("rm -rf %s", dir);
    er_rng g;
    er_rng_seed(&g, 5);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int u = 0; u < N_USERS; u++) {
        int used[N_ITEMS] = {0};
        for (int k = 0; k < 8; k++) {
            int i = (int)er_rng_below(&g, N_ITEMS);
            if (!used[i]) fprintf(f, "%d\t%d\n", u, i), used[i] = 1;
        }
    }
    for (int i = 0; i < N_ITEMS; i++) fprintf(f, "%d\t%d\n", N_USERS, i); /* every item once more */
    fclose(f);
    REQUIRE(er_write_file_atomic(tpath("inter.tsv"), buf, len) == 0);
    free(buf);
    er_import_opts o = {.interactions = tpath("inter.tsv"), .output = dir, .p = {0.6, 0.2, 0.2}, .seed = 3};
    er_import_stats st;
    REQUIRE(er_import_run(&o, &st) == 0);
    REQUIRE(st.items == N_ITEMS && st.users == N_USERS + 1);
    /* dense item d = original d (numeric ids 0..39); titles "T<d>x" name them in prompts */
    buf = NULL;
    len = 0;
    f = open_memstream(&buf, &len);
    for (int i = 0; i < N_ITEMS; i++)
        fprintf(f, "{\"item_id\": %d, \"title\": \"T%dx\", \"description\": \"thing number %d\"}\n", i, i, i);
    fclose(f);
    char p[600];
    snprintf(p, sizeof p, "%s/item_meta.json", dir);
    REQUIRE(er_write_file_atomic(p, buf, len) == 0);
    free(buf);
    static const char *names[3] = {"trn_mat.pkl", "val_mat.pkl", "tst_mat.pkl"};
    for (int s = 0; s < 3; s++) {
        er_sparse sp;
        er_csr_free(&splits[s]);
        snprintf(p, sizeof p, "%s/%s", dir, names[s]);
        REQUIRE(er_sparse_pickle_load(p, &sp) == 0);
        REQUIRE(er_csr_from_sparse(&sp, &splits[s]) == 0);
        er_sparse_free(&sp);
    }
}

/* run `easyrec profile TASK --data DIR ...`; stderr to log.txt; returns the exit status */
static int profile(const char *task, const char *dir, const char *extra) {
    return check_sh("OPENAI_API_KEY=%s %s profile %s --data %s --endpoint http://127.0.0.1:%d/v1 --model fake "
                    "--prompts prompts %s > %s 2>> %s",
                    KEY, check_bin(), task, tpath(dir), server_port, extra, tpath("out.txt"), tpath("log.txt"));
}

/* the profile file covers ids 0..n-1 exactly once */
static void check_complete(const char *dir, const char *file, size_t n) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", tpath(dir), file);
    er_texts t;
    int rc = er_profiles_read_jsonl(p, &t);
    if (rc) printf("    %s\n", easyrec_last_error());
    REQUIRE(rc == 0);
    CHECK(t.has_ids);
    CHECK_EQ_INT(t.n, n);
    CHECK_EQ_INT(count_lines(p), n);
    er_texts_free(&t);
}

/* every key of a journal exactly once; returns the number of records */
static int journal_unique(const char *path) {
    char *s;
    size_t n;
    if (er_read_file(path, &s, &n)) return -1;
    json_t *seen = json_object();
    int count = 0, dup = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *r = json_loads(line, 0, &je);
        const char *k = json_string_value(json_object_get(r, "key"));
        if (!k) dup++;
        else if (json_object_get(seen, k)) dup++;
        else json_object_set_new(seen, k, json_true());
        count++;
        json_decref(r);
    }
    json_decref(seen);
    free(s);
    CHECK_EQ_INT(dup, 0);
    return count;
}

TEST(setup) {
    REQUIRE(er_write_file_atomic(tpath("key.txt"), KEY "\n", strlen(KEY) + 1) == 0);
    REQUIRE(access("prompts/item_system.txt", R_OK) == 0);
}

TEST(pieces) {
    CHECK_NEAR(er_llm_retry_after("7", 0), 7, 0);
    CHECK_NEAR(er_llm_retry_after(" 2.5 ", 0), 2.5, 0);
    CHECK_NEAR(er_llm_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0), 10, 0.5);
    CHECK(er_llm_retry_after("soon", 0) < 0);
    char *a, *b;
    const char *s = "```json\n{\"summarization\": \" likes x \", \"reasoning\": \"r\"}\n```";
    CHECK(er_prof_validate(ER_PROFILE_ITEMS, s, strlen(s), &a, &b) == NULL);
    CHECK(a && !strcmp(a, "likes x") && b && !strcmp(b, "r"));
    free(a), free(b);
    s = "{\"summarization\": \"x\"}";
    CHECK(er_prof_validate(ER_PROFILE_USERS, s, strlen(s), &a, &b) != NULL && !a);
    s = "{\"summary\": \"x\", \"reasoning\": \"y\"}";
    CHECK(er_prof_validate(ER_PROFILE_USERS, s, strlen(s), &a, &b) != NULL);
    s = "no json at all";
    CHECK(er_prof_validate(ER_PROFILE_ITEMS, s, strlen(s), &a, &b) != NULL);
    s = "  **REVISED PROFILE:** A reader of \"quiet\" novels.";
    CHECK(er_prof_validate(ER_PROFILE_DIVERSE, s, strlen(s), &a, &b) == NULL);
    CHECK(a && !strcmp(a, "A reader of \"quiet\" novels."));
    free(a);
    s = "Sure! A reader of novels.";
    CHECK(er_prof_validate(ER_PROFILE_DIVERSE, s, strlen(s), &a, &b) != NULL);
    char *t = er_prof_fill("a {{input}} b {{input}}", "input", "X");
    CHECK(t && !strcmp(t, "a X b X"));
    free(t);
    /* journal: a torn last line is cut, the keys before it count */
    const char *j = "{\"key\":\"item:0\",\"profile\":\"p\"}\n{\"key\":\"item:1\",\"profile\":\"q\"}\n{\"key\":\"item:2\",\"pro";
    REQUIRE(er_write_file_atomic(tpath("j.jsonl"), j, strlen(j)) == 0);
    er_journal jr;
    REQUIRE(er_journal_open(&jr, tpath("j.jsonl")) == 0);
    CHECK(er_journal_has(&jr, "item:0") && er_journal_has(&jr, "item:1") && !er_journal_has(&jr, "item:2"));
    json_t *rec = json_pack("{s:s,s:s}", "key", "item:2", "profile", "r");
    CHECK(er_journal_append(&jr, rec) == 0);
    json_decref(rec);
    CHECK(er_journal_close(&jr) == 0);
    CHECK_EQ_INT(journal_unique(tpath("j.jsonl")), 3);
    /* a bad line in the middle is an error naming it, not skipped silently */
    j = "{\"key\":\"item:0\"}\ngarbage\n{\"key\":\"item:1\"}\n";
    REQUIRE(er_write_file_atomic(tpath("j2.jsonl"), j, strlen(j)) == 0);
    CHECK(check_failed_with(er_journal_open(&jr, tpath("j2.jsonl")), EASYREC_ERR_FORMAT, "j2.jsonl:2"));
    er_journal_close(&jr);
}

/* good server: items, users (prompts hold exactly the training items), diversify; the
 * release files are read back; the key reached the server (else 401) but no file */
TEST(pipeline_good) {
    make_dataset("good");
    unlink(tpath("rec.jsonl"));
    server_start("--mode good");
    CHECK_EQ_INT(profile("items", "good", "--concurrency 4"), 0);
    check_complete("good", "item_profile.json", N_ITEMS);
    server_stop();
    char args[600];
    snprintf(args, sizeof args, "--mode good --record %s", tpath("rec.jsonl"));
    server_start(args);
    CHECK_EQ_INT(profile("users", "good", "--concurrency 3 --max-items-per-user 100"), 0);
    check_complete("good", "user_profile.json", N_USERS + 1);
    CHECK_EQ_INT(profile("diversify", "good", "--n-diverse 2 --concurrency 8"), 0);
    check_complete("good", "diverse_profile/diverse_item_profile_0.json", N_ITEMS);
    check_complete("good", "diverse_profile/diverse_item_profile_1.json", N_ITEMS);
    check_complete("good", "diverse_profile/diverse_user_profile_1.json", N_USERS + 1);
    CHECK(!file_has(tpath("good/diverse_profile/diverse_user_profile_0.json"), "REVISED"));
    server_stop();
    /* users' prompts: each is exactly one user's training items, none of val/test */
    char *s;
    size_t n;
    REQUIRE(er_read_file(tpath("rec.jsonl"), &s, &n) == 0);
    int matched[N_USERS + 1] = {0}, user_prompts = 0, leaks = 0, unmatched = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *r = json_loads(line, 0, &je);
        json_t *m = json_object_get(r, "messages");
        const char *sys = json_string_value(json_object_get(json_array_get(m, 0), "content"));
        const char *user = json_string_value(json_object_get(json_array_get(m, 1), "content"));
        if (sys && user && strstr(sys, "short profiles of users")) {
            user_prompts++;
            int in[N_ITEMS] = {0}, cnt = 0;
            for (const char *p = user; (p = strstr(p, "\"T")); p++) {
                int id;
                if (sscanf(p, "\"T%dx\"", &id) == 1 && id >= 0 && id < N_ITEMS) in[id] = 1, cnt++;
            }
            int who = -1;
            for (int u = 0; u <= N_USERS && who < 0; u++) {
                int same = csr_row_len(&splits[0], u) == cnt;
                for (int64_t k = splits[0].indptr[u]; same && k < splits[0].indptr[u + 1]; k++) same = in[splits[0].indices[k]];
                if (same && !matched[u]) who = u;
            }
            if (who < 0) unmatched++;
            else {
                matched[who]++;
                for (int sp = 1; sp < 3; sp++)
                    for (int64_t k = splits[sp].indptr[who]; k < splits[sp].indptr[who + 1]; k++) leaks += in[splits[sp].indices[k]];
            }
        }
        json_decref(r);
    }
    free(s);
    CHECK_EQ_INT(user_prompts, N_USERS + 1);
    CHECK_EQ_INT(unmatched, 0);
    CHECK_EQ_INT(leaks, 0);
    int val_items = 0;
    for (int u = 0; u <= N_USERS; u++) val_items += (int)(csr_row_len(&splits[1], u) + csr_row_len(&splits[2], u));
    CHECK(val_items > 10); /* the check had something to find */
    /* item profiles went into the users' prompts */
    CHECK(file_has(tpath("rec.jsonl"), "\\\"description\\\": \\\"profile "));
    /* the key: nowhere in the dataset, the journal or the log */
    CHECK(check_sh("grep -rq '%s' %s %s %s", KEY, tpath("good"), tpath("log.txt"), tpath("out.txt")) == 1);
    /* a rerun does nothing and keeps every record once */
    server_start("--mode 500 --faults -1");
    CHECK_EQ_INT(profile("items", "good", ""), 0);
    CHECK_EQ_INT(journal_unique(tpath("good/profile_journal/items.jsonl")), N_ITEMS);
    server_stop();
}

/* every fault on the first attempt of each prompt: retried (or repaired) to a full run */
TEST(faults_recovered) {
    static const char *modes[] = {"429", "500", "slow", "malformed", "truncated", "wrongshape"};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        char dir[32], args[200];
        snprintf(dir, sizeof dir, "f_%s", modes[m]);
        make_dataset(dir);
        snprintf(args, sizeof args, "--mode %s --faults 1 --retry-after 1 --slow-ms 1500 --record %s", modes[m],
                 tpath("frec.jsonl"));
        unlink(tpath("frec.jsonl"));
        server_start(args);
        double t0 = now_s();
        int rc = profile("items", dir, "--timeout 0.5 --max-retries 3 --concurrency 8");
        double dt = now_s() - t0;
        server_stop();
        if (rc) printf("    mode %s: exit %d\n", modes[m], rc);
        CHECK_EQ_INT(rc, 0);
        char file[64];
        snprintf(file, sizeof file, "%s/item_profile.json", dir);
        if (!rc) check_complete(dir, "item_profile.json", N_ITEMS);
        snprintf(file, sizeof file, "%s/profile_journal/items.jsonl", dir);
        CHECK_EQ_INT(journal_unique(tpath(file)), N_ITEMS);
        if (!strcmp(modes[m], "429")) CHECK(dt >= 0.95); /* Retry-After: 1 honoured */
        if (!strcmp(modes[m], "wrongshape")) {
            CHECK(file_has(tpath("frec.jsonl"), "could not be used")); /* the repair request */
            CHECK(file_has(tpath("frec.jsonl"), "\"role\":\"assistant\""));
            CHECK_EQ_INT(count_lines(tpath("frec.jsonl")), 2 * N_ITEMS);
        } else {
            CHECK_EQ_INT(count_lines(tpath("frec.jsonl")), 2 * N_ITEMS);
        }
    }
}

/* answers that stay wrong, a server that always fails, a wrong key: failed and listed */
TEST(failures_listed) {
    make_dataset("bad");
    server_start("--mode wrongshape --faults -1");
    CHECK_EQ_INT(profile("items", "bad", "--max-retries 1"), 1);
    CHECK_EQ_INT(count_lines(tpath("bad/profile_journal/items_failed_ids.txt")), N_ITEMS);
    CHECK(file_has(tpath("bad/profile_journal/items_failed_ids.txt"), "item:39\tanswer not in the asked shape"));
    CHECK(access(tpath("bad/item_profile.json"), F_OK) != 0); /* incomplete: no release file */
    server_stop();
    server_start("--mode 500 --faults -1");
    CHECK_EQ_INT(profile("items", "bad", "--max-retries 2 --limit 5"), 1);
    CHECK(file_has(tpath("bad/profile_journal/items_failed_ids.txt"), "item:0\tHTTP 500 (after 3 attempts)"));
    CHECK_EQ_INT(count_lines(tpath("bad/profile_journal/items_failed_ids.txt")), 5);
    server_stop();
    /* a wrong key: 401, not retried, and the key is not echoed anywhere */
    REQUIRE(er_write_file_atomic(tpath("key.txt"), "another-key\n", 12) == 0);
    server_start("--mode good");
    CHECK_EQ_INT(profile("items", "bad", "--limit 3"), 1);
    CHECK(file_has(tpath("bad/profile_journal/items_failed_ids.txt"), "HTTP 401 (not retried)"));
    server_stop();
    REQUIRE(er_write_file_atomic(tpath("key.txt"), KEY "\n", strlen(KEY) + 1) == 0);
    /* now a good server finishes the job */
    server_start("--mode good");
    CHECK_EQ_INT(profile("items", "bad", ""), 0);
    CHECK(access(tpath("bad/profile_journal/items_failed_ids.txt"), F_OK) != 0);
    check_complete("bad", "item_profile.json", N_ITEMS);
    server_stop();
    CHECK(check_sh("grep -rq '%s' %s %s", KEY, tpath("bad"), tpath("log.txt")) == 1);
}

/* kill -9 midway, resume: every id exactly once; failures listed; the key not in argv */
TEST(kill_and_resume) {
    make_dataset("kill");
    server_start("--mode good --latency-ms 40 --fail-match T7x");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "OPENAI_API_KEY=%s exec %s profile diversify --data %s --endpoint http://127.0.0.1:%d/v1 --model fake "
             "--prompts prompts --concurrency 2 --max-retries 1 >/dev/null 2>>%s",
             KEY, check_bin(), tpath("kill"), server_port, tpath("log.txt"));
    /* diversify needs profiles: write item profiles whose text names the title */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int i = 0; i < N_ITEMS; i++) fprintf(f, "{\"item_id\": %d, \"profile\": \"Fans of T%dx.\"}\n", i, i);
    fclose(f);
    REQUIRE(er_write_file_atomic(tpath("kill/item_profile.json"), buf, len) == 0);
    free(buf);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char journal[600], failed[600]; /* (tpath's buffers rotate) */
    snprintf(journal, sizeof journal, "%s", tpath("kill/profile_journal/diverse.jsonl"));
    snprintf(failed, sizeof failed, "%s", tpath("kill/profile_journal/diverse_failed_ids.txt"));
    int lines = 0, cmdline_clean = -1;
    for (int k = 0; k < 1000 && lines < 20; k++) {
        usleep(10000);
        lines = count_lines(journal);
        if (cmdline_clean < 0 && lines > 0) {
            char p[64], *s;
            size_t n;
            snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
            if (er_read_file(p, &s, &n) == 0) {
                cmdline_clean = memmem(s, n, KEY, strlen(KEY)) == NULL && memmem(s, n, "profile", 7) != NULL;
                free(s);
            }
        }
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL); /* killed midway, not finished */
    CHECK_EQ_INT(cmdline_clean, 1);
    int before = journal_unique(journal);
    CHECK(before >= 20 && before < 3 * N_ITEMS);
    /* resume: the three rewrites of item 7 keep failing */
    CHECK_EQ_INT(profile("diversify", "kill", "--concurrency 4 --max-retries 1"), 1);
    CHECK_EQ_INT(journal_unique(journal), 3 * N_ITEMS - 3);
    CHECK_EQ_INT(count_lines(failed), 3);
    CHECK(file_has(failed, "item:0:7\t") && file_has(failed, "item:1:7\t") && file_has(failed, "item:2:7\t"));
    CHECK(access(tpath("kill/diverse_profile/diverse_item_profile_0.json"), F_OK) != 0);
    server_stop();
    server_start("--mode good");
    CHECK_EQ_INT(profile("diversify", "kill", ""), 0);
    CHECK_EQ_INT(journal_unique(journal), 3 * N_ITEMS);
    for (int k = 0; k < 3; k++) {
        char name[80];
        snprintf(name, sizeof name, "diverse_profile/diverse_item_profile_%d.json", k);
        check_complete("kill", name, N_ITEMS);
    }
    server_stop();
    CHECK(check_sh("grep -rq '%s' %s %s", KEY, tpath("kill"), tpath("log.txt")) == 1);
}

TEST(dry_run) {
    make_dataset("dry");
    int rc = check_sh("%s profile users --data %s --prompts prompts --dry-run --max-items-per-user 3 > %s 2>&1",
                      check_bin(), tpath("dry"), tpath("dry.txt"));
    CHECK_EQ_INT(rc, 0);
    CHECK(file_has(tpath("dry.txt"), "=== user:0: user ==="));
    CHECK(file_has(tpath("dry.txt"), "prompt tokens"));
    CHECK(access(tpath("dry/profile_journal"), F_OK) != 0); /* nothing written */
    /* argv never takes a key */
    CHECK(check_sh("%s profile items --data %s --api-key sk-x --dry-run >/dev/null 2>&1", check_bin(), tpath("dry")) == 2);
}

TEST(cleanup) {
    server_stop();
    for (int s = 0; s < 3; s++) er_csr_free(&splits[s]);
    if (!getenv("EASYREC_KEEP_TMP")) check_sh("rm -rf %s", tmp()); /* keep it to look into a failure */
}

CHECK_MAIN(CASE(setup), CASE(pieces), CASE(pipeline_good), CASE(faults_recovered), CASE(failures_listed),
           CASE(kill_and_resume), CASE(dry_run), CASE(cleanup))
