/* tok_util.h — helpers shared by the tokenizer tests (test_tokenizer.c, test_wordpiece.c,
 * test_bpe_train.c): JSON fixtures, id comparison, hex, temporary directories. */
#ifndef TOK_UTIL_H
#define TOK_UTIL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "easyrec.h"

static inline double tu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline json_t *tu_load_json(const char *path) {
    json_error_t e;
    json_t *j = json_load_file(path, JSON_ALLOW_NUL, &e);
    if (!j) fprintf(stdout, "    cannot read %s: line %d: %s\n", path, e.line, e.text);
    return j;
}

/* 1 when ids[0..n) equals the JSON array of integers `exp`. */
static inline int tu_ids_equal(const int32_t *ids, int n, const json_t *exp) {
    if (n < 0 || (size_t)n != json_array_size(exp)) return 0;
    for (int i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(exp, (size_t)i))) return 0;
    return 1;
}

static inline void tu_print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stdout, "    %s:", label);
    for (int i = 0; i < n && i < 64; i++) fprintf(stdout, " %d", (int)ids[i]);
    fprintf(stdout, n > 64 ? " ...\n" : "\n");
}

/* Tokenize and compare with the JSON ids; prints both on mismatch. Returns 1 when equal. */
static inline int tu_check_case(const easyrec_tokenizer *tok, const char *text, size_t len, int max_length,
                                const json_t *exp) {
    int32_t ids[4096];
    int n = easyrec_tokenize(tok, text, len, max_length, ids, 4096);
    if (n <= 4096 && tu_ids_equal(ids, n, exp)) return 1;
    fprintf(stdout, "    text %.80s (max_length %d): n=%d %s\n", text, max_length, n, n < 0 ? easyrec_last_error() : "");
    tu_print_ids("got", ids, n < 0 ? 0 : n);
    int32_t e[4096];
    int k = (int)json_array_size(exp);
    for (int i = 0; i < k && i < 4096; i++) e[i] = (int32_t)json_integer_value(json_array_get(exp, (size_t)i));
    tu_print_ids("expected", e, k);
    return 0;
}

/* Decode hex into a malloc'd buffer; *n = bytes. */
static inline uint8_t *tu_unhex(const char *h, size_t *n) {
    size_t k = strlen(h) / 2;
    uint8_t *b = malloc(k + 1);
    for (size_t i = 0; i < k; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        b[i] = (uint8_t)v;
    }
    *n = k;
    return b;
}

/* A fresh directory under /tmp; path written to buf. */
static inline int tu_tempdir(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/easyrec-%s-XXXXXX", tag);
    return mkdtemp(buf) ? 0 : -1;
}

static inline int tu_write(const char *dir, const char *name, const void *data, size_t n) {
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static inline void tu_rmdir(const char *dir) {
    char cmd[600];
    if (strncmp(dir, "/tmp/easyrec-", 13)) return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stdout, "    could not remove %s\n", dir);
}

static inline char *tu_read(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long k = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)k + 1);
    *n = fread(b, 1, (size_t)k, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

#endif
