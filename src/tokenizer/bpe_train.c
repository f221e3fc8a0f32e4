/* er_bpe_train.c — a deterministic byte-level BPE trainer in the manner of HF tokenizers'
 * ByteLevelBPETokenizer / BpeTrainer, writing RoBERTa-style vocab.json + merges.txt.
 *
 * 1. Input files are read line by line, each line keeping its "\n" (as tokenizers'
 *    train_from_files does); invalid UTF-8 is replaced by U+FFFD; every line is split with
 *    the GPT-2 pattern (pretok.c) and the distinct pieces are counted.
 * 2. Ids: <s>=0 <pad>=1 </s>=2 <unk>=3, then the 256 byte symbols ordered by the code point
 *    of their bytes_to_unicode character (HF sorts its initial alphabet the same way), then
 *    one id per merge in merge order, then <mask> last.
 * 3. Repeatedly the adjacent pair with the highest count (summed over words, weighted by word
 *    frequency) is merged. Ties go to the pair whose (left id, right id) is smallest — the
 *    order of HF's BpeTrainer priority queue — so the result is a pure function of the input
 *    (no hash order, no thread count involved). Training stops when the vocabulary reaches
 *    vocab_size (including the specials and <mask>), or when the best count is below
 *    min_frequency.
 * Incremental: every pair keeps its count and the list of words it occurs in; merging a pair
 * rewrites only those words and updates the counts of the pairs around each occurrence (the
 * change rules of HF's Word::merge). A max-heap holds (count, pair) entries; counts of queued
 * pairs only ever decrease (new pairs always involve the new symbol), so an entry whose count
 * is stale is re-queued with its current count when it reaches the top.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tokenizer/tok_impl.h"

#define N_SPECIAL 4 /* <s> <pad> </s> <unk>; <mask> comes last */

typedef struct {
    uint64_t key; /* left << 32 | right */
    int64_t count;
    uint32_t *w; /* words it was seen in (may hold words that lost it since) */
    uint32_t nw, capw;
    uint32_t last_w;  /* last word appended + 1 (avoids consecutive duplicates) */
    uint32_t touched; /* merge iteration that last queued it */
    int done;
} tr_pair;

typedef struct {
    int64_t count;
    uint64_t key;
} tr_entry;

typedef struct {
    strmap words;      /* piece -> index; val unused */
    int64_t *wcount;   /* (nwords) */
    int32_t *sym;      /* symbols of all words, word i at wstart[i], wlen[i] of them */
    uint32_t *wstart, *wlen, *stamp;
    u64map pair_ix;    /* (left << 32 | right) -> index into pairs */
    tr_pair *pairs;
    uint32_t npairs, cappairs;
    tr_entry *heap;
    size_t nheap, capheap;
    uint32_t *touched; /* pairs that gained occurrences in the current merge */
    size_t ntouched, captouched;
    char **tok;        /* (ntok) byte-level string of each id */
    int32_t ntok;
    uint64_t *merges;  /* (nmerges) merged pairs in order */
    int32_t nmerges;
    uint32_t iter;     /* merge iteration, from 1 */
} trainer;

/* ---- small containers ------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return EASYREC_OK;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    void *np = er_reallocarray(*p, ncap, elem);
    if (!np) return EASYREC_ERR_NOMEM;
    *p = np;
    *cap = ncap;
    return EASYREC_OK;
}

static int heap_less(const tr_entry *a, const tr_entry *b) { /* a ranks below b */
    return a->count != b->count ? a->count < b->count : a->key > b->key;
}

static int heap_push(trainer *t, int64_t count, uint64_t key) {
    if (grow((void **)&t->heap, &t->capheap, t->nheap + 1, sizeof(*t->heap))) return EASYREC_ERR_NOMEM;
    tr_entry v = {count, key};
    size_t i = t->nheap++;
    while (i > 0 && heap_less(&t->heap[(i - 1) / 2], &v)) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = v;
    return EASYREC_OK;
}

