/* err.c — thread-local last-error text, assert, checked allocation and small file helpers. */
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char last_error[1024];

const char *easyrec_last_error(void) { return last_error[0] ? last_error : "no error"; }

void er_clear_error(void) { last_error[0] = 0; }

static int invisible(uint32_t c) {
    return c == 0xAD || (c >= 0x200B && c <= 0x200F) || (c >= 0x2028 && c <= 0x202E) ||
           (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF || (c >= 0x80 && c < 0xA0) || c == 0x180E;
}

/* length of the valid UTF-8 sequence at s (code point in *cp), 0 when invalid */
static int utf8_seq(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    int n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
    if (!n) return 0;
    uint32_t v = c & (0x3F >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (n == 4 && (v < 0x10000 || v > 0x10FFFF))) return 0;
    *cp = v;
    return n;
}

void er_sanitize_text(const char *in, char *out, size_t cap) {
    size_t k = 0;
    if (!cap) return;
    for (const unsigned char *s = (const unsigned char *)in; *s;) {
        char esc[16];
        const char *piece = esc;
        size_t plen;
        uint32_t cp = 0;
        int n = *s < 0x80 ? 1 : utf8_seq(s, &cp);
        if (*s < 0x20 || *s == 0x7F) {
            if (*s == '\t') memcpy(esc, "\\t", 3), plen = 2;
            else if (*s == '\n') memcpy(esc, "\\n", 3), plen = 2;
            else if (*s == '\r') memcpy(esc, "\\r", 3), plen = 2;
            else plen = (size_t)snprintf(esc, sizeof esc, "\\x%02X", *s);
            n = 1;
        } else if (n == 0) {
            plen = (size_t)snprintf(esc, sizeof esc, "\\x%02X", *s);
            n = 1;
        } else if (n > 1 && invisible(cp)) {
            plen = (size_t)snprintf(esc, sizeof esc, "<U+%04X>", (unsigned)cp);
        } else {
            piece = (const char *)s;
            plen = (size_t)n;
        }
        if (k + plen >= cap) break;
        memcpy(out + k, piece, plen);
        k += plen;
        s += n;
    }
    out[k] = 0;
}

int er_error(int code, const char *fmt, ...) {
    char raw[sizeof(last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    er_sanitize_text(raw, last_error, sizeof(last_error));
    return code;
}

int er_error_prefix(int code, const char *fmt, ...) {
    char prefix[512], old[sizeof(last_error)];
    va_list ap;
    va_start(ap, fmt);
    char raw[sizeof(prefix)];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    er_sanitize_text(raw, prefix, sizeof(prefix));
    memcpy(old, last_error, sizeof(old));
    size_t k = strlen(prefix);
    if (k > sizeof(last_error) - 3) k = sizeof(last_error) - 3;
    memcpy(last_error, prefix, k);
    memcpy(last_error + k, ": ", 2);
    size_t rest = sizeof(last_error) - k - 3, olen = strlen(old);
    if (olen > rest) olen = rest;
    memcpy(last_error + k + 2, old, olen);
    last_error[k + 2 + olen] = 0;
    return code;
}

void er_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "easyrec: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}

void *er_calloc(size_t n, size_t size) {
    size_t total;
    if (er_mul_size(n, size, &total)) {
        er_error(EASYREC_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) er_error(EASYREC_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

void *er_mallocarray(size_t n, size_t size) {
    size_t total;
    if (er_mul_size(n, size, &total)) {
        er_error(EASYREC_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = malloc(total ? total : 1);
    if (!p) er_error(EASYREC_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

void *er_malloc_big(size_t n, size_t size) {
    const size_t huge = (size_t)2 << 20;
    size_t total;
    if (er_mul_size(n, size, &total) || er_add_size(total, huge - 1, &total)) {
        er_error(EASYREC_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    total -= huge - 1;
    /* below 2 MiB a huge page cannot be filled: cache-line aligned, size rounded to 64 */
    int big = total >= huge;
    size_t align = big ? huge : 64;
    total = total ? (total + align - 1) & ~(align - 1) : align;
    void *p = NULL;
    if (posix_memalign(&p, align, total)) {
        er_error(EASYREC_ERR_NOMEM, "out of memory allocating %zu bytes", total);
        return NULL;
    }
    if (big) madvise(p, total, MADV_HUGEPAGE); /* advice only: EINVAL without THP, 4 KiB pages work too */
    return p;
}

void *er_calloc_big(size_t n, size_t size) {
    void *p = er_malloc_big(n, size); /* succeeds only when n * size does not overflow */
    if (p) memset(p, 0, n * size);
    return p;
}

void *er_reallocarray(void *old, size_t n, size_t size) {
    size_t total;
    if (er_mul_size(n, size, &total)) {
        er_error(EASYREC_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = realloc(old, total ? total : 1);
    if (!p) er_error(EASYREC_ERR_NOMEM, "out of memory allocating %zu bytes", total);
    return p;
}

char *er_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = er_mallocarray(n, 1);
    if (p) memcpy(p, s, n);
    return p;
}

int er_read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return er_error(EASYREC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > SIZE_MAX / 2) goto nomem;
            char *nb = realloc(buf, cap * 2);
            if (!nb) goto nomem;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return er_error(EASYREC_ERR_IO, "%s: read error", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return EASYREC_OK;
nomem:
    free(buf);
    fclose(f);
    return er_error(EASYREC_ERR_NOMEM, "%s: out of memory reading file", path);
}

int er_write_file_atomic(const char *path, const void *data, size_t len) {
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp) return er_error(EASYREC_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        /* the message names the file the caller asked for, never our temporary name */
        int rc = er_error(EASYREC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 && errno != EINVAL) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        fd = -1;
        goto fail;
    }
    free(tmp);
    return EASYREC_OK;
fail:;
    int rc = er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

char *er_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = er_mallocarray(a + b + 2, 1);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

int er_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
