/* comm.h — how training processes talk to each other: rank, size, and the collectives the
 * loop and the EasyRec step need (all-reduce of gradients, all-gather of embeddings for the
 * global contrastive batch, broadcast of the initial state, barrier). The serial
 * implementation (comm_serial.c) is rank 0 of 1 and makes every collective a no-op or a
 * copy; an MPI implementation (comm_mpi.c) fills the same table. Every function returns
 * EASYREC_OK or an EASYREC_ERR_* code (with er_error's message). Only rank 0 writes files. */
#ifndef ER_COMM_H
#define ER_COMM_H

#include <stddef.h>

typedef struct er_comm er_comm;
struct er_comm {
    int rank, size;
    int (*allreduce_sum_f32)(er_comm *c, float *buf, size_t n); /* in place */
    int (*allgatherv_f32)(er_comm *c, const float *send, size_t n_local, float *recv,
                          const size_t *counts); /* recv = concat over ranks */
    int (*bcast)(er_comm *c, void *buf, size_t bytes, int root);
    int (*barrier)(er_comm *c);
    void *impl;
};

er_comm *er_comm_serial(void); /* static singleton, rank 0 size 1 */

/* comm_mpi.c: a communicator over MPI_COMM_WORLD (initialising MPI when nobody has; the
 * program calls it once, the library's routines only use the table). Without `make MPI=1`
 * open fails with EASYREC_ERR_UNSUPPORTED. close frees it and finalises MPI if open started it. */
int er_comm_mpi_open(er_comm **out);
void er_comm_mpi_close(er_comm *c);
int er_comm_mpi_built(void); /* 1 when built with MPI */

#endif