static tr_entry heap_pop(trainer *t) {
    tr_entry top = t->heap[0], v = t->heap[--t->nheap];
    size_t i = 0, n = t->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_less(&t->heap[c], &t->heap[c + 1])) c++;
        if (!heap_less(&v, &t->heap[c])) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = v;
    return top;
}

/* Index of pair (a, b), created with count 0 when new; negative on error. */
static int64_t pair_get(trainer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)a << 32 | (uint32_t)b;
    int32_t *ix = u64map_get(&t->pair_ix, key);
    if (ix) return *ix;
    if (t->npairs >= INT32_MAX) return er_error(EASYREC_ERR_NOMEM, "too many distinct pairs");
    size_t cap = t->cappairs;
    if (grow((void **)&t->pairs, &cap, (size_t)t->npairs + 1, sizeof(*t->pairs))) return EASYREC_ERR_NOMEM;
    t->cappairs = (uint32_t)cap;
    memset(&t->pairs[t->npairs], 0, sizeof(*t->pairs));
    t->pairs[t->npairs].key = key;
    if (er_u64map_put(&t->pair_ix, key, (int32_t)t->npairs)) return EASYREC_ERR_NOMEM;
    return t->npairs++;
}

/* Add delta occurrences of (a, b) in word w (weighted by the word's count). */
static int pair_change(trainer *t, int32_t a, int32_t b, uint32_t w, int delta) {
    int64_t ix = pair_get(t, a, b);
    if (ix < 0) return (int)ix;
    tr_pair *p = &t->pairs[ix];
    p->count += delta * t->wcount[w];
    if (delta <= 0 || p->last_w == w + 1) return EASYREC_OK;
    size_t cap = p->capw;
    if (grow((void **)&p->w, &cap, (size_t)p->nw + 1, sizeof(*p->w))) return EASYREC_ERR_NOMEM;
    p->capw = (uint32_t)cap;
    p->w[p->nw++] = w;
    p->last_w = w + 1;
    if (p->touched == t->iter) return EASYREC_OK;
    p->touched = t->iter;
    if (grow((void **)&t->touched, &t->captouched, t->ntouched + 1, sizeof(*t->touched))) return EASYREC_ERR_NOMEM;
    t->touched[t->ntouched++] = (uint32_t)ix;
    return EASYREC_OK;
}

/* ---- counting words ------------------------------------------------------------------------- */

static int count_piece(trainer *t, const uint8_t *p, size_t n, size_t *wcap) {
    int added;
    int32_t w = er_strmap_intern(&t->words, p, n, 0, &added);
    if (w < 0) return w;
    if (added && grow((void **)&t->wcount, wcap, (size_t)w + 1, sizeof(*t->wcount))) return EASYREC_ERR_NOMEM;
    if (added) t->wcount[w] = 0;
    t->wcount[w]++;
    return EASYREC_OK;
}

static int count_file(trainer *t, const char *path, size_t *wcap) {
    char *data;
    size_t len;
    int rc = er_read_file(path, &data, &len);
    if (rc) return rc;
    const uint8_t *s = (const uint8_t *)data;
    uint8_t *rep = NULL;
    if (!er_utf8_valid(s, len)) { /* replace once, up front */
        size_t rl = er_utf8_replaced_len(s, len);
        if (!(rep = er_mallocarray(rl + 1, 1))) {
            free(data);
            return EASYREC_ERR_NOMEM;
        }
        er_utf8_replace(s, len, rep);
        s = rep;
        len = rl;
    }
    for (size_t i = 0; i < len && !rc;) {
        const uint8_t *nl = memchr(s + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - s) + 1 : len;
        pretok_iter it = {s + i, e - i, 0};
        size_t a, b;
        while (!rc && er_pretok_next(&it, &a, &b)) rc = count_piece(t, s + i + a, b - a, wcap);
        i = e;
    }
    free(rep);
    free(data);
    return rc;
}

