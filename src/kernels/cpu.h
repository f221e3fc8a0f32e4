/* cpu.h — which instruction-set level the low-precision kernels run at.
 *
 * Levels are ordered: each includes everything below it. The CPU's level is detected once
 * (cpuid via __builtin_cpu_supports, behind pthread_once) into a read-only value; nothing
 * else here has state. A caller that wants a lower level (EASYREC_ISA=... in the CLI, tests)
 * passes it explicitly: er_isa_clamp(want) never returns more than the CPU has.
 */
#ifndef ER_KERNELS_CPU_H
#define ER_KERNELS_CPU_H

typedef enum {
    ER_ISA_SCALAR = 0,     /* plain C */
    ER_ISA_AVX2 = 1,       /* AVX2 + FMA */
    ER_ISA_AVX512 = 2,     /* AVX-512 F + BW */
    ER_ISA_AVX512VNNI = 3, /* + VNNI (vpdpbusd: int8 dot products) */
    ER_ISA_AVX512BF16 = 4, /* + BF16 (vdpbf16ps: bf16 dot products) */
    ER_ISA_COUNT = 5,
} er_isa;

/* Best level of this CPU (and of what this build can emit); detected on the first call. */
er_isa er_cpu_isa(void);
/* min(want, er_cpu_isa()). */
er_isa er_isa_clamp(er_isa want);
/* "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16" */
const char *er_isa_name(er_isa isa);
/* Name -> level; EASYREC_OK, or EASYREC_ERR_ARG (message lists the names). */
int er_isa_parse(const char *name, er_isa *out);

#endif
