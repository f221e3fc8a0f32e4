/* journal.c — append-only JSON-lines journal of finished records (journal.h). */
#include "profile/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"

/* Walk the complete lines of buf; returns the offset after the last good line. A bad line
 * that is not the last one is an error. */
static int scan(const char *path, const char *buf, size_t len, int (*fn)(void *, json_t *), void *ud, size_t *good) {
    size_t off = 0;
    int line = 0;
    *good = 0;
    while (off < len) {
        const char *e = memchr(buf + off, '\n', len - off);
        if (!e) break; /* torn tail: no newline */
        line++;
        size_t n = (size_t)(e - (buf + off));
        json_error_t je;
        json_t *r = n ? json_loadb(buf + off, n, 0, &je) : NULL;
        if (n && (!r || !json_is_string(json_object_get(r, "key")))) {
            json_decref(r);
            if ((size_t)(e - buf) + 1 >= len) break; /* a bad last line: torn, cut it */
            return er_error(EASYREC_ERR_FORMAT, "%s:%d: not a journal record (edit or remove the file)", path, line);
        }
        if (r) {
            int rc = fn(ud, r);
            json_decref(r);
            if (rc) return rc;
        }
        off = (size_t)(e - buf) + 1;
        *good = off;
    }
    return EASYREC_OK;
}

int er_journal_each(const char *path, int (*fn)(void *ud, json_t *rec), void *ud) {
    char *buf;
    size_t len, good;
    if (!er_file_exists(path)) return EASYREC_OK;
    int rc = er_read_file(path, &buf, &len);
    if (rc) return rc;
    rc = scan(path, buf, len, fn, ud, &good);
    free(buf);
    return rc;
}

static int add_key(void *ud, json_t *r) {
    er_journal *j = ud;
    const char *k = json_string_value(json_object_get(r, "key"));
    int added;
    int32_t x = er_strmap_intern(&j->keys, k, strlen(k), 0, &added);
    return x < 0 ? x : EASYREC_OK;
}

int er_journal_open(er_journal *j, const char *path) {
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    int rc = er_strmap_init(&j->keys, 1024);
    if (rc) return rc;
    if (!(j->path = er_strdup(path))) return EASYREC_ERR_NOMEM;
    if (er_file_exists(path)) {
        char *buf;
        size_t len, good;
        if ((rc = er_read_file(path, &buf, &len))) return rc;
        rc = scan(path, buf, len, add_key, j, &good);
        free(buf);
        if (rc) return rc;
        if (good < len && truncate(path, (off_t)good) != 0)
            return er_error(EASYREC_ERR_IO, "%s: cannot cut the torn last line: %s", path, strerror(errno));
    }
    j->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->fd < 0) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    j->last_sync = er_now();
    return EASYREC_OK;
}

int er_journal_has(const er_journal *j, const char *key) { return er_strmap_find(&j->keys, key, strlen(key)) >= 0; }

int er_journal_append(er_journal *j, json_t *rec) {
    const char *k = json_string_value(json_object_get(rec, "key"));
    ER_ASSERT(k && !er_journal_has(j, k));
    char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return er_error(EASYREC_ERR_NOMEM, "out of memory");
    }
    line[n] = '\n';
    size_t off = 0;
    while (off < n + 1) {
        ssize_t w = write(j->fd, line + off, n + 1 - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            free(line);
            return er_error(EASYREC_ERR_IO, "%s: %s", j->path, strerror(errno));
        }
        off += (size_t)w;
    }
    free(line);
    int added;
    int32_t x = er_strmap_intern(&j->keys, k, strlen(k), 0, &added);
    if (x < 0) return x;
    if (++j->unsynced >= 32 || er_now() - j->last_sync >= 1.0) {
        fdatasync(j->fd);
        j->unsynced = 0;
        j->last_sync = er_now();
    }
    return EASYREC_OK;
}

int er_journal_close(er_journal *j) {
    int rc = EASYREC_OK;
    if (j->fd >= 0) {
        if (fsync(j->fd) != 0 && errno != EINVAL) rc = er_error(EASYREC_ERR_IO, "%s: %s", j->path, strerror(errno));
        close(j->fd);
    }
    if (j->keys.slots) er_strmap_free(&j->keys);
    free(j->path);
    memset(j, 0, sizeof(*j));
    j->fd = -1;
    return rc;
}
