/* pull.c — easyrec_pull: the Hugging Face Hub HTTP API as huggingface_hub speaks it
 * (snapshot_download + hf_hub_download):
 *
 *   GET  {endpoint}/api/models/{repo}/revision/{rev}      -> {"sha": commit, "siblings": [{"rfilename"}]}
 *   HEAD {endpoint}/{repo}/resolve/{commit}/{file}        -> X-Repo-Commit, X-Linked-Etag / ETag,
 *        (relative redirects followed, absolute = CDN)       X-Linked-Size / Content-Length, Location
 *   GET  Location or the resolve URL (redirects followed)  -> the bytes, resumed with Range
 *
 * Every missing file is downloaded to blobs/<etag>.incomplete, verified (sha256 = etag for LFS
 * files, size for the others) and renamed to blobs/<etag>; only when all of them are in place are
 * the snapshot symlinks and refs/<revision> written, so a failed pull adds nothing to the snapshot.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/sha256.h"
#include "hub/hub.h"

#define RETRIES 5 /* huggingface_hub's http_get resumes a cut transfer up to 5 times */

void easyrec_pull_opts_init(easyrec_pull_opts *o) { memset(o, 0, sizeof *o); }

typedef struct {
    char *name;     /* rfilename */
    char *etag;
    char *url;      /* where the bytes are (CDN location or the resolve URL) */
    int64_t size;   /* -1 unknown */
    int cached;     /* already in the snapshot */
} pfile;

static int is_lfs_sha(const char *e) {
    if (strlen(e) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!isdigit((unsigned char)e[i]) && !(e[i] >= 'a' && e[i] <= 'f')) return 0;
    return 1;
}

static int valid_etag(const char *e) {
    size_t n = strlen(e);
    if (n == 0 || n > 128 || e[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)e[i]) && e[i] != '-' && e[i] != '_' && e[i] != '.') return 0;
    return 1;
}

/* One clear message per HTTP failure; `what` says what was asked for. Server text is
 * untrusted: bounded and only shown as a quote. */
static int status_error(const er_http_resp *r, const char *repo, const char *rev, const char *file,
                        int have_token) {
    char extra[256] = "";
    if (r->error_message) snprintf(extra, sizeof extra, " (server: \"%.200s\")", r->error_message);
    const char *code = r->error_code ? r->error_code : "";
    if (r->status == 401)
        return er_error(EASYREC_ERR_IO,
                        "repository '%s' not found or it needs authentication (HTTP 401)%s; %s", repo, extra,
                        have_token ? "the token from HF_TOKEN was refused"
                                   : "for a private or gated model set HF_TOKEN to a Hugging Face access token");
    if (r->status == 403)
        return er_error(EASYREC_ERR_IO,
                        "access to '%s' is forbidden (HTTP 403%s%s)%s; accept the model's conditions on the Hub "
                        "or use a token with read access",
                        repo, *code ? ", " : "", code, extra);
    if (r->status == 404 && !strcmp(code, "RevisionNotFound"))
        return er_error(EASYREC_ERR_IO, "revision '%s' not found in '%s' (HTTP 404)%s", rev, repo, extra);
    if (r->status == 404 && (file || !strcmp(code, "EntryNotFound")))
        return er_error(EASYREC_ERR_IO, "file '%s' not found in '%s' at revision %s (HTTP 404)%s", file ? file : "?",
                        repo, rev, extra);
    if (r->status == 404)
        return er_error(EASYREC_ERR_IO, "repository '%s' not found (HTTP 404)%s", repo, extra);
    return er_error(EASYREC_ERR_IO, "'%s'%s%s: unexpected HTTP status %ld%s", repo, file ? " file " : "",
                    file ? file : "", r->status, extra);
}

static char *read_token(const easyrec_pull_opts *o) {
    if (o->token && *o->token) return er_strdup(o->token);
    const char *v = getenv("HF_TOKEN");
    if (!v || !*v) v = getenv("HUGGING_FACE_HUB_TOKEN");
    if (v && *v) return er_strdup(v);
    char *home = er_hub_home();
    if (!home) return NULL;
    const char *tp = getenv("HF_TOKEN_PATH");
    char *path = tp && *tp ? er_strdup(tp) : er_path_join(home, "token");
    free(home);
    char *tok = NULL;
    size_t n;
    if (path && er_file_exists(path) && er_read_file(path, &tok, &n) == 0) {
        while (n && isspace((unsigned char)tok[n - 1])) tok[--n] = 0;
        if (!n) {
            free(tok);
            tok = NULL;
        }
    }
    free(path);
    er_clear_error();
    return tok;
}

