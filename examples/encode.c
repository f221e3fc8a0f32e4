/* encode.c — the smallest program over the installed library:
 *
 *   cc -o encode examples/encode.c $(pkg-config --cflags --libs easyrec)
 *   ./encode MODEL TEXT...      (MODEL: a model directory or a pulled org/name)
 *
 * Prints the library version, the embedding width, and for each text the cosine with the
 * first text and the first values of its embedding. */
#include <easyrec.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    printf("easyrec %s (header %s)\n", easyrec_version(), EASYREC_VERSION);
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL TEXT...\n", argv[0]);
        return 2;
    }
    easyrec_model *m = NULL;
    if (easyrec_model_load(argv[1], &m)) {
        fprintf(stderr, "encode: %s\n", easyrec_last_error());
        return 1;
    }
    int D = easyrec_model_dim(m), n = argc - 2;
    float *e = malloc((size_t)n * D * sizeof *e);
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    int rc = !e || !ctx || easyrec_encode(ctx, (const char *const *)argv + 2, NULL, (size_t)n, &o, e);
    if (rc) {
        fprintf(stderr, "encode: %s\n", easyrec_last_error());
    } else {
        printf("dim %d\n", D);
        for (int i = 0; i < n; i++) {
            double cos = 0;
            for (int k = 0; k < D; k++) cos += (double)e[k] * e[(size_t)i * D + k];
            printf("%.4f [%.6f %.6f %.6f ...] %s\n", cos, e[(size_t)i * D], e[(size_t)i * D + 1],
                   e[(size_t)i * D + 2], argv[2 + i]);
        }
    }
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
    free(e);
    return rc;
}
