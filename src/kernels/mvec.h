/* mvec.h — private to src/kernels: glibc >= 2.35 ships vector erff/expf in libmvec
 * (_ZGVbN4v_erff, dispatching to the best ISA at run time); declaring them simd lets the
 * `#pragma omp simd` loops of gelu.c and softmax.c call them 4+ lanes at a time. Their
 * error is a few ulp, the same class as libm's (tests/test_model.c, tests/test_kernels.c).
 * The only place these declarations live. */
#ifndef ER_KERNELS_MVEC_H
#define ER_KERNELS_MVEC_H

#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float erff(float);
__attribute__((simd("notinbranch"))) float expf(float);
#endif

#endif
