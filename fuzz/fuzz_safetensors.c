/* fuzz_safetensors.c — libFuzzer target for er_safetensors_parse (src/io/safetensors.c).
 *
 * Every tensor of a set that parses is looked up by name and converted to float, so ASan
 * catches any offset, shape or size the validation let through wrongly.
 * Seeds: fuzz/seeds/fuzz_safetensors/. Run: FUZZ_SECONDS=60 make fuzz-run.
 */
#include <stdlib.h>

#include "io/tensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    er_tensorset ts;
    if (er_safetensors_parse(data, size, "fuzz", &ts) != 0) return 0;
    for (int i = 0; i < ts.n; i++) {
        const er_tensor *t = er_tensorset_find(&ts, ts.t[i].name);
        if (t != &ts.t[i]) __builtin_trap(); /* names are unique, so the lookup is exact */
        float *out = malloc((t->numel + 1) * sizeof(float));
        if (!out) continue;
        er_tensor_to_f32(t, out);
        free(out);
    }
    er_tensorset_close(&ts);
    return 0;
}
