/* torchbin.c — read a torch.save checkpoint (pytorch_model.bin, PyTorch >= 1.6 zip format)
 * into an er_tensorset.
 *
 * Layout (docs/formats.md): a zip archive (entries normally stored, 64-byte aligned) whose
 * single top folder is named after the file ("archive/", "pytorch_model/", ...):
 *   <prefix>data.pkl     pickle (protocol 2) of the state dict
 *   <prefix>data/<key>   raw little-endian bytes of storage <key>
 *   <prefix>byteorder    "little" or "big" (torch >= 2.1; absent means little)
 *   <prefix>version      format version (ignored)
 * The state dict is a dict or collections.OrderedDict (REDUCE + SETITEMS; its _metadata
 * arrives by BUILD and is ignored) of name -> tensor, each tensor a call of
 *   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 *                                   backward_hooks[, metadata])
 * (or _rebuild_tensor_v3 with a trailing dtype, possibly wrapped by _rebuild_parameter,
 * _rebuild_parameter_with_state or _rebuild_from_type_v2), where storage is a persistent id
 * ('storage', torch.FloatStorage | torch.float32 | ..., key, location, numel).
 *
 * Everything is validated before a tensor is returned: the storage type, the storage entry
 * holding exactly numel elements, non-negative sizes and strides, and storage_offset plus
 * the furthest element reachable through (size, stride) inside the storage, all with
 * overflow-checked arithmetic. Tensors sharing a storage (views) share one copy of it.
 * Values of the dict that are not tensors (ints, strings, ...) are skipped.
 *
 * Not supported: the legacy pre-1.6 format (a bare pickle stream; rejected with a hint),
 * big-endian archives, quantized/sparse/complex tensors, compression other than stored or
 * deflate. Storages are copied out of the archive (zip entries need not be aligned), so
 * peak memory is the size of the weights once, not twice: the file is mmap'd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "core/err.h"
#include "io/pickle.h"
#include "io/tensors.h"

#define TB_MAX_DEPTH 4 /* nested rebuild wrappers (_rebuild_parameter(_rebuild_tensor_v2(...))) */

/* One tensor as described by the pickle, before its storage is loaded. */
typedef struct {
    const char *name, *key; /* point into the pickle */
    er_dtype sdt;           /* storage element type (U8 for an untyped storage) */
    int64_t snumel;         /* storage elements, from the persistent id */
    er_dtype dt;            /* tensor element type */
    int64_t offset;         /* storage_offset, in tensor elements */
    int ndim;
    int64_t size[ER_MAX_DIMS], stride[ER_MAX_DIMS];
} tb_pending;

typedef struct {
    const char *what;
    zip_t *za;
    const char *prefix; /* "archive/" (owned) */
    tb_pending *pend;
    size_t npend;
} tb_ctx;

/* ---- zip access ----------------------------------------------------------------------- */

/* Read a whole entry into a malloc'd buffer. Declared sizes are checked against the
 * compressed size (store: equal; deflate: at most its 1032:1 ratio) before allocating. */
static int tb_read_entry(tb_ctx *c, const char *name, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    zip_int64_t idx = zip_name_locate(c->za, name, 0);
    if (idx < 0) return er_error(EASYREC_ERR_FORMAT, "%s: missing archive entry %s", c->what, name);
    zip_stat_t st;
    zip_stat_init(&st);
    zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if (zip_stat_index(c->za, (zip_uint64_t)idx, 0, &st) != 0 || (st.valid & need) != need)
        return er_error(EASYREC_ERR_FORMAT, "%s: %s: cannot stat entry", c->what, name);
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: %s: compression method %d not supported", c->what, name,
                        (int)st.comp_method);
    if (st.comp_method == ZIP_CM_STORE ? st.size != st.comp_size : st.size / 1032 > st.comp_size + 1)
        return er_error(EASYREC_ERR_FORMAT, "%s: %s: declared size %llu inconsistent with compressed size %llu",
                        c->what, name, (unsigned long long)st.size, (unsigned long long)st.comp_size);
    if (st.size >= SIZE_MAX) return er_error(EASYREC_ERR_NOMEM, "%s: %s: entry too large", c->what, name);
    uint8_t *buf = er_mallocarray((size_t)st.size + 1, 1);
    if (!buf) return EASYREC_ERR_NOMEM;
    zip_file_t *f = zip_fopen_index(c->za, (zip_uint64_t)idx, 0);
    if (!f) {
        free(buf);
        return er_error(EASYREC_ERR_FORMAT, "%s: %s: %s", c->what, name, zip_strerror(c->za));
    }
    size_t got = 0;
    zip_int64_t r = 1;
    while (got < st.size && (r = zip_fread(f, buf + got, st.size - got)) > 0) got += (size_t)r;
    uint8_t extra;
    if (r > 0) r = zip_fread(f, &extra, 1); /* reaching the end makes libzip check the CRC */
    int rc = EASYREC_OK;
    if (r < 0) rc = er_error(EASYREC_ERR_FORMAT, "%s: %s: %s", c->what, name, zip_file_strerror(f));
    else if (got != st.size || r > 0)
        rc = er_error(EASYREC_ERR_FORMAT, "%s: %s: entry size differs from the %llu bytes declared", c->what, name,
                      (unsigned long long)st.size);
    zip_fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[got] = 0;
    *out = buf;
    *len = got;
    return EASYREC_OK;
}

