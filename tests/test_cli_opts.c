/* test_cli_opts.c — every subcommand through the option layer (src/cli/opt.h): generated
 * --help, value errors that name the option and its bound, --version; and the command
 * line's handling of awkward input (output == input, empty input, a UTF-8 BOM, invisible
 * characters in messages, temp-file names, failed runs leaving nothing behind).
 * Needs ../shared/vocab for the cases that build a model (skipped otherwise). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "easyrec.h"

static const char *tmp(void) { return check_tmpdir("opts"); }

static void write_file(const char *name, const char *text) { check_write_file(tmp(), name, text); }

/* run `easyrec ARGS`, capturing stderr+stdout into tmp/out.txt; returns the exit status */
static int run(const char *args) {
    return check_sh("%s %s > %s/out.txt 2>&1", check_bin(), args, tmp());
}

/* tmp/out.txt contains s (prints the output when it does not) */
static int out_has(const char *s) {
    char p[256], buf[8192];
    snprintf(p, sizeof p, "%s/out.txt", tmp());
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strstr(buf, s)) return 1;
    printf("    output lacks '%s':\n%s\n", s, buf);
    return 0;
}

/* no byte of tmp/out.txt is a control character other than \n, nor part of U+FEFF / U+200B */
static int out_visible(void) {
    char p[256];
    snprintf(p, sizeof p, "%s/out.txt", tmp());
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    unsigned char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        if ((buf[i] < 0x20 && buf[i] != '\n') || buf[i] == 0x7f) return 0;
        if (i + 2 < n && buf[i] == 0xef && buf[i + 1] == 0xbb && buf[i + 2] == 0xbf) return 0;
        if (i + 2 < n && buf[i] == 0xe2 && buf[i + 1] == 0x80 && buf[i + 2] == 0x8b) return 0;
    }
    return 1;
}

TEST(every_command_has_generated_help) {
    static const char *cmds[] = {"encode", "similarity", "tokenize", "tokenizer train", "init", "train", "eval", "version"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECK_EQ_INT(run(a), 0);
        char u[64];
        snprintf(u, sizeof u, "usage: easyrec %s", cmds[i]);
        CHECK(out_has(u) && out_has("--help"));
    }
    /* similarity lists what it accepts */
    CHECK_EQ_INT(run("similarity --help"), 0);
    CHECK(out_has("--model") && out_has("--max-length") && out_has("--pooling") && out_has("--threads"));
    CHECK_EQ_INT(run("similarity --model m --batch-size 3 a b"), 2);
    CHECK(out_has("unknown option '--batch-size'"));
}

TEST(version) {
    CHECK_EQ_INT(run("--version"), 0);
    CHECK(out_has("easyrec " EASYREC_VERSION "\n"));
    CHECK_EQ_INT(run("version"), 0);
    CHECK(out_has("easyrec " EASYREC_VERSION));
    CHECK(!strcmp(easyrec_version(), EASYREC_VERSION));
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", EASYREC_VERSION_MAJOR, EASYREC_VERSION_MINOR, EASYREC_VERSION_PATCH);
    CHECK(!strcmp(v, EASYREC_VERSION));
}

