/* linear.c — nn.Linear forward/backward over packed rows; every matmul of a Linear goes
 * through er_gemm.c, or through the bf16/int8 GEMMs (gemm_bf16.c, gemm_q8.c) when
 * er_linear_forward gets a packed low-precision weight (its dtype decides). */
#include "core/err.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"

/* out (N, OUT) = inp (N, IN) @ W^T (W: (OUT, IN)) + bias (OUT) */
void er_linear_forward(float *out, const float *inp, er_weight w, const float *bias, int N, int IN, int OUT,
                       int nthreads) {
    switch (w.dtype) {
    case ER_DT_F32:
        if (nthreads <= 0)
            er_gemm(0, 1, N, OUT, IN, inp, IN, (const float *)w.data, IN, bias, out, OUT, 0);
        else
            er_gemm_mt(0, 1, N, OUT, IN, inp, IN, (const float *)w.data, IN, bias, out, OUT, 0, nthreads);
        return;
    case ER_DT_BF16:
    case ER_DT_I8: /* packed low-precision weights (lowp.h); inference only, in the calling thread */
        er_lowp_gemm_w((const er_lowp_mat *)w.data, N, inp, IN, bias, out, OUT);
        return;
    default:
        ER_ASSERT(!"er_linear_forward: no kernel for this weight dtype");
    }
}

void er_linear_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N, int IN,
                           int OUT) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < IN; i++) acc += (double)inp[(size_t)n * IN + i] * w[(size_t)o * IN + i];
            out[(size_t)n * OUT + o] = (float)acc;
        }
}

/* db += colsum(dout); dW (OUT, IN) += dout^T (OUT x N) · inp (N x IN); dinp = dout · W */
void er_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        int N, int IN, int OUT, int accumulate, int nthreads) {
    int th = nthreads < 1 ? 1 : nthreads;
    if (db) er_bias_backward(db, dout, N, OUT, th);
    er_gemm_mt(1, 0, OUT, IN, N, dout, OUT, inp, IN, NULL, dw, IN, 1, th);
    if (dinp) er_gemm_mt(0, 0, N, IN, OUT, dout, OUT, w, IN, NULL, dinp, IN, accumulate, th);
}

void er_bias_backward(float *db, const float *dout, int N, int OUT, int threads) {
    /* columns in fixed chunks (thread-count independent), rows streamed contiguously */
    enum { CH = 256 };
    int chunks = (OUT + CH - 1) / CH;
#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static)
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
