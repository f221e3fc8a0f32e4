/* bench_tokenizer.c — the easyrec side of bench/bench_tokenizer.sh.
 *
 *   bench_tokenizer VOCAB_DIR TEXTS.jsonl OUT_IDS [REPEATS]
 *
 * Measures the tokenizer load time (best of 5 loads of VOCAB_DIR), then tokenizes every text
 * of TEXTS.jsonl (one JSON string per line, as written by bench_tokenizer.mjs extract) with
 * easyrec_tokenize, no truncation, on one thread; best of REPEATS (default 3) timed passes.
 * The first pass starts with an empty per-thread cache, like transformers.js's first pass.
 * Writes the ids of the last pass, one text per line, space separated, and prints
 * "easyrec: load L ms, N texts, T tokens, S s, R tokens/s".
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "easyrec.h"
#include "tokenizer/tokenizer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int fail(const char *what) {
    fprintf(stderr, "bench_tokenizer: %s: %s\n", what, easyrec_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_tokenizer VOCAB_DIR TEXTS.jsonl OUT_IDS [REPEATS]\n");
        return 2;
    }
    int repeats = argc > 4 ? atoi(argv[4]) : 3;
    easyrec_tokenizer *tok = NULL;
    double load_ms = 1e30;
    for (int i = 0; i < 5; i++) {
        easyrec_tokenizer_free(tok);
        double t0 = now();
        if (easyrec_tokenizer_load(argv[1], &tok)) return fail(argv[1]);
        double ms = (now() - t0) * 1e3;
        if (ms < load_ms) load_ms = ms;
    }

    FILE *f = fopen(argv[2], "rb");
    if (!f) return fail(argv[2]);
    size_t cap = 1 << 20, n = 0, lcap = 0;
    char **texts = malloc(cap * sizeof(*texts)), *line = NULL;
    size_t *lens = malloc(cap * sizeof(*lens));
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        json_error_t e;
        json_t *s = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!json_is_string(s)) {
            fprintf(stderr, "bench_tokenizer: %s: line %zu is not a JSON string\n", argv[2], n + 1);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, cap * sizeof(*texts));
            lens = realloc(lens, cap * sizeof(*lens));
        }
        lens[n] = json_string_length(s);
        texts[n] = malloc(lens[n] + 1);
        memcpy(texts[n], json_string_value(s), lens[n] + 1);
        n++;
        json_decref(s);
    }
    free(line);
    fclose(f);

    int idcap = 1 << 16;
    int32_t *ids = malloc((size_t)idcap * sizeof(*ids));
    FILE *out = NULL;
    double best = 1e30;
    long long ntok = 0;
    for (int r = 0; r < repeats; r++) {
        er_tokenizer_thread_cleanup(); /* every pass starts cold */
        int last = r == repeats - 1;
        if (last && !(out = fopen(argv[3], "wb"))) return fail(argv[3]);
        ntok = 0;
        double t0 = now(), io = 0;
        for (size_t i = 0; i < n; i++) {
            int k = easyrec_tokenize(tok, texts[i], lens[i], 0, ids, idcap);
            if (k > idcap) {
                idcap = k;
                ids = realloc(ids, (size_t)idcap * sizeof(*ids));
                k = easyrec_tokenize(tok, texts[i], lens[i], 0, ids, idcap);
            }
            if (k < 0) return fail("easyrec_tokenize");
            ntok += k;
            if (last) { /* writing is not timed */
                double w0 = now();
                for (int j = 0; j < k; j++) fprintf(out, j ? " %d" : "%d", ids[j]);
                fputc('\n', out);
                io += now() - w0;
            }
        }
        double dt = now() - t0 - io;
        if (dt < best) best = dt;
    }
    fclose(out);
    printf("easyrec: load %.1f ms, %zu texts, %lld tokens, %.3f s, %.0f tokens/s\n", load_ms, n, ntok, best,
           (double)ntok / best);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(ids);
    easyrec_tokenizer_free(tok);
    er_tokenizer_thread_cleanup();
    return 0;
}
