/* fuzz_tokenizer.c — libFuzzer target for text through the tokenizers (src/tokenizer/):
 * random bytes are tokenized with the RoBERTa tokenizer (../shared/vocab/roberta-base, loaded
 * once; skipped when absent) and the small WordPiece fixture vocabulary, then decoded.
 * The first input byte picks max_length and the output capacity. Checks, beyond "no crash":
 * ids are in range and framed by the begin/end ids; for BPE, text without '<' decodes back to
 * exactly its errors="replace" form and re-tokenizes to the same ids. Seeds: fuzz/seeds/fuzz_tokenizer/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "easyrec.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

static easyrec_tokenizer *bpe, *wp;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (easyrec_tokenizer_load("../shared/vocab/roberta-base", &bpe))
        fprintf(stderr, "fuzz_tokenizer: no RoBERTa vocabulary (%s); WordPiece only\n", easyrec_last_error());
    if (easyrec_tokenizer_load("tests/fixtures/wordpiece/uncased", &wp)) {
        fprintf(stderr, "fuzz_tokenizer: run from the repository root: %s\n", easyrec_last_error());
        abort();
    }
    return 0;
}

static void run(const easyrec_tokenizer *tok, const uint8_t *text, size_t len, int max_length, int cap) {
    int32_t *ids = malloc(sizeof(*ids) * (len + 2));
    int n = easyrec_tokenize(tok, (const char *)text, len, max_length, ids, cap);
    if (n < 2 || (max_length > 0 && n > max_length)) abort();
    if (n > cap) n = easyrec_tokenize(tok, (const char *)text, len, max_length, ids, (int)len + 2);
    if (n < 2 || n > (int)len + 2) abort();
    const tokenizer_specials *sp = er_tokenizer_specials_of(tok);
    if (ids[0] != sp->bos || ids[n - 1] != sp->eos) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= easyrec_tokenizer_vocab_size(tok)) abort();
    int need = easyrec_detokenize(tok, ids, n, 1, NULL, 0);
    if (need < 0) abort();
    char *out = malloc((size_t)need + 1);
    if (easyrec_detokenize(tok, ids, n, 1, out, (size_t)need + 1) != need) abort();
    if (easyrec_tokenizer_kind_of(tok) == EASYREC_TOKENIZER_BPE && max_length <= 0 && !memchr(text, '<', len)) {
        size_t rl = er_utf8_replaced_len(text, len);
        uint8_t *rep = malloc(rl + 1);
        er_utf8_replace(text, len, rep);
        if ((size_t)need != rl || memcmp(out, rep, rl)) abort(); /* byte-level BPE is lossless */
        int32_t *again = malloc(sizeof(*again) * (rl + 2));
        if (easyrec_tokenize(tok, (const char *)rep, rl, 0, again, (int)rl + 2) != n ||
            memcmp(again, ids, (size_t)n * sizeof(*ids)))
            abort();
        free(again);
        free(rep);
    }
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int sel = data[0];
    static const int max_lengths[8] = {0, 0, 0, 2, 3, 8, 64, 512};
    int max_length = max_lengths[sel & 7], cap = (sel >> 3) & 1 ? 1 + (sel >> 4) : (int)size + 2;
    if (bpe) run(bpe, data + 1, size - 1, max_length, cap);
    run(wp, data + 1, size - 1, max_length, cap);
    return 0;
}