TEST(value_errors_name_the_option_and_its_bound) {
    CHECK_EQ_INT(run("init --vocab V --output q --layers 0"), 2);
    CHECK(out_has("easyrec init: --layers: 0 is out of range (1..1024)"));
    CHECK_EQ_INT(run("init --vocab V --output q --hidden 12x"), 2);
    CHECK(out_has("--hidden: '12x' is not an integer"));
    CHECK_EQ_INT(run("init --output q --layers 2"), 2);
    CHECK(out_has("missing --vocab"));
    CHECK_EQ_INT(run("train --init i --data d --output o --lr abc"), 2);
    CHECK(out_has("easyrec train: --lr: 'abc' is not a finite number"));
    CHECK_EQ_INT(run("train --init i --data d --output o --epochs 1e3"), 2);
    CHECK(out_has("--epochs: '1e3' is not an integer"));
    CHECK_EQ_INT(run("train --init i --config small --data d --output o"), 2);
    CHECK(out_has("exactly one of --init DIR and --config NAME"));
    CHECK_EQ_INT(run("train --config huge --vocab v --data d --output o"), 2);
    CHECK(out_has("--config must be tiny, small, base or large, got 'huge'"));
    CHECK_EQ_INT(run("encode --model m --input i --output o --threads 99999999999"), 2);
    CHECK(out_has("--threads: 99999999999 is out of range (1..1024)"));
    CHECK_EQ_INT(run("encode --model m --input i --output o --pooling max"), 2);
    CHECK(out_has("--pooling must be default, easyrec, cls or mean, got 'max'"));
    CHECK_EQ_INT(run("tokenize --model m --max-length 1"), 2);
    CHECK(out_has("--max-length: 1 is out of range"));
    CHECK_EQ_INT(run("tokenizer train --vocab-size 100 --output o x.txt"), 2);
    CHECK(out_has("--vocab-size: 100 is out of range (261.."));
    CHECK_EQ_INT(run("tokenizer train --vocab-size 300 --output o"), 2);
    CHECK(out_has("missing --input"));
    CHECK_EQ_INT(run("tokenizer frob"), 2);
    CHECK(out_has("unknown action"));
    /* invisible characters in a value are shown escaped, not passed through */
    CHECK_EQ_INT(run("eval --split $(printf '\\342\\200\\213tst\\001')"), 2);
    CHECK(out_has("got '<U+200B>tst\\x01'") && out_visible());
    CHECK_EQ_INT(run("$(printf '\\357\\273\\277encode')"), 2);
    CHECK(out_has("unknown command '<U+FEFF>encode'") && out_visible());
}

/* ---- with a model ---------------------------------------------------------------------- */

static int have_model;

static void model(void) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent: no vocabulary for a model");
    if (have_model) return;
    REQUIRE(check_sh("%s init --vocab ../shared/vocab/roberta-base --output %s/model --layers 1 --hidden 32 --heads 2 "
                     "--ffn 64 --max-positions 130 --seed 9 2>/dev/null",
                     check_bin(), tmp()) == 0);
    have_model = 1;
}

TEST(encode_refuses_its_input_as_output) {
    model();
    const char *t = tmp();
    write_file("in.txt", "one profile\nanother\n");
    char a[1024];
    snprintf(a, sizeof a, "encode --model %s/model --input %s/in.txt --text --output %s/in.txt", t, t, t);
    CHECK_EQ_INT(run(a), 2);
    CHECK(out_has("is the input file"));
    CHECK(check_sh("printf 'one profile\\nanother\\n' | cmp -s - %s/in.txt", t) == 0); /* untouched */
    /* the same file through another name (a symlink) */
    CHECK(check_sh("ln -sf %s/in.txt %s/link.npy", t, t) == 0);
    snprintf(a, sizeof a, "encode --model %s/model --input %s/in.txt --text --output %s/link.npy", t, t, t);
    CHECK_EQ_INT(run(a), 2);
    CHECK(check_sh("printf 'one profile\\nanother\\n' | cmp -s - %s/in.txt", t) == 0);
}

TEST(empty_input_is_an_error_and_writes_nothing) {
    model();
    const char *t = tmp();
    write_file("empty.json", "");
    write_file("blank.json", "\n\n");
    char a[1024];
    snprintf(a, sizeof a, "encode --model %s/model --input %s/empty.json --output %s/e.npy", t, t, t);
    CHECK_EQ_INT(run(a), 1);
    CHECK(out_has("no profiles to encode"));
    snprintf(a, sizeof a, "encode --model %s/model --input %s/blank.json --output %s/e.npy", t, t, t);
    CHECK_EQ_INT(run(a), 1);
    snprintf(a, sizeof a, "%s/e.npy", t);
    CHECK(access(a, F_OK) != 0);
}

