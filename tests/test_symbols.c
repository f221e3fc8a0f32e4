/* test_symbols.c — the house rule "every global symbol is easyrec_* (public) or er_* (private)":
 * nm lists the defined global symbols of the static library of this build; any other name is
 * a failure that names it (the shared library exports only easyrec_*: tests/install_check.sh). */
#include <string.h>

#include "check.h"

TEST(static_library_symbols_are_prefixed) {
    if (check_sh("command -v nm > /dev/null")) SKIP("nm missing");
    char build[256];
    snprintf(build, sizeof build, "%s", ER_FIXTURES); /* "<BUILD>/fixtures" */
    char *slash = strrchr(build, '/');
    if (slash) *slash = 0;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "nm -g --defined-only %s/libeasyrec.a", build);
    FILE *p = popen(cmd, "r");
    REQUIRE(p != NULL);
    char line[512];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, p)) {
        char addr[64], type[8], name[400];
        if (sscanf(line, "%63s %7s %399s", addr, type, name) != 3) continue;
        n++;
        /* .gomp_critical_user_* are OpenMP's names for named critical sections; __odr_asan.*
         * are AddressSanitizer's one-definition-rule markers of our own globals */
        if (!strncmp(name, "easyrec_", 8) || !strncmp(name, "er_", 3) || name[0] == '.') continue;
        if (!strncmp(name, "__odr_asan.er_", 14) || !strncmp(name, "__odr_asan.easyrec_", 19)) continue;
        if (bad++ < 20) CHECK_FAILMSG("unprefixed global symbol %s (%s)", name, type);
    }
    CHECK(pclose(p) == 0);
    CHECK(n > 100); /* the library was read at all */
    CHECK_EQ_INT(bad, 0);
}

CHECK_MAIN(CASE(static_library_symbols_are_prefixed))
