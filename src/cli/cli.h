/* cli.h — subcommands of the easyrec command line. Each returns the process exit status
 * (0 ok, 1 failure with "easyrec: <message>" printed, 2 usage error). */
#ifndef ER_CLI_H
#define ER_CLI_H
int cmd_encode(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv); /* "tokenizer train ..." */
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

/* Print "easyrec: <msg>" (msg = easyrec_last_error() when NULL) and return 1. */
int cli_fail(const char *msg);
#endif