TEST(bom_is_skipped_and_never_shown) {
    model();
    const char *t = tmp();
    write_file("bom.json", "\xef\xbb\xbf{\"item_id\": 0, \"profile\": \"a tent\"}\n{\"item_id\": 1, \"profile\": \"a mug\"}\n");
    write_file("nobom.json", "{\"item_id\": 0, \"profile\": \"a tent\"}\n{\"item_id\": 1, \"profile\": \"a mug\"}\n");
    write_file("bom.txt", "\xef\xbb\xbf" "a tent\na mug\n");
    char a[1024];
    snprintf(a, sizeof a, "encode --model %s/model --input %s/bom.json --output %s/b1.npy --quiet", t, t, t);
    CHECK_EQ_INT(run(a), 0);
    snprintf(a, sizeof a, "encode --model %s/model --input %s/nobom.json --output %s/b2.npy --quiet", t, t, t);
    CHECK_EQ_INT(run(a), 0);
    snprintf(a, sizeof a, "encode --model %s/model --input %s/bom.txt --text --output %s/b3.npy --quiet", t, t, t);
    CHECK_EQ_INT(run(a), 0);
    CHECK(check_sh("cmp -s %s/b1.npy %s/b2.npy && cmp -s %s/b1.npy %s/b3.npy", t, t, t, t) == 0);
    /* a BOM in the middle of a file is an error whose message shows it escaped */
    write_file("bom2.json", "{\"item_id\": 0, \"profile\": \"a\"}\n\xef\xbb\xbf{\"item_id\": 1, \"profile\": \"b\"}\n");
    snprintf(a, sizeof a, "encode --model %s/model --input %s/bom2.json --output %s/b4.npy", t, t, t);
    CHECK_EQ_INT(run(a), 1);
    CHECK(out_has("bom2.json:2") && out_has("<U+FEFF>") && out_visible());
}

TEST(bom_in_interaction_files) {
    const char *t = tmp();
    write_file("trn.tsv", "\xef\xbb\xbfuser\titem\nann\tpen\nbob\tcup\n");
    write_file("tst.tsv", "\xef\xbb\xbf" "ann\tink\nbob\tmug\nbob\tink\n");
    write_file("trn0.tsv", "user\titem\nann\tpen\nbob\tcup\n");
    write_file("tst0.tsv", "ann\tink\nbob\tmug\nbob\tink\n");
    char a[1024];
    snprintf(a, sizeof a, "eval --train %s/trn.tsv --test %s/tst.tsv --baseline popularity --k 1 --json | sed 's/\"rank_seconds.*//' > %s/b.json", t, t, t);
    CHECK_EQ_INT(check_sh("%s %s", check_bin(), a), 0);
    snprintf(a, sizeof a, "eval --train %s/trn0.tsv --test %s/tst0.tsv --baseline popularity --k 1 --json | sed 's/\"rank_seconds.*//' | sed 's/trn0/trn/; s/tst0/tst/' > %s/n.json", t, t, t);
    CHECK_EQ_INT(check_sh("%s %s", check_bin(), a), 0);
    CHECK(check_sh("cmp -s %s/b.json %s/n.json && grep -q '\"n_users\": 2' %s/b.json", t, t, t) == 0);
}

TEST(max_length_is_checked_against_the_model) {
    model();
    const char *t = tmp();
    write_file("one.txt", "a tent for two\n");
    char a[1024];
    /* --max-positions 130: 128 tokens incl. specials */
    snprintf(a, sizeof a, "encode --model %s/model --input %s/one.txt --text --output %s/m.npy --max-length 100000", t, t, t);
    CHECK_EQ_INT(run(a), 2);
    CHECK(out_has("--max-length: 100000 is out of range (2..65536)"));
    snprintf(a, sizeof a, "encode --model %s/model --input %s/one.txt --text --output %s/m.npy --max-length 129", t, t, t);
    CHECK_EQ_INT(run(a), 2);
    CHECK(out_has("exceeds this model's limit of 128 tokens"));
    snprintf(a, sizeof a, "encode --model %s/model --input %s/one.txt --text --output %s/m.npy --max-length 128 --quiet", t, t, t);
    CHECK_EQ_INT(run(a), 0);
    snprintf(a, sizeof a, "similarity --model %s/model --max-length 200 a b", t);
    CHECK_EQ_INT(run(a), 2);
    CHECK(out_has("exceeds this model's limit of 128 tokens"));
    CHECK(check_sh("cp tests/fixtures/eval/tiny/*.pkl.in %s/ 2>/dev/null; cd %s && for f in *.pkl.in; do mv $f ${f%%.in}; done", t, t) == 0);
    write_file("item_profile.json", "{\"item_id\": 0, \"profile\": \"a\"}\n");
    snprintf(a, sizeof a, "eval --model %s/model --data %s --profiles original --max-length 300", t, t);
    CHECK_EQ_INT(run(a), 2);
    CHECK(out_has("exceeds this model's limit of 128 tokens"));
}

