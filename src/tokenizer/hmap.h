/* hmap.h — the two hash tables of the tokenizers.
 *
 * strmap interns byte strings: each distinct key gets a dense index 0, 1, 2, ... in order
 * of first insertion, keeps a copy of the key (NUL-terminated) and one int32 value.
 * u64map maps 64-bit keys (a pair of 32-bit ids) to int32 values.
 * Both use open addressing with linear probing, power-of-two capacities, load <= 1/2.
 * Neither supports deletion. Lookups on a const table are thread-safe.
 */
#ifndef ER_TOK_HMAP_H
#define ER_TOK_HMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hm_mix(uint64_t h) {
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ull;
    h ^= h >> 27;
    h *= 0x81dadef4bc2dd44dull;
    h ^= h >> 33;
    return h;
}

/* A fast non-cryptographic hash of n bytes. */
static inline uint64_t hm_hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h = (h << 29 | h >> 35);
        s += 8;
        n -= 8;
    }
    uint64_t v = 0;
    if (n) memcpy(&v, s, n);
    return hm_mix(h ^ v);
}

typedef struct {
    uint64_t hash;
    uint32_t off, len; /* key = arena + off, len bytes, NUL after it */
    int32_t val;
} strmap_entry;

typedef struct {
    uint32_t idx, tag; /* entry index + 1 (0 = empty slot); high 32 bits of the key's hash */
} strmap_slot;

typedef struct {
    strmap_slot *slots; /* (cap) */
    uint32_t cap;    /* power of two */
    uint32_t n;      /* entries */
    uint32_t ecap;
    strmap_entry *e; /* (ecap) */
    char *arena;
    size_t alen, acap;
} strmap;

/* Returns EASYREC_OK or EASYREC_ERR_NOMEM (last error set). */
int er_strmap_init(strmap *m, uint32_t expect);
void er_strmap_free(strmap *m);
/* Index of key k[0..n), or -1. */
int32_t er_strmap_find(const strmap *m, const void *k, size_t n);
/* Index of k[0..n), inserting it (val = `val`) when absent; *added = 1 when inserted.
 * Returns the index, or a negative EASYREC_ERR_* (too many keys, out of memory). */
int32_t er_strmap_intern(strmap *m, const void *k, size_t n, int32_t val, int *added);
static inline const char *strmap_key(const strmap *m, int32_t i) { return m->arena + m->e[i].off; }
static inline uint32_t strmap_keylen(const strmap *m, int32_t i) { return m->e[i].len; }

typedef struct {
    uint64_t *keys; /* (cap) UINT64_MAX = empty */
    int32_t *vals;  /* (cap) */
    uint32_t cap, n;
} u64map;

int er_u64map_init(u64map *m, uint32_t expect);
void er_u64map_free(u64map *m);
/* Set key -> val (overwrites). Returns EASYREC_OK or a negative error. key != UINT64_MAX. */
int er_u64map_put(u64map *m, uint64_t key, int32_t val);
/* Pointer to the value of key, or NULL. Valid until the next put. */
static inline int32_t *u64map_get(const u64map *m, uint64_t key) {
    uint32_t mask = m->cap - 1, i = (uint32_t)hm_mix(key) & mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) return &m->vals[i];
        if (k == UINT64_MAX) return NULL;
        i = (i + 1) & mask;
    }
}

#endif