/* ---- training --------------------------------------------------------------------------------- */

static int add_token(trainer *t, const char *s, size_t n) {
    char *c = er_mallocarray(n + 1, 1);
    if (!c) return EASYREC_ERR_NOMEM;
    memcpy(c, s, n);
    c[n] = 0;
    t->tok[t->ntok++] = c;
    return EASYREC_OK;
}

/* Ids 0..N_SPECIAL+255 and each word's initial symbols. */
static int init_symbols(trainer *t) {
    static const char *const sp[N_SPECIAL] = {"<s>", "<pad>", "</s>", "<unk>"};
    int32_t byte_id[256];
    int rc;
    for (int i = 0; i < N_SPECIAL; i++)
        if ((rc = add_token(t, sp[i], strlen(sp[i])))) return rc;
    for (uint32_t cp = 0; cp < 324; cp++) { /* alphabet in code point order */
        int b = er_bpe_cp_byte(cp);
        if (b < 0) continue;
        uint8_t u[4];
        byte_id[b] = t->ntok;
        if ((rc = add_token(t, (const char *)u, (size_t)utf8_encode(cp, u)))) return rc;
    }
    size_t total = t->words.alen; /* key bytes + one NUL each: enough for every symbol */
    uint32_t nw = t->words.n;
    t->sym = er_mallocarray(total ? total : 1, sizeof(*t->sym));
    t->wstart = er_mallocarray(nw ? nw : 1, sizeof(*t->wstart));
    t->wlen = er_mallocarray(nw ? nw : 1, sizeof(*t->wlen));
    t->stamp = er_calloc(nw ? nw : 1, sizeof(*t->stamp));
    if (!t->sym || !t->wstart || !t->wlen || !t->stamp) return EASYREC_ERR_NOMEM;
    uint32_t pos = 0;
    for (uint32_t w = 0; w < nw; w++) {
        const uint8_t *k = (const uint8_t *)strmap_key(&t->words, (int32_t)w);
        uint32_t n = strmap_keylen(&t->words, (int32_t)w);
        t->wstart[w] = pos;
        t->wlen[w] = n;
        for (uint32_t i = 0; i < n; i++) t->sym[pos++] = byte_id[k[i]];
        for (uint32_t i = 0; i + 1 < n; i++)
            if ((rc = pair_change(t, t->sym[t->wstart[w] + i], t->sym[t->wstart[w] + i + 1], w, 1))) return rc;
    }
    return EASYREC_OK;
}

/* HF Word::merge: merge (a, b) -> c left to right in word w, reporting pair changes. */
static int merge_in_word(trainer *t, uint32_t w, int32_t a, int32_t b, int32_t c) {
    int32_t *s = t->sym + t->wstart[w];
    uint32_t n = t->wlen[w], i = 0;
    int rc;
    while (i < n) {
        if (s[i] == a && i + 1 < n && s[i + 1] == b) {
            if (i > 0 && ((rc = pair_change(t, s[i - 1], a, w, -1)) || (rc = pair_change(t, s[i - 1], c, w, 1))))
                return rc;
            s[i] = c;
            memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof(*s));
            n--;
            if (i + 1 < n && ((rc = pair_change(t, b, s[i + 1], w, -1)) || (rc = pair_change(t, c, s[i + 1], w, 1))))
                return rc;
        }
        i++;
    }
    t->wlen[w] = n;
    return EASYREC_OK;
}

