/* fake_hub.c — test helper: a fake Hugging Face Hub on 127.0.0.1 for tests/test_pull.c.
 *
 *   fake_hub --info FILE --repo ORG/NAME --rev NAME=DIR [--rev NAME=DIR ...]
 *            [--token T] [--cut-after N] [--corrupt] [--lfs-min BYTES]
 *
 * Serves, like huggingface.co (see docs/hub.md):
 *   GET  /api/models/ORG/NAME/revision/REV   {"id","sha","siblings":[{"rfilename"}]}
 *   HEAD|GET /ORG/NAME/resolve/REV/FILE      small files: 200 + ETag (fake git oid) + X-Repo-Commit;
 *                                            LFS files (>= --lfs-min bytes): 302 to an absolute
 *                                            /blob/<sha256> URL + X-Linked-Etag + X-Linked-Size
 *   GET  /blob/SHA256                        the bytes, honouring "Range: bytes=N-"
 *   GET  /_stats                             counters (not counted): "requests N\nfiles N\nrange N..."
 * REV is a revision name or a commit; revision "evil" answers a file list with a path that
 * escapes the snapshot (../../../escaped). Errors carry X-Error-Code (RepoNotFound, RevisionNotFound,
 * EntryNotFound) as the Hub does; with --token every route but /blob and /_stats wants
 * "Authorization: Bearer T" and answers 401 otherwise. --cut-after N closes the connection
 * after N bytes of the first blob transfer; --corrupt flips one byte of every blob served.
 * Writes "port P" and "rev NAME COMMIT" lines to --info once it listens; runs until killed.
 * Files are the regular files of DIR and of its direct subdirectories. */
#include <dirent.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/sha256.h"

typedef struct {
    char name[512]; /* path inside the repo */
    char *data;
    size_t len;
    char sha[65];
    int lfs;
} hfile;

typedef struct {
    char name[128];
    char commit[41];
    hfile files[64];
    int nfiles;
} hrev;

static hrev revs[4];
static int nrevs;
static const char *repo, *token;
static long cut_after = -1;
static int corrupt, port;
static size_t lfs_min = 1000;
static long n_requests, n_files, n_ranges, first_range = -1, n_cut;

static void add_file(hrev *r, const char *dir, const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    hfile *f = &r->files[r->nfiles++];
    snprintf(f->name, sizeof f->name, "%s", rel);
    if (er_read_file(p, &f->data, &f->len)) {
        fprintf(stderr, "fake_hub: %s\n", easyrec_last_error());
        exit(1);
    }
    er_sha256 s;
    uint8_t d[32];
    er_sha256_init(&s);
    er_sha256_update(&s, f->data, f->len);
    er_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) sprintf(f->sha + 2 * i, "%02x", d[i]);
    f->lfs = f->len >= lfs_min;
}

static void load_rev(const char *spec) {
    hrev *r = &revs[nrevs++];
    const char *eq = strchr(spec, '=');
    snprintf(r->name, sizeof r->name, "%.*s", (int)(eq - spec), spec);
    const char *dir = eq + 1;
    DIR *d = opendir(dir);
    if (!d) exit(1);
    struct dirent *e;
    er_sha256 s;
    er_sha256_init(&s);
    er_sha256_update(&s, r->name, strlen(r->name));
    while ((e = readdir(d)) && r->nfiles < 60) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st)) continue;
        if (S_ISREG(st.st_mode)) add_file(r, dir, e->d_name);
        else if (S_ISDIR(st.st_mode)) {
            DIR *sd = opendir(p);
            struct dirent *se;
            while (sd && (se = readdir(sd)) && r->nfiles < 60) {
                char rel[600];
                snprintf(rel, sizeof rel, "%s/%s", e->d_name, se->d_name);
                snprintf(p, sizeof p, "%s/%s", dir, rel);
                if (se->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) add_file(r, dir, rel);
            }
            if (sd) closedir(sd);
        }
    }
    closedir(d);
    for (int i = 0; i < r->nfiles; i++) er_sha256_update(&s, r->files[i].sha, 64);
    uint8_t dg[32];
    er_sha256_final(&s, dg);
    for (int i = 0; i < 20; i++) sprintf(r->commit + 2 * i, "%02x", dg[i]);
}

