/* cli_common.c — option vocabulary shared by several subcommands (cli.h): thread default,
 * pooling names. */
#include <unistd.h>

#include "cli/cli.h"

int cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    return n > CLI_MAX_THREADS ? CLI_MAX_THREADS : (int)n;
}

easyrec_pooling cli_pooling(int choice) {
    static const easyrec_pooling p[] = {EASYREC_POOL_DEFAULT, EASYREC_POOL_EASYREC, EASYREC_POOL_CLS, EASYREC_POOL_MEAN};
    return choice >= 0 && choice < 4 ? p[choice] : EASYREC_POOL_DEFAULT;
}

