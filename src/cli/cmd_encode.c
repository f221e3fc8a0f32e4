/* cmd_encode.c — `easyrec encode` and `easyrec similarity`. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "data/profiles.h"
#include "easyrec.h"
#include "io/tensors.h"

static const char encode_usage[] =
    "usage: easyrec encode --model DIR --input FILE --output OUT.npy [options]\n"
    "  --model DIR          Hugging Face model directory (config.json + weights + tokenizer)\n"
    "  --input FILE         JSON lines with a \"profile\" field (rows ordered by user_id/item_id\n"
    "                       when present, else file order); with --text one text per line\n"
    "  --output OUT.npy     float32 [N, D] embeddings, written atomically\n"
    "  --max-length N       truncation incl. <s> </s> (default 512, as the reference encodes)\n"
    "  --batch-size N       at most N texts per forward batch (default: by tokens)\n"
    "  --batch-tokens N     about N real tokens per forward batch (default 2048)\n"
    "  --threads N          worker threads (default: all cores)\n"
    "  --pooling P          easyrec | cls | mean (default easyrec when the model has mlp.*)\n"
    "  --no-normalize       skip L2 normalisation\n"
    "  --text               input is plain text, one profile per line\n"
    "  --quiet              no progress bar\n";

static int parse_int(const char *s, const char *what, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > 1 << 30) {
        fprintf(stderr, "easyrec: %s must be an integer >= %d, got '%s'\n", what, lo, s);
        return 2;
    }
    *out = (int)v;
    return 0;
}

static int parse_pooling(const char *s, easyrec_pooling *p) {
    if (!strcmp(s, "easyrec")) *p = EASYREC_POOL_EASYREC;
    else if (!strcmp(s, "cls")) *p = EASYREC_POOL_CLS;
    else if (!strcmp(s, "mean")) *p = EASYREC_POOL_MEAN;
    else {
        fprintf(stderr, "easyrec: --pooling must be easyrec, cls or mean, got '%s'\n", s);
        return 2;
    }
    return 0;
}

typedef struct {
    double t0;
    size_t base, total;
} progress_state;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress_bar(void *user, size_t done, size_t total_chunk) {
    progress_state *ps = user;
    size_t d = ps->base + done;
    double el = now() - ps->t0, rate = el > 0 ? d / el : 0;
    int w = 30, fill = ps->total ? (int)((double)d / ps->total * w) : w;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu  %.0f texts/s  ", fill, "##############################", w - fill, "", d,
            ps->total, rate);
    (void)total_chunk;
}

/* Shared option state of encode / similarity. */
typedef struct {
    const char *model, *input, *output;
    int text, quiet;
    easyrec_encode_opts o;
} encode_args;

static int encode_parse(int argc, char **argv, encode_args *a) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},      {"input", required_argument, 0, 'i'},
        {"output", required_argument, 0, 'o'},     {"max-length", required_argument, 0, 'L'},
        {"batch-size", required_argument, 0, 'b'}, {"batch-tokens", required_argument, 0, 'B'},
        {"threads", required_argument, 0, 't'},    {"pooling", required_argument, 0, 'p'},
        {"no-normalize", no_argument, 0, 'N'},     {"text", no_argument, 0, 'T'},
        {"quiet", no_argument, 0, 'q'},            {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof(*a));
    easyrec_encode_opts_init(&a->o);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    a->o.threads = nproc > 0 ? (int)nproc : 1;
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'i': a->input = optarg; break;
        case 'o': a->output = optarg; break;
        case 'L': if ((rc = parse_int(optarg, "--max-length", 2, &a->o.max_length))) return rc; break;
        case 'b': if ((rc = parse_int(optarg, "--batch-size", 1, &a->o.batch_size))) return rc; break;
        case 'B': if ((rc = parse_int(optarg, "--batch-tokens", 1, &a->o.batch_tokens))) return rc; break;
        case 't': if ((rc = parse_int(optarg, "--threads", 1, &a->o.threads))) return rc; break;
        case 'p': if ((rc = parse_pooling(optarg, &a->o.pooling))) return rc; break;
        case 'N': a->o.no_normalize = 1; break;
        case 'T': a->text = 1; break;
        case 'q': a->quiet = 1; break;
        case 'h': return -1;
        default: return 2;
        }
    }
    return 0;
}

