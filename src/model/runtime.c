/* runtime.c — the explicit, program-owned runtime calls of easyrec.h: the one process-wide
 * setup a program may choose (OpenBLAS to one thread), and freeing a thread's scratch.
 * The library itself never calls easyrec_runtime_init. */
#include <cblas.h>

#include "easyrec.h"
#include "kernels/kernels.h"
#include "kernels/lowp.h"
#include "tokenizer/tokenizer.h"

void easyrec_runtime_init(void) { openblas_set_num_threads(1); }

void easyrec_thread_cleanup(void) {
    er_gemm_thread_cleanup();
    er_lowp_thread_cleanup();
    er_tokenizer_thread_cleanup();
}
