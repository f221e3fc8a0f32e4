/* journal.h — the resumable JSON-lines record of finished profile requests.
 *
 * Each record is one JSON object with a string "key" (e.g. "item:3", "user:5", "item:1:2"),
 * written with one write(2) of the whole line, so a crash or kill -9 loses nothing that was
 * appended; fdatasync every 32 records or second and at close. Opening an existing journal
 * reads the keys already done and cuts a torn last line (a crash in the middle of a write);
 * a rerun skips those keys, so no key is ever recorded twice.
 */
#ifndef ER_JOURNAL_H
#define ER_JOURNAL_H

#include <jansson.h>
#include <stdint.h>

#include "tokenizer/hmap.h"

typedef struct {
    char *path;
    int fd;
    strmap keys;      /* done */
    int unsynced;
    double last_sync;
} er_journal;

/* Open (creating) path for appending; *j holds the keys already recorded. */
int er_journal_open(er_journal *j, const char *path);
int er_journal_has(const er_journal *j, const char *key);
/* Append rec (must hold a string "key" not yet recorded). */
int er_journal_append(er_journal *j, json_t *rec);
/* Sync and close; safe on a zeroed or failed journal. */
int er_journal_close(er_journal *j);
/* Call fn on every complete record of the journal at path (in file order). */
int er_journal_each(const char *path, int (*fn)(void *ud, json_t *rec), void *ud);

#endif