static int merge_best(trainer *t, tr_pair *p) {
    int32_t a = (int32_t)(p->key >> 32), b = (int32_t)(uint32_t)p->key, c = t->ntok;
    size_t la = strlen(t->tok[a]), lb = strlen(t->tok[b]);
    char buf[512], *cat = la + lb <= sizeof(buf) ? buf : er_mallocarray(la + lb, 1);
    if (!cat) return EASYREC_ERR_NOMEM;
    memcpy(cat, t->tok[a], la);
    memcpy(cat + la, t->tok[b], lb);
    int rc = add_token(t, cat, la + lb);
    if (cat != buf) free(cat);
    if (rc) return rc;
    t->merges[t->nmerges++] = p->key;
    p->done = 1;
    t->iter++;
    t->ntouched = 0;
    uint32_t *wl = p->w, nwl = p->nw; /* p moves when the pair table grows */
    p->w = NULL;
    p->nw = p->capw = 0;
    for (uint32_t k = 0; k < nwl && !rc; k++) {
        uint32_t w = wl[k];
        if (t->stamp[w] == t->iter) continue;
        t->stamp[w] = t->iter;
        rc = merge_in_word(t, w, a, b, c);
    }
    free(wl);
    for (size_t k = 0; k < t->ntouched && !rc; k++) {
        const tr_pair *q = &t->pairs[t->touched[k]];
        if (q->count > 0 && !q->done) rc = heap_push(t, q->count, q->key);
    }
    return rc;
}

static int train_loop(trainer *t, int32_t max_merges, int64_t min_frequency) {
    int rc;
    for (uint32_t i = 0; i < t->npairs; i++)
        if (t->pairs[i].count > 0 && (rc = heap_push(t, t->pairs[i].count, t->pairs[i].key))) return rc;
    t->merges = er_mallocarray(max_merges > 0 ? (size_t)max_merges : 1, sizeof(*t->merges));
    if (!t->merges) return EASYREC_ERR_NOMEM;
    while (t->nmerges < max_merges && t->nheap) {
        tr_entry top = heap_pop(t);
        tr_pair *p = &t->pairs[*u64map_get(&t->pair_ix, top.key)];
        if (p->done) continue;
        if (top.count != p->count) {
            if (p->count > 0 && (rc = heap_push(t, p->count, p->key))) return rc;
            continue;
        }
        if (top.count < 1 || top.count < min_frequency) break;
        if ((rc = merge_best(t, p))) return rc;
    }
    return EASYREC_OK;
}

