/* loop.c — the training loop (loop.h). */
#include <string.h>

#include "core/err.h"
#include "train/loop.h"

int er_loop_run(const er_loop *L, long *step) {
    int rc = EASYREC_OK, stop = 0;
    size_t n = L->opt->n;
    while (*step < L->end && !stop && !rc) {
        er_step_stats st;
        memset(&st, 0, sizeof st);
        memset(L->grad, 0, n * sizeof(float));
        double t0 = er_now();
        if ((rc = L->step(L->step_ctx, *step, L->grad, &st))) break;
        double t1 = er_now();
        if (L->comm->size > 1 && (rc = L->comm->allreduce_sum_f32(L->comm, L->grad, n))) break;
        double t2 = er_now();
        er_optim_update(L->opt, L->params, L->grad, *step, &st.grad_norm, &st.lr);
        st.t_step = t1 - t0, st.t_allreduce = t2 - t1, st.t_update = er_now() - t2;
        st.step = ++*step;
        if (L->after) rc = L->after(L->after_ctx, &st, &stop);
        if (L->comm->size > 1) { /* rank 0's hook decides for all: stop, or end on its error */
            int flag[2] = {stop, rc != EASYREC_OK}, brc = L->comm->bcast(L->comm, flag, sizeof flag, 0);
            if (brc) return brc;
            stop = flag[0];
            if (flag[1] && !rc) rc = er_error(EASYREC_ERR_IO, "rank 0 ended the run with an error");
        }
    }
    return rc;
}
