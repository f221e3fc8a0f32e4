/* kernels.c — the encoder's building blocks over packed rows, each with the shape it
 * takes. GEMMs go through CBLAS (OpenBLAS, single-threaded per caller: easyrec runs its own
 * threads over batches); the elementwise work is fused into as few passes as possible.
 * matmul_forward_ref and gelu_ref are the plain versions the tests compare against.
 * Follows HF BertLayer/RobertaLayer in fp32: y = x W^T + b (nn.Linear layout (OUT, IN)),
 * post-LN with biased variance, exact erf GELU, softmax over unmasked keys only.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "model/model.h"

/* out (N, OUT) = inp (N, IN) @ w^T (w: (OUT, IN)) + bias (OUT) (bias may be NULL) */
void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int IN,
                    int OUT) {
    gemm_nt(N, OUT, IN, inp, IN, w, IN, bias, out, OUT, 0);
}

void matmul_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N,
                        int IN, int OUT) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < IN; i++) acc += (double)inp[(size_t)n * IN + i] * w[(size_t)o * IN + i];
            out[(size_t)n * OUT + o] = (float)acc;
        }
}

/* out (N, C) = LayerNorm(inp + resid) with weight w, bias b (C); resid may be NULL; out may
 * alias inp or resid. Biased variance, two passes, as torch.nn.LayerNorm. */
void layernorm_forward(float *out, const float *inp, const float *resid, const float *w,
                       const float *b, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *r = resid ? resid + (size_t)n * C : NULL;
        float *o = out + (size_t)n * C;
        float sum = 0.0f;
        if (r) {
            for (int i = 0; i < C; i++) {
                o[i] = x[i] + r[i];
                sum += o[i];
            }
        } else {
            for (int i = 0; i < C; i++) {
                o[i] = x[i];
                sum += o[i];
            }
        }
        float mean = sum / C, var = 0.0f;
        for (int i = 0; i < C; i++) {
            float d = o[i] - mean;
            var += d * d;
        }
        float rstd = 1.0f / sqrtf(var / C + eps);
        for (int i = 0; i < C; i++) o[i] = (o[i] - mean) * rstd * w[i] + b[i];
    }
}

float gelu_ref(float x) { return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2)); }

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
/* glibc >= 2.35 ships vector erff/expf in libmvec (_ZGVbN4v_erff, dispatching to the best
 * ISA at run time); declaring them simd lets the loops below call them 4 lanes at a time.
 * Their error is a few ulp, the same class as libm's (checked in tests/test_model.c). */
__attribute__((simd("notinbranch"))) float erff(float);
__attribute__((simd("notinbranch"))) float expf(float);
#endif

/* In-place exact GELU 0.5 x (1 + erf(x / sqrt 2)) over n floats (the erf form, not tanh). */
void gelu_forward(float *x, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

#if defined(__x86_64__) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
__attribute__((simd("notinbranch"))) float expf(float);
#endif

/* Self-attention of ONE sequence of T rows.
 * qkv (T, 3C): per row [q | k | v], head h at columns h*HS.. of each part.
 * out (T, C): per row the heads' P·V concatenated (before the output projection).
 * scores: (T, T) scratch. first_only: compute query row 0 only (out row 0).
 * Per head two small GEMMs (S = Q K^T * scale, O = softmax(S) V) straight on the strided
 * qkv rows. All T keys are real tokens (packed batches carry no padding), which is exactly
 * HF's result with the additive finfo.min mask on padded keys (exp underflows to 0). */
void attention_forward(float *out, const float *qkv, float *scores, int T, int C, int NH,
                       int first_only) {
    int HS = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)HS);
    int rows = first_only ? 1 : T;
    for (int h = 0; h < NH; h++) {
        const float *q = qkv + h * HS, *k = qkv + C + h * HS, *v = qkv + 2 * C + h * HS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, T, HS, scale, q, C3, k, C3, 0.0f, scores,
                    T);
        for (int t = 0; t < rows; t++) {
            float *s = scores + (size_t)t * T;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < T; j++) mx = s[j] > mx ? s[j] : mx;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < T; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j < T; j++) s[j] *= inv;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, HS, T, 1.0f, scores, T, v, C3, 0.0f,
                    out + h * HS, C);
    }
}