/* ---- output ----------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} strbuf;

static int sb_put(strbuf *b, const char *s, size_t n) {
    if (grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) return EASYREC_ERR_NOMEM;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return EASYREC_OK;
}

static int sb_json_string(strbuf *b, const char *s) {
    int rc = sb_put(b, "\"", 1);
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            rc = sb_put(b, esc, 6);
        } else {
            rc = sb_put(b, (const char *)&c, 1);
        }
    }
    return rc ? rc : sb_put(b, "\"", 1);
}

static const char tokenizer_config[] =
    "{\n"
    "  \"tokenizer_class\": \"RobertaTokenizer\",\n"
    "  \"add_prefix_space\": false,\n"
    "  \"errors\": \"replace\",\n"
    "  \"model_max_length\": 512,\n"
    "  \"bos_token\": \"<s>\",\n"
    "  \"eos_token\": \"</s>\",\n"
    "  \"cls_token\": \"<s>\",\n"
    "  \"sep_token\": \"</s>\",\n"
    "  \"unk_token\": \"<unk>\",\n"
    "  \"pad_token\": \"<pad>\",\n"
    "  \"mask_token\": {\"__type\": \"AddedToken\", \"content\": \"<mask>\", \"lstrip\": true, \"rstrip\": false, "
    "\"normalized\": false, \"single_word\": false}\n"
    "}\n";

static int write_outputs(const trainer *t, const char *dir) {
    strbuf v = {0}, m = {0};
    char num[32], *path = NULL;
    int rc = sb_put(&v, "{", 1);
    for (int32_t i = 0; i <= t->ntok && !rc; i++) {
        rc = sb_put(&v, i ? ",\n  " : "\n  ", i ? 4 : 3);
        if (!rc) rc = sb_json_string(&v, i < t->ntok ? t->tok[i] : "<mask>");
        int k = snprintf(num, sizeof(num), ": %d", (int)i);
        if (!rc) rc = sb_put(&v, num, (size_t)k);
    }
    if (!rc) rc = sb_put(&v, "\n}\n", 3);
    if (!rc) rc = sb_put(&m, "#version: 0.2\n", 14);
    for (int32_t i = 0; i < t->nmerges && !rc; i++) {
        const char *a = t->tok[t->merges[i] >> 32], *b = t->tok[(uint32_t)t->merges[i]];
        rc = sb_put(&m, a, strlen(a));
        if (!rc) rc = sb_put(&m, " ", 1);
        if (!rc) rc = sb_put(&m, b, strlen(b));
        if (!rc) rc = sb_put(&m, "\n", 1);
    }
    const struct {
        const char *name, *data;
        size_t len;
    } files[] = {{"vocab.json", v.p, v.n}, {"merges.txt", m.p, m.n}, {"tokenizer_config.json", tokenizer_config, sizeof(tokenizer_config) - 1}};
    for (size_t i = 0; i < 3 && !rc; i++) {
        if (!(path = er_path_join(dir, files[i].name))) rc = EASYREC_ERR_NOMEM;
        if (!rc) rc = er_write_file_atomic(path, files[i].data, files[i].len);
        free(path);
    }
    free(v.p);
    free(m.p);
    return rc;
}

static void trainer_free(trainer *t) {
    er_strmap_free(&t->words);
    er_u64map_free(&t->pair_ix);
    for (uint32_t i = 0; i < t->npairs; i++) free(t->pairs[i].w);
    for (int32_t i = 0; i < t->ntok; i++) free(t->tok[i]);
    free(t->pairs);
    free(t->wcount);
    free(t->sym);
    free(t->wstart);
    free(t->wlen);
    free(t->stamp);
    free(t->heap);
    free(t->touched);
    free(t->tok);
    free(t->merges);
}

int er_bpe_train(const char *const *files, int n_files, const bpe_train_opts *o, const char *out_dir,
              bpe_train_stats *stats) {
    if (!files || n_files <= 0 || !o || !out_dir) return er_error(EASYREC_ERR_ARG, "bpe_train: bad arguments");
    int32_t max_merges = o->vocab_size - (N_SPECIAL + 256 + 1);
    if (o->vocab_size < N_SPECIAL + 256 + 1 || o->vocab_size > (1 << 24))
        return er_error(EASYREC_ERR_ARG, "vocab size %d: must be in [%d, 2^24] (4 specials + 256 bytes + <mask>)",
                        o->vocab_size, N_SPECIAL + 256 + 1);
    trainer t;
    memset(&t, 0, sizeof(t));
    size_t wcap = 0;
    int rc = er_strmap_init(&t.words, 1 << 16);
    if (!rc) rc = er_u64map_init(&t.pair_ix, 1 << 16);
    if (!rc && !(t.tok = er_mallocarray((size_t)o->vocab_size, sizeof(*t.tok)))) rc = EASYREC_ERR_NOMEM;
    int64_t pieces = 0;
    for (int i = 0; i < n_files && !rc; i++) rc = count_file(&t, files[i], &wcap);
    for (uint32_t w = 0; !rc && w < t.words.n; w++) pieces += t.wcount[w];
    if (!rc) rc = init_symbols(&t);
    if (!rc) rc = train_loop(&t, max_merges, o->min_frequency > 0 ? o->min_frequency : 1);
    if (!rc) {
        struct stat st;
        if (mkdir(out_dir, 0755) && !(errno == EEXIST && !stat(out_dir, &st) && S_ISDIR(st.st_mode)))
            rc = er_error(EASYREC_ERR_IO, "%s: cannot create directory: %s", out_dir, strerror(errno));
    }
    if (!rc) rc = write_outputs(&t, out_dir);
    if (!rc && stats) {
        stats->pieces = pieces;
        stats->distinct_pieces = t.words.n;
        stats->merges = t.nmerges;
        stats->vocab_size = t.ntok + 1;
    }
    trainer_free(&t);
    return rc;
}
