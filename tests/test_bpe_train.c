/* test_bpe_train.c — the byte-level BPE trainer (merge order and tie rule on hand-checked
 * corpora, determinism, output format, round trip through the tokenizer) and the two CLI
 * commands (`tokenize`, `tokenizer train`) end to end when EASYREC_BIN is set (make test). */
#include "tok_util.h"
#include "tokenizer/tokenizer.h"

static int train_text(const char *corpus, int vocab_size, int min_freq, char *dir, size_t cap) {
    if (tu_tempdir(dir, cap, "train")) return -999;
    char in[256];
    snprintf(in, sizeof(in), "%s/corpus.txt", dir);
    if (tu_write(dir, "corpus.txt", corpus, strlen(corpus))) return -998;
    const char *files[] = {in};
    bpe_train_opts o = {vocab_size, min_freq};
    return er_bpe_train(files, 1, &o, dir, NULL);
}

static char *merges_of(const char *dir) {
    char p[256];
    size_t n;
    snprintf(p, sizeof(p), "%s/merges.txt", dir);
    return tu_read(p, &n);
}

/* "ab ab ab\nabc\n": pieces ab, Ġab x2, Ċ x2, abc. (a,b) occurs 4 times -> first; then (Ġ,ab) 2,
 * then (Ċ has no pair), then (ab,c) 1 when min_frequency allows it. */
TEST(merge_order) {
    char dir[128];
    REQUIRE(train_text("ab ab ab\nabc\n", 1000, 1, dir, sizeof(dir)) == EASYREC_OK);
    char *m = merges_of(dir);
    REQUIRE(m);
    CHECK(!strcmp(m, "#version: 0.2\na b\n\xc4\xa0 ab\nab c\n"));
    free(m);
    tu_rmdir(dir);
    /* min_frequency 2 stops before (ab,c) */
    REQUIRE(train_text("ab ab ab\nabc\n", 1000, 2, dir, sizeof(dir)) == EASYREC_OK);
    m = merges_of(dir);
    CHECK(m && !strcmp(m, "#version: 0.2\na b\n\xc4\xa0 ab\n"));
    free(m);
    tu_rmdir(dir);
    /* vocab_size caps the merges: 4 + 256 + 1 merge + <mask> */
    REQUIRE(train_text("ab ab ab\nabc\n", 262, 1, dir, sizeof(dir)) == EASYREC_OK);
    m = merges_of(dir);
    CHECK(m && !strcmp(m, "#version: 0.2\na b\n"));
    free(m);
    tu_rmdir(dir);
}

/* Ties: "xy zw\n" has (x,y), (Ġ,z), (z,w) once each; the smallest (left id, right id) goes
 * first; ids follow code points, so x < z < Ġ: x y, then z w, then Ġ zw. */
TEST(tie_rule) {
    char dir[128];
    REQUIRE(train_text("xy zw\n", 1000, 1, dir, sizeof(dir)) == EASYREC_OK);
    char *m = merges_of(dir);
    CHECK(m && !strcmp(m, "#version: 0.2\nx y\nz w\n\xc4\xa0 zw\n"));
    free(m);
    tu_rmdir(dir);
    /* overlapping pairs: "aaaa" x2 -> (a,a) merges left to right: aa aa, then (aa,aa) */
    REQUIRE(train_text("aaaa\naaaa\n", 1000, 2, dir, sizeof(dir)) == EASYREC_OK);
    m = merges_of(dir);
    CHECK(m && !strcmp(m, "#version: 0.2\na a\naa aa\n"));
    free(m);
    tu_rmdir(dir);
}

static const char corpus[] =
    "This user is a basketball fan and likes to play basketball and watch NBA games.\n"
    "This basketball draws in NBA enthusiasts.\n"
    "This item is nice for swimming lovers.\n"
    "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 don't won't 2024 3.14\n"
    "Users who like swimming also like   running,\ttennis and\r\nbasketball!!\n"
    "bad bytes \xff\xfe here\n";

TEST(deterministic_and_round_trip) {
    char d1[128], d2[128];
    REQUIRE(train_text(corpus, 400, 2, d1, sizeof(d1)) == EASYREC_OK);
    REQUIRE(train_text(corpus, 400, 2, d2, sizeof(d2)) == EASYREC_OK);
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char p1[256], p2[256];
        size_t n1 = 0, n2 = 0;
        snprintf(p1, sizeof(p1), "%s/%s", d1, names[i]);
        snprintf(p2, sizeof(p2), "%s/%s", d2, names[i]);
        char *a = tu_read(p1, &n1), *b = tu_read(p2, &n2);
        CHECK(a && b && n1 == n2 && !memcmp(a, b, n1));
        free(a);
        free(b);
    }
    easyrec_tokenizer *tok;
    REQUIRE(easyrec_tokenizer_load(d1, &tok) == EASYREC_OK);
    int vs = easyrec_tokenizer_vocab_size(tok);
    CHECK(vs > 261 && vs <= 400);
    const tokenizer_specials *sp = er_tokenizer_specials_of(tok);
    CHECK(sp->bos == 0 && sp->pad == 1 && sp->eos == 2 && sp->unk == 3 && sp->mask == vs - 1);
    /* every line of the corpus, and unseen text, round-trips; <mask> keeps its lstrip */
    const char *texts[] = {"This user is a basketball fan and likes to play basketball and watch NBA games.",
                           "Unseen words: zebra quixotic \xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0 \xf0\x9f\x8e\x89",
                           "  spaces\tand\nnewlines  ", ""};
    for (int i = 0; i < 4; i++) {
        int32_t ids[512];
        char out[1024];
        int n = easyrec_tokenize(tok, texts[i], strlen(texts[i]), 0, ids, 512);
        REQUIRE(n >= 2 && n <= 512);
        CHECK(ids[0] == 0 && ids[n - 1] == 2);
        for (int k = 1; k < n - 1; k++) CHECK(ids[k] > 3 && ids[k] < vs - 1);
        int len = easyrec_detokenize(tok, ids, n, 1, out, sizeof(out));
        CHECK(len == (int)strlen(texts[i]) && !strcmp(out, texts[i]));
    }
    int32_t ids[16];
    int n = easyrec_tokenize(tok, "a  <mask>", 9, 0, ids, 16);
    CHECK(n == 4 && ids[2] == vs - 1);
    /* a frequent word became one token */
    n = easyrec_tokenize(tok, " basketball", 11, 0, ids, 16);
    CHECK_EQ_INT(n, 3);
    easyrec_tokenizer_free(tok);
    tu_rmdir(d1);
    tu_rmdir(d2);
}

