/* tensors.c — what safetensors.c and torchbin.c share: dtypes, the tensor set's storage
 * and name index, and conversion of any (strided) tensor to float32.
 *
 * Conversions follow IEEE 754: half -> float is exact for every bit pattern (subnormals are
 * renormalised, inf/NaN keep their payload); bfloat16 is the high half of a float32, so
 * bf16 -> fp32 is a 16-bit shift (as PyTorch does). Float64 is rounded to nearest float.
 * Reads go through memcpy because safetensors data need not be aligned.
 */
#include "io/tensors.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"

/* ---- dtypes --------------------------------------------------------------------------- */

size_t er_dtype_size(er_dtype dt) {
    static const size_t sizes[] = {[ER_DT_F32] = 4, [ER_DT_F16] = 2, [ER_DT_BF16] = 2,
                                   [ER_DT_F64] = 8, [ER_DT_I64] = 8, [ER_DT_I32] = 4,
                                   [ER_DT_I8] = 1,  [ER_DT_U8] = 1,  [ER_DT_BOOL] = 1};
    ER_ASSERT((unsigned)dt < sizeof sizes / sizeof sizes[0]);
    return sizes[dt];
}

const char *er_dtype_name(er_dtype dt) {
    static const char *names[] = {[ER_DT_F32] = "F32", [ER_DT_F16] = "F16", [ER_DT_BF16] = "BF16",
                                  [ER_DT_F64] = "F64", [ER_DT_I64] = "I64", [ER_DT_I32] = "I32",
                                  [ER_DT_I8] = "I8",   [ER_DT_U8] = "U8",   [ER_DT_BOOL] = "BOOL"};
    return (unsigned)dt < sizeof names / sizeof names[0] ? names[dt] : "?";
}

int er_dtype_is_float(er_dtype dt) {
    return dt == ER_DT_F32 || dt == ER_DT_F16 || dt == ER_DT_BF16 || dt == ER_DT_F64;
}

/* ---- scalar conversion ---------------------------------------------------------------- */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

float er_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

float er_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | man << 13); /* inf, NaN */
    if (exp) return bits_to_f32(sign | (exp + 112) << 23 | man << 13);  /* rebias 15 -> 127 */
    if (!man) return bits_to_f32(sign);                                  /* +-0 */
    /* subnormal man * 2^-24: shift the leading one into the implicit bit */
    uint32_t e = 113;
    while (!(man & 0x400)) {
        man <<= 1;
        e--;
    }
    return bits_to_f32(sign | e << 23 | (man & 0x3ff) << 13);
}

static float load_f32(const uint8_t *p, er_dtype dt) {
    switch (dt) {
    case ER_DT_F32: { float v; memcpy(&v, p, 4); return v; }
    case ER_DT_F16: { uint16_t v; memcpy(&v, p, 2); return er_f16_to_f32(v); }
    case ER_DT_BF16: { uint16_t v; memcpy(&v, p, 2); return er_bf16_to_f32(v); }
    case ER_DT_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case ER_DT_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case ER_DT_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case ER_DT_I8: return (float)(int8_t)p[0];
    case ER_DT_U8: return (float)p[0];
    case ER_DT_BOOL: return p[0] ? 1.0f : 0.0f;
    }
    ER_ASSERT(!"unknown dtype");
    return 0;
}

/* ---- shapes and conversion ------------------------------------------------------------ */

int er_tensor_contiguous(er_tensor *t) {
    ER_ASSERT(t->ndim >= 0 && t->ndim <= ER_MAX_DIMS);
    int64_t stride = 1;
    size_t numel = 1;
    int empty = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        ER_ASSERT(t->shape[d] >= 0);
        t->stride[d] = stride;
        if (t->shape[d] == 0) {
            empty = 1;
            continue;
        }
        if (__builtin_mul_overflow(stride, t->shape[d], &stride)) return -1;
        if (er_mul_size(numel, (size_t)t->shape[d], &numel)) return -1;
    }
    t->numel = empty ? 0 : numel;
    return 0;
}

static int is_contiguous(const er_tensor *t) {
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != want) return 0;
        want *= t->shape[d];
    }
    return 1;
}

