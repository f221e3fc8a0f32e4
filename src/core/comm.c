/* comm.c — the communicator of a single process (rank 0 of 1: all-reduce and broadcast
 * leave the buffer as it is, all-gather copies the one contribution) and what every
 * communicator shares: agreeing on failure, gathering rows computed in shares. */
#include <stdlib.h>
#include <string.h>

#include "core/comm.h"
#include "core/err.h"

static int serial_allreduce(er_comm *c, float *buf, size_t n) { return EASYREC_OK; }

static int serial_allgatherv(er_comm *c, const float *send, size_t n_local, float *recv, const size_t *counts) {
    ER_ASSERT(counts[0] == n_local);
    if (recv != send && n_local) memmove(recv, send, n_local * sizeof(float));
    return EASYREC_OK;
}

static int serial_allgatherv_f64(er_comm *c, const double *send, size_t n_local, double *recv, const size_t *counts) {
    ER_ASSERT(counts[0] == n_local);
    if (recv != send && n_local) memmove(recv, send, n_local * sizeof(double));
    return EASYREC_OK;
}

static int serial_bcast(er_comm *c, void *buf, size_t bytes, int root) {
    ER_ASSERT(root == 0);
    return EASYREC_OK;
}

static int serial_barrier(er_comm *c) { return EASYREC_OK; }

er_comm *er_comm_serial(void) {
    static er_comm serial = {0,           1, serial_allreduce, serial_allgatherv, serial_allgatherv_f64,
                             serial_bcast, serial_barrier, NULL};
    return &serial;
}

int er_comm_agree(er_comm *c, int rc) {
    if (c->size == 1) return rc;
    float bad = rc ? 1.0f : 0.0f;
    int arc = c->allreduce_sum_f32(c, &bad, 1);
    if (rc) return rc;
    if (arc) return arc;
    return bad > 0 ? er_error(EASYREC_ERR_IO, "another MPI rank failed (its message is in its own output)") : EASYREC_OK;
}

int er_comm_gather_rows(er_comm *c, int rc, float *buf, size_t n, size_t width) {
    if (c->size == 1) return rc;
    size_t *counts = er_calloc((size_t)c->size, sizeof(*counts)); /* floats per rank */
    if (!rc && !counts) rc = EASYREC_ERR_NOMEM;
    if (!(rc = er_comm_agree(c, rc))) {
        size_t lo, hi;
        for (int q = 0; q < c->size; q++) {
            er_comm_share(c, q, n, &lo, &hi);
            counts[q] = (hi - lo) * width;
        }
        er_comm_share(c, c->rank, n, &lo, &hi);
        rc = c->allgatherv_f32(c, buf + lo * width, (hi - lo) * width, buf, counts);
    }
    free(counts);
    return rc;
}
