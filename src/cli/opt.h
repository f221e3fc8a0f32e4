/* opt.h — the one option layer of the easyrec command line.
 *
 * Each subcommand describes its options in one table (cli_opt[], ended by {0}); opt_parse
 * fills the destinations with typed, range-checked values, reads EASYREC_* environment
 * variables for options that name one (the command line wins), checks required options and
 * the number of positional arguments, and generates `--help` from the same table. Every
 * error is one line "easyrec <cmd>: <what>" followed by "(see easyrec <cmd> --help)".
 *
 * Accepted forms: --name VALUE, --name=VALUE, flags as --name; "--" ends the options.
 */
#ifndef ER_CLI_OPT_H
#define ER_CLI_OPT_H

#include <stdint.h>

typedef enum {
    OPT_END = 0,
    OPT_FLAG,   /* int*: set to 1 when present (no value) */
    OPT_INT,    /* int*: integer in [min, max] */
    OPT_I64,    /* int64_t*: integer in [min, max] (exact up to 2^53 in the bounds) */
    OPT_DOUBLE, /* double*: finite number in [min, max] */
    OPT_STR,    /* const char**: any non-empty string (points into argv/environ) */
    OPT_CHOICE, /* int*: index of the value within `choices` ("a|b|c") */
    OPT_LIST,   /* const char**: like OPT_STR, but repeated use appends with ',' (owned
                   by the parser until opt_free_lists; see below) */
} opt_type;

typedef struct {
    const char *name;    /* long name without "--" */
    opt_type type;
    void *dst;           /* see opt_type; keeps its prior value as the default */
    const char *meta;    /* value placeholder in --help: "N", "DIR", ... */
    const char *help;    /* one line; the default is appended from *dst unless help has "(default" */
    double min, max;     /* numeric range (both 0: no range check) */
    const char *choices; /* OPT_CHOICE: "easyrec|cls|mean" */
    const char *env;     /* optional environment variable, e.g. "EASYREC_PORT" */
    int required;        /* 1: opt_parse fails when absent (from argv and env) */
    int seen;            /* out: 1 when given on the command line or through env */
    char *owned_;        /* internal: OPT_LIST's joined string */
} cli_opt;

/* Table rows, with designated initializers (extra fields after the fixed ones, e.g.
 * `.env = "EASYREC_THREADS"`, `.required = 1`). */
#define OPT_S(nm, d, mt, hp, ...) {.name = nm, .type = OPT_STR, .dst = d, .meta = mt, .help = hp, __VA_ARGS__}
#define OPT_F(nm, d, hp, ...) {.name = nm, .type = OPT_FLAG, .dst = d, .help = hp, __VA_ARGS__}
#define OPT_I(nm, d, mt, hp, lo, hi, ...)                                                                       \
    {.name = nm, .type = OPT_INT, .dst = d, .meta = mt, .help = hp, .min = lo, .max = hi, __VA_ARGS__}
#define OPT_L(nm, d, mt, hp, lo, hi, ...)                                                                       \
    {.name = nm, .type = OPT_I64, .dst = d, .meta = mt, .help = hp, .min = lo, .max = hi, __VA_ARGS__}
#define OPT_D(nm, d, mt, hp, lo, hi, ...)                                                                       \
    {.name = nm, .type = OPT_DOUBLE, .dst = d, .meta = mt, .help = hp, .min = lo, .max = hi, __VA_ARGS__}
#define OPT_C(nm, d, ch, hp, ...) {.name = nm, .type = OPT_CHOICE, .dst = d, .choices = ch, .help = hp, __VA_ARGS__}
#define OPT_LIST_(nm, d, mt, hp, ...) {.name = nm, .type = OPT_LIST, .dst = d, .meta = mt, .help = hp, __VA_ARGS__}

typedef struct {
    const char *name;     /* "encode", or "tokenizer train" */
    const char *synopsis; /* "--model DIR --input FILE --output OUT.npy [options]" */
    const char *summary;  /* one or more lines printed under the usage line */
    cli_opt *opts;        /* table ended by {0}; "help" is implicit */
    int min_pos, max_pos; /* positional arguments allowed (max_pos < 0: unlimited) */
    const char *pos_meta; /* "TEXT..." for --help */
} cli_cmd;

/* Parse argv (argv[0] is the command word, skipped). On success returns 0 and, when pos is
 * not NULL, points *pos at the positional arguments (inside argv, reordered) and sets *npos.
 * Returns OPT_HELP after printing the help to stdout (caller exits 0), or 2 after printing a
 * usage error to stderr (caller exits 2). */
#define OPT_HELP (-1)
int opt_parse(cli_cmd *cmd, int argc, char **argv, char ***pos, int *npos);

/* Print the generated help of cmd to f. */
#include <stdio.h>
void opt_print_help(const cli_cmd *cmd, FILE *f);

/* Report a usage error in the standard form and return 2:
 * "easyrec <cmd>: <message>\n(see easyrec <cmd> --help)". */
int opt_usage_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Release the strings OPT_LIST options built (no-op when none). */
void opt_free(cli_cmd *cmd);

/* The option entry named `name` (NULL when the table has none), e.g. to test `seen`. */
cli_opt *opt_find(cli_cmd *cmd, const char *name);

#endif
