/* store_sqlite.c — the SQLite backend of store.h: one connection, WAL journal,
 * synchronous=FULL (a commit is on disk before it returns), a mutex around every call. */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "serve/store.h"

typedef struct {
    er_store base;
    sqlite3 *db;
    pthread_mutex_t mu;
} sq_store;

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS users(id TEXT PRIMARY KEY, id_int INTEGER NOT NULL, profile TEXT, emb BLOB,"
    " fingerprint TEXT);"
    "CREATE TABLE IF NOT EXISTS interactions(seq INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL,"
    " user_int INTEGER NOT NULL, item_id TEXT NOT NULL, item_int INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS items(id TEXT PRIMARY KEY, id_int INTEGER NOT NULL, profile TEXT NOT NULL,"
    " meta TEXT NOT NULL, emb BLOB, fingerprint TEXT, from_api INTEGER NOT NULL, deleted INTEGER NOT NULL);";

static int sq_fail(sq_store *s, const char *what) {
    return er_error(EASYREC_ERR_IO, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(sq_store *s, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = er_error(EASYREC_ERR_IO, "state database: %s: %s", sql, msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return EASYREC_OK;
}

static void bind_row_emb(sq_store *s, sqlite3_stmt *st, int col, const float *emb) {
    if (emb) sqlite3_bind_blob(st, col, emb, s->base.dim * (int)sizeof(float), SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, col);
}

static int sq_put_user(er_store *b, const er_store_row *u) {
    sq_store *s = (sq_store *)b;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = EASYREC_OK;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO users(id,id_int,profile,emb,fingerprint) VALUES(?1,?2,?3,?4,?5)"
                           " ON CONFLICT(id) DO UPDATE SET "
                           "profile=COALESCE(excluded.profile,profile), emb=COALESCE(excluded.emb,emb),"
                           " fingerprint=COALESCE(excluded.fingerprint,fingerprint)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sq_fail(s, "prepare");
        goto done;
    }
    sqlite3_bind_text(st, 1, u->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, u->id_int);
    if (u->text) sqlite3_bind_text(st, 3, u->text, (int)u->len, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 3);
    bind_row_emb(s, st, 4, u->emb);
    if (u->fingerprint) sqlite3_bind_text(st, 5, u->fingerprint, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, 5);
    if (sqlite3_step(st) != SQLITE_DONE) rc = sq_fail(s, "write user");
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sq_add_interactions(er_store *b, const char *user, int user_int, const char *const *items, const int *item_int,
                               int n) {
    sq_store *s = (sq_store *)b;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL, *us = NULL;
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (rc) goto done;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO interactions(user_id,user_int,item_id,item_int) VALUES(?1,?2,?3,?4)", -1,
                           &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT OR IGNORE INTO users(id,id_int) VALUES(?1,?2)",
                           -1, &us, NULL) != SQLITE_OK) {
        rc = sq_fail(s, "prepare");
        goto rollback;
    }
    sqlite3_bind_text(us, 1, user, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(us, 2, user_int);
    if (sqlite3_step(us) != SQLITE_DONE) {
        rc = sq_fail(s, "write user");
        goto rollback;
    }
    for (int i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, user, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, user_int);
        sqlite3_bind_text(st, 3, items[i], -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 4, item_int[i]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = sq_fail(s, "write interaction");
            goto rollback;
        }
    }
    rc = exec(s, "COMMIT");
    if (!rc) goto done;
rollback:
    exec(s, "ROLLBACK");
done:
    sqlite3_finalize(st);
    sqlite3_finalize(us);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sq_put_items(er_store *b, const er_store_row *rows, int n) {
    sq_store *s = (sq_store *)b;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (rc) goto done;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO items(id,id_int,profile,meta,emb,fingerprint,from_api,deleted)"
                           " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = sq_fail(s, "prepare");
        goto rollback;
    }
    for (int i = 0; i < n; i++) {
        const er_store_row *r = &rows[i];
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 2, r->id_int);
        sqlite3_bind_text(st, 3, r->text ? r->text : "", r->text ? (int)r->len : 0, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, r->meta ? r->meta : "{}", -1, SQLITE_TRANSIENT);
        bind_row_emb(s, st, 5, r->emb);
        if (r->fingerprint) sqlite3_bind_text(st, 6, r->fingerprint, -1, SQLITE_TRANSIENT);
        else sqlite3_bind_null(st, 6);
        sqlite3_bind_int(st, 7, r->from_api);
        sqlite3_bind_int(st, 8, r->deleted);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = sq_fail(s, "write item");
            goto rollback;
        }
    }
    rc = exec(s, "COMMIT");
    if (!rc) goto done;
rollback:
    exec(s, "ROLLBACK");
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void read_row(sq_store *s, sqlite3_stmt *st, er_store_row *r, int items) {
    memset(r, 0, sizeof(*r));
    r->id = (const char *)sqlite3_column_text(st, 0);
    r->id_int = sqlite3_column_int(st, 1);
    r->text = (const char *)sqlite3_column_text(st, 2);
    r->len = (size_t)sqlite3_column_bytes(st, 2);
    const void *e = sqlite3_column_blob(st, 3);
    if (e && sqlite3_column_bytes(st, 3) == s->base.dim * (int)sizeof(float)) r->emb = e;
    r->fingerprint = (const char *)sqlite3_column_text(st, 4);
    if (items) {
        r->meta = (const char *)sqlite3_column_text(st, 5);
        r->from_api = sqlite3_column_int(st, 6);
        r->deleted = sqlite3_column_int(st, 7);
    }
}

static int each_row(sq_store *s, const char *sql, int items, int (*fn)(const er_store_row *, void *), void *user) {
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK ? EASYREC_OK : sq_fail(s, "prepare");
    int step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW) {
        er_store_row r;
        read_row(s, st, &r, items);
        if (!r.id) continue;
        rc = fn(&r, user);
    }
    if (!rc && step != SQLITE_DONE) rc = sq_fail(s, "read");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int sq_each_user(er_store *b, int (*fn)(const er_store_row *, void *), void *user) {
    return each_row((sq_store *)b, "SELECT id,id_int,profile,emb,fingerprint FROM users ORDER BY rowid", 0, fn, user);
}

static int sq_each_item(er_store *b, int (*fn)(const er_store_row *, void *), void *user) {
    return each_row((sq_store *)b,
                    "SELECT id,id_int,profile,emb,fingerprint,meta,from_api,deleted FROM items ORDER BY rowid", 1, fn,
                    user);
}

static int sq_each_interaction(er_store *b, int (*fn)(const char *, int, const char *, int, void *), void *user) {
    sq_store *s = (sq_store *)b;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT user_id,user_int,item_id,item_int FROM interactions ORDER BY seq", -1, &st,
                                NULL) == SQLITE_OK
                 ? EASYREC_OK
                 : sq_fail(s, "prepare");
    int step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn((const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1), (const char *)sqlite3_column_text(st, 2),
                sqlite3_column_int(st, 3), user);
    if (!rc && step != SQLITE_DONE) rc = sq_fail(s, "read");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void sq_close(er_store *b) {
    sq_store *s = (sq_store *)b;
    if (!s) return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static const er_store_ops sq_ops = {sq_put_user, sq_add_interactions, sq_put_items, sq_each_user,
                                    sq_each_interaction, sq_each_item, sq_close};

int er_store_open_sqlite(const char *dir, int dim, er_store **out) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return er_error(EASYREC_ERR_IO, "%s: %s", dir, strerror(errno));
    char *path = er_path_join(dir, "easyrec.sqlite");
    sq_store *s = er_calloc(1, sizeof(*s));
    if (!path || !s) {
        free(path);
        free(s);
        return EASYREC_ERR_NOMEM;
    }
    s->base.ops = &sq_ops;
    s->base.dim = dim;
    pthread_mutex_init(&s->mu, NULL);
    int rc = EASYREC_OK;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK)
        rc = er_error(EASYREC_ERR_IO, "%s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
    if (!rc) sqlite3_busy_timeout(s->db, 5000);
    if (!rc) rc = exec(s, schema);
    free(path);
    if (rc) {
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return EASYREC_OK;
}
