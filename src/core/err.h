/* err.h — error reporting and invariant checks shared by every module.
 *
 * Three classes (docs/style): bad external input -> return an EASYREC_ERR_* code after
 * er_error() stored a message in a thread-local buffer; broken internal invariant ->
 * ER_ASSERT aborts with file:line (never compiled out); process failure -> only main()
 * prints and exits.
 */
#ifndef ER_ERR_H
#define ER_ERR_H

#include <stddef.h>
#include <stdint.h>

#include "easyrec.h"

/* Store a formatted message as the thread's last error and return code (so callers can
 * write `return er_error(EASYREC_ERR_FORMAT, "...")`). */
int er_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current last error with "what: " (for adding context while unwinding). */
int er_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void er_clear_error(void);
/* Copy in to out (cap bytes, NUL-terminated, truncated) with everything a terminal would not
 * show visibly escaped: control bytes as \xNN (\t \n \r by name), invalid UTF-8 bytes as
 * \xNN, invisible code points (byte-order mark, zero-width and bidi controls, soft hyphen,
 * line/paragraph separators) as <U+XXXX>. er_error applies it to every message. */
void er_sanitize_text(const char *in, char *out, size_t cap);

void er_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define ER_ASSERT(x) ((x) ? (void)0 : er_assert_fail(#x, __FILE__, __LINE__))

/* Overflow-checked size arithmetic: return 0 and set *out on success, -1 on overflow. */
static inline int er_mul_size(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int er_add_size(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* Allocation helpers: NULL on overflow or OOM, with the last error set (EASYREC_ERR_NOMEM).
 * er_calloc zeroes; er_mallocarray does not. Free with free(). */
void *er_calloc(size_t n, size_t size);
void *er_mallocarray(size_t n, size_t size);
void *er_reallocarray(void *p, size_t n, size_t size);
char *er_strdup(const char *s);
/* er_mallocarray for large buffers that are touched all over (weights, activations, score
 * blocks, packed matrices, optimizer state): from 2 MiB on, 2 MiB-aligned, the size rounded
 * up to 2 MiB and advised for transparent huge pages (MADV_HUGEPAGE: THP is in 'madvise'
 * mode on many systems), so one page fault and one TLB entry cover 2 MiB instead of 4 KiB
 * (on this project's VMs a 4 KiB fault costs ~14 us; docs/model.md). Below 2 MiB, or where
 * the advice fails, ordinary pages, 64-byte aligned. er_calloc_big zeroes. Free with free(). */
void *er_malloc_big(size_t n, size_t size);
void *er_calloc_big(size_t n, size_t size);

/* Read a whole file into a malloc'd buffer (NUL-terminated beyond *len). Caller frees.
 * Returns EASYREC_OK or an error naming the path. */
int er_read_file(const char *path, char **out, size_t *len);

/* Write `len` bytes to `path` atomically: written to path.tmp.PID, fsynced, renamed. */
int er_write_file_atomic(const char *path, const void *data, size_t len);

/* Join dir and name into a malloc'd path. */
char *er_path_join(const char *dir, const char *name);
int er_file_exists(const char *path);

#endif
