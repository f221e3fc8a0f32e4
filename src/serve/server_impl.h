/* server_impl.h — the server's state, shared by server.c (start-up, state loading) and
 * routes.c (request handlers). Not part of any interface. */
#ifndef ER_SERVE_SERVER_IMPL_H
#define ER_SERVE_SERVER_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "serve/batcher.h"
#include "serve/catalog.h"
#include "serve/metrics.h"
#include "serve/server.h"
#include "serve/store.h"
#include "tokenizer/hmap.h"

typedef struct {
    char *profile; /* NULL: none yet */
    size_t len;
    float *emb;    /* (D) when profile */
    int id_int;
    int32_t *seen; /* catalog key indices of interacted items */
    int nseen, capseen;
} er_user;

struct er_server {
    er_server_opts o;
    const easyrec_model *m;
    const easyrec_tokenizer *tok;
    int D;
    char fingerprint[80];
    char model_name[256];
    er_catalog cat;
    strmap user_keys; /* user id -> index into users */
    er_user *users;
    int32_t n_users, cap_users;
    pthread_rwlock_t lock;  /* catalog + users */
    pthread_mutex_t wmu;    /* serialises writes: store then memory */
    er_store *store;
    er_pool *pool;
    er_scorer_q *scorer;
    er_metrics metrics;
    atomic_int inflight;
};

/* user index of id (creating an empty user when create), or -1 / negative error */
int32_t er_server_user(er_server *s, const char *id, int id_int, int create);
int er_user_set_profile(er_server *s, int32_t u, const char *text, size_t len, const float *emb);
int er_user_add_seen(er_server *s, int32_t u, const char *item, size_t len);
/* Add or replace an item (row: id, text, meta, a D-float embedding; not deleted) in the store
 * and then the catalog, serialised with other writers, under the catalog lock. *created: 1
 * when the id was new. EASYREC_ERR_ARG (nothing written) for an embedding the catalog would
 * refuse (not finite, or norm above 2^60); when the catalog fails after the store took the row
 * (out of memory), the stored row is put back as the catalog has it. Errors are this thread's. */
int er_server_put_item(er_server *s, const er_store_row *row, int *created);

#endif