static int regular_file(const char *p, int64_t *size) {
    struct stat st;
    if (stat(p, &st) || !S_ISREG(st.st_mode)) return 0;
    if (size) *size = st.st_size;
    return 1;
}

/* HEAD the resolve URL of one file, following relative redirects only (renamed repos),
 * and fill etag / size / url. */
static int file_metadata(er_http *h, const char *endpoint, const char *repo, const char *commit, pfile *f,
                         int have_token) {
    char *qf = er_http_quote(f->name, 1);
    if (!qf) return EASYREC_ERR_NOMEM;
    size_t n = strlen(endpoint) + strlen(repo) + strlen(qf) + 64;
    char *url = er_mallocarray(n, 1);
    if (!url) {
        free(qf);
        return EASYREC_ERR_NOMEM;
    }
    snprintf(url, n, "%s/%s/resolve/%s/%s", endpoint, repo, commit, qf);
    free(qf);
    er_http_resp r;
    int rc = EASYREC_OK;
    for (int hop = 0;; hop++) {
        if ((rc = er_http_request(h, "HEAD", url, &r))) break;
        if (r.status >= 300 && r.status < 400 && r.location && r.location[0] == '/' && hop < 5) {
            size_t m = strlen(endpoint) + strlen(r.location) + 1;
            char *next = er_mallocarray(m, 1);
            if (!next) {
                rc = EASYREC_ERR_NOMEM;
                er_http_resp_free(&r);
                break;
            }
            snprintf(next, m, "%s%s", endpoint, r.location);
            free(url);
            url = next;
            er_http_resp_free(&r);
            continue;
        }
        if (r.status >= 400 || r.status < 200) {
            rc = status_error(&r, repo, commit, f->name, have_token);
        } else if (!r.etag || !*r.etag) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: the server sent no ETag for %s; cannot cache it", url, f->name);
        } else if (!valid_etag(r.etag)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: ETag of %s is not a plain name: \"%.80s\"", url, f->name, r.etag);
        } else if (r.repo_commit && strcmp(r.repo_commit, commit)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: X-Repo-Commit %.64s differs from the revision's commit %s", url,
                          r.repo_commit, commit);
        } else {
            f->etag = r.etag;
            r.etag = NULL;
            f->size = r.size;
            if (r.status >= 300 && r.location) {
                f->url = r.location; /* absolute redirect: the CDN */
                r.location = NULL;
                free(url);
            } else {
                f->url = url;
            }
            url = NULL;
        }
        er_http_resp_free(&r);
        break;
    }
    free(url);
    return rc;
}

typedef struct {
    const easyrec_pull_opts *o;
    const char *file;
} prog_ctx;

static void on_progress(void *user, uint64_t done, uint64_t total) {
    prog_ctx *p = user;
    if (p->o->progress) p->o->progress(p->o->progress_user, p->file, done, total);
}

static int fetch_locked(er_http *h, const char *blob, const char *part, const pfile *f,
                        const easyrec_pull_opts *o);

/* blobs/<etag>: download into .incomplete, verify, rename */
static int fetch_blob(er_http *h, const char *rdir, const pfile *f, const easyrec_pull_opts *o) {
    char blob[4096], part[4200];
    snprintf(blob, sizeof blob, "%s/blobs/%s", rdir, f->etag);
    int64_t have;
    if (regular_file(blob, &have) && (f->size < 0 || have == f->size)) {
        if (o->progress) o->progress(o->progress_user, f->name, (uint64_t)have, (uint64_t)have);
        return EASYREC_OK; /* content-addressed: another revision already brought it */
    }
    snprintf(part, sizeof part, "%s.incomplete", blob);
    int rc = er_hub_mkdirs_for(part);
    if (rc) return rc;
    /* the lock file huggingface_hub (filelock = flock) takes for this blob:
     * <cache>/.locks/models--org--name/<etag>.lock, so Python and easyrec never write
     * the same .incomplete at once */
    char lock[4200];
    const char *base = strrchr(rdir, '/');
    snprintf(lock, sizeof lock, "%.*s/.locks%s/%s.lock", (int)(base - rdir), rdir, base, f->etag);
    int lfd = -1;
    if (er_hub_mkdirs_for(lock) == 0 && (lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) >= 0)
        while (flock(lfd, LOCK_EX) && errno == EINTR) {
        }
    rc = fetch_locked(h, blob, part, f, o);
    if (lfd >= 0) close(lfd); /* releases the lock */
    return rc;
}