TEST(train_errors) {
    char dir[128];
    CHECK_EQ_INT(train_text("abc\n", 260, 1, dir, sizeof(dir)), EASYREC_ERR_ARG);
    tu_rmdir(dir);
    const char *missing[] = {"/nonexistent/corpus.txt"};
    bpe_train_opts o = {1000, 2};
    CHECK_EQ_INT(er_bpe_train(missing, 1, &o, "/tmp", NULL), EASYREC_ERR_IO);
    CHECK(strstr(easyrec_last_error(), "/nonexistent/corpus.txt") != NULL);
    CHECK_EQ_INT(er_bpe_train(missing, 0, &o, "/tmp", NULL), EASYREC_ERR_ARG);
    /* an empty corpus still gives a usable byte-level vocabulary */
    REQUIRE(train_text("", 300, 2, dir, sizeof(dir)) == EASYREC_OK);
    easyrec_tokenizer *tok;
    REQUIRE(easyrec_tokenizer_load(dir, &tok) == EASYREC_OK);
    CHECK_EQ_INT(easyrec_tokenizer_vocab_size(tok), 261);
    int32_t ids[8];
    CHECK_EQ_INT(easyrec_tokenize(tok, "hi", 2, 0, ids, 8), 4);
    easyrec_tokenizer_free(tok);
    tu_rmdir(dir);
}

/* ---- CLI ---------------------------------------------------------------------------------------- */

static char *run_cmd(const char *cmd) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap);
    size_t r;
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0) n += r;
    out[n] = 0;
    int st = pclose(p);
    if (st != 0) {
        fprintf(stdout, "    command failed (%d): %s\n", st, cmd);
        free(out);
        return NULL;
    }
    return out;
}

TEST(cli) {
    const char *bin = getenv("EASYREC_BIN");
    if (!bin) SKIP("EASYREC_BIN not set (make test sets it)");
    char dir[128], cmd[2048];
    REQUIRE(train_text(corpus, 350, 2, dir, sizeof(dir)) == EASYREC_OK);
    /* the corpus given twice doubles every count: --min-frequency 4 then learns the same */
    snprintf(cmd, sizeof(cmd),
             "%s tokenizer train --input %s/corpus.txt %s/corpus.txt --vocab-size 350 --min-frequency 4 --output %s/cli "
             "2>/dev/null && cmp %s/vocab.json %s/cli/vocab.json && cmp %s/merges.txt %s/cli/merges.txt && echo same",
             bin, dir, dir, dir, dir, dir, dir, dir);
    char *out = run_cmd(cmd);
    CHECK(out && !strcmp(out, "same\n"));
    free(out);
    snprintf(cmd, sizeof(cmd), "printf 'Hello world\\n\\nThis basketball <mask>!\\r\\n' | %s tokenize --model %s | %s tokenize --model %s --decode --keep-special",
             bin, dir, bin, dir);
    out = run_cmd(cmd);
    CHECK(out && !strcmp(out, "<s>Hello world</s>\n<s></s>\n<s>This basketball<mask>!</s>\n"));
    free(out);
    if (check_shared_dir()) {
        snprintf(cmd, sizeof(cmd), "printf 'Hello world\\n Hello world\\none two three four\\n' | %s tokenize --model ../shared/vocab/roberta-base --max-length 4", bin);
        out = run_cmd(cmd);
        CHECK(out && !strcmp(out, "[0, 31414, 232, 2]\n[0, 20920, 232, 2]\n[0, 1264, 80, 2]\n"));
        free(out);
    }
    snprintf(cmd, sizeof(cmd), "echo '[0, x]' | %s tokenize --model %s --decode 2>&1; echo rc=$?", bin, dir);
    out = run_cmd(cmd);
    CHECK(out && strstr(out, "line 1") && strstr(out, "rc=1"));
    free(out);
    snprintf(cmd, sizeof(cmd), "%s tokenize --model /nonexistent </dev/null 2>&1; echo rc=$?; %s tokenize 2>/dev/null; echo rc=$?", bin, bin);
    out = run_cmd(cmd);
    CHECK(out && strstr(out, "easyrec: tokenizer /nonexistent") && strstr(out, "rc=1") && strstr(out, "rc=2"));
    free(out);
    tu_rmdir(dir);
}

CHECK_MAIN(CASE(merge_order), CASE(tie_rule), CASE(deterministic_and_round_trip), CASE(train_errors), CASE(cli))
