/* bpe_cache.c — per-thread cache of BPE results (piece bytes -> ids), like the `cache`
 * dict of HF's slow GPT2Tokenizer.
 *
 * A loaded tokenizer is immutable and shared between threads, so the cache cannot live in
 * it without locks; instead each thread keeps up to CACHE_MODELS caches, one per model
 * (named by bpe_model.serial, never reused, so a freed model's cache is simply never hit
 * again and is recycled by the least recently used rule). A cache that fills up is emptied.
 * Memory is bounded: CACHE_SLOTS slots plus an arena of at most CACHE_ARENA bytes per model.
 * The caches of a thread are freed when it exits (pthread key destructor) or by
 * er_tokenizer_thread_cleanup(). The results are a pure function of the piece, so caching never
 * changes the output.
 */
#include <pthread.h>
#include <stdlib.h>

#include "tokenizer/tok_impl.h"

#define CACHE_MODELS 4
#define CACHE_SLOTS (1u << 15)
#define CACHE_MAX_ENTRIES (CACHE_SLOTS / 2)
#define CACHE_ARENA (4u << 20)

typedef struct {
    uint64_t hash;
    uint32_t off; /* entry offset in the arena + 1; 0 = empty */
    uint16_t klen, nids;
} cache_slot;

typedef struct {
    uint64_t serial, last_use;
    cache_slot *slots; /* (CACHE_SLOTS) */
    uint8_t *arena;    /* entries: ids (int32 x nids) then key bytes, 4-aligned */
    uint32_t alen, acap, n;
} bpe_cache;

typedef struct {
    bpe_cache c[CACHE_MODELS];
    uint64_t clock;
} cache_set;

static _Thread_local cache_set *tls_set;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void set_free(void *p) {
    cache_set *s = p;
    if (!s) return;
    for (int i = 0; i < CACHE_MODELS; i++) {
        free(s->c[i].slots);
        free(s->c[i].arena);
    }
    free(s);
}

static void key_init(void) {
    if (pthread_key_create(&tls_key, set_free)) tls_key = (pthread_key_t)-1;
}

void er_tokenizer_thread_cleanup(void) {
    set_free(tls_set);
    tls_set = NULL;
    pthread_once(&tls_once, key_init);
    if (tls_key != (pthread_key_t)-1) pthread_setspecific(tls_key, NULL);
}

static void cache_clear(bpe_cache *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof(*c->slots));
    c->alen = 0;
    c->n = 0;
}

/* The calling thread's cache for serial (created or recycled when create != 0), or NULL. */
static bpe_cache *cache_for(uint64_t serial, int create) {
    cache_set *s = tls_set;
    if (!s) {
        if (!create) return NULL;
        pthread_once(&tls_once, key_init);
        if (tls_key == (pthread_key_t)-1 || !(s = calloc(1, sizeof(*s)))) return NULL;
        tls_set = s;
        pthread_setspecific(tls_key, s);
    }
    s->clock++;
    bpe_cache *lru = &s->c[0];
    for (int i = 0; i < CACHE_MODELS; i++) {
        bpe_cache *c = &s->c[i];
        if (c->serial == serial) {
            c->last_use = s->clock;
            return c;
        }
        if (c->last_use < lru->last_use) lru = c;
    }
    if (!create) return NULL;
    if (!lru->slots && !(lru->slots = malloc(CACHE_SLOTS * sizeof(*lru->slots)))) return NULL;
    cache_clear(lru);
    lru->serial = serial;
    lru->last_use = s->clock;
    return lru;
}

int er_bpe_cache_get(uint64_t serial, uint64_t hash, const uint8_t *p, size_t n, const int32_t **ids) {
    bpe_cache *c = cache_for(serial, 0);
    if (!c) return -1;
    uint32_t i = (uint32_t)hash & (CACHE_SLOTS - 1);
    for (;;) {
        const cache_slot *sl = &c->slots[i];
        if (!sl->off) return -1;
        if (sl->hash == hash && sl->klen == n) {
            const uint8_t *e = c->arena + sl->off - 1;
            if (!memcmp(e + 4 * (size_t)sl->nids, p, n)) {
                *ids = (const int32_t *)(const void *)e;
                return sl->nids;
            }
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

void er_bpe_cache_put(uint64_t serial, uint64_t hash, const uint8_t *p, size_t n, const int32_t *ids, int nids) {
    bpe_cache *c = cache_for(serial, 1);
    if (!c || n > BPE_CACHE_MAX_KEY || nids > BPE_CACHE_MAX_IDS) return;
    uint32_t need = (uint32_t)((4 * (size_t)nids + n + 3) & ~(size_t)3);
    if (c->n >= CACHE_MAX_ENTRIES || c->alen + need > CACHE_ARENA) cache_clear(c);
    if (c->alen + need > c->acap) {
        uint32_t ncap = c->acap ? c->acap * 2 : 64u << 10;
        if (ncap > CACHE_ARENA) ncap = CACHE_ARENA;
        uint8_t *na = realloc(c->arena, ncap);
        if (!na) return;
        c->arena = na;
        c->acap = ncap;
    }
    uint32_t i = (uint32_t)hash & (CACHE_SLOTS - 1);
    while (c->slots[i].off) i = (i + 1) & (CACHE_SLOTS - 1);
    uint8_t *e = c->arena + c->alen;
    memcpy(e, ids, 4 * (size_t)nids);
    memcpy(e + 4 * (size_t)nids, p, n);
    c->slots[i] = (cache_slot){hash, c->alen + 1, (uint16_t)n, (uint16_t)nids};
    c->alen += need;
    c->n++;
}
