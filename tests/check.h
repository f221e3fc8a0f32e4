/* check.h — the tiny test harness every tests/test_*.c uses.
 *
 * TEST(name) { CHECK(cond); CHECK_NEAR(a, b, tol); if (...) SKIP("why"); }
 * main: return check_run((check_case[]){{"name", name}, ...}, n);
 * Each test prints "ok NAME", "FAIL NAME: file:line: what" or "skip NAME: why"; the binary
 * ends with "N passed, N failed, N skipped" and exits 1 if anything failed. tests/run.sh
 * sums the binaries into the suite's closing line.
 */
#ifndef CHECK_H
#define CHECK_H
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "easyrec.h"

typedef struct {
    const char *name;
    void (*fn)(void);
} check_case;

static int check_cur_failed, check_cur_skipped;
static char check_skip_reason[256];
static jmp_buf check_jmp;

#define TEST(name) static void name(void)
#define CHECK_FAILMSG(...)                                                                    \
    do {                                                                                      \
        if (!check_cur_failed) fprintf(stdout, "\n");                                         \
        fprintf(stdout, "    %s:%d: ", __FILE__, __LINE__);                                   \
        fprintf(stdout, __VA_ARGS__);                                                         \
        fprintf(stdout, "\n");                                                                \
        check_cur_failed++;                                                                   \
    } while (0)
#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) CHECK_FAILMSG("CHECK(%s) failed", #cond);                                \
    } while (0)
/* Stop the current test at the first failure of a precondition. */
#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            CHECK_FAILMSG("REQUIRE(%s) failed", #cond);                                       \
            longjmp(check_jmp, 1);                                                            \
        }                                                                                     \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                    \
    do {                                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                                   \
        if (a_ != b_) CHECK_FAILMSG("%s == %lld, expected %s == %lld", #a, a_, #b, b_);       \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                 \
    do {                                                                                      \
        double a_ = (a), b_ = (b);                                                            \
        if (!(fabs(a_ - b_) <= (tol)))                                                        \
            CHECK_FAILMSG("%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol));    \
    } while (0)
#define SKIP(...)                                                                             \
    do {                                                                                      \
        snprintf(check_skip_reason, sizeof check_skip_reason, __VA_ARGS__);                   \
        check_cur_skipped = 1;                                                                \
        longjmp(check_jmp, 1);                                                                \
    } while (0)

static inline int check_run(const check_case *cases, int n) {
    volatile int passed = 0, failed = 0, skipped = 0;
    for (volatile int i = 0; i < n; i++) {
        check_cur_failed = 0;
        check_cur_skipped = 0;
        fflush(stdout);
        if (setjmp(check_jmp) == 0) cases[i].fn();
        if (check_cur_failed) {
            printf("FAIL %s\n", cases[i].name);
            failed++;
        } else if (check_cur_skipped) {
            printf("skip %s: %s\n", cases[i].name, check_skip_reason);
            skipped++;
        } else {
            printf("ok   %s\n", cases[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
#define CHECK_MAIN(...)                                                                       \
    int main(void) {                                                                          \
        static const check_case cases_[] = {__VA_ARGS__};                                     \
        return check_run(cases_, (int)(sizeof cases_ / sizeof cases_[0]));                    \
    }
#define CASE(fn) {#fn, fn}

/* Run a shell command built like printf; returns its exit status (128 if it did not exit). */
static int check_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int check_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The easyrec binary under test: $EASYREC_BIN (set by make test), else build/easyrec. */
/* ---- scratch files --------------------------------------------------------------------- */

/* The test binary's scratch directory /tmp/easyrec-<tag>-XXXXXX, made on first use; the same
 * path on every later call (check_tmpdir_path is empty until then). */
static char check_tmpdir_path[64] __attribute__((unused));
static inline const char *check_tmpdir(const char *tag) {
    if (!check_tmpdir_path[0]) {
        snprintf(check_tmpdir_path, sizeof check_tmpdir_path, "/tmp/easyrec-%s-XXXXXX", tag);
        REQUIRE(mkdtemp(check_tmpdir_path));
    }
    return check_tmpdir_path;
}

/* Write text to dir/name (a failure stops the test). */
static inline void check_write_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

static inline const char *check_bin(void) {
    const char *b = getenv("EASYREC_BIN");
    return b ? b : "build/easyrec";
}

/* rc is an easyrec error (not EASYREC_OK) of code `code` (0: any) whose message contains msg
 * (NULL: any); prints what differs. */
static inline int check_failed_with(int rc, int code, const char *msg) {
    if (rc == EASYREC_OK) return 0;
    if (code && rc != code) {
        printf("    code %d, message: %s\n", rc, easyrec_last_error());
        return 0;
    }
    if (msg && !strstr(easyrec_last_error(), msg)) {
        printf("    message: %s\n", easyrec_last_error());
        return 0;
    }
    return 1;
}

/* Path of ../shared relative to the repo root (tests run from the root). NULL if absent. */
static inline const char *check_shared_dir(void) {
    static const char *d = "../shared";
    FILE *f = fopen("../shared/vocab/roberta-base/vocab.json", "rb");
    if (!f) return NULL;
    fclose(f);
    return d;
}
#endif