/* Find "<prefix>data.pkl" where prefix is "" or one folder ("archive/"). */
static int tb_find_prefix(tb_ctx *c, char **prefix) {
    *prefix = NULL;
    zip_int64_t n = zip_get_num_entries(c->za, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(c->za, (zip_uint64_t)i, 0);
        size_t len = name ? strlen(name) : 0;
        if (len < 8 || strcmp(name + len - 8, "data.pkl")) continue;
        const char *slash = memchr(name, '/', len - 8);
        if (len > 8 && (name[len - 9] != '/' || slash != name + len - 9)) continue;
        if (*prefix) {
            free(*prefix);
            *prefix = NULL;
            return er_error(EASYREC_ERR_FORMAT, "%s: more than one data.pkl in the archive", c->what);
        }
        if (!(*prefix = er_mallocarray(len - 7, 1))) return EASYREC_ERR_NOMEM;
        memcpy(*prefix, name, len - 8);
        (*prefix)[len - 8] = 0;
    }
    if (!*prefix) return er_error(EASYREC_ERR_FORMAT, "%s: no data.pkl in the archive (not a torch.save checkpoint)", c->what);
    return EASYREC_OK;
}

static char *tb_path(const char *a, const char *b, const char *c) {
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *p = er_mallocarray(la + lb + lc + 1, 1);
    if (p) {
        memcpy(p, a, la);
        memcpy(p + la, b, lb);
        memcpy(p + la + lb, c, lc + 1);
    }
    return p;
}

static int tb_check_byteorder(tb_ctx *c) {
    char *path = tb_path(c->prefix, "byteorder", "");
    if (!path) return EASYREC_ERR_NOMEM;
    int rc = EASYREC_OK;
    if (zip_name_locate(c->za, path, 0) >= 0) {
        uint8_t *b;
        size_t n;
        if (!(rc = tb_read_entry(c, path, &b, &n))) {
            while (n && (b[n - 1] == '\n' || b[n - 1] == ' ')) n--;
            if (!(n == 6 && !memcmp(b, "little", 6)))
                rc = er_error(EASYREC_ERR_UNSUPPORTED, "%s: byteorder \"%.*s\": only little-endian checkpoints are supported",
                              c->what, (int)(n < 16 ? n : 16), (const char *)b);
            free(b);
        }
    }
    free(path);
    return rc;
}

/* ---- the pickle: dtypes and tensor records -------------------------------------------- */

