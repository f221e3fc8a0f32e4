/* cache.c — the huggingface_hub cache layout, read and written exactly as the Python library
 * does (file_download.py: repo_folder_name, _create_symlink, _cache_commit_hash_for_specific_revision):
 *
 *   <cache>/models--org--name/blobs/<etag>              file contents, named by ETag (git oid
 *                                                        or the LFS sha256)
 *   <cache>/models--org--name/snapshots/<commit>/<file>  relative symlink ../../blobs/<etag>
 *   <cache>/models--org--name/refs/<revision>            the commit hash, no newline
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "hub/hub.h"

static char *dup_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = er_mallocarray(n, 1);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

char *er_hub_home(void) {
    const char *v = env_nonempty("HF_HOME");
    if (v) return er_strdup(v);
    if ((v = env_nonempty("XDG_CACHE_HOME"))) return dup_join(v, "huggingface");
    const char *home = env_nonempty("HOME");
    return dup_join(home ? home : "/tmp", ".cache/huggingface");
}

char *er_hub_cache_dir(const char *override) {
    if (override && *override) return er_strdup(override);
    const char *v = env_nonempty("HF_HUB_CACHE");
    if (!v) v = env_nonempty("HUGGINGFACE_HUB_CACHE");
    if (v) return er_strdup(v);
    char *home = er_hub_home();
    if (!home) return NULL;
    char *p = dup_join(home, "hub");
    free(home);
    return p;
}

int er_hub_env_offline(void) {
    const char *v = getenv("HF_HUB_OFFLINE");
    if (!v) return 0;
    return !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

static int name_char(int c) { return isalnum(c) || c == '_' || c == '-' || c == '.'; }

static int valid_part(const char *s, size_t n) {
    if (n < 1 || n > 96) return 0;
    if (!isalnum((unsigned char)s[0]) && s[0] != '_') return 0;
    if (!isalnum((unsigned char)s[n - 1]) && s[n - 1] != '_') return 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_char((unsigned char)s[i])) return 0;
        if (i && ((s[i] == '-' && s[i - 1] == '-') || (s[i] == '.' && s[i - 1] == '.'))) return 0;
    }
    return 1;
}

int er_hub_valid_repo_id(const char *id) {
    if (!id) return 0;
    const char *slash = strchr(id, '/');
    if (!slash) return valid_part(id, strlen(id));
    if (strchr(slash + 1, '/')) return 0;
    return valid_part(id, (size_t)(slash - id)) && valid_part(slash + 1, strlen(slash + 1));
}

int er_hub_valid_rfilename(const char *f) {
    if (!f || !*f || f[0] == '/' || strlen(f) > 4096) return 0;
    for (const char *p = f;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == '\\') return 0;
        if (!e) return 1;
        p = e + 1;
    }
}

int er_hub_valid_revision(const char *rev) { return rev && strlen(rev) <= 255 && er_hub_valid_rfilename(rev); }

int er_hub_is_commit(const char *s) {
    if (!s || strlen(s) != 40) return 0;
    for (int i = 0; i < 40; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return 0;
    return 1;
}

int er_hub_include_match(const char *include, const char *f) {
    if (!include || !*include) return 1;
    char pat[1024];
    for (const char *p = include;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < sizeof pat) {
            memcpy(pat, p, n);
            pat[n] = 0;
            /* fnmatch without FNM_PATHNAME: '*' crosses '/', as Python's fnmatch in
             * huggingface_hub's filter_repo_objects */
            if (fnmatch(pat, f, 0) == 0) return 1;
        }
        if (!e) return 0;
        p = e + 1;
    }
}

char *er_hub_repo_dir(const char *cache, const char *repo_id) {
    /* "models--" + repo_id with '/' -> "--" */
    size_t n = strlen(cache) + strlen(repo_id) * 2 + 16;
    char *p = er_mallocarray(n, 1);
    if (!p) return NULL;
    int k = snprintf(p, n, "%s/models--", cache);
    for (const char *s = repo_id; *s; s++) {
        if (*s == '/') p[k++] = '-', p[k++] = '-';
        else p[k++] = *s;
    }
    p[k] = 0;
    return p;
}

