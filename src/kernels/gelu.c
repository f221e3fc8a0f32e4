/* gelu.c — exact GELU 0.5 x (1 + erf(x / sqrt 2)) (the erf form, not tanh) and its
 * derivative Phi(x) + x phi(x). The vector loops split into fixed spans whatever the
 * thread count: which elements take the vector erff and which the scalar remainder depends
 * only on the span, so any thread count gives the same bits. */
#include "kernels/kernels.h"
#include "kernels/mvec.h"

enum { SPAN = 4096 };

float er_gelu_ref(float x) { return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)); }

static void gelu_span(float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

static void gelu_backward_span(float *dx, const float *x, const float *dout, size_t n) {
    const float inv_sqrt2pi = 0.3989422804014327f;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        float pdf = inv_sqrt2pi * expf(-0.5f * v * v);
        dx[i] = dout[i] * (cdf + v * pdf);
    }
}

void er_gelu_forward(float *x, size_t n, int nthreads) {
    size_t spans = (n + SPAN - 1) / SPAN;
#pragma omp parallel for if (nthreads > 1) num_threads(nthreads > 1 ? nthreads : 1) schedule(static)
    for (size_t c = 0; c < spans; c++) {
        size_t i0 = c * SPAN;
        gelu_span(x + i0, n - i0 < SPAN ? n - i0 : SPAN);
    }
}

void er_gelu_backward(float *dx, const float *x, const float *dout, size_t n, int nthreads) {
    size_t spans = (n + SPAN - 1) / SPAN;
#pragma omp parallel for if (nthreads > 1) num_threads(nthreads > 1 ? nthreads : 1) schedule(static)
    for (size_t c = 0; c < spans; c++) {
        size_t i0 = c * SPAN;
        gelu_backward_span(dx + i0, x + i0, dout + i0, n - i0 < SPAN ? n - i0 : SPAN);
    }
}
