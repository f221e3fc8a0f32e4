/* cmd_tsne.c — `easyrec tsne --emb A.npy[,B.npy...] [--labels FILE] [--highlight ROWS]
 * [--arrows FROM:TO,...] --output plot.svg|plot.png [--perplexity 30] [--iterations 1000]
 * [--seed S] [--threads N]`: t-SNE of the concatenated embeddings (src/viz/tsne.c) drawn as a
 * labelled scatter plot (src/viz/plot_*.c). docs/demo.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "core/err.h"
#include "io/tensors.h"
#include "viz/plot.h"
#include "viz/tsne.h"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static void progress(void *ud, int iter, double kl) {
    if (*(int *)ud) fprintf(stderr, "  iteration %4d: KL %.4f\n", iter, kl);
}

/* read --emb files and concatenate their rows */
static int load_embs(const char *list, float **X, int *n, int *d) {
    char *dup = er_strdup(list);
    if (!dup) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    int rc = 0;
    *X = NULL, *n = 0, *d = 0;
    for (char *save = NULL, *tok = strtok_r(dup, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        float *a;
        int nd;
        int64_t sh[ER_MAX_DIMS];
        rc = er_npy_read_f32(tok, &a, &nd, sh);
        if (rc) break;
        if (nd != 2 || sh[0] < 1 || sh[1] < 1 || sh[0] > 10000000 || (*d && sh[1] != *d)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: expected a non-empty 2-D matrix%s", tok,
                          *d ? " with as many columns as the first --emb file" : "");
            free(a);
            break;
        }
        *d = (int)sh[1];
        float *nx = realloc(*X, ((size_t)*n + (size_t)sh[0]) * (size_t)*d * sizeof(float));
        if (!nx) {
            free(a);
            rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
            break;
        }
        *X = nx;
        memcpy(*X + (size_t)*n * *d, a, (size_t)sh[0] * *d * sizeof(float));
        *n += (int)sh[0];
        free(a);
    }
    free(dup);
    if (rc) free(*X), *X = NULL;
    return rc;
}

/* one label per line; distinct labels in order of first appearance; empty line = none */
static int load_labels(const char *path, int n, int *label, char ***names, int *n_names) {
    char *buf;
    size_t len;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    char **nm = calloc((size_t)n + 1, sizeof(char *));
    int k = 0, row = 0;
    if (!nm) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
    for (char *p = buf; !rc && p < buf + len;) {
        char *e = memchr(p, '\n', (size_t)(buf + len - p));
        if (!e) e = buf + len;
        if (e > p && e[-1] == '\r') e[-1] = 0;
        *e = 0;
        if (row >= n) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: more than %d lines (one label per embedding row)", path, n);
            break;
        }
        int l = -1;
        if (*p) {
            for (int i = 0; i < k; i++)
                if (!strcmp(nm[i], p)) l = i;
            if (l < 0) {
                nm[k] = er_strdup(p);
                if (!nm[k]) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
                l = k++;
            }
        }
        label[row++] = l;
        p = e + 1;
    }
    if (!rc && row != n) rc = er_error(EASYREC_ERR_FORMAT, "%s: %d labels for %d embedding rows", path, row, n);
    free(buf);
    if (rc) {
        for (int i = 0; nm && i < k; i++) free(nm[i]);
        free(nm);
        return rc;
    }
    *names = nm;
    *n_names = k;
    return 0;
}

/* "3,7=before,9" -> rows and names; "1:2,3:4" -> pairs */
static int parse_rows(const char *s, int pairs, int **rows, char ***names, int *count) {
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *rows = calloc((size_t)cap * 2, sizeof(int));
    if (names) *names = calloc((size_t)cap, sizeof(char *));
    if (!*rows || (names && !*names)) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    int k = 0;
    for (const char *p = s; *p;) {
        char *e;
        long a = strtol(p, &e, 10), b = 0;
        if (e == p || a < 0 || a > 100000000) return er_error(EASYREC_ERR_ARG, "bad row number in '%s'", s);
        if (pairs) {
            if (*e != ':') return er_error(EASYREC_ERR_ARG, "--arrows wants FROM:TO pairs, got '%s'", s);
            p = e + 1;
            b = strtol(p, &e, 10);
            if (e == p || b < 0 || b > 100000000) return er_error(EASYREC_ERR_ARG, "bad row number in '%s'", s);
            (*rows)[2 * k] = (int)a, (*rows)[2 * k + 1] = (int)b;
        } else {
            (*rows)[k] = (int)a;
            if (*e == '=') {
                const char *q = e + 1;
                size_t m = strcspn(q, ",");
                (*names)[k] = strndup(q, m);
                e = (char *)q + m;
            }
        }
        k++;
        if (*e == ',') e++;
        else if (*e) return er_error(EASYREC_ERR_ARG, "unexpected '%c' in '%s'", *e, s);
        p = e;
    }
    *count = k;
    return 0;
}

