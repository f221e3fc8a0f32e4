/* comm.h — how the processes of one job talk to each other: rank, size, and the collectives
 * that training (all-reduce of gradients, all-gather of embeddings for the global contrastive
 * batch, broadcast of the initial state) and sharded encoding and evaluation (all-gather of
 * embeddings and per-user metrics) need. The serial implementation (comm.c) is rank 0 of 1
 * and makes every collective a no-op or a copy; the Open MPI one (comm_mpi.c) fills the same
 * table. Every function returns EASYREC_OK or an EASYREC_ERR_* code (with er_error's
 * message). Only rank 0 writes files. In core because eval and train both use it. */
#ifndef ER_COMM_H
#define ER_COMM_H

#include <stddef.h>

typedef struct er_comm er_comm;
struct er_comm {
    int rank, size;
    int (*allreduce_sum_f32)(er_comm *c, float *buf, size_t n); /* in place */
    /* recv = concatenation over ranks of counts[r] elements; in place when send already sits
     * at its offset in recv */
    int (*allgatherv_f32)(er_comm *c, const float *send, size_t n_local, float *recv, const size_t *counts);
    int (*allgatherv_f64)(er_comm *c, const double *send, size_t n_local, double *recv, const size_t *counts);
    int (*bcast)(er_comm *c, void *buf, size_t bytes, int root);
    int (*barrier)(er_comm *c);
    void *impl;
};

er_comm *er_comm_serial(void); /* static singleton, rank 0 size 1 */

/* Rank r's share of n rows when they are split in order: [n r / R, n (r+1) / R). */
static inline void er_comm_share(const er_comm *c, int r, size_t n, size_t *lo, size_t *hi) {
    *lo = n * (size_t)r / (size_t)c->size;
    *hi = n * (size_t)(r + 1) / (size_t)c->size;
}

/* Every rank passes its local status rc; all learn whether any failed (one all-reduce), so
 * no rank waits in a later collective for a peer that gave up. Returns rc when it is an
 * error, EASYREC_ERR_IO ("another rank failed") when only a peer failed, else EASYREC_OK.
 * With one rank: rc. */
int er_comm_agree(er_comm *c, int rc);

/* Rows [0, n) of `width` floats split in order across ranks (er_comm_share), each rank having
 * computed its share in place in buf with local status rc: every rank agrees on failure
 * (er_comm_agree), then the shares are all-gathered so that every rank holds all n rows.
 * Returns the agreed status (with one rank: rc, buf untouched). */
int er_comm_gather_rows(er_comm *c, int rc, float *buf, size_t n, size_t width);

/* comm_mpi.c: a communicator over MPI_COMM_WORLD (initialising MPI when nobody has; the
 * program calls it once, the library's routines only use the table). Without `make MPI=1`
 * open fails with EASYREC_ERR_UNSUPPORTED. close frees it and finalises MPI if open started it. */
int er_comm_mpi_open(er_comm **out);
void er_comm_mpi_close(er_comm *c);
int er_comm_mpi_built(void); /* 1 when built with MPI */

#endif