/* Element type of a storage class (torch.FloatStorage) or a dtype (torch.float32). */
static int tb_dtype(const er_pobj *g, er_dtype *dt) {
    static const struct {
        const char *name;
        er_dtype dt;
    } map[] = {{"torch.FloatStorage", ER_DT_F32},   {"torch.float32", ER_DT_F32}, {"torch.float", ER_DT_F32},
               {"torch.HalfStorage", ER_DT_F16},    {"torch.float16", ER_DT_F16}, {"torch.half", ER_DT_F16},
               {"torch.BFloat16Storage", ER_DT_BF16}, {"torch.bfloat16", ER_DT_BF16},
               {"torch.DoubleStorage", ER_DT_F64},  {"torch.float64", ER_DT_F64}, {"torch.double", ER_DT_F64},
               {"torch.LongStorage", ER_DT_I64},    {"torch.int64", ER_DT_I64},   {"torch.long", ER_DT_I64},
               {"torch.IntStorage", ER_DT_I32},     {"torch.int32", ER_DT_I32},   {"torch.int", ER_DT_I32},
               {"torch.CharStorage", ER_DT_I8},     {"torch.int8", ER_DT_I8},
               {"torch.ByteStorage", ER_DT_U8},     {"torch.uint8", ER_DT_U8},    {"torch.UntypedStorage", ER_DT_U8},
               {"torch.BoolStorage", ER_DT_BOOL},   {"torch.bool", ER_DT_BOOL}};
    if (!g || g->type != ER_P_GLOBAL) return -1;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(g->s, map[i].name)) {
            *dt = map[i].dt;
            return 0;
        }
    return -1;
}

/* A TUPLE of non-negative INTs into v[0..ER_MAX_DIMS); returns its length or -1. */
static int tb_int_tuple(const er_pobj *o, int64_t *v) {
    if (!o || o->type != ER_P_TUPLE || o->n > ER_MAX_DIMS) return -1;
    for (size_t i = 0; i < o->n; i++) {
        if (o->items[i]->type != ER_P_INT || o->items[i]->i < 0) return -1;
        v[i] = o->items[i]->i;
    }
    return (int)o->n;
}

/* _rebuild_tensor_v2/_v3 arguments into p (v3: dtype_at = 6). */
static int tb_tensor_args(tb_ctx *c, const char *name, const er_pobj *args, int dtype_at, tb_pending *p) {
    const er_pobj *pid = er_pickle_item(args, 0), *off = er_pickle_item(args, 1);
    const er_pobj *t = pid && pid->type == ER_P_PERSID ? pid->items[0] : NULL;
    const er_pobj *kind = er_pickle_item(t, 0), *stype = er_pickle_item(t, 1), *key = er_pickle_item(t, 2);
    const er_pobj *numel = er_pickle_item(t, 4);
    if (!t || t->type != ER_P_TUPLE || !kind || kind->type != ER_P_STR || strcmp(kind->s, "storage") || !key ||
        key->type != ER_P_STR || !numel || numel->type != ER_P_INT || numel->i < 0)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: storage is not ('storage', type, key, location, numel)",
                        c->what, name);
    if (tb_dtype(stype, &p->sdt))
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: tensor %s: unsupported storage type %s", c->what, name,
                        stype && stype->type == ER_P_GLOBAL ? stype->s : er_pickle_type_name(stype));
    p->dt = p->sdt;
    if (dtype_at && tb_dtype(er_pickle_item(args, (size_t)dtype_at), &p->dt))
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: tensor %s: unsupported dtype", c->what, name);
    if (!off || off->type != ER_P_INT || off->i < 0)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: bad storage_offset", c->what, name);
    int nd = tb_int_tuple(er_pickle_item(args, 2), p->size);
    int ns = tb_int_tuple(er_pickle_item(args, 3), p->stride);
    if (nd < 0 || ns != nd)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: size/stride are not matching tuples of at most %d "
                        "non-negative ints", c->what, name, ER_MAX_DIMS);
    p->name = name;
    p->key = key->s;
    p->snumel = numel->i;
    p->offset = off->i;
    p->ndim = nd;
    return EASYREC_OK;
}

/* Interpret fn(*args) as a tensor. Returns 1 if the value is not a tensor at all. */
static int tb_rebuild(tb_ctx *c, const char *name, const char *fn, const er_pobj *args, tb_pending *p, int depth) {
    if (!fn || strncmp(fn, "torch.", 6)) return 1;
    if (depth > TB_MAX_DEPTH) return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: wrappers nested too deep", c->what, name);
    if (!strcmp(fn, "torch._utils._rebuild_tensor_v2")) return tb_tensor_args(c, name, args, 0, p);
    if (!strcmp(fn, "torch._utils._rebuild_tensor_v3")) return tb_tensor_args(c, name, args, 6, p);
    const er_pobj *inner = er_pickle_item(args, 0);
    if (!strcmp(fn, "torch._utils._rebuild_parameter") || !strcmp(fn, "torch._utils._rebuild_parameter_with_state")) {
        int rc = inner ? tb_rebuild(c, name, er_pickle_call_name(inner), inner->args, p, depth + 1) : 1;
        return rc == 1 ? er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: parameter without data", c->what, name) : rc;
    }
    if (!strcmp(fn, "torch._utils._rebuild_from_type_v2")) { /* (func, new_type, args, state) */
        const er_pobj *a = er_pickle_item(args, 2);
        int rc = inner && inner->type == ER_P_GLOBAL && a && a->type == ER_P_TUPLE
                     ? tb_rebuild(c, name, inner->s, a, p, depth + 1) : 1;
        return rc == 1 ? er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: bad _rebuild_from_type_v2", c->what, name) : rc;
    }
    return er_error(EASYREC_ERR_UNSUPPORTED, "%s: tensor %s: %s is not supported", c->what, name, fn);
}

