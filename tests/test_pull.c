/* test_pull.c — `easyrec pull` and repo-id --model against a fake Hugging Face Hub
 * (tests/fake_hub.c, started here on 127.0.0.1 and killed by pid): cold download into the
 * huggingface_hub cache layout, warm cache, offline mode, resume after a cut, a corrupted byte,
 * 401/404 messages, revisions and refs, --include. The served model is a small random model
 * from `easyrec init` (needs ../shared/vocab) or, without it, a committed fixture model. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "core/err.h"

#define FAKE ER_FIXTURES "/../tests/fake_hub"
#define REPO "org/tiny-model"
#define RDIR "models--org--tiny-model"

static char T[64];
static int have_tokenizer;
static char c_main[41], c_v1[41];

typedef struct {
    pid_t pid;
    int port;
} fake;

static fake hub, hub_cut, hub_bad, hub_auth;

static char *slurp(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *slurp(const char *fmt, ...) {
    char p[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    char *s = NULL;
    size_t n;
    if (er_read_file(p, &s, &n)) return NULL;
    return s;
}

static fake start_fake(const char *name, const char *extra) {
    fake f = {0, 0};
    char info[128], cmd[1024];
    snprintf(info, sizeof info, "%s/%s.info", T, name);
    snprintf(cmd, sizeof cmd,
             "exec %s --info %s --repo " REPO " --rev main=%s/model --rev v1=%s/model-v1 --lfs-min 1000 %s",
             FAKE, info, T, T, extra);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !er_file_exists(info); i++) usleep(20000);
    char *s = slurp("%s", info);
    if (!s) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return f;
    }
    f.pid = pid;
    sscanf(s, "port %d", &f.port);
    char *r = strstr(s, "rev main ");
    if (r) sscanf(r, "rev main %40s", c_main);
    r = strstr(s, "rev v1 ");
    if (r) sscanf(r, "rev v1 %40s", c_v1);
    free(s);
    return f;
}

static void stop_fake(fake *f) {
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    f->pid = 0;
}

static size_t collect(char *p, size_t size, size_t n, void *user) {
    char *buf = user;
    size_t have = strlen(buf), len = size * n;
    if (have + len < 1024) {
        memcpy(buf + have, p, len);
        buf[have + len] = 0;
    }
    return len;
}

/* a counter of the fake's /_stats (not itself counted) */
static long stat_of(const fake *f, const char *what) {
    char url[128], buf[1024] = "", key[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_stats", f->port);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) return -100;
    snprintf(key, sizeof key, "%s ", what);
    char *p = strstr(buf, key);
    return p ? atol(p + strlen(key)) : -100;
}

/* run `easyrec pull ARGS` against fake f with cache CACHE; stdout/stderr in T/out, T/err */
static int pull(const fake *f, const char *cache, const char *env, const char *args) {
    return check_sh("HF_HUB_CACHE=%s/%s HF_ENDPOINT=http://127.0.0.1:%d %s %s pull %s > %s/out 2> %s/err", T, cache,
                    f ? f->port : 9, env ? env : "", check_bin(), args, T, T);
}

static int out_has(const char *file, const char *needle) {
    char *s = slurp("%s/%s", T, file);
    int ok = s && strstr(s, needle);
    if (!ok) printf("    %s: %s (wanted \"%s\")\n", file, s ? s : "(none)", needle);
    free(s);
    return ok;
}

static void setup(void) {
    strcpy(T, "/tmp/easyrec-pull-XXXXXX");
    REQUIRE(mkdtemp(T));
    setenv("HF_HOME", T, 1); /* no token file or cache of the user's */
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("HF_HUB_CACHE");
    have_tokenizer = check_shared_dir() != NULL;
    if (have_tokenizer)
        REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 1 --hidden 32 "
                         "--heads 2 --ffn 64 --max-positions 66 > /dev/null 2>&1",
                         check_bin(), T) == 0);
    else
        REQUIRE(check_sh("mkdir -p %s/model && cp " ER_FIXTURES "/models/roberta_st_f32/config.json " ER_FIXTURES
                         "/models/roberta_st_f32/model.safetensors %s/model/",
                         T, T) == 0);
    /* a nested file (symlink depth), and revision v1 = the same model with another README */
    REQUIRE(check_sh("mkdir -p %s/model/onnx && echo notes > %s/model/onnx/notes.txt && echo main > %s/model/README.md"
                     " && cp -r %s/model %s/model-v1 && echo v1 > %s/model-v1/README.md",
                     T, T, T, T, T, T) == 0);
    hub = start_fake("hub", "");
    hub_cut = start_fake("cut", "--cut-after 3000");
    hub_bad = start_fake("bad", "--corrupt 1");
    hub_auth = start_fake("auth", "--token hf_secret123");
    REQUIRE(hub.port && hub_cut.port && hub_bad.port && hub_auth.port && c_main[0] && c_v1[0]);
}

