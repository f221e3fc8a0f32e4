/* comm_serial.c — the communicator of a single process: rank 0 of 1. All-reduce and
 * broadcast leave the buffer as it is, all-gather copies the one contribution. */
#include <string.h>

#include "core/err.h"
#include "train/comm.h"

static int serial_allreduce(er_comm *c, float *buf, size_t n) { return EASYREC_OK; }

static int serial_allgatherv(er_comm *c, const float *send, size_t n_local, float *recv, const size_t *counts) {
    ER_ASSERT(counts[0] == n_local);
    if (recv != send && n_local) memmove(recv, send, n_local * sizeof(float));
    return EASYREC_OK;
}

static int serial_bcast(er_comm *c, void *buf, size_t bytes, int root) {
    ER_ASSERT(root == 0);
    return EASYREC_OK;
}

static int serial_barrier(er_comm *c) { return EASYREC_OK; }

er_comm *er_comm_serial(void) {
    static er_comm serial = {0, 1, serial_allreduce, serial_allgatherv, serial_bcast, serial_barrier, NULL};
    return &serial;
}
