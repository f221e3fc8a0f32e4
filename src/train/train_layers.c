/* train_layers.c — forward/backward pairs of the elementwise and normalisation layers used in
 * training, and hash-based dropout. Matmuls go through gemm_mt (kernels/gemm.c); attention
 * lives in train_encoder.c. Each function parallelises over disjoint outputs (rows for
 * activations, columns for parameter gradients) so results do not depend on the thread
 * count. Backward formulas follow torch's (biased variance LayerNorm, exact erf GELU).
 */
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "train/train.h"

/* ---- dropout ---- */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int dropout_keep(const er_dropout *d, uint32_t site, size_t i) {
    uint64_t h = mix64(d->seed ^ mix64(((uint64_t)site << 40) ^ (uint64_t)i ^ 0x9e3779b97f4a7c15ULL));
    return (double)(h >> 11) * 0x1.0p-53 >= d->p;
}

void dropout_apply(const er_dropout *d, uint32_t site, float *x, size_t n) {
    if (!d || d->p <= 0.0f) return;
    float scale = 1.0f / (1.0f - d->p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = dropout_keep(d, site, i) ? x[i] * scale : 0.0f;
}

/* ---- LayerNorm ---- */

void layernorm_forward_train(float *out, float *mean, float *rstd, const float *inp, const float *w,
                             const float *b, int N, int C, float eps, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float s = 0.0f;
        for (int i = 0; i < C; i++) s += x[i];
        float mu = s / C, v = 0.0f;
        for (int i = 0; i < C; i++) v += (x[i] - mu) * (x[i] - mu);
        float r = 1.0f / sqrtf(v / C + eps);
        for (int i = 0; i < C; i++) o[i] = (x[i] - mu) * r * w[i] + b[i];
        mean[n] = mu;
        rstd[n] = r;
    }
}

/* dxhat = dout * w; dinp = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *mean, const float *rstd, const float *w, int N, int C, int accumulate,
                        int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float mu = mean[n], r = rstd[n], m1 = 0.0f, m2 = 0.0f;
        for (int i = 0; i < C; i++) {
            float dxh = dy[i] * w[i];
            m1 += dxh;
            m2 += dxh * (x[i] - mu) * r;
        }
        m1 /= C;
        m2 /= C;
        for (int i = 0; i < C; i++) {
            float xh = (x[i] - mu) * r;
            float g = r * (dy[i] * w[i] - m1 - xh * m2);
            dx[i] = accumulate ? dx[i] + g : g;
        }
    }
    /* parameter gradients: each thread owns a range of columns, rows summed in order */
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int i = 0; i < C; i++) {
        float sw = 0.0f, sb = 0.0f;
        for (int n = 0; n < N; n++) {
            float dy = dout[(size_t)n * C + i];
            sw += dy * (inp[(size_t)n * C + i] - mean[n]) * rstd[n];
            sb += dy;
        }
        dw[i] += sw;
        db[i] += sb;
    }
}

/* ---- GELU: d/dx [x Phi(x)] = Phi(x) + x phi(x) ---- */

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float erff(float); /* libmvec, as in model/kernels.c */
__attribute__((simd("notinbranch"))) float expf(float);
#endif

void gelu_backward(float *dx, const float *x, const float *dout, size_t n) {
    const float inv_sqrt2pi = 0.3989422804014327f;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
        float pdf = inv_sqrt2pi * expf(-0.5f * v * v);
        dx[i] = dout[i] * (cdf + v * pdf);
    }
}

void bias_backward(float *db, const float *dout, int N, int OUT, int threads) {
    /* columns in fixed chunks (thread-count independent), rows streamed contiguously */
    enum { CH = 256 };
    int chunks = (OUT + CH - 1) / CH;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int c = 0; c < chunks; c++) {
        int j0 = c * CH, j1 = j0 + CH < OUT ? j0 + CH : OUT;
        float acc[CH];
        for (int j = j0; j < j1; j++) acc[j - j0] = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OUT;
#pragma omp simd
            for (int j = j0; j < j1; j++) acc[j - j0] += row[j];
        }
        for (int j = j0; j < j1; j++) db[j] += acc[j - j0];
    }
}
