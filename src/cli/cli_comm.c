/* cli_comm.c — the communicator of this process (cli.h): MPI when the program was started by
 * mpirun (Open MPI sets OMPI_COMM_WORLD_SIZE; PMIx launchers PMIX_RANK) and built with
 * `make MPI=1`, else the serial one. Opened on first use, closed (MPI finalised) by main. */
#include <stdlib.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/comm.h"

static er_comm *the_comm;
static int opened_mpi;

static int launched_by_mpirun(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    return (s && *s) || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

int cli_comm(er_comm **out) {
    if (!the_comm) {
        if (launched_by_mpirun()) {
            if (!er_comm_mpi_built()) {
                const char *s = getenv("OMPI_COMM_WORLD_SIZE");
                if (s && atoi(s) > 1)
                    return er_error(EASYREC_ERR_UNSUPPORTED,
                                    "started by mpirun with %s ranks, but this easyrec was built without MPI "
                                    "(rebuild with make MPI=1); every rank would do the whole job",
                                    s);
                the_comm = er_comm_serial();
            } else {
                int rc = er_comm_mpi_open(&the_comm);
                if (rc) return rc;
                opened_mpi = 1;
            }
        } else {
            the_comm = er_comm_serial();
        }
    }
    *out = the_comm;
    return EASYREC_OK;
}

void cli_comm_close(void) {
    if (opened_mpi) er_comm_mpi_close(the_comm);
    the_comm = NULL;
    opened_mpi = 0;
}
