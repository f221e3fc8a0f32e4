/* dropout.c — hash-based dropout: element i of site s is kept when a 64-bit mix of (seed,
 * site, i) falls at or above p, so masks need no storage and do not depend on thread count
 * or evaluation order (the backward recomputes the same mask). */
#include "kernels/kernels.h"

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int er_dropout_keep(const er_dropout *d, uint32_t site, size_t i) {
    uint64_t h = mix64(d->seed ^ mix64(((uint64_t)site << 40) ^ (uint64_t)i ^ 0x9e3779b97f4a7c15ULL));
    return (double)(h >> 11) * 0x1.0p-53 >= d->p;
}

void er_dropout_apply(const er_dropout *d, uint32_t site, float *x, size_t n, int nthreads) {
    if (!d || d->p <= 0.0f) return;
    float scale = 1.0f / (1.0f - d->p);
#pragma omp parallel for if (nthreads > 1) num_threads(nthreads > 1 ? nthreads : 1) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = er_dropout_keep(d, site, i) ? x[i] * scale : 0.0f;
}
