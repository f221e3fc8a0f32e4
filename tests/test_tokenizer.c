/* test_tokenizer.c — RoBERTa byte-level BPE: golden ids, special tokens, truncation, invalid
 * UTF-8, decoding, long inputs, loader errors, thread safety.
 *
 * Golden ids: ../shared/fixtures (46 llama.cpp/GPT-2 vectors re-indexed to RoBERTa, the
 * EasyRec README profiles), ../shared/vocab/README.md's published ids, and
 * tests/fixtures/tokenizer/ (JSON) made by tools/gen_tokenizer_fixtures.py from a port of HF's
 * slow RobertaTokenizer and from CPython's bytes.decode(errors="replace"). Tests needing the
 * RoBERTa vocabulary skip when ../shared is absent.
 */
#include <pthread.h>

#include "tok_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#define ROBERTA "../shared/vocab/roberta-base"

static easyrec_tokenizer *roberta(void) {
    static easyrec_tokenizer *tok;
    if (tok) return tok;
    if (!check_shared_dir()) return NULL;
    if (easyrec_tokenizer_load(ROBERTA, &tok)) {
        fprintf(stdout, "    load: %s\n", easyrec_last_error());
        return NULL;
    }
    return tok;
}

#define NEED_ROBERTA(t)                                                                       \
    easyrec_tokenizer *t = roberta();                                                         \
    if (!t) {                                                                                 \
        if (!check_shared_dir()) SKIP("../shared/vocab/roberta-base absent");                 \
        REQUIRE(t);                                                                           \
    }

/* Every case of a fixture file: tokenize, compare, decode back. */
static void run_cases(const char *path, const char *ids_key, int check_decode) {
    NEED_ROBERTA(tok);
    json_t *cases = tu_load_json(path);
    REQUIRE(cases && json_array_size(cases) > 0);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *t = json_object_get(c, "text"), *exp = json_object_get(c, ids_key);
        json_t *ml = json_object_get(c, "max_length");
        const char *text = json_string_value(t);
        size_t len = json_string_length(t);
        int max_length = ml ? (int)json_integer_value(ml) : 0;
        CHECK(tu_check_case(tok, text, len, max_length, exp));
        if (!check_decode || ml || strstr(text, "<") || memchr(text, 0, len)) continue;
        /* decode(skip specials) gives the text back: byte-level BPE is lossless */
        int32_t ids[4096];
        char out[8192];
        int n = easyrec_tokenize(tok, text, len, 0, ids, 4096);
        int k = easyrec_detokenize(tok, ids, n, 1, out, sizeof(out));
        if (k != (int)len || memcmp(out, text, len)) CHECK_FAILMSG("decode of %.60s gave %.60s", text, out);
    }
    json_decref(cases);
}

TEST(shared_roberta_cases) {
    if (!check_shared_dir()) SKIP("../shared absent");
    json_t *j = tu_load_json("../shared/fixtures/roberta_tokenizer_cases.json");
    REQUIRE(j);
    CHECK_EQ_INT(json_array_size(j), 46);
    json_decref(j);
    run_cases("../shared/fixtures/roberta_tokenizer_cases.json", "roberta_ids", 1);
}

TEST(readme_cases) {
    if (!check_shared_dir()) SKIP("../shared absent");
    run_cases("../shared/fixtures/easyrec_readme_cases.json", "roberta_ids", 1);
}

TEST(edge_cases) { run_cases("tests/fixtures/tokenizer/roberta_cases.json", "roberta_ids", 1); }