/* Collect the tensors of the state dict into c->pend. */
static int tb_collect(tb_ctx *c, const er_pobj *root) {
    const er_pobj *d = root;
    const char *fn = er_pickle_call_name(root);
    if (fn && !strcmp(fn, "collections.OrderedDict"))
        d = root->dict;
    else if (root->type != ER_P_DICT)
        return er_error(EASYREC_ERR_FORMAT, "%s: data.pkl holds a %s, not a state dict", c->what, er_pickle_type_name(root));
    size_t n = d ? d->n / 2 : 0;
    c->pend = er_calloc(n, sizeof(*c->pend));
    if (!c->pend) return EASYREC_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const er_pobj *k = d->items[2 * i], *v = d->items[2 * i + 1];
        if (k->type != ER_P_STR || strlen(k->s) != k->len)
            return er_error(EASYREC_ERR_FORMAT, "%s: state dict key %zu is not a string", c->what, i);
        int rc = v->type == ER_P_CALL ? tb_rebuild(c, k->s, er_pickle_call_name(v), v->args, &c->pend[c->npend], 0) : 1;
        if (rc < 0) return rc;
        if (rc == 0) c->npend++;
    }
    return EASYREC_OK;
}

/* ---- storages ------------------------------------------------------------------------- */

/* Check p against its storage of nbytes at base and fill t. */
static int tb_place(tb_ctx *c, const tb_pending *p, const uint8_t *base, size_t nbytes, er_tensor *t) {
    size_t es = er_dtype_size(p->dt), last = (size_t)p->offset, end;
    t->dtype = p->dt;
    t->ndim = p->ndim;
    memcpy(t->shape, p->size, sizeof(t->shape));
    memcpy(t->stride, p->stride, sizeof(t->stride));
    if (er_tensor_contiguous(t)) /* numel; the real strides are restored below */
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: shape product overflows", c->what, p->name);
    memcpy(t->stride, p->stride, sizeof(t->stride));
    int ovf = 0;
    if (t->numel)
        for (int d = 0; d < p->ndim; d++) {
            size_t reach;
            ovf |= er_mul_size((size_t)(p->size[d] - 1), (size_t)p->stride[d], &reach);
            ovf |= er_add_size(last, reach, &last);
        }
    /* bytes needed: (last + 1) elements if non-empty, else just the offset */
    ovf |= er_add_size(last, t->numel ? 1 : 0, &end) | er_mul_size(end, es, &end);
    if (ovf || end > nbytes)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: offset %lld with its sizes and strides reaches past "
                        "the %zu-byte storage %s", c->what, p->name, (long long)p->offset, nbytes, p->key);
    t->data = base + (size_t)p->offset * es;
    return (t->name = er_strdup(p->name)) ? EASYREC_OK : EASYREC_ERR_NOMEM;
}

static int tb_cmp_key(const void *a, const void *b, void *ctx) {
    const tb_pending *p = ctx;
    return strcmp(p[*(const size_t *)a].key, p[*(const size_t *)b].key);
}

