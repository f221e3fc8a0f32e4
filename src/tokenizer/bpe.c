/* bpe.c — the byte-level BPE model of GPT-2 / RoBERTa: symbols, merge ranks, and the merge
 * loop of one pre-tokenised piece.
 *
 * Follows HF's slow GPT2Tokenizer.bpe(): the piece's UTF-8 bytes are mapped through
 * bytes_to_unicode to one symbol each; then, repeatedly, the adjacent pair with the lowest
 * merge rank is found and *every* occurrence of it is merged, scanning left to right
 * without overlap, until no adjacent pair has a rank. Each final symbol is looked up in the
 * vocabulary (a symbol that is not a key gives the unk id).
 *
 * Implementation: symbols are interned strings (so a pair is two ints and a rank lookup is
 * one hash probe), the word is a doubly linked list over an array, and candidate pairs sit
 * in a binary min-heap keyed by (rank, position). One "round" pops every entry of the
 * current lowest rank in position order — which is exactly Python's left-to-right scan — and
 * the pairs created by the round's merges are held back until the round is over, because
 * Python computes the next minimum only after the whole scan. Stale heap entries are
 * recognised by rank_at[pos] (the current rank of the pair starting at pos): a pair at a
 * given position never comes back once it has changed, because symbols only grow.
 * O(n log n) per piece instead of Python's O(n^2).
 */
#include "tokenizer/tok_impl.h"

#include <stdatomic.h>
#include <stdlib.h>

/* bytes 33..126, 161..172, 174..255 map to themselves; the other 68 to 256.. in byte order */
const uint16_t er_bpe_byte_cp[256] = {
    256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272, 273, 274,
    275, 276, 277, 278, 279, 280, 281, 282, 283, 284, 285, 286, 287, 288, 33,  34,  35,  36,  37,
    38,  39,  40,  41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,  52,  53,  54,  55,  56,
    57,  58,  59,  60,  61,  62,  63,  64,  65,  66,  67,  68,  69,  70,  71,  72,  73,  74,  75,
    76,  77,  78,  79,  80,  81,  82,  83,  84,  85,  86,  87,  88,  89,  90,  91,  92,  93,  94,
    95,  96,  97,  98,  99,  100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
    114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 289, 290, 291, 292, 293, 294,
    295, 296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313,
    314, 315, 316, 317, 318, 319, 320, 321, 322, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170,
    171, 172, 323, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189,
    190, 191, 192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203, 204, 205, 206, 207, 208,
    209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227,
    228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242, 243, 244, 245, 246,
    247, 248, 249, 250, 251, 252, 253, 254, 255,
};

int er_bpe_cp_byte(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp < 256 || cp > 323) return -1;
    static const uint8_t shifted[68] = {0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,
                                        12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,
                                        24,  25,  26,  27,  28,  29,  30,  31,  32,  127, 128, 129,
                                        130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 141,
                                        142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153,
                                        154, 155, 156, 157, 158, 159, 160, 173};
    return shifted[cp - 256];
}

/* ---- building ------------------------------------------------------------------------------ */

uint64_t er_bpe_next_serial(void) {
    static atomic_uint_fast64_t next = 1;
    return atomic_fetch_add(&next, 1);
}

int er_bpe_model_init(bpe_model *m, uint32_t expect_vocab, uint32_t expect_merges) {
    memset(m, 0, sizeof(*m));
    int rc = er_strmap_init(&m->syms, expect_vocab + expect_merges / 4 + 512);
    if (rc) return rc;
    rc = er_u64map_init(&m->ranks, expect_merges + 16);
    if (rc) {
        er_strmap_free(&m->syms);
        return rc;
    }
    m->serial = er_bpe_next_serial();
    return EASYREC_OK;
}

void er_bpe_model_free(bpe_model *m) {
    er_strmap_free(&m->syms);
    er_u64map_free(&m->ranks);
    free(m->merge_out);
    free(m->id_sym);
    memset(m, 0, sizeof(*m));
}

int er_bpe_model_add_token(bpe_model *m, const char *tok, size_t len, int32_t id) {
    int added;
    int32_t s = er_strmap_intern(&m->syms, tok, len, id, &added);
    if (s < 0) return s;
    m->syms.e[s].val = id;
    m->n_vocab += added;
    if (id >= m->n_ids) m->n_ids = id + 1;
    return EASYREC_OK;
}