int cmd_tsne(int argc, char **argv) {
    const char *emb = NULL, *labels = NULL, *hl = NULL, *arrows = NULL, *output = NULL, *coords = NULL,
               *title = NULL;
    er_tsne_opts to;
    er_tsne_defaults(&to);
    int64_t seed = (int64_t)to.seed;
    int init = 0, quiet = 0;
    cli_opt opts[] = {
        {.name = "emb", .type = OPT_LIST, .dst = &emb, .meta = "A.npy[,B.npy...]", .required = 1,
         .help = "float32 .npy matrices [N, D] (same D); their rows are concatenated in order"},
        {.name = "output", .type = OPT_STR, .dst = &output, .meta = "FILE[,FILE]", .required = 1,
         .help = "plot.svg and/or plot.png (cairo), comma-separated: one t-SNE, each picture"},
        {.name = "labels", .type = OPT_STR, .dst = &labels, .meta = "FILE",
         .help = "one label per row (colour and legend); an empty line leaves a row unlabelled"},
        {.name = "highlight", .type = OPT_STR, .dst = &hl, .meta = "ROWS",
         .help = "rows drawn large: 3,7=name,... (name shown next to it, default #row)"},
        {.name = "arrows", .type = OPT_STR, .dst = &arrows, .meta = "FROM:TO,...", .help = "arrows between rows"},
        {.name = "title", .type = OPT_STR, .dst = &title, .meta = "TEXT", .help = "plot title (default t-SNE ...)"},
        {.name = "perplexity", .type = OPT_DOUBLE, .dst = &to.perplexity, .meta = "P", .min = 1, .max = 1000,
         .help = "t-SNE perplexity"},
        {.name = "iterations", .type = OPT_INT, .dst = &to.iterations, .meta = "N", .min = 1, .max = 100000,
         .help = "gradient-descent iterations (the first 250 with early exaggeration)"},
        {.name = "theta", .type = OPT_DOUBLE, .dst = &to.theta, .meta = "T", .min = 0, .max = 2,
         .help = "Barnes-Hut opening angle"},
        {.name = "exact-max", .type = OPT_INT, .dst = &to.exact_max, .meta = "N", .min = 0, .max = 20000,
         .help = "exact t-SNE up to N points, Barnes-Hut above"},
        {.name = "init", .type = OPT_CHOICE, .dst = &init, .meta = "pca|random", .choices = "pca|random",
         .help = "initial embedding (default pca, as scikit-learn)"},
        {.name = "seed", .type = OPT_I64, .dst = &seed, .meta = "S", .min = 0, .max = 9007199254740991.0,
         .help = "seed of --init random"},
        {.name = "threads", .type = OPT_INT, .dst = &to.threads, .meta = "N", .min = 0, .max = 1024,
         .env = "EASYREC_THREADS", .help = "threads (0: one per 1000 points, at most all cores)"},
        {.name = "coords", .type = OPT_STR, .dst = &coords, .meta = "OUT.npy",
         .help = "also write the 2-D coordinates [N, 2] as float32 .npy"},
        {.name = "quiet", .type = OPT_FLAG, .dst = &quiet, .help = "no progress on stderr"},
        {0}};
    cli_cmd cmd = {"tsne", "--emb A.npy[,B.npy...] --output plot.svg|plot.png [options]",
                   "t-SNE (exact below --exact-max points, Barnes-Hut above) of embeddings, drawn as a labelled\n"
                   "scatter plot with legend, title, highlighted rows and arrows",
                   opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    char *outs = er_strdup(output), *outv[8];
    int n_out = 0;
    if (!outs) {
        opt_free(&cmd);
        return cli_fail("out of memory");
    }
    for (char *save = NULL, *tok = strtok_r(outs, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n_out == 8 || (!ends_with(tok, ".png") && !ends_with(tok, ".svg"))) {
            rc = opt_usage_error(&cmd, "--output takes up to 8 files ending in .svg or .png, got '%s'", tok);
            free(outs);
            opt_free(&cmd);
            return rc;
        }
        outv[n_out++] = tok;
    }
    if (!n_out) {
        free(outs);
        rc = opt_usage_error(&cmd, "--output names no file");
        opt_free(&cmd);
        return rc;
    }
    to.seed = (uint64_t)seed;
    to.init_random = init;
    float *X = NULL, *Y = NULL;
    int n = 0, d = 0, n_names = 0, n_hl = 0, n_ar = 0;
    int *label = NULL, *hrows = NULL, *arows = NULL;
    char **names = NULL, **hnames = NULL;
    rc = load_embs(emb, &X, &n, &d);
    if (!rc && n < 4) rc = er_error(EASYREC_ERR_ARG, "tsne needs at least 4 rows, got %d", n);
    if (!rc && labels) {
        label = calloc((size_t)n, sizeof(int));
        rc = label ? load_labels(labels, n, label, &names, &n_names) : er_error(EASYREC_ERR_NOMEM, "out of memory");
    }
    if (!rc && hl) rc = parse_rows(hl, 0, &hrows, &hnames, &n_hl);
    if (!rc && arrows) rc = parse_rows(arrows, 1, &arows, NULL, &n_ar);
    for (int i = 0; !rc && i < n_hl; i++)
        if (hrows[i] >= n) rc = er_error(EASYREC_ERR_ARG, "--highlight row %d: only %d rows", hrows[i], n);
    for (int i = 0; !rc && i < 2 * n_ar; i++)
        if (arows[i] >= n) rc = er_error(EASYREC_ERR_ARG, "--arrows row %d: only %d rows", arows[i], n);
    if (!rc && !(Y = malloc((size_t)n * 2 * sizeof(float)))) rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
    double kl = 0;
    double t0 = er_now();
    if (!rc) {
        int verbose = !quiet;
        to.progress = progress;
        to.ud = &verbose;
        if (!quiet)
            fprintf(stderr, "easyrec tsne: %d points x %d, %s, perplexity %g, %d iterations\n", n, d,
                    n <= to.exact_max ? "exact" : "Barnes-Hut", to.perplexity, to.iterations);
        rc = er_tsne(X, n, d, &to, Y, &kl);
    }
    double t1 = er_now();
    if (!rc && coords) rc = er_npy_write_f32(coords, Y, 2, (int64_t[]){n, 2});
    char deftitle[160];
    snprintf(deftitle, sizeof deftitle, "t-SNE of %d embeddings (perplexity %g)", n, to.perplexity);
    er_plot p = {.n = n, .xy = Y, .label = label, .n_labels = n_names, .label_names = (const char *const *)names,
                 .highlight = hrows, .highlight_names = (const char *const *)hnames, .n_highlight = n_hl,
                 .arrows = arows, .n_arrows = n_ar, .title = title ? title : deftitle};
    int drew_png = 0;
    for (int i = 0; i < n_out && !rc; i++) {
        drew_png |= ends_with(outv[i], ".png");
        rc = ends_with(outv[i], ".png") ? er_plot_png(&p, outv[i]) : er_plot_svg(&p, outv[i]);
    }
    if (drew_png) er_plot_png_release(); /* the process ends next: cairo/fontconfig caches go */
    if (!rc && !quiet)
        fprintf(stderr, "easyrec tsne: KL %.4f, %.2f s; wrote %s%s%s\n", kl,
                t1 - t0, output, coords ? " and " : "",
                coords ? coords : "");
    int ret = rc ? cli_fail(NULL) : 0;
    for (int i = 0; names && i < n_names; i++) free(names[i]);
    for (int i = 0; hnames && i < n_hl; i++) free(hnames[i]);
    free(names);
    free(hnames);
    free(outs);
    free(X);
    free(Y);
    free(label);
    free(hrows);
    free(arows);
    opt_free(&cmd);
    return ret;
}
