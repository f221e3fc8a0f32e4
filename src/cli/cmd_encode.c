/* cmd_encode.c — `easyrec encode` and `easyrec similarity`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/err.h"
#include "data/profiles.h"
#include "easyrec.h"
#include "io/tensors.h"
#include "core/comm.h"

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

/* A --max-length the user gave must fit the model's position table (the default is capped). */
static int check_max_length(cli_cmd *cmd, const easyrec_model *m, const easyrec_encode_opts *o) {
    int limit = easyrec_model_max_length(m);
    cli_opt *ml = opt_find(cmd, "max-length");
    if (ml && ml->seen && o->max_length > limit)
        return opt_usage_error(cmd, "--max-length %d exceeds this model's limit of %d tokens (its position table)",
                               o->max_length, limit);
    return 0;
}

/* 1 when path names the same file as other (both exist) */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return !stat(a, &sa) && !stat(b, &sb) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* texts are encoded in chunks so tokenized ids stay bounded for huge inputs */
#define CHUNK 65536

int cmd_encode(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *output = NULL;
    const char *isa = NULL;
    int text = 0, quiet = 0, pooling = 0, precision = 0;
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.threads = cli_default_threads();
    cli_opt opts[] = {
        OPT_S("model", &model, "DIR", "Hugging Face model directory (config.json + weights + tokenizer)", .required = 1),
        OPT_S("input", &input, "FILE",
              "JSON lines with a \"profile\" field (rows ordered by user_id/item_id when present, else file order); "
              "with --text one text per line",
              .required = 1),
        OPT_S("output", &output, "OUT.npy", "float32 [N, D] embeddings, written atomically", .required = 1),
        OPT_I("max-length", &o.max_length, "N",
              "truncation incl. <s> </s>, at most the model's position limit (default 512, as the reference encodes)",
              2, CLI_MAX_LENGTH),
        OPT_I("batch-size", &o.batch_size, "N", "at most N texts per forward batch (default: by tokens)", 1, 1 << 30),
        OPT_I("batch-tokens", &o.batch_tokens, "N", "about N real tokens per forward batch", 1, 1 << 30),
        OPT_I("threads", &o.threads, "N", "worker threads (default: all cores)", 1, CLI_MAX_THREADS,
              .env = "EASYREC_THREADS"),
        OPT_C("pooling", &pooling, CLI_POOLING_CHOICES, CLI_POOLING_HELP),
        OPT_F("no-normalize", &o.no_normalize, "skip L2 normalisation"),
        OPT_F("text", &text, "input is plain text, one profile per line"),
        OPT_F("quiet", &quiet, "no progress bar"),
        CLI_GEMM_OPT(&o.gemm),
        CLI_PRECISION_OPT(&precision),
        CLI_ISA_OPT(&isa),
        {0}};
    cli_cmd cmd = {"encode", "--model DIR --input FILE --output OUT.npy [options]",
                   "Encode profiles into a float32 .npy matrix of embeddings, row i for profile i.", opts, 0, 0, NULL};
    int rc = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    o.pooling = cli_pooling(pooling);
    if (same_file(input, output))
        return opt_usage_error(&cmd, "--output %s is the input file; choose another output", output);
    er_texts t;
    rc = text ? er_profiles_read_lines(input, &t) : er_profiles_read_jsonl(input, &t);
    if (rc) return cli_fail(NULL);
    if (t.n == 0) {
        er_texts_free(&t);
        er_error(EASYREC_ERR_FORMAT, "%s: no profiles to encode (the input is empty); nothing written", input);
        return cli_fail(NULL);
    }
    /* under mpirun rank r encodes rows [lo, hi) and rank 0 gathers and writes all of them */
    er_comm *comm = NULL;
    if (cli_comm(&comm)) {
        er_texts_free(&t);
        return cli_fail(NULL);
    }
    if (comm->rank) quiet = 1;
    size_t lo = t.n * (size_t)comm->rank / (size_t)comm->size, hi = t.n * (size_t)(comm->rank + 1) / (size_t)comm->size;
    easyrec_model *m = NULL;
    if (cli_load_model(model, precision, isa, !quiet, &m)) {
        er_texts_free(&t);
        return 1;
    }
    int D = easyrec_model_dim(m), status = 0;
    float *out = NULL;
    easyrec_ctx *ctx = NULL;
    progress_state ps = {now(), 0, hi - lo};
    if ((status = check_max_length(&cmd, m, &o))) goto done;
    out = calloc(t.n, (size_t)D * sizeof(float));
    ctx = easyrec_ctx_new(m);
    if (!quiet && isatty(2)) {
        o.progress = progress_bar;
        o.progress_user = &ps;
    }
    if (!out || !ctx) {
        status = cli_fail("out of memory");
        goto done;
    }
    for (size_t s = lo; s < hi; s += CHUNK) {
        size_t k = hi - s < CHUNK ? hi - s : CHUNK;
        ps.base = s - lo;
        if (easyrec_encode(ctx, (const char *const *)t.text + s, t.len + s, k, &o, out + s * D)) {
            if (o.progress) fputc('\n', stderr);
            status = cli_fail(NULL);
            break;
        }
    }
    if (o.progress && !status) fputc('\n', stderr);
    if (comm->size > 1) {
        /* every rank learns whether any failed (so none waits in the gather), then the gather */
        float bad = status ? 1.f : 0.f;
        if (comm->allreduce_sum_f32(comm, &bad, 1)) {
            status = cli_fail(NULL);
            goto done;
        }
        if (bad > 0) {
            if (!status) status = cli_fail("another MPI rank failed to encode its share; nothing written");
            goto done;
        }
        size_t *counts = calloc((size_t)comm->size, sizeof *counts);
        if (!counts) {
            status = cli_fail("out of memory");
            goto done;
        }
        for (int r = 0; r < comm->size; r++)
            counts[r] = (t.n * (size_t)(r + 1) / comm->size - t.n * (size_t)r / comm->size) * (size_t)D;
        rc = comm->allgatherv_f32(comm, out + lo * D, (hi - lo) * (size_t)D, out, counts);
        free(counts);
        if (rc) {
            status = cli_fail(NULL);
            goto done;
        }
        if (comm->rank) goto done; /* rank 0 writes */
    }
    if (status) goto done;
    int64_t shape[2] = {(int64_t)t.n, D};
    if (er_npy_write_f32(output, out, 2, shape)) {
        status = cli_fail(NULL);
        goto done;
    }
    if (!quiet) fprintf(stderr, "easyrec: wrote %zu x %d embeddings to %s (%.2f s)\n", t.n, D, output, now() - ps.t0);
done:
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
    free(out);
    er_texts_free(&t);
    return status;
}

