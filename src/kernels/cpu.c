/* cpu.c — instruction-set level detection for the low-precision kernels (cpu.h).
 *
 * Detected once behind pthread_once; the result is never changed afterwards, so every
 * thread reads the same value without locks. Forcing a lower level is the caller's
 * explicit choice (er_isa_clamp), never a change of this value.
 */
#include <pthread.h>
#include <string.h>

#include "core/err.h"
#include "kernels/cpu.h"

static const char *const isa_names[ER_ISA_COUNT] = {"scalar", "avx2", "avx512", "avx512vnni", "avx512bf16"};

static pthread_once_t isa_once = PTHREAD_ONCE_INIT;
static er_isa isa_detected = ER_ISA_SCALAR;

static void detect(void) {
    er_isa v = ER_ISA_SCALAR;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v = ER_ISA_AVX2;
    if (v == ER_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        v = ER_ISA_AVX512;
    if (v == ER_ISA_AVX512 && __builtin_cpu_supports("avx512vnni")) v = ER_ISA_AVX512VNNI;
    if (v == ER_ISA_AVX512VNNI && __builtin_cpu_supports("avx512bf16")) v = ER_ISA_AVX512BF16;
#endif
    isa_detected = v;
}

er_isa er_cpu_isa(void) {
    pthread_once(&isa_once, detect);
    return isa_detected;
}

er_isa er_isa_clamp(er_isa want) {
    er_isa have = er_cpu_isa();
    if ((int)want < 0) want = ER_ISA_SCALAR;
    return want < have ? want : have;
}

const char *er_isa_name(er_isa isa) {
    return (int)isa >= 0 && isa < ER_ISA_COUNT ? isa_names[isa] : "unknown";
}

int er_isa_parse(const char *name, er_isa *out) {
    for (int i = 0; i < ER_ISA_COUNT; i++)
        if (name && !strcmp(name, isa_names[i])) {
            *out = (er_isa)i;
            return EASYREC_OK;
        }
    return er_error(EASYREC_ERR_ARG, "unknown instruction set '%s' (expected avx512bf16, avx512vnni, avx512, avx2 or scalar)",
                    name ? name : "");
}