static int fetch_locked(er_http *h, const char *blob, const char *part, const pfile *f,
                        const easyrec_pull_opts *o) {
    int64_t have;
    int rc;
    if (regular_file(blob, &have) && (f->size < 0 || have == f->size)) return EASYREC_OK; /* another process */
    prog_ctx pc = {o, f->name};
    rc = er_http_download(h, f->url, part, f->size > 0 ? (uint64_t)f->size : 0, RETRIES, on_progress, &pc);
    if (rc) return er_error_prefix(rc, "%s", f->name);
    int64_t got = -1;
    regular_file(part, &got);
    if (is_lfs_sha(f->etag)) {
        char hex[65];
        if ((rc = er_sha256_file(part, hex))) return rc;
        if (strcmp(hex, f->etag)) {
            unlink(part);
            return er_error(EASYREC_ERR_FORMAT,
                            "%s: sha256 mismatch: expected %s (the Hub's LFS oid), downloaded %lld bytes with "
                            "sha256 %s; the download was discarded and nothing entered the snapshot",
                            f->name, f->etag, (long long)got, hex);
        }
    }
    if (f->size >= 0 && got != f->size) {
        unlink(part);
        return er_error(EASYREC_ERR_FORMAT,
                        "%s: size mismatch: expected %lld bytes, downloaded %lld; the download was discarded and "
                        "nothing entered the snapshot",
                        f->name, (long long)f->size, (long long)got);
    }
    if (rename(part, blob)) return er_error(EASYREC_ERR_IO, "cannot rename %s to %s", part, blob);
    return EASYREC_OK;
}

