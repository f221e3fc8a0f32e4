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
    m->isa = er_cpu_isa();
    if (dtype == ER_LOWP_BF16) return er_bf16_pack(m, W, N, K, ldw);
    ER_ASSERT(dtype == ER_LOWP_INT8);
    return er_q8_pack(m, W, N, K, ldw);
}

void er_lowp_gemm_w(const er_lowp_mat *m, int M, const float *A, int lda, const float *bias, float *C, int ldc) {
    er_lowp_gemm(m->isa, m, M, A, lda, bias, C, ldc);
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

/* One scratch per thread, made on its first low-precision GEMM, grown to the largest K seen,
 * and freed when the thread exits (pthread key destructor) or calls er_lowp_thread_cleanup()
 * (easyrec_thread_cleanup): a thread-per-connection server does not accumulate them. */
static _Thread_local void *tl_buf;
static _Thread_local size_t tl_cap;
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static int buf_key_ok;

static void buf_free(void *p) { free(p); }
static void buf_key_init(void) { buf_key_ok = pthread_key_create(&buf_key, buf_free) == 0; }

void er_lowp_thread_cleanup(void) {
    free(tl_buf);
    tl_buf = NULL;
    tl_cap = 0;
    pthread_once(&buf_once, buf_key_init);
    if (buf_key_ok) pthread_setspecific(buf_key, NULL);
}

void *er_lowp_scratch(size_t bytes) {
    if (bytes <= tl_cap) return tl_buf;
    pthread_once(&buf_once, buf_key_init);
    if (!buf_key_ok) return NULL;
    size_t cap = (bytes + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(64, cap);
    if (!p) return NULL;
    free(tl_buf);
    tl_buf = p;
    tl_cap = cap;
    pthread_setspecific(buf_key, p);
    return p;
}