int cmd_similarity(int argc, char **argv) {
    const char *model = NULL, *isa = NULL;
    int pooling = 0, precision = 0;
    easyrec_encode_opts o;
    easyrec_encode_opts_init(&o);
    o.threads = cli_default_threads();
    cli_opt opts[] = {
        OPT_S("model", &model, "DIR", "Hugging Face model directory (config.json + weights + tokenizer)", .required = 1),
        OPT_I("max-length", &o.max_length, "N", "truncation incl. <s> </s>, at most the model's position limit", 2,
              CLI_MAX_LENGTH),
        OPT_C("pooling", &pooling, CLI_POOLING_CHOICES, CLI_POOLING_HELP),
        OPT_I("threads", &o.threads, "N", "worker threads (default: all cores)", 1, CLI_MAX_THREADS,
              .env = "EASYREC_THREADS"),
        CLI_GEMM_OPT(&o.gemm),
        CLI_PRECISION_OPT(&precision),
        CLI_ISA_OPT(&isa),
        {0}};
    cli_cmd cmd = {"similarity", "--model DIR [options] TEXT TEXT...",
                   "Print the cosine similarity of the first text with each other text, one per line\n"
                   "(\"<cosine>\\t<text>\"; embeddings always L2-normalised).",
                   opts, 2, -1, "TEXT TEXT..."};
    char **pos;
    int n;
    int rc = opt_parse(&cmd, argc, argv, &pos, &n);
    if (rc) return rc == OPT_HELP ? 0 : rc;
    o.pooling = cli_pooling(pooling);
    easyrec_model *m = NULL;
    if (cli_load_model(model, precision, isa, 0, &m)) return 1;
    if ((rc = check_max_length(&cmd, m, &o))) {
        easyrec_model_free(m);
        return rc;
    }
    int D = easyrec_model_dim(m), status = 0;
    float *e = calloc((size_t)n, (size_t)D * sizeof(float));
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    if (!e || !ctx) {
        status = cli_fail("out of memory");
    } else if (easyrec_encode(ctx, (const char *const *)pos, NULL, (size_t)n, &o, e)) {
        status = cli_fail(NULL);
    } else {
        for (int i = 1; i < n; i++) {
            double dot = 0;
            for (int k = 0; k < D; k++) dot += (double)e[k] * e[(size_t)i * D + k];
            printf("%.4f\t%s\n", dot, pos[i]);
        }
    }
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
    free(e);
    return status;
}
