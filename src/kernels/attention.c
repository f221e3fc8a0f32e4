/* attention.c — multi-head self-attention of packed sequences (no padding rows, so no
 * mask: each sequence attends only to its own T rows, which is exactly HF's result with the
 * additive finfo.min mask on padded keys), forward and backward. Per (sequence, head) two
 * small GEMMs through er_gemm.c, straight on the strided qkv rows:
 *   S = Q K^T;  P = softmax(S / sqrt(HS));  O = drop(P) V
 * Backward: dP' = dO V^T; dP = drop'(dP'); dS = P (dP - rowsum(dP P)) / sqrt(HS);
 *   dQ = dS K;  dK = dS^T Q;  dV = drop(P)^T dO.
 * Work is split over (sequence, head) pairs, each writing disjoint columns: any thread
 * count gives the same bits. */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/err.h"
#include "kernels/kernels.h"

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* the calling thread's scratch block */
static float *scratch(const er_attn_shape *s) { return s->scratch + (size_t)thread_id() * s->scratch_stride; }

/* drop(P) (n elements at offset pbase of the site) into the thread's scratch; returns what
 * to multiply V by (P itself without dropout) */
static const float *dropped(const er_attn_shape *s, const float *P, size_t n, size_t pbase) {
    if (!s->drop || s->drop->p <= 0.0f) return P;
    float *Pd = scratch(s), sc = 1.0f / (1.0f - s->drop->p);
    for (size_t i = 0; i < n; i++) Pd[i] = er_dropout_keep(s->drop, s->site, pbase + i) ? P[i] * sc : 0.0f;
    return Pd;
}

static void head_forward(float *out, const float *qkv, float *P, const er_attn_shape *s, int b, int h) {
    int C = s->C, HS = C / s->NH, C3 = 3 * C, o = s->off[b], T = s->off[b + 1] - o;
    int rows = s->first_only ? 1 : T;
    size_t pb = s->poff ? s->poff[b] + (size_t)h * T * T : 0;
    float *Pb = P + pb;
    const float *q = qkv + (size_t)o * C3 + h * HS, *k = q + C, *v = q + 2 * C;
    er_gemm(0, 1, rows, T, HS, q, C3, k, C3, NULL, Pb, T, 0);
    er_softmax_forward(Pb, rows, T, 1.0f / sqrtf((float)HS));
    const float *pv = dropped(s, Pb, (size_t)rows * T, pb);
    er_gemm(0, 0, rows, HS, T, pv, T, v, C3, NULL, out + (size_t)o * C + h * HS, C, 0);
}

void er_attention_forward(float *out, const float *qkv, float *probs, const er_attn_shape *s, int nthreads) {
    int B = s->B, NH = s->NH;
    if (!s->poff || nthreads <= 0) { /* one (T, T) block reused (inference) or no threads */
        ER_ASSERT(s->poff || !s->drop || s->drop->p <= 0.0f);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) head_forward(out, qkv, probs, s, b, h);
        return;
    }
    int backend = er_gemm_get_backend(); /* the caller's GEMM choice holds in the workers too */
#pragma omp parallel num_threads(nthreads)
    {
        int old = er_gemm_set_backend(backend);
#pragma omp for schedule(dynamic, 1) collapse(2)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) head_forward(out, qkv, probs, s, b, h);
        er_gemm_set_backend(old);
    }
}

static void head_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                          const er_attn_shape *s, int b, int h) {
    int C = s->C, HS = C / s->NH, C3 = 3 * C, o = s->off[b], T = s->off[b + 1] - o;
    size_t pb = s->poff[b] + (size_t)h * T * T, TT = (size_t)T * T;
    const float *P = probs + pb;
    const float *q = qkv + (size_t)o * C3 + h * HS, *k = q + C, *v = q + 2 * C;
    float *dq = dqkv + (size_t)o * C3 + h * HS, *dk = dq + C, *dv = dq + 2 * C;
    const float *dO = dout + (size_t)o * C + h * HS;
    /* dP and drop(P) share the thread's scratch: drop(P) is consumed before dP is formed */
    float *scr = scratch(s);
    const float *pv = dropped(s, P, TT, pb);
    er_gemm(1, 0, T, HS, T, pv, T, dO, C, NULL, dv, C3, 0);
    er_gemm(0, 1, T, T, HS, dO, C, v, C3, NULL, scr, T, 0);
    if (s->drop && s->drop->p > 0.0f) {
        float sc = 1.0f / (1.0f - s->drop->p);
        for (size_t i = 0; i < TT; i++) scr[i] = er_dropout_keep(s->drop, s->site, pb + i) ? scr[i] * sc : 0.0f;
    }
    er_softmax_backward(scr, P, T, T, 1.0f / sqrtf((float)HS));
    er_gemm(0, 0, T, HS, T, scr, T, k, C3, NULL, dq, C3, 0);
    er_gemm(1, 0, T, HS, T, scr, T, q, C3, NULL, dk, C3, 0);
}

void er_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *probs,
                           const er_attn_shape *s, int nthreads) {
    ER_ASSERT(s->poff && !s->first_only);
    int B = s->B, NH = s->NH;
    int backend = er_gemm_get_backend();
#pragma omp parallel num_threads(nthreads < 1 ? 1 : nthreads)
    {
        int old = er_gemm_set_backend(backend);
#pragma omp for schedule(dynamic, 1) collapse(2)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) head_backward(dqkv, dout, qkv, probs, s, b, h);
        er_gemm_set_backend(old);
    }
}

void er_attention_forward_ref(float *out, const float *qkv, const int *off, int B, int C, int NH) {
    int HS = C / NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)HS);
    for (int b = 0; b < B; b++) {
        int o = off[b], T = off[b + 1] - o;
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double p[T], mx = -INFINITY, sum = 0;
                const float *q = qkv + (size_t)(o + t) * C3 + h * HS;
                for (int j = 0; j < T; j++) {
                    const float *k = qkv + (size_t)(o + j) * C3 + C + h * HS;
                    double d = 0;
                    for (int i = 0; i < HS; i++) d += (double)q[i] * k[i];
                    p[j] = d * scale;
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j < T; j++) sum += p[j] = exp(p[j] - mx);
                for (int i = 0; i < HS; i++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++) acc += p[j] / sum * qkv[(size_t)(o + j) * C3 + 2 * C + h * HS + i];
                    out[(size_t)(o + t) * C + h * HS + i] = (float)acc;
                }
            }
    }
}