TEST(published_ids) {
    NEED_ROBERTA(tok);
    static const struct {
        const char *text;
        int32_t ids[12];
        int n;
    } pub[] = {
        {"Hello world", {0, 31414, 232, 2}, 4},
        {" Hello world", {0, 20920, 232, 2}, 4},
        {"Hello world! cécé herlolip", {0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2}, 11},
    };
    for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
        int32_t ids[32];
        int n = easyrec_tokenize(tok, pub[i].text, strlen(pub[i].text), 512, ids, 32);
        CHECK_EQ_INT(n, pub[i].n);
        for (int k = 0; k < n && k < pub[i].n; k++) CHECK_EQ_INT(ids[k], pub[i].ids[k]);
    }
    CHECK_EQ_INT(easyrec_tokenizer_vocab_size(tok), 50265);
    CHECK_EQ_INT(easyrec_tokenizer_pad_id(tok), 1);
    CHECK(easyrec_tokenizer_kind_of(tok) == EASYREC_TOKENIZER_BPE);
    const tokenizer_specials *sp = er_tokenizer_specials_of(tok);
    CHECK(sp->bos == 0 && sp->pad == 1 && sp->eos == 2 && sp->unk == 3 && sp->mask == 50264);
    CHECK_EQ_INT(easyrec_tokenizer_token_id(tok, "<mask>"), 50264);
    CHECK_EQ_INT(easyrec_tokenizer_token_id(tok, "Hello"), 31414);
    CHECK_EQ_INT(easyrec_tokenizer_token_id(tok, "\xc4\xa0Hello"), 20920); /* "ĠHello" */
    CHECK_EQ_INT(easyrec_tokenizer_token_id(tok, "no-such-token-xyz"), EASYREC_ERR_ARG);
    size_t len;
    const char *s = er_tokenizer_id_to_token(tok, 20920, &len);
    CHECK(s && len == 7 && !memcmp(s, "\xc4\xa0Hello", 7));
    CHECK(er_tokenizer_id_to_token(tok, 99999, &len) == NULL);
}

TEST(specials_in_text) {
    NEED_ROBERTA(tok);
    int32_t ids[64];
    /* <mask> absorbs all the whitespace before it (lstrip), not after it */
    const char *a = "Paris is the <mask> of France.", *b = "Paris is the<mask> of France.";
    int32_t ia[64], ib[64];
    int na = easyrec_tokenize(tok, a, strlen(a), 0, ia, 64), nb = easyrec_tokenize(tok, b, strlen(b), 0, ib, 64);
    CHECK(na == nb && na > 0 && !memcmp(ia, ib, (size_t)na * sizeof(*ia)));
    CHECK_EQ_INT(ia[4], 50264);
    int n = easyrec_tokenize(tok, "<s></s><pad><unk><mask>", 23, 0, ids, 64);
    CHECK_EQ_INT(n, 7);
    int32_t want[] = {0, 0, 2, 1, 3, 50264, 2};
    for (int i = 0; i < 7 && i < n; i++) CHECK_EQ_INT(ids[i], want[i]);
    /* er_tokenizer_encode without specials */
    n = er_tokenizer_encode(tok, "Hello world", 11, 0, 0, ids, 64);
    CHECK(n == 2 && ids[0] == 31414 && ids[1] == 232);
    n = er_tokenizer_encode(tok, "Hello world", 11, 1, 1, ids, 64);
    CHECK(n == 3 && ids[0] == 0 && ids[1] == 31414 && ids[2] == 2);
}

TEST(truncation_and_buffers) {
    NEED_ROBERTA(tok);
    const char *t = "one two three four five six seven eight nine ten";
    int32_t full[64], ids[64];
    int n = easyrec_tokenize(tok, t, strlen(t), 0, full, 64);
    REQUIRE(n == 12);
    for (int ml = 2; ml <= 14; ml++) {
        int k = easyrec_tokenize(tok, t, strlen(t), ml, ids, 64);
        int want = ml < n ? ml : n;
        CHECK_EQ_INT(k, want);
        if (k != want) continue;
        CHECK(ids[0] == 0 && ids[k - 1] == 2);
        for (int i = 1; i < k - 1; i++) CHECK_EQ_INT(ids[i], full[i]);
    }
    CHECK_EQ_INT(easyrec_tokenize(tok, t, strlen(t), 1, ids, 64), EASYREC_ERR_ARG);
    /* small buffers: the full count comes back and only cap ids are written */
    for (int cap = 0; cap <= n; cap++) {
        int32_t buf[64];
        for (int i = 0; i < 64; i++) buf[i] = -7;
        CHECK_EQ_INT(easyrec_tokenize(tok, t, strlen(t), 0, cap ? buf : NULL, cap), n);
        for (int i = 0; i < cap; i++) CHECK_EQ_INT(buf[i], full[i]);
        CHECK_EQ_INT(buf[cap], -7);
    }
    CHECK_EQ_INT(easyrec_tokenize(tok, "", 0, 0, ids, 64), 2);
    CHECK_EQ_INT(easyrec_tokenize(tok, NULL, 0, 0, ids, 64), 2);
    CHECK_EQ_INT(easyrec_tokenize(tok, NULL, 3, 0, ids, 64), EASYREC_ERR_ARG);
    CHECK_EQ_INT(easyrec_tokenize(tok, "x", 1, 0, NULL, 5), EASYREC_ERR_ARG);
    CHECK_EQ_INT(easyrec_tokenize(tok, "x", 1, 0, ids, -1), EASYREC_ERR_ARG);
    /* text need not be NUL-terminated: only len bytes are read */
    char raw[5] = {'H', 'e', 'l', 'l', 'o'};
    CHECK_EQ_INT(easyrec_tokenize(tok, raw, 5, 0, ids, 64), 3);
    CHECK_EQ_INT(ids[1], 31414);
}

