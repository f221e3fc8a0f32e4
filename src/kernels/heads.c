/* heads.c — the two heads on top of the encoder, forward and backward:
 * EasyRec's mlp.dense + tanh on first-token states, and RoBERTa's LM head
 * dense -> GELU -> LayerNorm -> decoder (+ bias). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kernels/kernels.h"

void er_easyrec_head_forward(float *out, const float *h, er_weight w, const float *b, int B, int C, int nthreads) {
    er_linear_forward(out, h, w, b, B, C, C, nthreads);
    for (size_t i = 0; i < (size_t)B * C; i++) out[i] = tanhf(out[i]);
}

void er_easyrec_head_forward_ref(float *out, const float *h, const float *w, const float *b, int B, int C) {
    er_linear_forward_ref(out, h, w, b, B, C, C);
    for (size_t i = 0; i < (size_t)B * C; i++) out[i] = (float)tanh((double)out[i]);
}

void er_easyrec_head_backward(float *dh, float *dw, float *db, float *dout, const float *out, const float *h,
                              const float *w, int B, int C, int nthreads) {
    for (size_t i = 0; i < (size_t)B * C; i++) dout[i] *= 1.0f - out[i] * out[i];
    er_linear_backward(dh, dw, db, dout, h, w, B, C, C, 0, nthreads);
}

void er_lm_head_forward(const er_lm_head *h, const float *hid, int R, float *zpre, float *u, float *mean, float *rstd,
                        float *v, float *logits, int nthreads) {
    size_t RC = (size_t)R * h->C;
    float *g = v; /* GELU input/output: in place in v unless the pre-activation is kept */
    if (zpre) {
        er_linear_forward(zpre, hid, h->dense, h->dense_b, R, h->C, h->C, nthreads);
        memcpy(u, zpre, RC * sizeof(float));
        g = u;
    } else {
        er_linear_forward(v, hid, h->dense, h->dense_b, R, h->C, h->C, nthreads);
    }
    er_gelu_forward(g, RC, nthreads);
    er_layernorm_forward(v, NULL, mean, rstd, g, NULL, h->ln_w, h->ln_b, R, h->C, h->eps, nthreads);
    er_linear_forward(logits, v, h->dec, h->dec_b, R, h->C, h->V, nthreads);
}

void er_lm_head_forward_ref(const er_lm_head *h, const float *hid, int R, float *logits) {
    int C = h->C;
    float *z = malloc(sizeof(float) * (size_t)R * C);
    ER_ASSERT(z && h->dense.dtype == ER_DT_F32 && h->dec.dtype == ER_DT_F32);
    er_linear_forward_ref(z, hid, h->dense.data, h->dense_b, R, C, C);
    for (size_t i = 0; i < (size_t)R * C; i++) z[i] = (float)(0.5 * z[i] * (1.0 + erf(z[i] / sqrt(2.0))));
    er_layernorm_forward_ref(z, z, NULL, h->ln_w, h->ln_b, R, C, h->eps);
    er_linear_forward_ref(logits, z, h->dec.data, h->dec_b, R, C, h->V);
    free(z);
}

void er_lm_head_backward(const er_lm_head *h, float *g_dense_w, float *g_dense_b, float *g_ln_w, float *g_ln_b,
                         float *g_dec_w, float *g_dec_b, const float *dlogits, const float *hid, const float *zpre,
                         const float *u, const float *mean, const float *rstd, const float *v, float *dv, float *du,
                         float *dhid, int R, int nthreads) {
    int C = h->C;
    ER_ASSERT(h->dense.dtype == ER_DT_F32 && h->dec.dtype == ER_DT_F32);
    er_linear_backward(dv, g_dec_w, g_dec_b, dlogits, v, h->dec.data, R, C, h->V, 0, nthreads);
    er_layernorm_backward(du, g_ln_w, g_ln_b, dv, u, mean, rstd, h->ln_w, R, C, 0, nthreads);
    er_gelu_backward(du, zpre, du, (size_t)R * C, nthreads);
    er_linear_backward(dhid, g_dense_w, g_dense_b, du, hid, h->dense.data, R, C, C, 0, nthreads);
}
