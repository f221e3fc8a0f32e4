/* hmap.c — interning string table and 64-bit-key table (see hmap.h). */
#include "tokenizer/hmap.h"

#include <stdlib.h>

#include "core/err.h"

#define HM_MAX_ENTRIES (1u << 30)

static uint32_t pow2_at_least(uint64_t x) {
    uint32_t c = 16;
    while (c < x && c < (1u << 31)) c <<= 1;
    return c;
}

int er_strmap_init(strmap *m, uint32_t expect) {
    memset(m, 0, sizeof(*m));
    m->cap = pow2_at_least((uint64_t)expect * 2);
    m->ecap = expect > 16 ? expect : 16;
    m->acap = (size_t)m->ecap * 8;
    m->slots = er_calloc(m->cap, sizeof(*m->slots));
    m->e = er_mallocarray(m->ecap, sizeof(*m->e));
    m->arena = er_mallocarray(m->acap, 1);
    if (!m->slots || !m->e || !m->arena) {
        er_strmap_free(m);
        return EASYREC_ERR_NOMEM;
    }
    return EASYREC_OK;
}

void er_strmap_free(strmap *m) {
    free(m->slots);
    free(m->e);
    free(m->arena);
    memset(m, 0, sizeof(*m));
}

static int32_t probe(const strmap *m, uint64_t h, const void *k, size_t n, uint32_t *slot) {
    uint32_t mask = m->cap - 1, i = (uint32_t)h & mask, tag = (uint32_t)(h >> 32);
    for (;;) {
        strmap_slot s = m->slots[i];
        if (!s.idx) {
            *slot = i;
            return -1;
        }
        if (s.tag == tag) { /* only then touch the entry and the key */
            const strmap_entry *e = &m->e[s.idx - 1];
            if (e->hash == h && e->len == n && !memcmp(m->arena + e->off, k, n)) {
                *slot = i;
                return (int32_t)(s.idx - 1);
            }
        }
        i = (i + 1) & mask;
    }
}

int32_t er_strmap_find(const strmap *m, const void *k, size_t n) {
    uint32_t slot;
    if (!m->cap) return -1;
    return probe(m, hm_hash(k, n), k, n, &slot);
}

static int grow_slots(strmap *m) {
    uint32_t ncap = m->cap * 2;
    strmap_slot *ns = er_calloc(ncap, sizeof(*ns));
    if (!ns) return EASYREC_ERR_NOMEM;
    for (uint32_t j = 0; j < m->n; j++) {
        uint32_t i = (uint32_t)m->e[j].hash & (ncap - 1);
        while (ns[i].idx) i = (i + 1) & (ncap - 1);
        ns[i] = (strmap_slot){j + 1, (uint32_t)(m->e[j].hash >> 32)};
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return EASYREC_OK;
}

int32_t er_strmap_intern(strmap *m, const void *k, size_t n, int32_t val, int *added) {
    uint64_t h = hm_hash(k, n);
    uint32_t slot;
    int32_t idx = probe(m, h, k, n, &slot);
    *added = 0;
    if (idx >= 0) return idx;
    if (m->n >= HM_MAX_ENTRIES || n > UINT32_MAX - 1)
        return er_error(EASYREC_ERR_NOMEM, "string table: too many or too long keys");
    if (m->n == m->ecap) {
        strmap_entry *ne = er_reallocarray(m->e, (size_t)m->ecap * 2, sizeof(*ne));
        if (!ne) return EASYREC_ERR_NOMEM;
        m->e = ne;
        m->ecap *= 2;
    }
    size_t need;
    if (er_add_size(m->alen, n + 1, &need) || need > UINT32_MAX)
        return er_error(EASYREC_ERR_NOMEM, "string table: keys exceed 4 GiB");
    if (need > m->acap) {
        size_t ncap = m->acap * 2 > need ? m->acap * 2 : need;
        if (ncap > UINT32_MAX) ncap = UINT32_MAX;
        char *na = er_reallocarray(m->arena, ncap, 1);
        if (!na) return EASYREC_ERR_NOMEM;
        m->arena = na;
        m->acap = ncap;
    }
    strmap_entry *e = &m->e[m->n];
    e->hash = h;
    e->off = (uint32_t)m->alen;
    e->len = (uint32_t)n;
    e->val = val;
    if (n) memcpy(m->arena + m->alen, k, n);
    m->arena[m->alen + n] = 0;
    m->alen = need;
    m->slots[slot] = (strmap_slot){m->n + 1, (uint32_t)(h >> 32)};
    idx = (int32_t)m->n++;
    *added = 1;
    if ((uint64_t)m->n * 2 > m->cap && grow_slots(m)) return EASYREC_ERR_NOMEM;
    return idx;
}

/* ---- u64map ----------------------------------------------------------------------------- */

int er_u64map_init(u64map *m, uint32_t expect) {
    memset(m, 0, sizeof(*m));
    m->cap = pow2_at_least((uint64_t)expect * 2);
    m->keys = er_mallocarray(m->cap, sizeof(*m->keys));
    m->vals = er_mallocarray(m->cap, sizeof(*m->vals));
    if (!m->keys || !m->vals) {
        er_u64map_free(m);
        return EASYREC_ERR_NOMEM;
    }
    memset(m->keys, 0xff, (size_t)m->cap * sizeof(*m->keys));
    return EASYREC_OK;
}

void er_u64map_free(u64map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

static void put_raw(uint64_t *keys, int32_t *vals, uint32_t cap, uint64_t key, int32_t val, int *added) {
    uint32_t mask = cap - 1, i = (uint32_t)hm_mix(key) & mask;
    while (keys[i] != UINT64_MAX && keys[i] != key) i = (i + 1) & mask;
    *added = keys[i] == UINT64_MAX;
    keys[i] = key;
    vals[i] = val;
}

int er_u64map_put(u64map *m, uint64_t key, int32_t val) {
    ER_ASSERT(key != UINT64_MAX);
    if ((uint64_t)(m->n + 1) * 2 > m->cap) {
        if (m->cap >= (1u << 31)) return er_error(EASYREC_ERR_NOMEM, "pair table: too many keys");
        uint32_t ncap = m->cap * 2;
        uint64_t *nk = er_mallocarray(ncap, sizeof(*nk));
        int32_t *nv = er_mallocarray(ncap, sizeof(*nv));
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return EASYREC_ERR_NOMEM;
        }
        memset(nk, 0xff, (size_t)ncap * sizeof(*nk));
        int added;
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->keys[i] != UINT64_MAX) put_raw(nk, nv, ncap, m->keys[i], m->vals[i], &added);
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = ncap;
    }
    int added;
    put_raw(m->keys, m->vals, m->cap, key, val, &added);
    m->n += (uint32_t)added;
    return EASYREC_OK;
}