int er_hub_read_ref(const char *repo_dir, const char *rev, char out[41]) {
    if (er_hub_is_commit(rev)) {
        memcpy(out, rev, 41);
        return EASYREC_OK;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/refs/%s", repo_dir, rev);
    FILE *f = fopen(path, "rb");
    if (!f) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    char buf[64] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = 0;
    if (!er_hub_is_commit(buf)) return er_error(EASYREC_ERR_FORMAT, "%s: not a commit hash", path);
    memcpy(out, buf, 41);
    return EASYREC_OK;
}

int er_hub_mkdirs_for(const char *path) {
    char *p = er_strdup(path);
    if (!p) return EASYREC_ERR_NOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) && errno != EEXIST) {
            int rc = er_error(EASYREC_ERR_IO, "cannot create %s: %s", p, strerror(errno));
            free(p);
            return rc;
        }
        *s = '/';
    }
    free(p);
    return EASYREC_OK;
}

int er_hub_write_ref(const char *repo_dir, const char *rev, const char *commit) {
    char path[4096];
    snprintf(path, sizeof path, "%s/refs/%s", repo_dir, rev);
    int rc = er_hub_mkdirs_for(path);
    return rc ? rc : er_write_file_atomic(path, commit, strlen(commit));
}

int er_hub_link_snapshot(const char *repo_dir, const char *commit, const char *file, const char *etag) {
    char ptr[4096], target[4096], tmp[4200];
    snprintf(ptr, sizeof ptr, "%s/snapshots/%s/%s", repo_dir, commit, file);
    /* os.path.relpath(blob, dirname(pointer)): one "../" per directory level of the file
     * below snapshots/<commit>/, plus two for snapshots/<commit> */
    int k = 0;
    for (const char *s = file; *s; s++)
        if (*s == '/') k += snprintf(target + k, sizeof target - k, "../");
    snprintf(target + k, sizeof target - k, "../../blobs/%s", etag);
    int rc = er_hub_mkdirs_for(ptr);
    if (rc) return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", ptr, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp)) return er_error(EASYREC_ERR_IO, "cannot create symlink %s: %s", tmp, strerror(errno));
    if (rename(tmp, ptr)) {
        rc = er_error(EASYREC_ERR_IO, "cannot rename %s to %s: %s", tmp, ptr, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return EASYREC_OK;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int easyrec_resolve_model(const char *name, char *path, size_t cap) {
    if (!name || !path || cap == 0) return er_error(EASYREC_ERR_ARG, "easyrec_resolve_model: NULL argument");
    if (is_dir(name) || name[0] == '/' || name[0] == '.') goto itself;
    char repo[256], rev[256] = "main";
    const char *at = strchr(name, '@');
    size_t rn = at ? (size_t)(at - name) : strlen(name);
    if (rn >= sizeof repo || (at && strlen(at + 1) >= sizeof rev)) goto itself;
    memcpy(repo, name, rn);
    repo[rn] = 0;
    if (at) strcpy(rev, at + 1);
    if (!strchr(repo, '/') || !er_hub_valid_repo_id(repo) || !er_hub_valid_revision(rev)) goto itself;
    char *cache = er_hub_cache_dir(NULL);
    char *rdir = cache ? er_hub_repo_dir(cache, repo) : NULL;
    if (!rdir) {
        free(cache);
        return EASYREC_ERR_NOMEM;
    }
    char commit[41], snap[4096];
    int rc = er_hub_read_ref(rdir, rev, commit);
    if (rc == EASYREC_OK) {
        snprintf(snap, sizeof snap, "%s/snapshots/%s", rdir, commit);
        if (!is_dir(snap)) rc = EASYREC_ERR_IO;
    }
    if (rc) {
        rc = er_error(EASYREC_ERR_IO,
                      "'%s' is not a directory and %s%s%s is not in the Hugging Face cache %s; run: easyrec pull %s%s%s",
                      name, repo, at ? " revision " : "", at ? rev : "", cache, repo, at ? " --revision " : "",
                      at ? rev : "");
    } else if (strlen(snap) >= cap) {
        rc = er_error(EASYREC_ERR_ARG, "snapshot path of %s longer than %zu bytes", name, cap);
    } else {
        strcpy(path, snap);
    }
    free(rdir);
    free(cache);
    return rc;
itself:
    if (strlen(name) >= cap) return er_error(EASYREC_ERR_ARG, "model path longer than %zu bytes", cap);
    strcpy(path, name);
    return EASYREC_OK;
}
