/* profiles.h — read profile texts: EasyRec JSON lines ({"user_id"|"item_id": int,
 * "profile": str, ...}) or plain text lines. */
#ifndef ER_PROFILES_H
#define ER_PROFILES_H
#include <stddef.h>

typedef struct {
    char **text;  /* n NUL-terminated texts, owned */
    size_t *len;  /* byte lengths */
    size_t n;
    int has_ids;  /* rows were ordered by user_id / item_id */
} er_texts;

/* JSON lines with a "profile" string per object. When every object carries an integer
 * "user_id" or "item_id", row k is the profile with id k and the ids must be exactly
 * 0..n-1 (the release layout); when none does, rows keep file order. Blank lines are
 * skipped. Errors name the file and line. */
int er_profiles_read_jsonl(const char *path, er_texts *out);
/* One text per line ("\n" or "\r\n" stripped); every line, empty ones included, is a row. */
int er_profiles_read_lines(const char *path, er_texts *out);
void er_texts_free(er_texts *t);
#endif
