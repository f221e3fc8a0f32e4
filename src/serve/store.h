/* store.h — durable state of the server behind one small interface: users (profile text +
 * embedding), their interactions, and items (text, metadata, embedding, where it came from,
 * tombstones). Every write returns only after it is durable (a committed transaction with
 * synchronous=FULL for SQLite), so an acknowledged write survives kill -9.
 *
 * Embeddings are stored with the fingerprint of the model that made them; a row whose
 * fingerprint differs from the running model's is re-encoded by the server at start.
 * One implementation today: SQLite in WAL mode (store_sqlite.c, file DIR/easyrec.sqlite).
 * Another backend (e.g. a server database for replicas) implements er_store_ops.
 * Calls are serialised by the store itself (safe from any thread).
 */
#ifndef ER_SERVE_STORE_H
#define ER_SERVE_STORE_H

#include <stddef.h>

typedef struct {
    const char *id;
    int id_int;
    const char *text; /* NULL: no profile (users with interactions only) */
    size_t len;
    const char *meta;       /* items: JSON object text */
    const float *emb;       /* NULL when absent or of another width */
    const char *fingerprint;
    int from_api;           /* items: 1 written through the API, 0 seeded from the catalog */
    int deleted;            /* items: tombstone */
} er_store_row;

typedef struct er_store er_store;

typedef struct {
    int (*put_user)(er_store *s, const er_store_row *u);
    int (*add_interactions)(er_store *s, const char *user, int user_int, const char *const *items, const int *item_int,
                            int n);
    /* rows[0..n) in one transaction */
    int (*put_items)(er_store *s, const er_store_row *rows, int n);
    /* each row in insertion order; fn returns nonzero to stop (that value is returned) */
    int (*each_user)(er_store *s, int (*fn)(const er_store_row *, void *), void *user);
    int (*each_interaction)(er_store *s, int (*fn)(const char *user, int user_int, const char *item, int item_int, void *),
                            void *user);
    int (*each_item)(er_store *s, int (*fn)(const er_store_row *, void *), void *user);
    void (*close)(er_store *s);
} er_store_ops;

struct er_store {
    const er_store_ops *ops;
    int dim; /* embedding width D */
};

/* Open (creating) the SQLite store in directory dir (created if missing) for width dim. */
int er_store_open_sqlite(const char *dir, int dim, er_store **out);

#endif
