/* test_python.c — runs the Python package's tests (python/tests/test_easyrec.py) with
 * /usr/bin/python3 over this build's libeasyrec.so: embeddings bit-identical to `easyrec
 * encode`, tokenize as the CLI, errors as exceptions, threads, recommend vs brute force,
 * evaluate vs `easyrec eval`, pip install. Skipped (with the reason) without /usr/bin/python3
 * or numpy, and under the sanitizers (python cannot load an ASan library). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

TEST(python_package) {
#if defined(__SANITIZE_ADDRESS__)
    SKIP("sanitizer build: python cannot load the ASan-instrumented libeasyrec.so");
#endif
    if (check_sh("test -x /usr/bin/python3") != 0) SKIP("/usr/bin/python3 absent");
    if (check_sh("/usr/bin/python3 -c 'import numpy' > /dev/null 2>&1") != 0) SKIP("numpy absent for /usr/bin/python3");
    char build[256], lib[PATH_MAX + 32], bin[PATH_MAX + 32];
    snprintf(build, sizeof build, "%s", ER_FIXTURES); /* "<BUILD>/fixtures" */
    char *slash = strrchr(build, '/');
    if (slash) *slash = 0;
    char *abs = realpath(build, NULL);
    REQUIRE(abs);
    snprintf(lib, sizeof lib, "%s/libeasyrec.so", abs);
    snprintf(bin, sizeof bin, "%s/easyrec", abs);
    free(abs);
    int rc = check_sh("EASYREC_LIB=%s EASYREC_BIN=%s /usr/bin/python3 python/tests/test_easyrec.py > %s/python_tests.log "
                      "2>&1",
                      lib, bin, build);
    check_sh("grep -E '(ok|skipped|FAIL|ERROR|Error|Ran|OK|FAILED)' %s/python_tests.log | grep -v '^\\[' | sed 's/^/    /'",
             build);
    CHECK(rc == 0);
}

CHECK_MAIN(CASE(python_package))
