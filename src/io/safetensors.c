/* safetensors.c — read model.safetensors (huggingface/safetensors format) into an
 * er_tensorset without copying tensor data.
 *
 * Layout (docs/formats.md): u64 little-endian N, then N bytes of a UTF-8 JSON object
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {str: str}} (optional; ignored), then the data region: each tensor is
 * row-major little-endian bytes at [begin, end) relative to the start of the data region.
 *
 * Validated: N against the file size; the header is a JSON object without duplicate keys;
 * every dtype known (else EASYREC_ERR_UNSUPPORTED naming dtype and tensor), every dim a
 * non-negative integer with an overflow-checked product, begin <= end <= data length and
 * end - begin == numel * dtype size. Not enforced (the reference reader does): tensors
 * covering the data region without gaps or overlaps — both are harmless for reading.
 * Only little-endian hosts are supported (as everywhere in easyrec).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "io/tensors.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */

static const struct {
    const char *name;
    er_dtype dt;
} st_dtypes[] = {{"F32", ER_DT_F32}, {"F16", ER_DT_F16}, {"BF16", ER_DT_BF16}, {"F64", ER_DT_F64},
                 {"I64", ER_DT_I64}, {"I32", ER_DT_I32}, {"I8", ER_DT_I8},     {"U8", ER_DT_U8},
                 {"BOOL", ER_DT_BOOL}};

/* Fill t from one header entry: dtype, shape, data_offsets within data[0..dlen). */
static int st_entry(const char *what, const char *name, json_t *e, const uint8_t *data, size_t dlen,
                    er_tensor *t) {
    if (!json_is_object(e)) return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: header entry is not an object", what, name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape");
    json_t *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd)) return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: missing dtype", what, name);
    const char *ds = json_string_value(jd);
    size_t k = 0, nd = sizeof st_dtypes / sizeof st_dtypes[0];
    while (k < nd && strcmp(st_dtypes[k].name, ds)) k++;
    if (k == nd) return er_error(EASYREC_ERR_UNSUPPORTED, "%s: tensor %s: unsupported dtype %s", what, name, ds);
    t->dtype = st_dtypes[k].dt;

    if (!json_is_array(js)) return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: missing shape", what, name);
    if (json_array_size(js) > ER_MAX_DIMS)
        return er_error(EASYREC_ERR_UNSUPPORTED, "%s: tensor %s: %zu dims (at most %d supported)", what, name,
                        json_array_size(js), ER_MAX_DIMS);
    t->ndim = (int)json_array_size(js);
    for (int d = 0; d < t->ndim; d++) {
        json_t *v = json_array_get(js, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: dim %d is not a non-negative integer", what, name, d);
        t->shape[d] = json_integer_value(v);
    }
    size_t nbytes;
    if (er_tensor_contiguous(t) || er_mul_size(t->numel, er_dtype_size(t->dtype), &nbytes))
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: shape product overflows", what, name);

    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: data_offsets is not [begin, end]", what, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)), e2 = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e2 < b)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: bad data_offsets [%lld, %lld]", what, name,
                        (long long)b, (long long)e2);
    if ((unsigned long long)e2 > dlen)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: data_offsets end %lld beyond the %zu data bytes", what,
                        name, (long long)e2, dlen);
    if ((unsigned long long)(e2 - b) != nbytes)
        return er_error(EASYREC_ERR_FORMAT, "%s: tensor %s: %lld data bytes, but shape and dtype %s need %zu",
                        what, name, (long long)(e2 - b), ds, nbytes);
    t->data = data + b;
    return EASYREC_OK;
}

static int st_fill(const char *what, json_t *hdr, const uint8_t *data, size_t dlen, er_tensorset *ts) {
    size_t n = json_object_size(hdr);
    if (json_object_get(hdr, "__metadata__")) n--;
    if (n > INT32_MAX) return er_error(EASYREC_ERR_FORMAT, "%s: too many tensors", what);
    int rc = er_tensorset_alloc(ts, (int)n);
    if (rc) return rc;
    int i = 0;
    const char *key;
    json_t *e;
    json_object_foreach(hdr, key, e) {
        if (!strcmp(key, "__metadata__")) continue;
        er_tensor *t = &ts->t[i++];
        if (!(t->name = er_strdup(key))) return EASYREC_ERR_NOMEM;
        if ((rc = st_entry(what, key, e, data, dlen, t))) return rc;
    }
    ER_ASSERT(i == ts->n);
    return er_tensorset_index(ts, what);
}

int er_safetensors_parse(const uint8_t *buf, size_t len, const char *what, er_tensorset *ts) {
    memset(ts, 0, sizeof(*ts));
    if (len < 8) return er_error(EASYREC_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors header", what, len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > len - 8)
        return er_error(EASYREC_ERR_FORMAT, "%s: header length %llu beyond file size %zu", what,
                        (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER)
        return er_error(EASYREC_ERR_FORMAT, "%s: header length %llu over the %u-byte limit", what,
                        (unsigned long long)hlen, ST_MAX_HEADER);
    json_error_t jerr;
    json_t *hdr = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!hdr) return er_error(EASYREC_ERR_FORMAT, "%s: header JSON: %s (byte %d)", what, jerr.text, jerr.position);
    int rc;
    if (!json_is_object(hdr)) {
        rc = er_error(EASYREC_ERR_FORMAT, "%s: header is not a JSON object", what);
    } else {
        rc = st_fill(what, hdr, buf + 8 + hlen, len - 8 - (size_t)hlen, ts);
        if (rc) er_tensorset_close(ts);
    }
    json_decref(hdr);
    return rc;
}

int er_safetensors_open(const char *path, er_tensorset *ts) {
    memset(ts, 0, sizeof(*ts));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = er_error(EASYREC_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 8) {
        close(fd);
        return er_error(EASYREC_ERR_FORMAT, "%s: not a safetensors file (%lld bytes)", path, (long long)st.st_size);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return er_error(EASYREC_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    int rc = er_safetensors_parse(map, len, path, ts);
    if (rc) {
        munmap(map, len);
        return rc;
    }
    ts->priv->map = map;
    ts->priv->map_len = len;
    return EASYREC_OK;
}