/* Load each distinct storage once (tensors sorted by key) and place its tensors. */
static int tb_load(tb_ctx *c, er_tensorset *ts) {
    size_t *ord = er_mallocarray(c->npend, sizeof(*ord));
    if (!ord) return EASYREC_ERR_NOMEM;
    for (size_t i = 0; i < c->npend; i++) ord[i] = i;
    qsort_r(ord, c->npend, sizeof(*ord), tb_cmp_key, c->pend);
    int rc = EASYREC_OK;
    for (size_t i = 0, j; i < c->npend && !rc; i = j) {
        const tb_pending *p = &c->pend[ord[i]];
        for (j = i + 1; j < c->npend && !strcmp(c->pend[ord[j]].key, p->key); j++)
            if (c->pend[ord[j]].sdt != p->sdt || c->pend[ord[j]].snumel != p->snumel)
                rc = er_error(EASYREC_ERR_FORMAT, "%s: storage %s is described twice differently", c->what, p->key);
        size_t want, len = 0;
        uint8_t *buf = NULL;
        char *path = rc ? NULL : tb_path(c->prefix, "data/", p->key);
        if (!rc && !path) rc = EASYREC_ERR_NOMEM;
        if (!rc && er_mul_size((size_t)p->snumel, er_dtype_size(p->sdt), &want))
            rc = er_error(EASYREC_ERR_FORMAT, "%s: storage %s: numel %lld overflows", c->what, p->key, (long long)p->snumel);
        if (!rc && !(rc = tb_read_entry(c, path, &buf, &len)) && !(rc = er_tensorset_keep(ts, buf)) && len != want)
            rc = er_error(EASYREC_ERR_FORMAT, "%s: storage %s holds %zu bytes, but its numel %lld of %s needs %zu",
                          c->what, p->key, len, (long long)p->snumel, er_dtype_name(p->sdt), want);
        free(path);
        for (size_t k = i; k < j && !rc; k++) rc = tb_place(c, &c->pend[ord[k]], buf, len, &ts->t[ord[k]]);
    }
    free(ord);
    return rc;
}

/* ---- entry points --------------------------------------------------------------------- */

static int tb_run(tb_ctx *c, er_tensorset *ts) {
    char *prefix = NULL;
    uint8_t *pkl = NULL;
    size_t pkl_len;
    er_pickle *pk = NULL;
    er_pobj *root;
    int rc = tb_find_prefix(c, &prefix);
    c->prefix = prefix;
    if (rc || (rc = tb_check_byteorder(c))) goto out;
    char *path = tb_path(prefix, "data.pkl", "");
    if (!path) {
        rc = EASYREC_ERR_NOMEM;
        goto out;
    }
    rc = tb_read_entry(c, path, &pkl, &pkl_len);
    free(path);
    if (rc || (rc = er_pickle_load(pkl, pkl_len, c->what, &pk, &root))) goto out;
    if ((rc = tb_collect(c, root))) goto out;
    if ((rc = er_tensorset_alloc(ts, (int)c->npend))) goto out;
    if ((rc = tb_load(c, ts)) || (rc = er_tensorset_index(ts, c->what))) er_tensorset_close(ts);
out:
    er_pickle_free(pk);
    free(pkl);
    free(c->pend);
    free(prefix);
    return rc;
}

int er_torchbin_parse(const uint8_t *buf, size_t len, const char *what, er_tensorset *ts) {
    memset(ts, 0, sizeof(*ts));
    if (len >= 4 && !memcmp(buf, "\x80\x02\x8a\x0a", 4))
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: legacy torch.save format (pre-1.6) not supported; re-save "
                        "with torch>=1.6", what);
    if (len < 4 || memcmp(buf, "PK\x03\x04", 4))
        return er_error(EASYREC_ERR_FORMAT, "%s: not a zip archive (PyTorch checkpoint)", what);
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &zerr);
    zip_t *za = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr) : NULL;
    if (!za) {
        int rc = er_error(EASYREC_ERR_FORMAT, "%s: zip: %s", what, zip_error_strerror(&zerr));
        zip_source_free(src);
        zip_error_fini(&zerr);
        return rc;
    }
    zip_error_fini(&zerr);
    tb_ctx c = {.what = what, .za = za};
    int rc = tb_run(&c, ts);
    zip_discard(za);
    return rc;
}

int er_torchbin_open(const char *path, er_tensorset *ts) {
    memset(ts, 0, sizeof(*ts));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4) {
        close(fd);
        return er_error(EASYREC_ERR_FORMAT, "%s: not a PyTorch checkpoint (too short or not a file)", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return er_error(EASYREC_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    int rc = er_torchbin_parse(map, len, path, ts);
    munmap(map, len);
    return rc;
}