static enum MHD_Result reply(struct MHD_Connection *c, int status, const char *body, const char *err_code) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (err_code) MHD_add_response_header(r, "X-Error-Code", err_code);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static hrev *find_rev(const char *name) {
    for (int i = 0; i < nrevs; i++)
        if (!strcmp(revs[i].name, name) || !strcmp(revs[i].commit, name)) return &revs[i];
    return NULL;
}

typedef struct {
    const char *data;
    size_t len, pos, stop; /* stop: close the connection here (cut) */
    int flip;
} blob_reader;

static ssize_t blob_read(void *cls, uint64_t pos, char *buf, size_t max) {
    blob_reader *b = cls;
    size_t at = b->pos + (size_t)pos;
    if (at >= b->stop) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = b->stop - at < max ? b->stop - at : max;
    memcpy(buf, b->data + at, n);
    if (b->flip) /* flip the middle byte of the file */
        for (size_t i = 0; i < n; i++)
            if (at + i == b->len / 2) buf[i] ^= 0x5a;
    return (ssize_t)n;
}

static enum MHD_Result serve_blob(struct MHD_Connection *c, const char *sha) {
    hfile *f = NULL;
    for (int r = 0; r < nrevs && !f; r++)
        for (int i = 0; i < revs[r].nfiles; i++)
            if (!strcmp(revs[r].files[i].sha, sha)) f = &revs[r].files[i];
    if (!f) return reply(c, 404, "no such blob", "EntryNotFound");
    n_files++;
    size_t start = 0;
    const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    if (range && sscanf(range, "bytes=%zu-", &start) == 1) {
        n_ranges++;
        if (first_range < 0) first_range = (long)start;
        if (start > f->len) return reply(c, 416, "range not satisfiable", NULL);
    } else {
        start = 0;
    }
    blob_reader *b = calloc(1, sizeof *b);
    b->data = f->data, b->len = f->len, b->pos = start, b->stop = f->len, b->flip = corrupt;
    if (cut_after >= 0 && n_cut == 0 && f->len > (size_t)cut_after) {
        n_cut = 1;
        b->stop = (size_t)cut_after;
    }
    struct MHD_Response *r = MHD_create_response_from_callback(f->len - start, 64 * 1024, blob_read, b, free);
    char hdr[128];
    if (range) {
        snprintf(hdr, sizeof hdr, "bytes %zu-%zu/%zu", start, f->len ? f->len - 1 : 0, f->len);
        MHD_add_response_header(r, "Content-Range", hdr);
    }
    enum MHD_Result ret = MHD_queue_response(c, range ? 206 : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_len, void **state) {
    if (!strcmp(url, "/_stats")) {
        char s[256];
        snprintf(s, sizeof s, "requests %ld\nfiles %ld\nranges %ld\nfirst_range %ld\n", n_requests, n_files,
                 n_ranges, first_range);
        return reply(c, 200, s, NULL);
    }
    n_requests++;
    if (!strncmp(url, "/blob/", 6)) return serve_blob(c, url + 6);
    if (token) {
        const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char want[256];
        snprintf(want, sizeof want, "Bearer %s", token);
        if (!a || strcmp(a, want)) return reply(c, 401, "Invalid username or password.", "RepoNotFound");
    }
    size_t rl = strlen(repo);
    if (!strncmp(url, "/api/models/", 12)) {
        const char *p = url + 12;
        if (strncmp(p, repo, rl) || strncmp(p + rl, "/revision/", 10))
            return reply(c, 404, "Repository not found", "RepoNotFound");
        if (!strcmp(p + rl + 10, "evil")) /* a hostile answer: a path escaping the snapshot */
            return reply(c, 200,
                         "{\"sha\":\"0123456789012345678901234567890123456789\",\"siblings\":[{\"rfilename\":"
                         "\"../../../escaped\"}]}",
                         NULL);
        hrev *r = find_rev(p + rl + 10); /* MHD has decoded %2F back to '/' */
        if (!r) return reply(c, 404, "Invalid rev id", "RevisionNotFound");
        char *j = malloc(65536);
        int k = snprintf(j, 65536, "{\"id\":\"%s\",\"sha\":\"%s\",\"siblings\":[", repo, r->commit);
        for (int i = 0; i < r->nfiles; i++)
            k += snprintf(j + k, 65536 - k, "%s{\"rfilename\":\"%s\"}", i ? "," : "", r->files[i].name);
        snprintf(j + k, 65536 - k, "]}");
        enum MHD_Result ret = reply(c, 200, j, NULL);
        free(j);
        return ret;
    }
    if (url[0] != '/' || strncmp(url + 1, repo, rl) || strncmp(url + 1 + rl, "/resolve/", 9))
        return reply(c, 404, "Repository not found", "RepoNotFound");
    const char *p = url + 1 + rl + 9, *slash = strchr(p, '/');
    char revname[128];
    if (!slash || slash - p >= (long)sizeof revname) return reply(c, 404, "Invalid rev id", "RevisionNotFound");
    snprintf(revname, sizeof revname, "%.*s", (int)(slash - p), p);
    hrev *r = find_rev(revname);
    if (!r) return reply(c, 404, "Invalid rev id", "RevisionNotFound");
    hfile *f = NULL;
    for (int i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i].name, slash + 1)) f = &r->files[i];
    if (!f) return reply(c, 404, "Entry not found", "EntryNotFound");
    char v[256];
    struct MHD_Response *resp;
    int status;
    if (f->lfs) {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        snprintf(v, sizeof v, "http://127.0.0.1:%d/blob/%s", port, f->sha);
        MHD_add_response_header(resp, "Location", v);
        snprintf(v, sizeof v, "\"%s\"", f->sha);
        MHD_add_response_header(resp, "X-Linked-Etag", v);
        snprintf(v, sizeof v, "%zu", f->len);
        MHD_add_response_header(resp, "X-Linked-Size", v);
        snprintf(v, sizeof v, "\"%.40s\"", f->sha + 24); /* the pointer file's git oid (fake) */
        MHD_add_response_header(resp, "ETag", v);
        status = 302;
    } else {
        if (!strcmp(method, "GET")) n_files++;
        resp = MHD_create_response_from_buffer(f->len, f->data, MHD_RESPMEM_PERSISTENT);
        snprintf(v, sizeof v, "W/\"%.40s\"", f->sha); /* stands for the git blob oid */
        MHD_add_response_header(resp, "ETag", v);
        status = 200;
    }
    MHD_add_response_header(resp, "X-Repo-Commit", r->commit);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

int main(int argc, char **argv) {
    const char *info = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--info")) info = argv[i + 1];
        else if (!strcmp(argv[i], "--repo")) repo = argv[i + 1];
        else if (!strcmp(argv[i], "--token")) token = argv[i + 1];
        else if (!strcmp(argv[i], "--cut-after")) cut_after = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--lfs-min")) lfs_min = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--corrupt")) corrupt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rev") && nrevs < 4) load_rev(argv[i + 1]);
    }
    if (!info || !repo || !nrevs) {
        fprintf(stderr, "usage: fake_hub --info FILE --repo ORG/NAME --rev NAME=DIR ...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, NULL,
                                            MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
    if (!d) return 1;
    port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", info);
    FILE *f = fopen(tmp, "w");
    fprintf(f, "port %d\n", port);
    for (int i = 0; i < nrevs; i++) fprintf(f, "rev %s %s\n", revs[i].name, revs[i].commit);
    fclose(f);
    rename(tmp, info);
    for (;;) pause();
}
