/* runtime.c — the explicit, program-owned runtime calls of easyrec.h: the one process-wide
 * setup a program may choose (OpenBLAS to one thread), and freeing a thread's scratch.
 * The library itself never calls easyrec_runtime_init. */
#include <cblas.h>

#include "easyrec.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "tokenizer/tokenizer.h"

/* OpenBLAS (pthread build) starts its worker threads when it is loaded, and an idle worker
 * spins on sched_yield for about 2^28 cycles before it sleeps: at one thread nothing runs
 * on them, so they are stopped at once instead of competing with easyrec's own threads for
 * the first ~0.1 s. OpenBLAS starts them again if a later call raises the thread count.
 * Weak: absent from other BLAS builds. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

void easyrec_runtime_init(void) {
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}

void easyrec_thread_cleanup(void) {
    er_gemm_thread_cleanup();
    er_lowp_thread_cleanup();
    er_tokenizer_thread_cleanup();
}