void er_tensor_to_f32(const er_tensor *t, float *out) {
    if (t->numel == 0) return;
    size_t es = er_dtype_size(t->dtype);
    const uint8_t *p = t->data;
    if (is_contiguous(t)) {
        if (t->dtype == ER_DT_F32) {
            memcpy(out, p, t->numel * sizeof(float));
        } else if (t->dtype == ER_DT_BF16) {
            for (size_t k = 0; k < t->numel; k++) {
                uint16_t v;
                memcpy(&v, p + 2 * k, 2);
                out[k] = er_bf16_to_f32(v);
            }
        } else {
            for (size_t k = 0; k < t->numel; k++) out[k] = load_f32(p + es * k, t->dtype);
        }
        return;
    }
    /* general strides: walk the index like an odometer; offsets were validated at load */
    int64_t idx[ER_MAX_DIMS] = {0}, off = 0;
    for (size_t k = 0; k < t->numel; k++) {
        out[k] = load_f32(p + (size_t)off * es, t->dtype);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) {
                off += t->stride[d];
                break;
            }
            off -= t->stride[d] * (t->shape[d] - 1);
            idx[d] = 0;
        }
    }
}

/* ---- the set -------------------------------------------------------------------------- */

int er_tensorset_alloc(er_tensorset *ts, int n) {
    memset(ts, 0, sizeof(*ts));
    ts->priv = er_calloc(1, sizeof(*ts->priv));
    ts->t = er_calloc((size_t)n, sizeof(*ts->t));
    if (!ts->priv || !ts->t) {
        free(ts->priv);
        free(ts->t);
        memset(ts, 0, sizeof(*ts));
        return EASYREC_ERR_NOMEM;
    }
    ts->n = n;
    return EASYREC_OK;
}

int er_tensorset_keep(er_tensorset *ts, void *block) {
    er_tensorstore *st = ts->priv;
    if (st->nbufs == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        void **b = er_reallocarray(st->bufs, cap, sizeof(*b));
        if (!b) {
            free(block);
            return EASYREC_ERR_NOMEM;
        }
        st->bufs = b;
        st->cap = cap;
    }
    st->bufs[st->nbufs++] = block;
    return EASYREC_OK;
}

void er_tensorset_close(er_tensorset *ts) {
    if (!ts) return;
    for (int i = 0; ts->t && i < ts->n; i++) free(ts->t[i].name);
    free(ts->t);
    er_tensorstore *st = ts->priv;
    if (st) {
        for (size_t i = 0; i < st->nbufs; i++) free(st->bufs[i]);
        free(st->bufs);
        free(st->order);
        if (st->map) munmap(st->map, st->map_len);
        free(st);
    }
    memset(ts, 0, sizeof(*ts));
}

/* qsort_r (glibc) comparator: indices into the tensor array passed as context. */
static int cmp_by_name(const void *a, const void *b, void *ctx) {
    const er_tensor *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

int er_tensorset_index(er_tensorset *ts, const char *what) {
    er_tensorstore *st = ts->priv;
    st->order = er_mallocarray((size_t)ts->n, sizeof(int));
    if (!st->order) return EASYREC_ERR_NOMEM;
    for (int i = 0; i < ts->n; i++) st->order[i] = i;
    qsort_r(st->order, (size_t)ts->n, sizeof(int), cmp_by_name, ts->t);
    for (int i = 1; i < ts->n; i++)
        if (!strcmp(ts->t[st->order[i - 1]].name, ts->t[st->order[i]].name))
            return er_error(EASYREC_ERR_FORMAT, "%s: duplicate tensor name %s", what, ts->t[st->order[i]].name);
    return EASYREC_OK;
}

const er_tensor *er_tensorset_find(const er_tensorset *ts, const char *name) {
    if (!ts || !ts->priv || !ts->priv->order) return NULL;
    int lo = 0, hi = ts->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        const er_tensor *t = &ts->t[ts->priv->order[mid]];
        int c = strcmp(t->name, name);
        if (c == 0) return t;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

void er_tensorset_release(const er_tensorset *ts, const er_tensor *t) {
    if (!ts->priv || !ts->priv->map || t->numel == 0) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t lo = (uintptr_t)t->data, hi = lo + t->numel * er_dtype_size(t->dtype);
    uintptr_t base = (uintptr_t)ts->priv->map, end = base + ts->priv->map_len;
    if (lo < base || hi > end) return;
    lo = (lo + (uintptr_t)page - 1) & ~((uintptr_t)page - 1); /* whole pages inside the tensor only */
    hi &= ~((uintptr_t)page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
