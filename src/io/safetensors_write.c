/* er_safetensors_write.c — write F32 tensors as a .safetensors file (docs/formats.md), atomically.
 * Header: JSON {name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, "__metadata__":
 * {"format": "pt"}}, padded with spaces to a multiple of 8 bytes; tensors in the given order. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "io/tensors.h"

int er_safetensors_write(const char *path, const er_tensor_out *t, int n) {
    json_t *hdr = json_object(), *meta = json_object();
    int rc = EASYREC_OK;
    char *blob = NULL, *js = NULL;
    if (!hdr || !meta) {
        json_decref(meta);
        rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(hdr, "__metadata__", meta);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++) {
            ER_ASSERT(t[i].shape[d] >= 0);
            if (er_mul_size(numel, (size_t)t[i].shape[d], &numel)) {
                json_decref(shape);
                rc = er_error(EASYREC_ERR_NOMEM, "%s: tensor %s too large", path, t[i].name);
                goto out;
            }
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string("F32"));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + numel * 4)));
        json_object_set_new(e, "data_offsets", offs);
        json_object_set_new(hdr, t[i].name, e);
        off += numel * 4;
    }
    js = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    if (!js) {
        rc = er_error(EASYREC_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8, total = 8 + hl + pad + off;
    blob = malloc(total);
    if (!blob) {
        rc = er_error(EASYREC_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, total);
        goto out;
    }
    uint64_t h = hl + pad;
    for (int b = 0; b < 8; b++) blob[b] = (char)(h >> (8 * b)); /* little-endian */
    memcpy(blob + 8, js, hl);
    memset(blob + 8 + hl, ' ', pad);
    char *p = blob + 8 + hl + pad;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        memcpy(p, t[i].data, numel * 4); /* float32 in host order: little-endian on supported hosts */
        p += numel * 4;
    }
    rc = er_write_file_atomic(path, blob, total);
out:
    free(blob);
    free(js);
    json_decref(hdr);
    return rc;
}
