/* cmd_encode.c — `easyrec encode` and `easyrec similarity`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/clock.h"
#include "core/err.h"
#include "data/profiles.h"
#include "easyrec.h"
#include "io/tensors.h"
#include "core/comm.h"

typedef struct {
    double t0;
    size_t base, total;
} progress_state;

static void progress_bar(void *user, size_t done, size_t total_chunk) {
    progress_state *ps = user;
    size_t d = ps->base + done;
    double el = er_now() - ps->t0, rate = el > 0 ? d / el : 0;
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
    /* under mpirun rank r encodes rows [lo, hi) and rank 0 gathers and writes all of them; a
     * rank that fails before the gather (its input or model unreadable, on its host only)
     * reaches the gather's agreement, so every rank fails with it */
    er_comm *comm = NULL;
    if (cli_comm(&comm)) return cli_fail(NULL);
    if (comm->rank) quiet = 1;
    er_texts t = {0};
    easyrec_model *m = NULL;
    float *out = NULL;
    easyrec_ctx *ctx = NULL;
    progress_state ps = {er_now(), 0, 0};
    size_t lo = 0, hi = 0;
    int D = 0, status = 0;
    if (text ? er_profiles_read_lines(input, &t) : er_profiles_read_jsonl(input, &t)) {
        status = cli_fail(NULL);
    } else if (t.n == 0) {
        er_error(EASYREC_ERR_FORMAT, "%s: no profiles to encode (the input is empty); nothing written", input);
        status = cli_fail(NULL);
    } else if (cli_load_model(model, precision, isa, !quiet, &m)) {
        status = 1;
    } else if (!(status = check_max_length(&cmd, m, &o))) {
        D = easyrec_model_dim(m);
        er_comm_share(comm, comm->rank, t.n, &lo, &hi);
        ps.t0 = er_now(), ps.total = hi - lo;
        out = calloc(t.n, (size_t)D * sizeof(float));
        ctx = easyrec_ctx_new(m);
        if (!out || !ctx) status = cli_fail("out of memory");
    }
    if (!quiet && isatty(2)) {
        o.progress = progress_bar;
        o.progress_user = &ps;
    }
    for (size_t s = lo; s < hi && !status; s += CHUNK) {
        size_t k = hi - s < CHUNK ? hi - s : CHUNK;
        ps.base = s - lo;
        if (easyrec_encode(ctx, (const char *const *)t.text + s, t.len + s, k, &o, out + s * D)) {
            if (o.progress) fputc('\n', stderr);
            status = cli_fail(NULL);
        }
    }
    if (o.progress && !status) fputc('\n', stderr);
    if (er_comm_gather_rows(comm, status ? EASYREC_ERR_IO : EASYREC_OK, out, t.n, (size_t)D) && !status)
        status = cli_fail(NULL); /* a peer failed (its message is its own), or the gather did */
    if (status || comm->rank) goto done; /* rank 0 writes */
    int64_t shape[2] = {(int64_t)t.n, D};
    if (er_npy_write_f32(output, out, 2, shape)) {
        status = cli_fail(NULL);
        goto done;
    }
    if (!quiet) fprintf(stderr, "easyrec: wrote %zu x %d embeddings to %s (%.2f s)\n", t.n, D, output, er_now() - ps.t0);
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
