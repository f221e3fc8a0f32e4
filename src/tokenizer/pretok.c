/* pretok.c — the GPT-2 pre-tokenisation pattern, by hand.
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * tried in order at each position, as Python's `regex` module (mrab) runs it in HF's slow
 * GPT2Tokenizer/RobertaTokenizer: \p{L} = Lu Ll Lt Lm Lo, \p{N} = Nd Nl No, and \s is the
 * module's "Space" property, i.e. Unicode White_Space (which, unlike str.isspace(), does not
 * contain U+001C..U+001F). The contractions are lower-case only; the optional space is
 * U+0020 only. `\s+(?!\S)` backtracks to leave the last whitespace character of a run that
 * is followed by a non-space, so that " word" keeps its space.
 *
 * Works on raw bytes: invalid UTF-8 sequences are decoded as U+FFFD (class "other") with
 * their original byte length, so piece boundaries are byte offsets into the input.
 */
#include "tokenizer/tok_impl.h"

static inline int class_at(const uint8_t *s, size_t n, size_t i, size_t *adv) {
    if (s[i] < 0x80) {
        *adv = 1;
        return er_uc_ascii_class[s[i]];
    }
    return uc_class(er_utf8_decode_slow(s + i, n - i, adv));
}

/* End of the run of class c starting at i. */
static size_t run_end(const uint8_t *s, size_t n, size_t i, int c) {
    size_t adv;
    while (i < n) {
        if (s[i] < 0x80) {
            if (er_uc_ascii_class[s[i]] != c) break;
            i++;
            continue;
        }
        if (class_at(s, n, i, &adv) != c) break;
        i += adv;
    }
    return i;
}

static size_t contraction_len(const uint8_t *s, size_t n, size_t i) {
    if (i + 1 >= n) return 0;
    uint8_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

int er_pretok_next(pretok_iter *it, size_t *start, size_t *end) {
    const uint8_t *s = it->s;
    size_t n = it->n, i = it->pos, adv;
    if (i >= n) return 0;
    *start = i;
    if (s[i] == '\'') {
        size_t k = contraction_len(s, n, i);
        if (k) {
            *end = it->pos = i + k;
            return 1;
        }
    }
    int c = class_at(s, n, i, &adv);
    size_t j = i;
    if (s[i] == ' ' && i + 1 < n) {
        size_t adv2;
        int c2 = class_at(s, n, i + 1, &adv2);
        if (c2 != UC_SPACE) {
            c = c2;
            j = i + 1;
        }
    }
    if (c != UC_SPACE) {
        *end = it->pos = run_end(s, n, j, c);
        return 1;
    }
    /* Whitespace run [i, k); `last` is where its last character starts. */
    size_t k = i, last = i;
    while (k < n && class_at(s, n, k, &adv) == UC_SPACE) {
        last = k;
        k += adv;
    }
    if (k < n && last > i) k = last; /* \s+(?!\S): leave the last one for the next word */
    *end = it->pos = k;
    return 1;
}