TEST(invalid_utf8) {
    json_t *cases = tu_load_json("tests/fixtures/tokenizer/utf8_replace.json");
    REQUIRE(cases && json_array_size(cases) > 50);
    easyrec_tokenizer *tok = roberta();
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        size_t n, rn;
        uint8_t *b = tu_unhex(json_string_value(json_object_get(c, "bytes")), &n);
        uint8_t *r = tu_unhex(json_string_value(json_object_get(c, "replaced")), &rn);
        uint8_t out[256];
        CHECK_EQ_INT(er_utf8_replaced_len(b, n), rn);
        er_utf8_replace(b, n, out);
        if (memcmp(out, r, rn)) CHECK_FAILMSG("replacement of %s differs from CPython", json_string_value(json_object_get(c, "bytes")));
        CHECK_EQ_INT(er_utf8_valid(b, n), n == rn && !memcmp(b, r, n));
        if (tok) CHECK(tu_check_case(tok, (const char *)b, n, 0, json_object_get(c, "roberta_ids")));
        free(b);
        free(r);
    }
    json_decref(cases);
}

TEST(decode) {
    NEED_ROBERTA(tok);
    int32_t ids[64];
    char out[256];
    const char *t = " Hello <mask> world\n\tüñí😀";
    int n = easyrec_tokenize(tok, t, strlen(t), 0, ids, 64);
    int k = easyrec_detokenize(tok, ids, n, 0, out, sizeof(out));
    CHECK(k > 0 && !strcmp(out, "<s> Hello<mask> world\n\tüñí😀</s>"));
    k = easyrec_detokenize(tok, ids, n, 1, out, sizeof(out));
    CHECK(k > 0 && !strcmp(out, " Hello world\n\tüñí😀"));
    /* short buffer: NUL-terminated prefix, full length returned */
    char small[6];
    CHECK_EQ_INT(easyrec_detokenize(tok, ids, n, 1, small, sizeof(small)), k);
    CHECK(!strcmp(small, " Hell"));
    CHECK_EQ_INT(easyrec_detokenize(tok, ids, n, 1, NULL, 0), k);
    /* an id for a lone byte decodes with errors="replace" */
    int32_t lone[] = {easyrec_tokenizer_token_id(tok, "\xc3\xa2"), 232}; /* "â" = byte 0xE2 */
    REQUIRE(lone[0] > 0);
    k = easyrec_detokenize(tok, lone, 2, 1, out, sizeof(out));
    CHECK(k == 9 && !strcmp(out, "\xef\xbf\xbd world")); /* 232 = "Ġworld" */
    int32_t bad[] = {31414, 50265};
    CHECK_EQ_INT(easyrec_detokenize(tok, bad, 2, 1, out, sizeof(out)), EASYREC_ERR_ARG);
    int32_t neg[] = {-1};
    CHECK_EQ_INT(easyrec_detokenize(tok, neg, 1, 1, out, sizeof(out)), EASYREC_ERR_ARG);
    CHECK_EQ_INT(easyrec_detokenize(tok, ids, 0, 1, out, sizeof(out)), 0);
    CHECK(out[0] == 0);
}

