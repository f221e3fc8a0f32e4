/* cmd_pull.c — `easyrec pull REPO_ID`: download a model repository from the Hugging Face Hub
 * into the huggingface_hub cache (docs/hub.md) and print its snapshot directory. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "core/clock.h"
#include "easyrec.h"

typedef struct {
    char file[256];
    double t0;
} pull_bar;

static void bar(void *user, const char *file, uint64_t done, uint64_t total) {
    pull_bar *b = user;
    if (strncmp(b->file, file, sizeof b->file - 1)) {
        snprintf(b->file, sizeof b->file, "%s", file);
        b->t0 = er_now();
    }
    double el = er_now() - b->t0, mb = done / 1e6;
    int w = 24, fill = total ? (int)((double)done / total * w) : 0;
    if (fill > w) fill = w;
    fprintf(stderr, "\r%-28.28s [%.*s%*s] %8.1f MB", file, fill, "########################", w - fill, "", mb);
    if (total) fprintf(stderr, " / %.1f MB", total / 1e6);
    fprintf(stderr, "  %6.1f MB/s  ", el > 0 ? mb / el : 0.0);
    if (total && done >= total) fputc('\n', stderr);
}

int cmd_pull(int argc, char **argv) {
    easyrec_pull_opts po;
    easyrec_pull_opts_init(&po);
    const char *revision = "main";
    int quiet = 0, offline = 0;
    cli_opt opts[] = {
        {"revision", OPT_STR, &revision, "REV", "branch, tag or commit", 0, 0, NULL, NULL, 0, 0, NULL},
        {"cache-dir", OPT_STR, &po.cache_dir, "DIR",
         "cache root (default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub)", 0, 0, NULL, NULL, 0, 0, NULL},
        {"include", OPT_LIST, &po.include, "GLOB",
         "only files matching GLOB (fnmatch; repeat or comma-separate; default: all files)", 0, 0, NULL, NULL, 0, 0, NULL},
        {"offline", OPT_FLAG, &offline, NULL, "use the cache only, as HF_HUB_OFFLINE=1", 0, 0, NULL, NULL, 0, 0, NULL},
        {"quiet", OPT_FLAG, &quiet, NULL, "no progress bar", 0, 0, NULL, NULL, 0, 0, NULL},
        {NULL, OPT_END, NULL, NULL, NULL, 0, 0, NULL, NULL, 0, 0, NULL},
    };
    cli_cmd cmd = {"pull", "REPO_ID [options]",
                   "Download a model from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE honoured)\n"
                   "into the huggingface_hub cache and print the snapshot directory. Afterwards any --model\n"
                   "accepts REPO_ID (or REPO_ID@REV) and reads it from the cache without network access.",
                   opts, 1, 1, "REPO_ID"};
    char **pos;
    int npos, rc = opt_parse(&cmd, argc, argv, &pos, &npos);
    if (rc) {
        opt_free(&cmd);
        return rc == OPT_HELP ? 0 : rc;
    }
    po.revision = revision;
    po.offline = offline;
    pull_bar b = {"", er_now()};
    if (!quiet && isatty(2)) {
        po.progress = bar;
        po.progress_user = &b;
    }
    char path[4096];
    rc = easyrec_pull(pos[0], &po, path, sizeof path);
    opt_free(&cmd);
    if (rc) {
        if (po.progress) fputc('\n', stderr);
        return cli_fail(NULL);
    }
    printf("%s\n", path);
    return 0;
}
