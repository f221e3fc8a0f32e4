/* cmd_tokenize.c — `easyrec tokenize --model DIR [--max-length N] [--decode] [--keep-special]`
 *
 * Encode: each line of stdin (without its "\n" or "\r\n") -> one JSON array of ids on stdout,
 * special tokens included (<s> ... </s>), truncated to N ids when --max-length is given.
 * Decode (--decode): each line of stdin is a JSON array of ids -> one line of text, special
 * tokens skipped unless --keep-special. A decoded text containing a newline spans lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opt.h"
#include "easyrec.h"

typedef struct {
    int32_t *ids;
    int cap;
    char *text;
    size_t tcap;
} bufs;

static int grow_ids(bufs *b, int need) {
    if (need <= b->cap) return 0;
    int ncap = b->cap ? b->cap : 1024;
    while (ncap < need) ncap = ncap > (1 << 29) ? need : ncap * 2;
    int32_t *n = realloc(b->ids, (size_t)ncap * sizeof(*n));
    if (!n) return -1;
    b->ids = n;
    b->cap = ncap;
    return 0;
}

static int encode_line(const easyrec_tokenizer *tok, const char *line, size_t len, int max_length, bufs *b) {
    int n = easyrec_tokenize(tok, line, len, max_length, b->ids, b->cap);
    if (n > b->cap) {
        if (grow_ids(b, n)) return cli_fail("out of memory");
        n = easyrec_tokenize(tok, line, len, max_length, b->ids, b->cap);
    }
    if (n < 0) return cli_fail(NULL);
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)b->ids[i]);
    fputs("]\n", stdout);
    return 0;
}

/* Parse "[1, 2, 3]" (JSON array of integers) into b->ids; returns the count or -1. */
static int parse_ids(const char *s, bufs *b) {
    int n = 0;
    while (*s == ' ' || *s == '\t') s++;
    if (*s++ != '[') return -1;
    for (;;) {
        while (*s == ' ' || *s == '\t') s++;
        if (*s == ']' && n == 0) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX) return -1;
        if (grow_ids(b, n + 1)) return -1;
        b->ids[n++] = (int32_t)v;
        s = end;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == ']') break;
        if (*s++ != ',') return -1;
    }
    s++;
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    return *s ? -1 : n;
}

static int decode_line(const easyrec_tokenizer *tok, const char *line, long line_no, int keep, bufs *b) {
    int n = parse_ids(line, b);
    if (n < 0) {
        fprintf(stderr, "easyrec: stdin line %ld: expected a JSON array of token ids\n", line_no);
        return 1;
    }
    int len = easyrec_detokenize(tok, b->ids, n, !keep, b->text, b->tcap);
    if (len >= 0 && (size_t)len >= b->tcap) {
        char *nt = realloc(b->text, (size_t)len + 1);
        if (!nt) return cli_fail("out of memory");
        b->text = nt;
        b->tcap = (size_t)len + 1;
        len = easyrec_detokenize(tok, b->ids, n, !keep, b->text, b->tcap);
    }
    if (len < 0) {
        fprintf(stderr, "easyrec: stdin line %ld: %s\n", line_no, easyrec_last_error());
        return 1;
    }
    fwrite(b->text, 1, (size_t)len, stdout);
    putchar('\n');
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    int max_length = 0, decode = 0, keep = 0;
    cli_opt opts[] = {
        OPT_S("model", &model, "DIR", "directory with vocab.json + merges.txt, vocab.txt or tokenizer.json",
              .required = 1),
        OPT_I("max-length", &max_length, "N", "truncate to N ids including <s> and </s> (default: no truncation)", 2,
              1 << 30),
        OPT_F("decode", &decode, "the reverse: JSON arrays of ids on stdin -> text lines"),
        OPT_F("keep-special", &keep, "with --decode, keep special tokens in the text"),
        {0}};
    cli_cmd cmd = {"tokenize", "--model DIR [options] < lines",
                   "Text lines on stdin -> one JSON array of token ids per line on stdout (specials included).", opts,
                   0, 0, NULL};
    int rc0 = opt_parse(&cmd, argc, argv, NULL, NULL);
    if (rc0) return rc0 == OPT_HELP ? 0 : rc0;
    easyrec_tokenizer *tok;
    if (easyrec_tokenizer_load(model, &tok)) return cli_fail(NULL);
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    bufs b = {0};
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long line_no = 0;
    int rc = grow_ids(&b, 1024) ? cli_fail("out of memory") : 0;
    while (!rc && (len = getline(&line, &lcap, stdin)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (len > 0 && line[len - 1] == '\r') line[--len] = 0;
        rc = decode ? decode_line(tok, line, line_no, keep, &b) : encode_line(tok, line, (size_t)len, max_length, &b);
    }
    if (!rc && ferror(stdin)) rc = cli_fail("error reading stdin");
    if (fflush(stdout) && !rc) rc = cli_fail("error writing stdout");
    free(line);
    free(b.ids);
    free(b.text);
    easyrec_tokenizer_free(tok);
    return rc;
}
