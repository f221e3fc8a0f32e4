/* layernorm.c — LayerNorm over rows (biased variance, two passes, as torch.nn.LayerNorm),
 * optionally fused with the residual add before it, and its backward. Rows are independent
 * (forward) and parameter-gradient columns are owned by one thread each (backward), so any
 * thread count gives the same bits. */
#include <math.h>

#include "kernels/kernels.h"

static void ln_row(float *o, float *sum, float *mean, float *rstd, const float *x, const float *r, const float *w,
                   const float *b, int C, float eps) {
    float *s = sum ? sum : o; /* x + r lands here; out may alias x or r (elementwise) */
    float acc = 0.0f;
    if (r) {
        for (int i = 0; i < C; i++) {
            s[i] = x[i] + r[i];
            acc += s[i];
        }
    } else {
        for (int i = 0; i < C; i++) {
            s[i] = x[i];
            acc += s[i];
        }
    }
    float mu = acc / C, var = 0.0f;
    for (int i = 0; i < C; i++) {
        float d = s[i] - mu;
        var += d * d;
    }
    float rs = 1.0f / sqrtf(var / C + eps);
    for (int i = 0; i < C; i++) o[i] = (s[i] - mu) * rs * w[i] + b[i];
    if (mean) *mean = mu;
    if (rstd) *rstd = rs;
}

void er_layernorm_forward(float *out, float *sum, float *mean, float *rstd, const float *inp, const float *resid,
                          const float *w, const float *b, int N, int C, float eps, int nthreads) {
#pragma omp parallel for if (nthreads > 1) num_threads(nthreads > 1 ? nthreads : 1) schedule(static)
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * C;
        ln_row(out + o, sum ? sum + o : NULL, mean ? mean + n : NULL, rstd ? rstd + n : NULL, inp + o,
               resid ? resid + o : NULL, w, b, C, eps);
    }
}

void er_layernorm_forward_ref(float *out, const float *inp, const float *resid, const float *w, const float *b,
                              int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *r = resid ? resid + (size_t)n * C : NULL;
        double mu = 0, var = 0;
        for (int i = 0; i < C; i++) mu += (double)x[i] + (r ? r[i] : 0.0);
        mu /= C;
        for (int i = 0; i < C; i++) {
            double d = (double)x[i] + (r ? r[i] : 0.0) - mu;
            var += d * d;
        }
        double rs = 1.0 / sqrt(var / C + eps);
        for (int i = 0; i < C; i++)
            out[(size_t)n * C + i] = (float)(((double)x[i] + (r ? r[i] : 0.0) - mu) * rs * w[i] + b[i]);
    }
}

/* dxhat = dout * w; dinp = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
void er_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *w, int N, int C, int accumulate, int threads) {
    int th = threads < 1 ? 1 : threads;
#pragma omp parallel for num_threads(th) schedule(static)
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
#pragma omp parallel for num_threads(th) schedule(static)
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
