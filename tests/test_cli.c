/* test_cli.c — the easyrec command line end to end (init, encode, similarity) on a small
 * random model with the real RoBERTa vocabulary from ../shared/vocab (skipped if absent).
 * The binary is $EASYREC_BIN (set by make test), default build/easyrec. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "easyrec.h"
#include "io/tensors.h"

static char tmpdir[64];


/* run a shell command, return its exit status */

static void write_file(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    REQUIRE(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for an end-to-end model");
    if (tmpdir[0]) return;
    strcpy(tmpdir, "/tmp/easyrec-cli-XXXXXX");
    REQUIRE(mkdtemp(tmpdir));
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 2 --hidden 32 --heads 4 "
               "--ffn 64 --seed 5 2>/dev/null",
               check_bin(), tmpdir) == 0);
}

static const char *texts[] = {"This user is a basketball fan and likes to play basketball and watch NBA games.",
                              "This basketball draws in NBA enthusiasts.", "This item is nice for swimming lovers.",
                              "caf\xc3\xa9 \xf0\x9f\x98\x80 <mask> tokens"};

TEST(encode_jsonl_matches_library_and_orders_by_id) {
    setup();
    /* ids out of file order: rows must follow item_id */
    char j[2048];
    snprintf(j, sizeof j,
             "{\"item_id\": 2, \"profile\": \"%s\"}\n{\"item_id\": 0, \"profile\": \"%s\", \"reason\": \"x\"}\n\n"
             "{\"item_id\": 3, \"profile\": \"caf\\u00e9 \\ud83d\\ude00 <mask> tokens\"}\n{\"item_id\": 1, \"profile\": \"%s\"}\n",
             texts[2], texts[0], texts[1]);
    write_file("items.json", j);
    REQUIRE(check_sh("%s encode --model %s/model --input %s/items.json --output %s/items.npy --quiet", check_bin(), tmpdir, tmpdir,
               tmpdir) == 0);
    char p[256];
    snprintf(p, sizeof p, "%s/items.npy", tmpdir);
    float *e = NULL;
    int nd = 0;
    int64_t shape[ER_MAX_DIMS];
    REQUIRE(er_npy_read_f32(p, &e, &nd, shape) == EASYREC_OK);
    CHECK_EQ_INT(nd, 2);
    CHECK_EQ_INT(shape[0], 4);
    CHECK_EQ_INT(shape[1], 32);
    /* library encode of the texts in id order */
    easyrec_model *m = NULL;
    snprintf(p, sizeof p, "%s/model", tmpdir);
    REQUIRE(easyrec_model_load(p, &m) == EASYREC_OK);
    easyrec_ctx *ctx = easyrec_ctx_new(m);
    float ref[4 * 32];
    REQUIRE(easyrec_encode(ctx, texts, NULL, 4, NULL, ref) == EASYREC_OK);
    for (int i = 0; i < 4 * 32; i++) CHECK_NEAR(e[i], ref[i], 1e-6);
    /* --text: same embeddings from plain lines */
    snprintf(j, sizeof j, "%s\n%s\n%s\n%s\n", texts[0], texts[1], texts[2], texts[3]);
    write_file("items.txt", j);
    REQUIRE(check_sh("%s encode --model %s/model --input %s/items.txt --text --output %s/t.npy --quiet --threads 2", check_bin(),
               tmpdir, tmpdir, tmpdir) == 0);
    free(e);
    snprintf(p, sizeof p, "%s/t.npy", tmpdir);
    REQUIRE(er_npy_read_f32(p, &e, &nd, shape) == EASYREC_OK);
    CHECK_EQ_INT(shape[0], 4);
    for (int i = 0; i < 4 * 32; i++) CHECK_NEAR(e[i], ref[i], 1e-6);
    free(e);
    /* pooling mean, no normalisation: rows are not unit length */
    REQUIRE(check_sh("%s encode --model %s/model --input %s/items.txt --text --output %s/m.npy --quiet --pooling mean "
               "--no-normalize --max-length 8",
               check_bin(), tmpdir, tmpdir, tmpdir) == 0);
    snprintf(p, sizeof p, "%s/m.npy", tmpdir);
    REQUIRE(er_npy_read_f32(p, &e, &nd, shape) == EASYREC_OK);
    double nn = 0;
    for (int k = 0; k < 32; k++) nn += (double)e[k] * e[k];
    CHECK(fabs(nn - 1.0) > 1e-3);
    free(e);
    easyrec_ctx_free(ctx);
    easyrec_model_free(m);
}