static int32_t intern_sym(bpe_model *m, const char *s, size_t n) {
    int added;
    return er_strmap_intern(&m->syms, s, n, -1, &added);
}

int er_bpe_model_add_merge(bpe_model *m, const char *a, size_t alen, const char *b, size_t blen) {
    if (m->n_merges == m->merges_cap) {
        if (m->merges_cap >= (1 << 28)) return er_error(EASYREC_ERR_FORMAT, "too many merges");
        int32_t ncap = m->merges_cap ? m->merges_cap * 2 : 1024;
        int32_t *nm = er_reallocarray(m->merge_out, (size_t)ncap, sizeof(*nm));
        if (!nm) return EASYREC_ERR_NOMEM;
        m->merge_out = nm;
        m->merges_cap = ncap;
    }
    int32_t rank = m->n_merges++;
    m->merge_out[rank] = -1;
    if (!a) return EASYREC_OK;
    char buf[256], *cat = buf;
    size_t n = alen + blen;
    if (n > sizeof(buf) && !(cat = er_mallocarray(n, 1))) return EASYREC_ERR_NOMEM;
    memcpy(cat, a, alen);
    memcpy(cat + alen, b, blen);
    int32_t sa = intern_sym(m, a, alen), sb = sa >= 0 ? intern_sym(m, b, blen) : sa;
    int32_t sr = sb >= 0 ? intern_sym(m, cat, n) : sb;
    if (cat != buf) free(cat);
    if (sr < 0) return sr;
    m->merge_out[rank] = sr;
    return er_u64map_put(&m->ranks, (uint64_t)sa << 32 | (uint32_t)sb, rank);
}

int er_bpe_model_finish(bpe_model *m) {
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        int k = utf8_encode(er_bpe_byte_cp[b], u);
        int32_t s = intern_sym(m, (const char *)u, (size_t)k);
        if (s < 0) return s;
        m->byte_sym[b] = s;
    }
    m->id_sym = er_mallocarray(m->n_ids ? (size_t)m->n_ids : 1, sizeof(*m->id_sym));
    if (!m->id_sym) return EASYREC_ERR_NOMEM;
    for (int32_t i = 0; i < m->n_ids; i++) m->id_sym[i] = -1;
    /* Python's decoder = {v: k for k, v in encoder.items()}: the last key in dict order wins. */
    for (uint32_t s = 0; s < m->syms.n; s++)
        if (m->syms.e[s].val >= 0) m->id_sym[m->syms.e[s].val] = (int32_t)s;
    return EASYREC_OK;
}

const char *er_bpe_id_token(const bpe_model *m, int32_t id, size_t *len) {
    if (id < 0 || id >= m->n_ids || m->id_sym[id] < 0) return NULL;
    *len = strmap_keylen(&m->syms, m->id_sym[id]);
    return strmap_key(&m->syms, m->id_sym[id]);
}

/* ---- the merge loop ------------------------------------------------------------------------- */

static inline int32_t pair_rank(const bpe_model *m, int32_t a, int32_t b) {
    const int32_t *r = u64map_get(&m->ranks, (uint64_t)a << 32 | (uint32_t)b);
    return r ? *r : -1;
}

typedef struct {
    int32_t *sym, *prev, *next, *rank_at; /* (n) */
    uint64_t *heap;                       /* (3n) (rank << 32 | pos), min-heap */
    uint64_t *pend;                       /* (n) pairs created in the current round */
    int nheap, npend;
} bpe_work;

static void heap_push(bpe_work *w, uint64_t v) {
    int i = w->nheap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (w->heap[p] <= v) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = v;
}

static uint64_t heap_pop(bpe_work *w) {
    uint64_t top = w->heap[0], v = w->heap[--w->nheap];
    int i = 0, n = w->nheap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && w->heap[c + 1] < w->heap[c]) c++;
        if (w->heap[c] >= v) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = v;
    return top;
}

/* Set the pair starting at p (p and its successor) and, if it has a rank, queue it. */
static void update_pair(const bpe_model *m, bpe_work *w, int32_t p) {
    int32_t q = w->next[p];
    int32_t r = q >= 0 ? pair_rank(m, w->sym[p], w->sym[q]) : -1;
    w->rank_at[p] = r;
    if (r >= 0) w->pend[w->npend++] = (uint64_t)(uint32_t)r << 32 | (uint32_t)p;
}