/* 1 MB single-line inputs of several shapes: never crash, finish fast. */
TEST(long_inputs) {
    NEED_ROBERTA(tok);
    size_t n = 1 << 20;
    char *s = malloc(n);
    int32_t *ids = malloc(sizeof(*ids) * (n + 2));
    REQUIRE(s && ids);
    uint32_t rng = 12345;
    for (int shape = 0; shape < 6; shape++) {
        for (size_t i = 0; i < n; i++) {
            rng = rng * 1103515245u + 12345u;
            unsigned r = rng >> 16;
            s[i] = shape == 0 ? "abcdefgh "[r % 9]               /* words */
                   : shape == 1 ? 'a'                            /* one 1 MB word */
                   : shape == 2 ? ' '                            /* one whitespace run */
                   : shape == 3 ? (char)(r & 0xff)               /* random bytes */
                   : shape == 4 ? "\xe4\xb8\xad"[i % 3]          /* CJK run */
                                : "!?.,;"[r % 5];                /* punctuation run */
        }
        size_t len = shape == 4 ? n - n % 3 : n; /* whole characters */
        double t0 = tu_now();
        int k = easyrec_tokenize(tok, s, len, 0, ids, (int)(n + 2));
        double dt = tu_now() - t0;
        CHECK(k >= 2 && k <= (int)n + 2);
        if (dt > 5.0) CHECK_FAILMSG("shape %d: %.2f s for 1 MB", shape, dt);
        fprintf(stdout, "    1 MB input, shape %d: %d ids in %.3f s\n", shape, k, dt);
        t0 = tu_now();
        CHECK_EQ_INT(easyrec_tokenize(tok, s, len, 512, ids, 512), k < 512 ? k : 512);
        if (shape == 0 && tu_now() - t0 > 0.05) CHECK_FAILMSG("truncated tokenize of 1 MB took %.3f s", tu_now() - t0);
        /* decoding the whole thing gives the text back (random bytes: CPython's replacement) */
        if (shape != 3) {
            char *out = malloc(n + 1);
            CHECK_EQ_INT(easyrec_detokenize(tok, ids, 0, 1, out, n + 1), 0);
            k = easyrec_tokenize(tok, s, len, 0, ids, (int)(n + 2));
            int dl = easyrec_detokenize(tok, ids, k, 1, out, n + 1);
            CHECK(dl == (int)len && !memcmp(out, s, len));
            free(out);
        }
    }
    free(s);
    free(ids);
}

/* ---- loader errors ---------------------------------------------------------------------------- */

static int load_dir(const char *vocab, const char *merges) {
    char dir[128];
    if (tu_tempdir(dir, sizeof(dir), "tok")) return -999;
    if (vocab) tu_write(dir, "vocab.json", vocab, strlen(vocab));
    if (merges) tu_write(dir, "merges.txt", merges, strlen(merges));
    easyrec_tokenizer *t = NULL;
    int rc = easyrec_tokenizer_load(dir, &t);
    easyrec_tokenizer_free(t);
    tu_rmdir(dir);
    return rc;
}

