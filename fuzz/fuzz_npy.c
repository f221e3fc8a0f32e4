/* fuzz_npy.c — libFuzzer target for er_npy_parse_f32 (src/io/npy.c): header dict parsing,
 * shape arithmetic and data size checks. Seeds: fuzz/seeds/fuzz_npy/.
 */
#include <stdlib.h>

#include "io/tensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *out;
    int ndim;
    int64_t shape[ER_MAX_DIMS];
    if (er_npy_parse_f32(data, size, "fuzz", &out, &ndim, shape) != 0) return 0;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    volatile float sum = 0;
    for (size_t k = 0; k < n; k++) sum += out[k]; /* the whole array is readable */
    free(out);
    return 0;
}