static int offline_pull(const char *repo, const char *rev, const char *cache, const char *rdir, char *path,
                        size_t cap) {
    char commit[41], snap[4096];
    struct stat st;
    if (er_hub_read_ref(rdir, rev, commit) == 0) {
        snprintf(snap, sizeof snap, "%s/snapshots/%s", rdir, commit);
        if (stat(snap, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (strlen(snap) >= cap) return er_error(EASYREC_ERR_ARG, "snapshot path longer than %zu bytes", cap);
            strcpy(path, snap);
            return EASYREC_OK;
        }
    }
    return er_error(EASYREC_ERR_IO,
                    "offline mode (HF_HUB_OFFLINE): %s revision %s is not in the cache %s; pull it once with network "
                    "access",
                    repo, rev, cache);
}

int easyrec_pull(const char *repo, const easyrec_pull_opts *opts, char *path, size_t cap) {
    easyrec_pull_opts defaults;
    if (!opts) {
        easyrec_pull_opts_init(&defaults);
        opts = &defaults;
    }
    er_clear_error();
    if (!path || !cap) return er_error(EASYREC_ERR_ARG, "easyrec_pull: no output buffer");
    if (!er_hub_valid_repo_id(repo))
        return er_error(EASYREC_ERR_ARG, "'%s' is not a Hub repository id (expected org/name)", repo ? repo : "");
    const char *rev = opts->revision && *opts->revision ? opts->revision : "main";
    if (!er_hub_valid_revision(rev)) return er_error(EASYREC_ERR_ARG, "invalid revision '%s'", rev);
    char *cache = er_hub_cache_dir(opts->cache_dir);
    char *rdir = cache ? er_hub_repo_dir(cache, repo) : NULL;
    if (!rdir) {
        free(cache);
        return EASYREC_ERR_NOMEM;
    }
    if (opts->offline || er_hub_env_offline()) {
        int rc = offline_pull(repo, rev, cache, rdir, path, cap);
        free(rdir);
        free(cache);
        return rc;
    }
    const char *ep = opts->endpoint && *opts->endpoint ? opts->endpoint : getenv("HF_ENDPOINT");
    char *endpoint = er_strdup(ep && *ep ? ep : "https://huggingface.co");
    char *token = read_token(opts);
    er_http *h = endpoint ? er_http_new(token) : NULL;
    int have_token = token != NULL;
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    pfile *files = NULL;
    size_t nf = 0;
    json_t *info = NULL;
    er_http_resp r = {0};
    char *url = NULL, *qrev = NULL;
    char commit[41] = "";
    int rc = EASYREC_OK;
    if (!h) {
        rc = EASYREC_ERR_NOMEM;
        goto done;
    }
    size_t el = strlen(endpoint);
    while (el > 0 && endpoint[el - 1] == '/') endpoint[--el] = 0;

    /* 1. model info at the revision: commit + file list */
    qrev = er_http_quote(rev, 0);
    size_t n = el + strlen(repo) + (qrev ? strlen(qrev) : 0) + 64;
    url = qrev ? er_mallocarray(n, 1) : NULL;
    if (!url) {
        rc = EASYREC_ERR_NOMEM;
        goto done;
    }
    snprintf(url, n, "%s/api/models/%s/revision/%s", endpoint, repo, qrev);
    if ((rc = er_http_request(h, "GET", url, &r))) goto done;
    if (r.status != 200) {
        rc = status_error(&r, repo, rev, NULL, have_token);
        goto done;
    }
    json_error_t je;
    info = json_loadb(r.body, r.body_len, 0, &je);
    json_t *sha = info ? json_object_get(info, "sha") : NULL;
    json_t *sib = info ? json_object_get(info, "siblings") : NULL;
    if (!info || !json_is_string(sha) || !er_hub_is_commit(json_string_value(sha)) || !json_is_array(sib)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: model info without a 40-hex \"sha\" and a \"siblings\" list", url);
        goto done;
    }
    memcpy(commit, json_string_value(sha), 41);
    files = er_calloc(json_array_size(sib) + 1, sizeof *files);
    if (!files) {
        rc = EASYREC_ERR_NOMEM;
        goto done;
    }
    size_t i;
    json_t *s;
    json_array_foreach(sib, i, s) {
        const char *name = json_string_value(json_object_get(s, "rfilename"));
        if (!name || !er_hub_valid_rfilename(name)) {
            rc = er_error(EASYREC_ERR_FORMAT, "%s: siblings[%zu].rfilename is missing or not a safe relative path",
                          url, i);
            goto done;
        }
        if (!er_hub_include_match(opts->include, name)) continue;
        files[nf].size = -1;
        if (!(files[nf++].name = er_strdup(name))) {
            rc = EASYREC_ERR_NOMEM;
            goto done;
        }
    }
    if (nf == 0) {
        rc = er_error(EASYREC_ERR_ARG, "no file of %s at revision %s matches --include '%s'", repo, rev,
                      opts->include ? opts->include : "");
        goto done;
    }

    /* 2. metadata + verified blobs for what the snapshot lacks */
    for (i = 0; i < nf; i++) {
        char ptr[4096];
        int64_t sz;
        snprintf(ptr, sizeof ptr, "%s/snapshots/%s/%s", rdir, commit, files[i].name);
        if (regular_file(ptr, &sz)) {
            files[i].cached = 1;
            if (opts->progress) opts->progress(opts->progress_user, files[i].name, (uint64_t)sz, (uint64_t)sz);
            continue;
        }
        if ((rc = file_metadata(h, endpoint, repo, commit, &files[i], have_token))) goto done;
        if ((rc = fetch_blob(h, rdir, &files[i], opts))) goto done;
    }

    /* 3. everything verified: link the snapshot, then the ref */
    for (i = 0; i < nf; i++)
        if (!files[i].cached && (rc = er_hub_link_snapshot(rdir, commit, files[i].name, files[i].etag))) goto done;
    char snap[4096];
    snprintf(snap, sizeof snap, "%s/snapshots/%s", rdir, commit);
    if (strcmp(rev, commit) && (rc = er_hub_write_ref(rdir, rev, commit))) goto done;
    if (strlen(snap) >= cap) {
        rc = er_error(EASYREC_ERR_ARG, "snapshot path longer than %zu bytes", cap);
        goto done;
    }
    strcpy(path, snap);
done:
    for (i = 0; files && i < nf; i++) {
        free(files[i].name);
        free(files[i].etag);
        free(files[i].url);
    }
    free(files);
    json_decref(info);
    er_http_resp_free(&r);
    free(url);
    free(qrev);
    er_http_free(h);
    free(endpoint);
    free(rdir);
    free(cache);
    return rc;
}