TEST(cold_download_layout) {
    REQUIRE(pull(&hub, "c1", NULL, REPO " --quiet") == 0);
    char want[256];
    snprintf(want, sizeof want, "%s/c1/" RDIR "/snapshots/%s\n", T, c_main);
    CHECK(out_has("out", want));
    char *ref = slurp("%s/c1/" RDIR "/refs/main", T);
    CHECK(ref && !strcmp(ref, c_main)); /* the commit, no newline */
    free(ref);
    /* every file: a relative symlink into blobs/<etag>, same bytes as served */
    const char *files[] = {"config.json", "model.safetensors", "README.md", "onnx/notes.txt"};
    for (int i = 0; i < 4; i++) {
        char ptr[512], tgt[256] = {0};
        snprintf(ptr, sizeof ptr, "%s/c1/" RDIR "/snapshots/%s/%s", T, c_main, files[i]);
        ssize_t n = readlink(ptr, tgt, sizeof tgt - 1);
        CHECK(n > 0);
        const char *prefix = strchr(files[i], '/') ? "../../../blobs/" : "../../blobs/";
        if (strncmp(tgt, prefix, strlen(prefix))) CHECK_FAILMSG("%s -> %s", files[i], tgt);
        CHECK(check_sh("cmp -s %s %s/model/%s", ptr, T, files[i]) == 0);
    }
    /* the LFS file's blob is named by its sha256 */
    CHECK(check_sh("cd %s/c1/" RDIR "/blobs && test \"$(sha256sum %s/model/model.safetensors | cut -c1-64)\" = "
                   "\"$(basename $(readlink ../snapshots/%s/model.safetensors))\"",
                   T, T, c_main) == 0);
    CHECK(check_sh("ls %s/c1/" RDIR "/blobs | grep -q incomplete", T) != 0);
}

TEST(warm_cache_and_repo_id_model) {
    long r0 = stat_of(&hub, "requests"), f0 = stat_of(&hub, "files");
    REQUIRE(pull(&hub, "c1", NULL, REPO " --quiet") == 0);
    CHECK_EQ_INT(stat_of(&hub, "requests") - r0, 1); /* the model info, as snapshot_download */
    CHECK_EQ_INT(stat_of(&hub, "files") - f0, 0);
    if (!have_tokenizer) SKIP("../shared/vocab absent: served model has no tokenizer");
    /* --model org/name reads the cache: no request, same embeddings as the directory */
    r0 = stat_of(&hub, "requests");
    CHECK(check_sh("echo 'a quiet thriller' > %s/in.txt && HF_HUB_CACHE=%s/c1 %s encode --model " REPO
                   " --text --input %s/in.txt --output %s/a.npy --quiet && %s encode --model %s/model --text --input "
                   "%s/in.txt --output %s/b.npy --quiet && cmp -s %s/a.npy %s/b.npy",
                   T, T, check_bin(), T, T, check_bin(), T, T, T, T, T) == 0);
    CHECK_EQ_INT(stat_of(&hub, "requests") - r0, 0);
}

TEST(offline_mode) {
    /* endpoint unreachable (port 9): the cache answers */
    CHECK(pull(NULL, "c1", "HF_HUB_OFFLINE=1", REPO " --quiet") == 0);
    CHECK(out_has("out", c_main));
    CHECK(pull(NULL, "empty", "HF_HUB_OFFLINE=1", REPO " --quiet") == 1);
    CHECK(out_has("err", "offline mode (HF_HUB_OFFLINE)"));
    /* a repo id that is not cached: the exact command to run */
    CHECK(check_sh("HF_HUB_CACHE=%s/empty %s tokenize --model org/absent < /dev/null > /dev/null 2> %s/err", T,
                   check_bin(), T) != 0);
    CHECK(out_has("err", "run: easyrec pull org/absent"));
}

TEST(resume_after_cut) {
    REQUIRE(pull(&hub_cut, "c2", NULL, REPO " --quiet") == 0);
    long first = stat_of(&hub_cut, "first_range");
    if (!(first > 0 && first <= 3000)) CHECK_FAILMSG("resumed from byte %ld, expected 1..3000", first);
    char ptr[512];
    snprintf(ptr, sizeof ptr, "%s/c2/" RDIR "/snapshots/%s/model.safetensors", T, c_main);
    CHECK(check_sh("cmp -s %s %s/model/model.safetensors", ptr, T) == 0);
}

TEST(corrupted_byte_rejected) {
    CHECK(pull(&hub_bad, "c3", NULL, REPO " --quiet") == 1);
    CHECK(out_has("err", "sha256 mismatch"));
    CHECK(out_has("err", "nothing entered the snapshot"));
    CHECK(check_sh("test -e %s/c3/" RDIR "/snapshots", T) != 0);
    CHECK(check_sh("test -e %s/c3/" RDIR "/refs/main", T) != 0);
    CHECK(check_sh("ls %s/c3/" RDIR "/blobs | grep -q incomplete", T) != 0);
}

