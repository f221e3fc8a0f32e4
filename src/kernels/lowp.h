/* lowp.h — low-precision weight matrices and their GEMMs: C = A · Wᵀ + bias for every
 * nn.Linear of the encoder when the model runs in bf16 or int8 (docs/model.md, Precision).
 *
 * A weight (N out, K in) is converted ONCE (er_lowp_pack) into 32-column panels:
 *   bf16: weights rounded to bf16 (nearest even); activations rounded to bf16 per call;
 *         products accumulated in fp32 (vdpbf16ps order: per k pair, odd k then even k).
 *   int8: weights per output channel symmetric, q = round(w / s_n), s_n = max|w_n| / 127;
 *         activations per token (row) symmetric, dynamic: s_r = max|a_r| / 127, stored as
 *         u8 = q + 128 (vpdpbusd takes unsigned × signed; the +128 is removed exactly with
 *         comp_n = 128 Σ_k q_w); exact int32 accumulation, then
 *         y = ((float)acc · s_r) · s_n + bias.
 * Layout (same at every ISA level, so a level can be chosen after packing):
 *   bf16 data[((p·Kp/2 + kk)·32 + c)·2 + h] = W[32p + c][2kk + h]   (Kp = K rounded up to 2)
 *   int8 data[((p·Kq/4 + kq)·32 + c)·4 + j] = Wq[32p + c][4kq + j]  (Kq = K rounded up to 4)
 * with zeros past N and K.
 *
 * Results at every ISA level: int8 is bit-identical (integer sums are exact, the float
 * epilogue is the same expression everywhere). bf16 levels below avx512bf16 emulate
 * vdpbf16ps with exact products and the same summation order; they agree with it except
 * where the hardware flushes fp32 denormals (tests/test_lowp.c states the tolerance).
 * The GEMMs run single-threaded in the caller's thread and keep a per-thread scratch for
 * the converted activations (grown once to the largest K seen, freed at thread exit).
 */
#ifndef ER_KERNELS_LOWP_H
#define ER_KERNELS_LOWP_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/cpu.h"

enum { ER_LOWP_BF16 = 1, ER_LOWP_INT8 = 2 };

#define ER_LOWP_NR 32 /* columns per packed panel */

typedef struct {
    int dtype;     /* ER_LOWP_BF16 / ER_LOWP_INT8 */
    int N, K;      /* logical shape (out, in) */
    int Kp;        /* K padded: to 2 (bf16) or 4 (int8) */
    int panels;    /* ceil(N / 32) */
    void *data;    /* packed panels (uint16 bf16 bits / int8) */
    float *scale;  /* int8: (N) per-output-channel scale */
    int32_t *comp; /* int8: (N) 128 · Σ_k Wq[n][k] */
    er_isa isa;    /* level er_lowp_gemm_w runs it at: er_cpu_isa() after packing; the owner may lower it */
} er_lowp_mat;

/* Pack W (N, K), row stride ldw floats, as dtype. EASYREC_OK or EASYREC_ERR_NOMEM. */
int er_lowp_pack(er_lowp_mat *m, int dtype, const float *W, int N, int K, int ldw);
void er_lowp_free(er_lowp_mat *m);
/* Bytes held by m (data + scales). */
size_t er_lowp_bytes(const er_lowp_mat *m);

/* C (M, N) = A (M, K) · Wᵀ + bias (N) (bias may be NULL), row strides lda / ldc, at level
 * isa (pass er_isa_clamp(...)); dispatches on m->dtype. */
void er_lowp_gemm(er_isa isa, const er_lowp_mat *m, int M, const float *A, int lda, const float *bias, float *C,
                  int ldc);

/* The same at m->isa (what a model's Linear layers call). */
void er_lowp_gemm_w(const er_lowp_mat *m, int M, const float *A, int lda, const float *bias, float *C, int ldc);

/* The two kernels (gemm_bf16.c, gemm_q8.c) and their packers. */
int er_bf16_pack(er_lowp_mat *m, const float *W, int N, int K, int ldw);
void er_gemm_bf16(er_isa isa, const er_lowp_mat *m, int M, const float *A, int lda, const float *bias, float *C,
                  int ldc);
int er_q8_pack(er_lowp_mat *m, const float *W, int N, int K, int ldw);
void er_gemm_q8(er_isa isa, const er_lowp_mat *m, int M, const float *A, int lda, const float *bias, float *C,
                int ldc);

/* fp32 -> bf16 bits, round to nearest even; NaN stays NaN; fp32 denormals become ±0 (as
 * the AVX-512 BF16 conversions treat them). */
static inline uint16_t er_f32_to_bf16_bits(float f) {
    union {
        float f;
        uint32_t u;
    } v = {f};
    uint32_t u = v.u;
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u); /* zero / denormal: signed 0 */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float er_bf16_bits_to_f32(uint16_t h) {
    union {
        uint32_t u;
        float f;
    } v = {(uint32_t)h << 16};
    return v.f;
}

/* Per-thread scratch of at least `bytes` (64-byte aligned), kept until the thread exits or
 * calls er_lowp_thread_cleanup; NULL on OOM. Shared by the two kernels (one GEMM at a time
 * per thread). */
void *er_lowp_scratch(size_t bytes);
void er_lowp_thread_cleanup(void);

#endif
