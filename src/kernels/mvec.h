/* mvec.h — for src/kernels (and cf/loss.c's softmax rows): glibc >= 2.35 ships vector
 * erff/expf in libmvec (_ZGVbN4v_erff, dispatching to the best ISA at run time); declaring
 * them simd lets the `#pragma omp simd` loops of gelu.c and softmax.c call them 4+ lanes at a
 * time. Their error is a few ulp, the same class as libm's (tests/test_model.c,
 * tests/test_kernels.c).
 * The only place these declarations live. */
#ifndef ER_KERNELS_MVEC_H
#define ER_KERNELS_MVEC_H

#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float erff(float);
__attribute__((simd("notinbranch"))) float expf(float);
#endif

/* ER_MVEC_CLONES on a function with such a loop compiles it twice, for AVX-512 and for the
 * build's baseline, and the loader picks one by the CPU (GCC target_clones, an ifunc): on
 * AVX-512 machines the loop calls libmvec's 16-lane variants (_ZGVeN16v_expf) instead of the
 * 4-lane SSE ones: 1.3-1.4 vs 2.2-2.7 ns an element on 50 k-wide softmax rows (quiet machine,
 * softmax.c's exp_shift_sum), no gain on rows of tens (attention keeps the 4-lane loop). Both
 * variants are within a few ulp of libm; which runs depends on the CPU only, never on the
 * thread count. Used for expf only: the
 * 16-lane erff rounds 1 + erf(x) to 0 sooner for x < -5 (GELU off by 2e-7 there, beyond
 * tests/test_model.c's gelu_matches_erf_form), so gelu.c keeps the 4-lane one. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__) &&                     \
    (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
#define ER_MVEC_CLONES __attribute__((target_clones("avx512f", "default")))
#else
#define ER_MVEC_CLONES
#endif

#endif