TEST(loader_errors) {
    easyrec_tokenizer *t = (easyrec_tokenizer *)1;
    CHECK_EQ_INT(easyrec_tokenizer_load("/nonexistent/dir", &t), EASYREC_ERR_IO);
    CHECK(t == NULL);
    CHECK(strstr(easyrec_last_error(), "/nonexistent/dir") != NULL);
    CHECK_EQ_INT(easyrec_tokenizer_load(NULL, &t), EASYREC_ERR_ARG);
    const char *ok_merges = "#version: 0.2\na b\n";
    CHECK_EQ_INT(load_dir("{\"<s>\": 0, \"</s>\": 2, \"a\": 5, \"b\": 6, \"ab\": 7}", ok_merges), EASYREC_OK);
    /* whole files that are not a flat object of string -> id */
    static const char *bad_file[] = {"", "[]", "{", "{\"<s>\": 0, \"</s>\": 2", "{\"<s>\": 0, \"</s>\": 2} x",
                                     "{\"<s>\": 0, \"</s>\": 2,}", "\xff{}", "{\"<s>\": 0, \"</s>\": 2, \"\xff\": 3}"};
    for (size_t i = 0; i < sizeof(bad_file) / sizeof(bad_file[0]); i++) {
        int rc = load_dir(bad_file[i], ok_merges);
        if (rc != EASYREC_ERR_FORMAT || !strstr(easyrec_last_error(), "vocab.json"))
            CHECK_FAILMSG("file %zu: rc %d (%s)", i, rc, easyrec_last_error());
    }
    /* one bad entry in an otherwise good file */
    static const char *bad_entry[] = {"\"a\": -1", "\"a\": 1.5", "\"a\": \"1\"", "\"a\" 1", "\"a\\q\": 1",
                                      "\"a\": 99999999999", "\"a\": 01", "\"a\x01\": 1", "\"a\": 1e3",
                                      "\"a\\u12\": 1", "\"a\": true", "a: 1", "\"a\": "};
    for (size_t i = 0; i < sizeof(bad_entry) / sizeof(bad_entry[0]); i++) {
        char v[256];
        snprintf(v, sizeof(v), "{\"<s>\": 0, \"</s>\": 2, %s}", bad_entry[i]);
        int rc = load_dir(v, ok_merges);
        if (rc != EASYREC_ERR_FORMAT || !strstr(easyrec_last_error(), "vocab.json"))
            CHECK_FAILMSG("entry %s: rc %d (%s)", bad_entry[i], rc, easyrec_last_error());
    }
    /* valid JSON: escapes, a lone surrogate, a repeated key; but no begin/end token */
    CHECK_EQ_INT(load_dir("{\"\\ud800x\\u00e9\\n\": 1, \"<s>\": 0, \"</s>\": 2, \"<s>\": 4}", ok_merges), EASYREC_OK);
    CHECK_EQ_INT(load_dir("{\"a\": 1}", ok_merges), EASYREC_ERR_FORMAT);
    CHECK(strstr(easyrec_last_error(), "<s>") != NULL);
    /* merges.txt: not UTF-8 is an error; odd lines are tolerated like HF does */
    CHECK_EQ_INT(load_dir("{\"<s>\": 0, \"</s>\": 2}", "#v\n\xff\xfe\n"), EASYREC_ERR_FORMAT);
    CHECK_EQ_INT(load_dir("{\"<s>\": 0, \"</s>\": 2}", "#v\na b c\n\n x \nq r"), EASYREC_OK);
    CHECK_EQ_INT(load_dir("{\"<s>\": 0, \"</s>\": 2}", ""), EASYREC_OK);
}

/* A tiny vocabulary three ways: vocab.json + merges.txt, tokenizer.json with "a b" merges and
 * with ["a", "b"] merges — same ids; and BPE on it follows the merge ranks. */
