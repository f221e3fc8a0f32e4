/* test_wordpiece.c — BERT WordPiece against tests/fixtures/wordpiece/{uncased,cased}: a small
 * hand-written vocabulary and texts whose ids come from tools/hf_slow_tokenizers.py (a port of
 * HF's slow BertTokenizer; see tests/fixtures/wordpiece/README.md). Needs no ../shared.
 */
#include "tok_util.h"
#include "tokenizer/tokenizer.h"

static void run_fixture(const char *dir) {
    char path[256];
    easyrec_tokenizer *tok = NULL;
    if (easyrec_tokenizer_load(dir, &tok)) CHECK_FAILMSG("load %s: %s", dir, easyrec_last_error());
    REQUIRE(tok);
    CHECK(easyrec_tokenizer_kind_of(tok) == EASYREC_TOKENIZER_WORDPIECE);
    CHECK_EQ_INT(easyrec_tokenizer_pad_id(tok), 0);
    snprintf(path, sizeof(path), "%s/cases.json", dir);
    json_t *cases = tu_load_json(path);
    if (!cases) easyrec_tokenizer_free(tok);
    REQUIRE(cases && json_array_size(cases) > 40);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        json_t *t = json_object_get(c, "text"), *ml = json_object_get(c, "max_length");
        CHECK(tu_check_case(tok, json_string_value(t), json_string_length(t), ml ? (int)json_integer_value(ml) : 0,
                            json_object_get(c, "ids")));
    }
    json_decref(cases);
    easyrec_tokenizer_free(tok);
}

TEST(uncased_cases) { run_fixture("tests/fixtures/wordpiece/uncased"); }

TEST(cased_cases) { run_fixture("tests/fixtures/wordpiece/cased"); }

TEST(specials_and_decode) {
    easyrec_tokenizer *tok;
    REQUIRE(easyrec_tokenizer_load("tests/fixtures/wordpiece/uncased", &tok) == EASYREC_OK);
    const tokenizer_specials *sp = er_tokenizer_specials_of(tok);
    CHECK(sp->pad == 0 && sp->unk == 1 && sp->bos == 2 && sp->eos == 3 && sp->mask == 4);
    int32_t ids[64];
    char out[256];
    const char *t = "Unaffable [MASK] basketballs!";
    int n = easyrec_tokenize(tok, t, strlen(t), 0, ids, 64);
    REQUIRE(n > 4);
    CHECK_EQ_INT(ids[0], 2);
    CHECK_EQ_INT(ids[n - 1], 3);
    /* " ".join(tokens).replace(" ##", "").strip(), no clean-up of spaces */
    int k = easyrec_detokenize(tok, ids, n, 1, out, sizeof(out));
    CHECK(k > 0 && !strcmp(out, "unaffable basketballs !"));
    k = easyrec_detokenize(tok, ids, n, 0, out, sizeof(out));
    CHECK(k > 0 && !strcmp(out, "[CLS] unaffable [MASK] basketballs ! [SEP]"));
    CHECK_EQ_INT(easyrec_tokenizer_token_id(tok, "##able"), easyrec_tokenizer_token_id(tok, "##able"));
    CHECK(easyrec_tokenizer_token_id(tok, "##able") > 4);
    CHECK_EQ_INT(easyrec_tokenizer_token_id(tok, "[MASK]"), 4);
    /* truncation keeps the first max_length-2 pieces */
    n = easyrec_tokenize(tok, t, strlen(t), 4, ids, 64);
    CHECK_EQ_INT(n, 4);
    CHECK(ids[0] == 2 && ids[3] == 3);
    easyrec_tokenizer_free(tok);
}

/* Control characters, invalid UTF-8 and very long input never crash. */
TEST(robustness) {
    easyrec_tokenizer *tok;
    REQUIRE(easyrec_tokenizer_load("tests/fixtures/wordpiece/uncased", &tok) == EASYREC_OK);
    size_t n = 1 << 20;
    char *s = malloc(n);
    int32_t *ids = malloc(sizeof(*ids) * (n + 2));
    uint32_t rng = 99;
    for (int shape = 0; shape < 3; shape++) {
        for (size_t i = 0; i < n; i++) {
            rng = rng * 1103515245u + 12345u;
            s[i] = shape == 0 ? (char)(rng >> 16) : shape == 1 ? "Ab \xc3\xa9,"[(rng >> 16) % 6] : 'x';
        }
        double t0 = tu_now();
        int k = easyrec_tokenize(tok, s, n, 0, ids, (int)n + 2);
        CHECK(k >= 2);
        if (tu_now() - t0 > 10.0) CHECK_FAILMSG("shape %d took %.1f s", shape, tu_now() - t0);
    }
    CHECK_EQ_INT(easyrec_tokenize(tok, s, n, 0, ids, (int)n + 2), 3); /* one word > 100 chars: [UNK] */
    CHECK_EQ_INT(ids[1], 1);
    free(s);
    free(ids);
    easyrec_tokenizer_free(tok);
}

TEST(loader_errors) {
    char dir[128];
    REQUIRE(!tu_tempdir(dir, sizeof(dir), "wp"));
    easyrec_tokenizer *tok = NULL;
    const char *no_unk = "[PAD]\n[CLS]\n[SEP]\nhello\n";
    tu_write(dir, "vocab.txt", no_unk, strlen(no_unk));
    CHECK_EQ_INT(easyrec_tokenizer_load(dir, &tok), EASYREC_ERR_FORMAT);
    const char *bad_utf8 = "[UNK]\n[CLS]\n[SEP]\n\xff\n";
    tu_write(dir, "vocab.txt", bad_utf8, strlen(bad_utf8));
    CHECK_EQ_INT(easyrec_tokenizer_load(dir, &tok), EASYREC_ERR_FORMAT);
    const char *ok = "[PAD]\r\n[UNK]\r\n[CLS]\r[SEP]\nhello\nhello";
    tu_write(dir, "vocab.txt", ok, strlen(ok));
    const char *bad_cfg = "{\"do_lower_case\": \"yes\"}";
    tu_write(dir, "tokenizer_config.json", bad_cfg, strlen(bad_cfg));
    CHECK_EQ_INT(easyrec_tokenizer_load(dir, &tok), EASYREC_ERR_FORMAT);
    const char *cfg = "{\"do_lower_case\": false, \"unk_token\": {\"content\": \"[UNK]\"}}";
    tu_write(dir, "tokenizer_config.json", cfg, strlen(cfg));
    CHECK_EQ_INT(easyrec_tokenizer_load(dir, &tok), EASYREC_OK);
    if (tok) {
        int32_t ids[8];
        /* universal newlines; a repeated line takes the later id (HF load_vocab) */
        CHECK_EQ_INT(easyrec_tokenize(tok, "hello Hello", 11, 0, ids, 8), 4);
        CHECK(ids[0] == 2 && ids[1] == 5 && ids[2] == 1 && ids[3] == 3);
        CHECK_EQ_INT(easyrec_tokenizer_vocab_size(tok), 6);
    }
    easyrec_tokenizer_free(tok);
    tu_rmdir(dir);
}

CHECK_MAIN(CASE(uncased_cases), CASE(cased_cases), CASE(specials_and_decode), CASE(robustness), CASE(loader_errors))
