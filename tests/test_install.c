/* test_install.c — runs tests/install_check.sh (make install into a temporary prefix, the
 * pkg-config example, exported symbols, DESTDIR, uninstall) on this build directory.
 * Skipped under the sanitizers: a program built by plain `cc` cannot load an ASan library. */
#include <string.h>

#include "check.h"

TEST(install_into_temporary_prefix) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("sanitizer build: the installed library needs the ASan runtime first");
#endif
    if (check_sh("command -v pkg-config > /dev/null && command -v nm > /dev/null && command -v readelf > /dev/null"))
        SKIP("pkg-config, nm or readelf missing");
    /* ER_FIXTURES is "<BUILD>/fixtures" */
    char build[256];
    snprintf(build, sizeof build, "%s", ER_FIXTURES);
    char *slash = strrchr(build, '/');
    if (slash) *slash = 0;
    char log[300];
    snprintf(log, sizeof log, "%s/install_check.log", build);
    int rc = check_sh("tests/install_check.sh %s > %s 2>&1", build, log);
    check_sh("sed 's/^/    /' %s", log);
    CHECK(rc == 0);
}

CHECK_MAIN(CASE(install_into_temporary_prefix))