/* texts are encoded in chunks so tokenized ids stay bounded for huge inputs */
#define CHUNK 65536

int cmd_encode(int argc, char **argv) {
    encode_args a;
    int rc = encode_parse(argc, argv, &a);
    if (rc == -1) {
        fputs(encode_usage, stdout);
        return 0;
    }
    if (rc || !a.model || !a.input || !a.output || optind != argc) {
        fputs(encode_usage, stderr);
        return 2;
    }
    er_texts t;
    rc = a.text ? profiles_read_lines(a.input, &t) : profiles_read_jsonl(a.input, &t);
    if (rc) return cli_fail(NULL);
    easyrec_model *m = NULL;
    if (easyrec_model_load(a.model, &m)) {
        texts_free(&t);
        return cli_fail(NULL);
    }
    int D = easyrec_model_dim(m), status = 0;
    float *out = calloc(t.n ? t.n : 1, (size_t)D * sizeof(float));
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    progress_state ps = {now(), 0, t.n};
    if (!a.quiet && isatty(2)) {
        a.o.progress = progress_bar;
        a.o.progress_user = &ps;
    }
    if (!out || !ctx) {
        status = cli_fail("out of memory");
        goto done;
    }
    for (size_t s = 0; s < t.n; s += CHUNK) {
        size_t k = t.n - s < CHUNK ? t.n - s : CHUNK;
        ps.base = s;
        if (easyrec_encode(ctx, (const char *const *)t.text + s, t.len + s, k, &a.o, out + s * D)) {
            if (a.o.progress) fputc('\n', stderr);
            status = cli_fail(NULL);
            goto done;
        }
    }
    if (a.o.progress) fputc('\n', stderr);
    int64_t shape[2] = {(int64_t)t.n, D};
    if (npy_write_f32(a.output, out, 2, shape)) {
        status = cli_fail(NULL);
        goto done;
    }
    if (!a.quiet) fprintf(stderr, "easyrec: wrote %zu x %d embeddings to %s (%.2f s)\n", t.n, D, a.output, now() - ps.t0);
done:
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
    free(out);
    texts_free(&t);
    return status;
}

static const char similarity_usage[] =
    "usage: easyrec similarity --model DIR [--max-length N] [--pooling P] TEXT TEXT...\n"
    "  prints the cosine similarity of the first text with each other text, one per line\n";

int cmd_similarity(int argc, char **argv) {
    encode_args a;
    int rc = encode_parse(argc, argv, &a);
    if (rc == -1) {
        fputs(similarity_usage, stdout);
        return 0;
    }
    int n = argc - optind;
    if (rc || !a.model || n < 2) {
        fputs(similarity_usage, stderr);
        return 2;
    }
    easyrec_model *m = NULL;
    if (easyrec_model_load(a.model, &m)) return cli_fail(NULL);
    int D = easyrec_model_dim(m), status = 0;
    float *e = calloc((size_t)n, (size_t)D * sizeof(float));
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    a.o.no_normalize = 0;
    if (!e || !ctx) {
        status = cli_fail("out of memory");
    } else if (easyrec_encode(ctx, (const char *const *)argv + optind, NULL, (size_t)n, &a.o, e)) {
        status = cli_fail(NULL);
    } else {
        for (int i = 1; i < n; i++) {
            double dot = 0;
            for (int k = 0; k < D; k++) dot += (double)e[k] * e[(size_t)i * D + k];
            printf("%.4f\t%s\n", dot, argv[optind + i]);
        }
    }
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
    free(e);
    return status;
}