TEST(tiny_vocab_and_tokenizer_json) {
    const char *vocab = "{\"<s>\":0,\"<pad>\":1,\"</s>\":2,\"<unk>\":3,\"l\":4,\"o\":5,\"w\":6,\"e\":7,\"r\":8,"
                        "\"lo\":9,\"low\":10,\"er\":11,\"\\u0120\":12,\"\\u0120low\":13,\"lower\":14,\"<mask>\":15}";
    const char *merges = "#version: 0.2\nl o\nlo w\ne r\n\xc4\xa0 low\nlow er\n";
    const char *tj_fmt = "{\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":%s},\"added_tokens\":["
                         "{\"id\":0,\"content\":\"<s>\"},{\"id\":2,\"content\":\"</s>\"},"
                         "{\"id\":15,\"content\":\"<mask>\",\"lstrip\":true}]}";
    const char *m1 = "[\"l o\",\"lo w\",\"e r\",\"\\u0120 low\",\"low er\"]";
    const char *m2 = "[[\"l\",\"o\"],[\"lo\",\"w\"],[\"e\",\"r\"],[\"\\u0120\",\"low\"],[\"low\",\"er\"]]";
    char dirs[3][128], tj[1024];
    easyrec_tokenizer *t[3] = {0};
    for (int k = 0; k < 3; k++) {
        REQUIRE(!tu_tempdir(dirs[k], sizeof(dirs[k]), "tiny"));
        if (k == 0) {
            tu_write(dirs[k], "vocab.json", vocab, strlen(vocab));
            tu_write(dirs[k], "merges.txt", merges, strlen(merges));
        } else {
            snprintf(tj, sizeof(tj), tj_fmt, vocab, k == 1 ? m1 : m2);
            tu_write(dirs[k], "tokenizer.json", tj, strlen(tj));
        }
        if (easyrec_tokenizer_load(dirs[k], &t[k])) CHECK_FAILMSG("load %d: %s", k, easyrec_last_error());
    }
    const char *texts[] = {"lower low", "lowlow <mask>", "rower", "xyz"};
    static const int32_t want[4][8] = {{0, 14, 13, 2}, {0, 10, 10, 15, 2}, {0, 8, 5, 6, 11, 2}, {0, 3, 3, 3, 2}};
    static const int nwant[4] = {4, 5, 6, 5};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 3; k++) {
            if (!t[k]) continue;
            int32_t ids[16];
            int n = easyrec_tokenize(t[k], texts[i], strlen(texts[i]), 0, ids, 16);
            int same = n == nwant[i];
            for (int j = 0; same && j < n; j++) same = ids[j] == want[i][j];
            if (!same) {
                CHECK_FAILMSG("%s via %d", texts[i], k);
                tu_print_ids("got", ids, n);
            }
        }
    for (int k = 0; k < 3; k++) {
        easyrec_tokenizer_free(t[k]);
        tu_rmdir(dirs[k]);
    }
}

/* ---- threads ------------------------------------------------------------------------------- */

typedef struct {
    const easyrec_tokenizer *tok;
    int ok;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    static const char *texts[] = {"This user is a basketball fan.", "Hello world", "  tokenization\tis\nfun  "};
    int32_t ref[3][64], ids[64];
    int nref[3];
    for (int i = 0; i < 3; i++) nref[i] = easyrec_tokenize(a->tok, texts[i], strlen(texts[i]), 0, ref[i], 64);
    a->ok = 1;
    for (int r = 0; r < 2000; r++) {
        int i = r % 3, n = easyrec_tokenize(a->tok, texts[i], strlen(texts[i]), 0, ids, 64);
        if (n != nref[i] || memcmp(ids, ref[i], (size_t)n * sizeof(*ids))) a->ok = 0;
    }
    return NULL;
}

TEST(threads) {
    NEED_ROBERTA(tok);
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){tok, 0};
        REQUIRE(!pthread_create(&th[i], NULL, thr_main, &args[i]));
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ok);
    }
}

TEST(load_time) {
    if (!check_shared_dir()) SKIP("../shared absent");
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        easyrec_tokenizer *t;
        double t0 = tu_now();
        REQUIRE(easyrec_tokenizer_load(ROBERTA, &t) == EASYREC_OK);
        double dt = tu_now() - t0;
        if (dt < best) best = dt;
        easyrec_tokenizer_free(t);
    }
    fprintf(stdout, "    roberta-base vocabulary load: %.1f ms\n", best * 1e3);
    CHECK(best < 0.5); /* goal is 50 ms in -O2; generous for sanitizer builds */
}

TEST(cleanup) {
    easyrec_tokenizer_free(roberta());
    easyrec_tokenizer_free(NULL);
    er_tokenizer_thread_cleanup();
}

CHECK_MAIN(CASE(shared_roberta_cases), CASE(readme_cases), CASE(edge_cases), CASE(published_ids),
           CASE(specials_in_text), CASE(truncation_and_buffers), CASE(invalid_utf8), CASE(decode), CASE(long_inputs),
           CASE(loader_errors), CASE(tiny_vocab_and_tokenizer_json), CASE(threads), CASE(load_time), CASE(cleanup))