TEST(errors_never_show_temp_names) {
    model();
    const char *t = tmp();
    write_file("one.txt", "a tent\n");
    char a[1024];
    CHECK(check_sh("mkdir -p %s/ro && chmod 555 %s/ro", t, t) == 0);
    if (access(t, W_OK) == 0 && geteuid() == 0) {
        /* root writes anyway: use a path whose directory is a file instead */
        write_file("afile", "x");
        snprintf(a, sizeof a, "encode --model %s/model --input %s/one.txt --text --output %s/afile/x.npy", t, t, t);
    } else {
        snprintf(a, sizeof a, "encode --model %s/model --input %s/one.txt --text --output %s/ro/x.npy", t, t, t);
    }
    CHECK_EQ_INT(run(a), 1);
    CHECK(out_has("x.npy: "));
    CHECK(check_sh("grep -q 'tmp\\.[0-9]' %s/out.txt", t) != 0);
}

TEST(failed_init_leaves_nothing_behind) {
    if (!check_shared_dir()) SKIP("../shared/vocab absent");
    const char *t = tmp();
    char a[1024];
    /* a vocabulary directory without tokenizer files: nothing created */
    CHECK(check_sh("mkdir -p %s/novocab", t) == 0);
    snprintf(a, sizeof a, "init --vocab %s/novocab --output %s/m1 --layers 1 --hidden 32 --heads 2 --ffn 64", t, t);
    CHECK_EQ_INT(run(a), 1);
    snprintf(a, sizeof a, "%s/m1", t);
    CHECK(access(a, F_OK) != 0);
    /* the last file to copy cannot be read (/proc/self/mem reads fail): the directory init
     * made is removed again, with the files it had written */
    CHECK(check_sh("mkdir -p %s/v2 && ln -sf /proc/self/mem %s/v2/special_tokens_map.json && cp "
                   "../shared/vocab/roberta-base/vocab.json ../shared/vocab/roberta-base/merges.txt %s/v2/", t, t, t) == 0);
    snprintf(a, sizeof a, "init --vocab %s/v2 --output %s/m2 --layers 1 --hidden 32 --heads 2 --ffn 64", t, t);
    CHECK_EQ_INT(run(a), 1);
    snprintf(a, sizeof a, "%s/m2", t);
    CHECK(access(a, F_OK) != 0);
    /* into an existing directory: it stays, holding only what was there */
    CHECK(check_sh("mkdir -p %s/m3 && touch %s/m3/keep", t, t) == 0);
    snprintf(a, sizeof a, "init --vocab %s/v2 --output %s/m3 --layers 1 --hidden 32 --heads 2 --ffn 64", t, t);
    CHECK_EQ_INT(run(a), 1);
    CHECK(check_sh("test \"$(ls %s/m3)\" = keep", t) == 0);
}

TEST(cleanup) {
    if (!check_tmpdir_path[0]) SKIP("nothing to clean");
    CHECK(check_sh("chmod -R u+w %s; rm -rf %s", check_tmpdir_path, check_tmpdir_path) == 0);
}

CHECK_MAIN(CASE(every_command_has_generated_help), CASE(version), CASE(value_errors_name_the_option_and_its_bound),
           CASE(encode_refuses_its_input_as_output), CASE(empty_input_is_an_error_and_writes_nothing),
           CASE(bom_is_skipped_and_never_shown), CASE(bom_in_interaction_files), CASE(max_length_is_checked_against_the_model),
           CASE(errors_never_show_temp_names), CASE(failed_init_leaves_nothing_behind), CASE(cleanup))
