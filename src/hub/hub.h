/* hub.h — internals of the Hugging Face Hub client (layer: next to io; needs only core).
 *
 * cache.c: the huggingface_hub cache layout (paths, refs, relative snapshot symlinks) and the
 *          offline resolver behind easyrec_resolve_model;
 * http.c:  a small libcurl wrapper (metadata requests, resumable verified downloads);
 * pull.c:  easyrec_pull — the Hub HTTP API as huggingface_hub speaks it.
 * docs/hub.md describes the protocol and the cache tree.
 */
#ifndef ER_HUB_H
#define ER_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "easyrec.h"

/* The cache root (malloc'd): override, else $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE,
 * $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. */
char *er_hub_cache_dir(const char *override);
/* $HF_HOME (malloc'd), else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
char *er_hub_home(void);
/* 1 when $HF_HUB_OFFLINE is 1/true/yes/on (any case). */
int er_hub_env_offline(void);

/* "org/name" or "name": 1-96 characters of [A-Za-z0-9._-] per part, at most one '/', no
 * part starting or ending with '.' or '-', no "--" or "..". */
int er_hub_valid_repo_id(const char *repo_id);
/* A revision usable as a file name under refs/ (branch or tag, may contain '/'). */
int er_hub_valid_revision(const char *rev);
/* 40 lowercase hex digits. */
int er_hub_is_commit(const char *s);
/* A path inside a repository from the server: relative, no "." / ".." / empty parts. */
int er_hub_valid_rfilename(const char *f);
/* A comma-separated glob list ("*.json,*.txt") matches f (NULL list: everything). */
int er_hub_include_match(const char *include, const char *f);

/* cache/models--org--name (malloc'd). */
char *er_hub_repo_dir(const char *cache, const char *repo_id);
/* The commit a revision stands for in the cache: itself when it is a commit, else the
 * content of refs/<rev>. out gets 41 bytes. EASYREC_ERR_IO when unknown. */
int er_hub_read_ref(const char *repo_dir, const char *rev, char out[41]);
/* Write refs/<rev> = commit (no newline, as huggingface_hub), atomically. */
int er_hub_write_ref(const char *repo_dir, const char *rev, const char *commit);
/* mkdir -p of every parent directory of path. */
int er_hub_mkdirs_for(const char *path);
/* Point snapshots/<commit>/<file> at ../(..)/blobs/<etag> with a relative symlink, replaced
 * atomically (symlink to a temporary name, then rename). */
int er_hub_link_snapshot(const char *repo_dir, const char *commit, const char *file, const char *etag);

/* ---- http.c --------------------------------------------------------------------------- */

typedef struct er_http er_http;

typedef struct {
    long status;
    char *body;          /* GET: response body (NUL-terminated), HEAD: NULL */
    size_t body_len;
    char *location;      /* Location header or NULL */
    char *repo_commit;   /* X-Repo-Commit */
    char *etag;          /* X-Linked-Etag, else ETag, normalised (no W/, no quotes) */
    char *error_code;    /* X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, ...) */
    char *error_message; /* X-Error-Message */
    int64_t size;        /* X-Linked-Size, else Content-Length, else -1 */
} er_http_resp;

/* token may be NULL; it is only ever put in an Authorization header. */
er_http *er_http_new(const char *token);
void er_http_free(er_http *h);
void er_http_resp_free(er_http_resp *r);

/* One request without following redirects (method "GET" or "HEAD"). A transport failure
 * (no connection, ...) is EASYREC_ERR_IO naming the URL; any HTTP status is returned in r. */
int er_http_request(er_http *h, const char *method, const char *url, er_http_resp *r);

/* GET url (following redirects) into `path`, appending when the file already has bytes
 * (Range: bytes=N-) and starting over when the server ignores the range. Retries transport
 * failures that cut the transfer up to `retries` times, each resuming where it stopped.
 * progress(user, done, total) after each chunk (total = expected, may be 0). */
int er_http_download(er_http *h, const char *url, const char *path, uint64_t expected, int retries,
                     void (*progress)(void *user, uint64_t done, uint64_t total), void *user);

/* Percent-encode s; keep '/' when keep_slash (for file paths). malloc'd. */
char *er_http_quote(const char *s, int keep_slash);

#endif
