/* cli.h — subcommands of the easyrec command line, and what they share. Each command
 * returns the process exit status (0 ok, 1 failure with "easyrec: <message>" printed, 2
 * usage error). Options are parsed only with the option layer (opt.h). */
#ifndef ER_CLI_H
#define ER_CLI_H

#include "easyrec.h"

int cmd_encode(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv); /* "tokenizer train ..." */
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
int cmd_data(int argc, char **argv); /* "data import ..." */
int cmd_catalog(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_profile(int argc, char **argv); /* "profile items|users|diversify" */
int cmd_tsne(int argc, char **argv);
int cmd_cf(int argc, char **argv);

/* Print "easyrec: <msg>" (msg = easyrec_last_error() when NULL) and return 1. */
int cli_fail(const char *msg);

/* ---- the process's communicator (cli_comm.c) ---- */
/* MPI when started by mpirun and built with make MPI=1 (MPI is initialised on first use),
 * else the serial rank 0 of 1; an error when mpirun started several ranks of a build without
 * MPI. main closes it (finalising MPI) after the command. */
typedef struct er_comm er_comm;
int cli_comm(er_comm **out);
void cli_comm_close(void);

/* ---- shared option vocabulary (cli_common.c) ---- */

/* --threads N: 1..CLI_MAX_THREADS, default all online cores (capped to the bound). */
#define CLI_MAX_THREADS 1024
int cli_default_threads(void);

/* --pooling: OPT_CHOICE over CLI_POOLING_CHOICES; index -> easyrec_pooling. */
#define CLI_POOLING_CHOICES "default|easyrec|cls|mean"
#define CLI_POOLING_HELP "pooling (default: easyrec when the model has the mlp.dense head, else cls)"
easyrec_pooling cli_pooling(int choice);

/* --er_gemm auto|own|blas (env EASYREC_GEMM): the matrix-product backend; the index is an
 * easyrec_gemm value. Needs cli/opt.h. */
#define CLI_GEMM_OPT(dst)                                                                                    \
    OPT_C("gemm", dst, "auto|own|blas",                                                                      \
          "matrix products: easyrec's AVX-512 kernel where the CPU has it (auto, own) or OpenBLAS (blas)",   \
          .env = "EASYREC_GEMM")

/* Model shapes by name (init --preset, train --config): the one table is er_model_presets
 * (src/model/config.c); CLI_PRESET_CHOICES lists its names in order. */
#define CLI_PRESET_CHOICES "tiny|small|base|large"

/* --precision (env EASYREC_PRECISION; OPT_CHOICE index == easyrec_precision) and --isa (env
 * EASYREC_ISA) of every command that encodes with a model. Need cli/opt.h. */
#define CLI_PRECISION_CHOICES "fp32|bf16|int8"
#define CLI_PRECISION_OPT(dst)                                                                                \
    OPT_C("precision", dst, CLI_PRECISION_CHOICES,                                                            \
          "Linear layers in fp32, bf16 or int8, weights converted once at load (default fp32)",                \
          .env = "EASYREC_PRECISION")
#define CLI_ISA_OPT(dst)                                                                                      \
    OPT_S("isa", dst, "LEVEL",                                                                                \
          "bf16/int8 kernels at most at avx512bf16|avx512vnni|avx512|avx2|scalar (default: the CPU's best)",   \
          .env = "EASYREC_ISA")
/* Load the model directory dir and convert it to `precision` at most at `isa` (NULL: the
 * CPU's best); with verbose, one line on stderr with the precision, the kernels and the
 * weights' memory. Returns 0, or prints the error and returns 1. */
int cli_load_model(const char *dir, int precision, const char *isa, int verbose, easyrec_model **out);

/* --max-length bound of every command (the encoder's own limit is checked against the model) */
#define CLI_MAX_LENGTH 65536
#endif
