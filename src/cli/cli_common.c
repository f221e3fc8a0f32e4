/* cli_common.c — option vocabulary shared by several subcommands (cli.h): thread default,
 * pooling names, loading a model at a precision. */
#include <stdio.h>
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


int cli_load_model(const char *dir, int precision, const char *isa, int verbose, easyrec_model **out) {
    *out = NULL;
    easyrec_model *m = NULL;
    if (easyrec_model_load(dir, &m)) return cli_fail(NULL);
    size_t b32 = easyrec_model_weight_bytes(m);
    if ((precision != EASYREC_PRECISION_FP32 || isa) &&
        easyrec_model_set_precision(m, (easyrec_precision)precision, isa)) {
        easyrec_model_free(m);
        return cli_fail(NULL);
    }
    if (verbose && precision != EASYREC_PRECISION_FP32)
        fprintf(stderr, "easyrec: %s weights %.1f MiB (fp32 %.1f MiB), kernels %s\n",
                easyrec_precision_name((easyrec_precision)precision), easyrec_model_weight_bytes(m) / 1048576.0,
                b32 / 1048576.0, easyrec_model_isa(m));
    *out = m;
    return 0;
}