TEST(auth_401_and_token) {
    CHECK(pull(&hub_auth, "c4", NULL, REPO " --quiet") == 1);
    CHECK(out_has("err", "HTTP 401"));
    CHECK(out_has("err", "set HF_TOKEN"));
    CHECK(pull(&hub_auth, "c4", "HF_TOKEN=hf_wrong456", REPO " --quiet") == 1);
    CHECK(out_has("err", "token from HF_TOKEN was refused"));
    char *e = slurp("%s/err", T);
    CHECK(e && !strstr(e, "hf_wrong456")); /* never printed */
    free(e);
    CHECK(pull(&hub_auth, "c4", "HF_TOKEN=hf_secret123", REPO " --quiet") == 0);
    /* the token file under HF_HOME works too */
    CHECK(check_sh("echo hf_secret123 > %s/token", T) == 0);
    CHECK(pull(&hub_auth, "c4b", NULL, REPO " --quiet") == 0);
    CHECK(check_sh("rm -f %s/token", T) == 0);
}

TEST(not_found_404) {
    CHECK(pull(&hub, "c5", NULL, "org/other --quiet") == 1);
    CHECK(out_has("err", "repository 'org/other' not found (HTTP 404)"));
    CHECK(pull(&hub, "c5", NULL, REPO " --revision nope --quiet") == 1);
    CHECK(out_has("err", "revision 'nope' not found in 'org/tiny-model'"));
    /* a hostile file list: refused before any path is made from it */
    CHECK(pull(&hub, "c5", NULL, REPO " --revision evil --quiet") == 1);
    CHECK(out_has("err", "not a safe relative path"));
    CHECK(check_sh("find %s -name escaped | grep -q .", T) != 0);
    CHECK(pull(&hub, "c5", NULL, "../etc --quiet") == 1);
    CHECK(out_has("err", "not a Hub repository id"));
}

TEST(revisions_and_refs) {
    long f0 = stat_of(&hub, "files");
    REQUIRE(pull(&hub, "c1", NULL, REPO " --revision v1 --quiet") == 0);
    CHECK(out_has("out", c_v1));
    CHECK_EQ_INT(stat_of(&hub, "files") - f0, 1); /* only the README differs: blobs are shared */
    char *ref = slurp("%s/c1/" RDIR "/refs/v1", T), *refm = slurp("%s/c1/" RDIR "/refs/main", T);
    CHECK(ref && !strcmp(ref, c_v1));
    CHECK(refm && !strcmp(refm, c_main));
    free(ref);
    free(refm);
    /* a commit as revision: no ref file for it */
    char args[128];
    snprintf(args, sizeof args, REPO " --revision %s --quiet", c_main);
    CHECK(pull(&hub, "c1", NULL, args) == 0);
    CHECK(check_sh("test -e %s/c1/" RDIR "/refs/%s", T, c_main) != 0);
    /* org/name@rev resolves to that revision's snapshot */
    CHECK(check_sh("HF_HUB_CACHE=%s/c1 %s tokenize --model " REPO "@nope < /dev/null > /dev/null 2> %s/err", T,
                   check_bin(), T) != 0);
    CHECK(out_has("err", "run: easyrec pull " REPO " --revision nope"));
    if (have_tokenizer)
        CHECK(check_sh("echo hi | HF_HUB_CACHE=%s/c1 %s tokenize --model " REPO "@v1 > /dev/null", T, check_bin()) ==
              0);
}

TEST(include_globs) {
    REQUIRE(pull(&hub, "c6", NULL, REPO " --include '*.json' --include 'onnx/*' --quiet") == 0);
    char snap[256];
    snprintf(snap, sizeof snap, "%s/c6/" RDIR "/snapshots/%s", T, c_main);
    CHECK(check_sh("test -L %s/config.json && test -L %s/onnx/notes.txt", snap, snap) == 0);
    CHECK(check_sh("test -e %s/model.safetensors || test -e %s/README.md", snap, snap) != 0);
    CHECK(pull(&hub, "c6", NULL, REPO " --include '*.onnx' --quiet") == 1);
    CHECK(out_has("err", "matches --include"));
}

static void teardown(void) {
    stop_fake(&hub);
    stop_fake(&hub_cut);
    stop_fake(&hub_bad);
    stop_fake(&hub_auth);
    if (T[0]) check_sh("rm -rf %s", T);
}

int main(void) {
    if (access(FAKE, X_OK) != 0) {
        printf("skip pull: %s missing\n0 passed, 0 failed, 1 skipped\n", FAKE);
        return 0;
    }
    static const check_case cases[] = {CASE(setup),
                                       CASE(cold_download_layout),
                                       CASE(warm_cache_and_repo_id_model),
                                       CASE(offline_mode),
                                       CASE(resume_after_cut),
                                       CASE(corrupted_byte_rejected),
                                       CASE(auth_401_and_token),
                                       CASE(not_found_404),
                                       CASE(revisions_and_refs),
                                       CASE(include_globs)};
    int rc = check_run(cases, (int)(sizeof cases / sizeof cases[0]));
    teardown();
    return rc;
}