static void merge_word(const bpe_model *m, bpe_work *w, int n) {
    w->nheap = w->npend = 0;
    for (int i = 0; i < n; i++) {
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int i = 0; i < n; i++) {
        w->rank_at[i] = i + 1 < n ? pair_rank(m, w->sym[i], w->sym[i + 1]) : -1;
        if (w->rank_at[i] >= 0) heap_push(w, (uint64_t)(uint32_t)w->rank_at[i] << 32 | (uint32_t)i);
    }
    int64_t round = -1;
    while (w->nheap || w->npend) {
        if (w->npend && (!w->nheap || (int64_t)(w->heap[0] >> 32) != round)) {
            for (int k = 0; k < w->npend; k++) {
                int32_t p = (int32_t)(uint32_t)w->pend[k];
                if (w->sym[p] >= 0 && (uint64_t)(uint32_t)w->rank_at[p] == w->pend[k] >> 32)
                    heap_push(w, w->pend[k]);
            }
            w->npend = 0;
            continue;
        }
        uint64_t top = heap_pop(w);
        int32_t r = (int32_t)(top >> 32), p = (int32_t)(uint32_t)top;
        if (w->sym[p] < 0 || w->rank_at[p] != r) continue; /* stale */
        round = r;
        int32_t q = w->next[p];
        w->sym[p] = m->merge_out[r];
        w->sym[q] = -1;
        w->next[p] = w->next[q];
        if (w->next[q] >= 0) w->prev[w->next[q]] = p;
        if (w->prev[p] >= 0) update_pair(m, w, w->prev[p]);
        update_pair(m, w, p);
    }
}

#define BPE_STACK_SYMS 128

int er_bpe_encode_piece(const bpe_model *m, int32_t unk_id, const uint8_t *p, size_t n, tok_sink *sink) {
    if (n == 0) return 0;
    uint64_t h = 0;
    const int32_t *cached;
    if (n <= BPE_CACHE_MAX_KEY) {
        h = hm_hash(p, n);
        int k = er_bpe_cache_get(m->serial, h, p, n, &cached);
        if (k >= 0) {
            for (int i = 0; i < k; i++)
                if (sink_push(sink, cached[i])) return 1;
            return 0;
        }
    }
    if (n > (size_t)INT32_MAX / 4) return er_error(EASYREC_ERR_ARG, "text piece too long");
    int32_t st[4 * BPE_STACK_SYMS];
    uint64_t sh[4 * BPE_STACK_SYMS];
    bpe_work w;
    void *heap_mem = NULL;
    if (n <= BPE_STACK_SYMS) {
        w.sym = st;
        w.heap = sh;
    } else {
        heap_mem = er_mallocarray(n, 4 * sizeof(int32_t) + 4 * sizeof(uint64_t));
        if (!heap_mem) return EASYREC_ERR_NOMEM;
        w.heap = heap_mem;
        w.sym = (int32_t *)(w.heap + 4 * n);
    }
    w.prev = w.sym + n;
    w.next = w.prev + n;
    w.rank_at = w.next + n;
    w.pend = w.heap + 3 * n;
    for (size_t i = 0; i < n; i++) w.sym[i] = m->byte_sym[p[i]];
    merge_word(m, &w, (int)n);

    /* Map the surviving symbols to ids, reusing rank_at as the id list. */
    int nid = 0, rc = 0;
    for (int32_t i = 0; i >= 0; i = w.next[i]) {
        int32_t id = m->syms.e[w.sym[i]].val;
        if (id < 0) {
            if (unk_id < 0) {
                rc = er_error(EASYREC_ERR_FORMAT, "token '%s' is not in the vocabulary and there is no unk token",
                              strmap_key(&m->syms, w.sym[i]));
                goto out;
            }
            id = unk_id;
        }
        w.rank_at[nid++] = id;
    }
    if (n <= BPE_CACHE_MAX_KEY && nid <= BPE_CACHE_MAX_IDS) er_bpe_cache_put(m->serial, h, p, n, w.rank_at, nid);
    for (int i = 0; i < nid; i++)
        if (sink_push(sink, w.rank_at[i])) {
            rc = 1;
            break;
        }
out:
    free(heap_mem);
    return rc;
}
