/* fuzz_bpe_files.c — libFuzzer target for the byte-level BPE file readers and model build
 * (src/tokenizer/bpe_load.c, bpe.c): the input is a vocab.json and a merges.txt separated by
 * the first NUL byte; a model is built from whatever parses, then a few texts are encoded
 * with it and every id is mapped back to its token. Seeds: fuzz/seeds/fuzz_bpe_files/.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t vlen = nul ? (size_t)(nul - data) : size;
    const char *merges = nul ? (const char *)nul + 1 : "";
    size_t mlen = nul ? size - vlen - 1 : 0;
    bpe_model m;
    if (er_bpe_model_init(&m, 64, 64)) return 0;
    if (!er_bpe_parse_vocab_json(&m, (const char *)data, vlen, "fuzz") &&
        !er_bpe_parse_merges_txt(&m, merges, mlen, "fuzz") && !er_bpe_model_finish(&m)) {
        static const char *texts[] = {"hello", " world", "aaaaaaaaaaaaaaaaaaaa", "\xc4\xa0\xc4\xa0", "ab ab", "\xe4\xb8\xad"};
        int32_t ids[128];
        for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
            tok_sink sink = {ids, 128, 0, 128};
            int rc = er_bpe_encode_piece(&m, 0, (const uint8_t *)texts[t], strlen(texts[t]), &sink);
            if (rc < 0) continue;
            for (int64_t i = 0; i < sink.n && i < 128; i++) {
                size_t len;
                if (ids[i] != 0 && !er_bpe_id_token(&m, ids[i], &len)) abort();
            }
        }
    }
    er_bpe_model_free(&m);
    return 0;
}
