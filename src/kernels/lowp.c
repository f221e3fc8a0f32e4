/* lowp.c — what the two low-precision kernels share: packing dispatch, sizes, the GEMM
 * dispatch on the weight's dtype, and the per-thread activation scratch (lowp.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "kernels/lowp.h"

int er_lowp_pack(er_lowp_mat *m, int dtype, const float *W, int N, int K, int ldw) {
    memset(m, 0, sizeof(*m));
    ER_ASSERT(N > 0 && K > 0 && ldw >= K);
    if (dtype == ER_LOWP_BF16) return er_bf16_pack(m, W, N, K, ldw);
    ER_ASSERT(dtype == ER_LOWP_INT8);
    return er_q8_pack(m, W, N, K, ldw);
}

void er_lowp_free(er_lowp_mat *m) {
    if (!m) return;
    free(m->data);
    free(m->scale);
    free(m->comp);
    memset(m, 0, sizeof(*m));
}

size_t er_lowp_bytes(const er_lowp_mat *m) {
    if (!m->data) return 0;
    size_t cols = (size_t)m->panels * ER_LOWP_NR;
    if (m->dtype == ER_LOWP_BF16) return cols * (size_t)m->Kp * 2;
    return cols * (size_t)m->Kp + (size_t)m->N * (sizeof(float) + sizeof(int32_t));
}

void er_lowp_gemm(er_isa isa, const er_lowp_mat *m, int M, const float *A, int lda, const float *bias, float *C,
                  int ldc) {
    if (M <= 0) return;
    if (m->dtype == ER_LOWP_BF16)
        er_gemm_bf16(isa, m, M, A, lda, bias, C, ldc);
    else
        er_gemm_q8(isa, m, M, A, lda, bias, C, ldc);
}

/* Every thread's scratch is also listed here so it stays reachable for the process's life
 * (OpenMP keeps a fixed pool of threads) and leak checkers do not report it. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static void *reg_slots[1024];
static int reg_n;

static _Thread_local void *tl_buf;
static _Thread_local size_t tl_cap;
static _Thread_local int tl_slot = -1;

void *er_lowp_scratch(size_t bytes) {
    if (bytes <= tl_cap) return tl_buf;
    size_t cap = (bytes + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(64, cap);
    if (!p) return NULL;
    pthread_mutex_lock(&reg_lock);
    if (tl_slot < 0 && reg_n < (int)(sizeof reg_slots / sizeof reg_slots[0])) tl_slot = reg_n++;
    if (tl_slot >= 0) reg_slots[tl_slot] = p;
    pthread_mutex_unlock(&reg_lock);
    free(tl_buf);
    tl_buf = p;
    tl_cap = cap;
    return p;
}
