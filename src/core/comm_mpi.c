/* comm_mpi.c — the communicator (comm.h) over Open MPI (built with `make MPI=1`, which defines ER_MPI).
 * Every collective runs on a private duplicate of MPI_COMM_WORLD whose error handler is
 * MPI_ERRORS_RETURN, so an MPI failure comes back as EASYREC_ERR_IO with MPI's own message
 * instead of aborting inside the library. A rank that dies (crash, kill, exit without
 * MPI_Finalize) is not detected here: Open MPI's runtime (mpirun/ORTE) notices the dead process
 * and kills every other rank of the job, printing which rank died and how, so the job ends
 * with a non-zero status instead of hanging in a collective (docs/distributed.md).
 * Without ER_MPI er_comm_mpi_open reports that the build lacks MPI. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/comm.h"

#ifdef ER_MPI
#include <mpi.h>

typedef struct {
    MPI_Comm comm;
    int *counts, *displs; /* per-rank scratch of allgatherv */
    int we_initialised;
} mpi_impl;

static int mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return er_error(EASYREC_ERR_IO, "MPI %s failed: %.*s", what, len, msg);
}

/* MPI counts are int: larger buffers go in pieces of at most 1 Gi elements */
#define MPI_PIECE ((size_t)1 << 30)

/* The all-reduce goes in buckets of 4 Mi floats (16 MiB), as torch DDP buckets its gradients.
 * Measured (docs/distributed.md): one MPI_Allreduce of a 54 MB buffer makes Open MPI 4.1's
 * default algorithm allocate a temporary as large as the message on every call; glibc serves
 * that with a fresh mmap, and touching 13 k new pages costs ~14 us each in this VM — 200 ms of
 * CPU and 450-700 ms of wall per step for 2 ranks. Temporaries of at most 16 MiB stay in the
 * heap after the first call (glibc's dynamic mmap threshold, at most 32 MiB): 384 page faults
 * instead of 6.5 k, 50-75 ms. Buckets of 1 Mi floats were as fast through shared memory but
 * slower over TCP (per-message latency). Each element is still the sum of the same R values. */
#define ALLREDUCE_BUCKET ((size_t)1 << 22)

static int mpi_allreduce(er_comm *c, float *buf, size_t n) {
    mpi_impl *m = c->impl;
    for (size_t s = 0; s < n; s += ALLREDUCE_BUCKET) {
        size_t k = n - s < ALLREDUCE_BUCKET ? n - s : ALLREDUCE_BUCKET;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + s, (int)k, MPI_FLOAT, MPI_SUM, m->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "all-reduce");
    }
    return EASYREC_OK;
}

/* recv (elements of `size` bytes, MPI type t) = concatenation of every rank's counts[r] */
static int allgatherv(er_comm *c, const void *send, size_t n_local, void *recv, const size_t *counts, MPI_Datatype t,
                      size_t size) {
    mpi_impl *m = c->impl;
    size_t off = 0;
    for (int r = 0; r < c->size; r++) {
        if (counts[r] > INT32_MAX || off > INT32_MAX)
            return er_error(EASYREC_ERR_ARG, "MPI all-gather: %zu floats from rank %d is too large", counts[r], r);
        m->counts[r] = (int)counts[r];
        m->displs[r] = (int)off;
        off += counts[r];
    }
    ER_ASSERT(counts[c->rank] == n_local);
    /* in place when the caller's slice already sits at its offset in recv */
    const void *sb = send == (const char *)recv + (size_t)m->displs[c->rank] * size ? MPI_IN_PLACE : send;
    int rc = MPI_Allgatherv(sb, (int)n_local, t, recv, m->counts, m->displs, t, m->comm);
    return rc == MPI_SUCCESS ? EASYREC_OK : mpi_fail(rc, "all-gather");
}

static int mpi_allgatherv(er_comm *c, const float *send, size_t n_local, float *recv, const size_t *counts) {
    return allgatherv(c, send, n_local, recv, counts, MPI_FLOAT, sizeof(float));
}

static int mpi_allgatherv_f64(er_comm *c, const double *send, size_t n_local, double *recv, const size_t *counts) {
    return allgatherv(c, send, n_local, recv, counts, MPI_DOUBLE, sizeof(double));
}

static int mpi_bcast(er_comm *c, void *buf, size_t bytes, int root) {
    mpi_impl *m = c->impl;
    for (size_t s = 0; s < bytes; s += MPI_PIECE) {
        size_t k = bytes - s < MPI_PIECE ? bytes - s : MPI_PIECE;
        int rc = MPI_Bcast((char *)buf + s, (int)k, MPI_BYTE, root, m->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
    }
    return EASYREC_OK;
}

static int mpi_barrier(er_comm *c) {
    int rc = MPI_Barrier(((mpi_impl *)c->impl)->comm);
    return rc == MPI_SUCCESS ? EASYREC_OK : mpi_fail(rc, "barrier");
}

int er_comm_mpi_open(er_comm **out) {
    *out = NULL;
    int inited = 0, rc;
    MPI_Initialized(&inited);
    mpi_impl *m = er_calloc(1, sizeof *m);
    er_comm *c = er_calloc(1, sizeof *c);
    if (!m || !c) goto nomem;
    if (!inited) {
        int provided;
        /* collectives are called from one thread at a time (the loop's), other threads compute */
        if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) {
            free(m), free(c);
            return er_error(EASYREC_ERR_IO, "MPI_Init_thread failed (error %d)", rc);
        }
        m->we_initialised = 1;
    }
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm)) != MPI_SUCCESS) {
        free(m), free(c);
        return mpi_fail(rc, "Comm_dup");
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, &c->rank);
    MPI_Comm_size(m->comm, &c->size);
    m->counts = er_calloc((size_t)c->size, sizeof(int));
    m->displs = er_calloc((size_t)c->size, sizeof(int));
    if (!m->counts || !m->displs) goto nomem;
    c->allreduce_sum_f32 = mpi_allreduce;
    c->allgatherv_f32 = mpi_allgatherv;
    c->allgatherv_f64 = mpi_allgatherv_f64;
    c->bcast = mpi_bcast;
    c->barrier = mpi_barrier;
    c->impl = m;
    *out = c;
    return EASYREC_OK;
nomem:
    if (m) free(m->counts), free(m->displs);
    free(m), free(c);
    return EASYREC_ERR_NOMEM;
}

void er_comm_mpi_close(er_comm *c) {
    if (!c) return;
    mpi_impl *m = c->impl;
    MPI_Comm_free(&m->comm);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (m->we_initialised && !finalized) MPI_Finalize();
    free(m->counts), free(m->displs), free(m), free(c);
}

int er_comm_mpi_built(void) { return 1; }

#else /* !ER_MPI */

int er_comm_mpi_open(er_comm **out) {
    *out = NULL;
    return er_error(EASYREC_ERR_UNSUPPORTED, "this easyrec was built without MPI (rebuild with make MPI=1)");
}
void er_comm_mpi_close(er_comm *c) { (void)c; }
int er_comm_mpi_built(void) { return 0; }

#endif
