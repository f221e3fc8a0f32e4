/* fuzz_torchbin.c — libFuzzer target for er_torchbin_parse (src/io/torchbin.c).
 *
 * The first input byte picks the mode:
 *   even: the rest is a whole zip archive (exercises libzip handling, entry lookup, sizes);
 *   odd:  the rest is data.pkl, packed here with libzip into an archive that also holds
 *         storages archive/data/0 .. archive/data/7 of 96 bytes each, so mutations reach
 *         the state-dict interpretation (rebuild calls, offsets, strides, storage types)
 *         instead of dying on zip checksums.
 * Every tensor of a set that loads is converted to float so ASan checks its bounds.
 * Seeds: fuzz/seeds/fuzz_torchbin/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <zip.h>

#include "io/tensors.h"

static uint8_t storage[96];

/* data.pkl plus the fixed storages as an in-memory zip; NULL on failure. */
static uint8_t *pack(const uint8_t *pkl, size_t n, size_t *len) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &err);
    if (!src) return NULL;
    zip_source_keep(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &err);
    uint8_t *buf = NULL;
    if (!za) goto out;
    zip_file_add(za, "archive/data.pkl", zip_source_buffer(za, pkl, n, 0), 0);
    for (int k = 0; k < 8; k++) {
        char name[32];
        snprintf(name, sizeof name, "archive/data/%d", k);
        zip_file_add(za, name, zip_source_buffer(za, storage, sizeof storage, 0), 0);
    }
    for (zip_uint64_t i = 0; i < 9; i++) zip_set_file_compression(za, i, ZIP_CM_STORE, 0);
    if (zip_close(za) != 0) {
        zip_discard(za);
        goto out;
    }
    zip_stat_t st;
    if (zip_source_stat(src, &st) == 0 && zip_source_open(src) == 0) {
        buf = malloc(st.size);
        if (buf && zip_source_read(src, buf, st.size) == (zip_int64_t)st.size) *len = st.size;
        else {
            free(buf);
            buf = NULL;
        }
        zip_source_close(src);
    }
out:
    zip_source_free(src);
    zip_error_fini(&err);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    for (size_t i = 0; i < sizeof storage; i++) storage[i] = (uint8_t)(i * 37);
    uint8_t *zipped = NULL;
    const uint8_t *buf = data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        if (!(zipped = pack(data + 1, size - 1, &len))) return 0;
        buf = zipped;
    }
    er_tensorset ts;
    if (er_torchbin_parse(buf, len, "fuzz", &ts) == 0) {
        for (int i = 0; i < ts.n; i++) {
            if (ts.t[i].numel > (1u << 20)) continue; /* stride-0 broadcasts may be huge and valid */
            float *out = malloc((ts.t[i].numel + 1) * sizeof(float));
            if (out) er_tensor_to_f32(&ts.t[i], out);
            free(out);
        }
        er_tensorset_close(&ts);
    }
    free(zipped);
    return 0;
}