TEST(similarity_prints_one_cosine_per_text) {
    setup();
    char out[256];
    snprintf(out, sizeof out, "%s/sim.txt", tmpdir);
    REQUIRE(check_sh("%s similarity --model %s/model '%s' '%s' '%s' > %s", check_bin(), tmpdir, texts[0], texts[1], texts[2],
               out) == 0);
    FILE *f = fopen(out, "r");
    REQUIRE(f);
    double a, b;
    char line[512];
    REQUIRE(fgets(line, sizeof line, f) && sscanf(line, "%lf", &a) == 1);
    REQUIRE(fgets(line, sizeof line, f) && sscanf(line, "%lf", &b) == 1);
    fclose(f);
    CHECK(a >= -1 && a <= 1 && b >= -1 && b <= 1);
}

TEST(bad_input_is_a_clear_error) {
    setup();
    char err[256];
    snprintf(err, sizeof err, "%s/err.txt", tmpdir);
    write_file("bad.json", "{\"item_id\": 0, \"profile\": \"ok\"}\n{\"item_id\": 1, \"profile\": \n");
    CHECK(check_sh("%s encode --model %s/model --input %s/bad.json --output %s/x.npy 2>%s", check_bin(), tmpdir, tmpdir, tmpdir,
             err) == 1);
    CHECK(check_sh("grep -q 'bad.json:2' %s", err) == 0);
    write_file("dup.json", "{\"item_id\": 0, \"profile\": \"a\"}\n{\"item_id\": 0, \"profile\": \"b\"}\n");
    CHECK(check_sh("%s encode --model %s/model --input %s/dup.json --output %s/x.npy 2>%s", check_bin(), tmpdir, tmpdir, tmpdir,
             err) == 1);
    CHECK(check_sh("grep -q 'repeated' %s", err) == 0);
    write_file("inv.json", "{\"item_id\": 0, \"profile\": \"\xff\xfe\"}\n");
    CHECK(check_sh("%s encode --model %s/model --input %s/inv.json --output %s/x.npy 2>/dev/null", check_bin(), tmpdir, tmpdir,
             tmpdir) == 1);
    /* invalid UTF-8 in plain text mode is tokenized like errors="replace", not rejected */
    write_file("inv.txt", "abc \xff\xfe def\n");
    CHECK(check_sh("%s encode --model %s/model --input %s/inv.txt --text --output %s/x.npy --quiet", check_bin(), tmpdir, tmpdir,
             tmpdir) == 0);
    CHECK(check_sh("%s encode --model %s/nope --input %s/inv.txt --text --output %s/y.npy 2>%s", check_bin(), tmpdir, tmpdir,
             tmpdir, err) == 1);
    CHECK(check_sh("grep -q 'easyrec: ' %s", err) == 0);
    CHECK(check_sh("%s encode --model %s/model 2>/dev/null", check_bin(), tmpdir) == 2);
    CHECK(check_sh("%s encode --model %s/model --input %s/inv.txt --output %s/y.npy --threads 0 2>/dev/null", check_bin(), tmpdir,
             tmpdir, tmpdir) == 2);
    CHECK(check_sh("%s frobnicate 2>/dev/null", check_bin()) == 2);
    /* an output that cannot be written fails and leaves nothing behind */
    CHECK(check_sh("%s encode --model %s/model --input %s/inv.txt --text --output /nonexistent/dir/x.npy 2>/dev/null", check_bin(),
             tmpdir, tmpdir) == 1);
}

TEST(cleanup) {
    if (!tmpdir[0]) SKIP("nothing to clean");
    CHECK(check_sh("rm -rf %s", tmpdir) == 0);
}

CHECK_MAIN(CASE(encode_jsonl_matches_library_and_orders_by_id), CASE(similarity_prints_one_cosine_per_text),
           CASE(bad_input_is_a_clear_error), CASE(cleanup))
