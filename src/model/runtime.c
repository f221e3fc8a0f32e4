/* runtime.c — the explicit, program-owned runtime calls of easyrec.h: the one process-wide
 * setup a program may choose (OpenBLAS to one thread, its idle workers stopped; the contract,
 * call before other threads use BLAS, is at the declaration), and freeing a thread's scratch.
 * The library itself never calls easyrec_runtime_init; it stays here rather than in the CLI's
 * main so that the command line and the Python package's runtime_init() do the same. */
#include <cblas.h>

#include "easyrec.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "tokenizer/tokenizer.h"

/* OpenBLAS (pthread build) starts its worker threads when it is loaded, and an idle worker
 * spins on sched_yield for about 2^28 cycles before it sleeps: at one thread nothing runs
 * on them, so they are stopped at once instead of competing with easyrec's own threads for
 * the first ~0.1 s. OpenBLAS starts them again if a later call raises the thread count.
 * An OpenBLAS internal, process-wide and unsafe while another thread is inside BLAS (hence
 * "at start, before other threads use BLAS" in easyrec.h). Weak: absent from other BLAS
 * builds. */
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
