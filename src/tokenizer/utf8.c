/* utf8.c — CPython-compatible UTF-8 decoding with replacement, and the Unicode character
 * classes of the tokenizers (general categories from utf8proc).
 *
 * The well-formed sequences are those of Unicode Table 3-7:
 *   00..7F | C2..DF 80..BF | E0 A0..BF 80..BF | E1..EC 80..BF 80..BF | ED 80..9F 80..BF
 *   | EE..EF 80..BF 80..BF | F0 90..BF 80..BF 80..BF | F1..F3 80..BF x3 | F4 80..8F 80..BF x2
 * A lead byte followed by k valid continuation bytes and then something else (or the end of
 * the input) is one error of k+1 bytes; any other invalid byte is an error of one byte.
 * Every error becomes one U+FFFD, which is what bytes.decode("utf-8", "replace") does.
 */
#include "tokenizer/utf8.h"

#include <string.h>
#include <utf8proc.h>

uint32_t er_utf8_decode_slow(const uint8_t *s, size_t n, size_t *adv) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *adv = 1;
        return UTF8_REPLACEMENT;
    }
    size_t i = 1;
    for (; i <= need && i < n; i++) {
        unsigned b = s[i];
        if (b < lo || b > hi) break;
        cp = cp << 6 | (b & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    if (i <= need) {
        *adv = i;
        return UTF8_REPLACEMENT;
    }
    *adv = need + 1;
    return cp;
}

size_t er_utf8_replaced_len(const uint8_t *s, size_t n) {
    size_t out = 0, i = 0, adv;
    while (i < n) {
        if (s[i] < 0x80) {
            out++;
            i++;
            continue;
        }
        uint32_t cp = er_utf8_decode_slow(s + i, n - i, &adv);
        out += cp == UTF8_REPLACEMENT ? 3 : adv;
        i += adv;
    }
    return out;
}

void er_utf8_replace(const uint8_t *s, size_t n, uint8_t *out) {
    size_t i = 0, adv;
    while (i < n) {
        if (s[i] < 0x80) {
            *out++ = s[i++];
            continue;
        }
        uint32_t cp = er_utf8_decode_slow(s + i, n - i, &adv);
        if (cp == UTF8_REPLACEMENT) {
            out += utf8_encode(cp, out);
        } else {
            memcpy(out, s + i, adv);
            out += adv;
        }
        i += adv;
    }
}

int er_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0, adv;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp = er_utf8_decode_slow(s + i, n - i, &adv);
        /* A literal U+FFFD is valid: only a replacement changes the byte length. */
        if (cp == UTF8_REPLACEMENT && !(adv == 3 && s[i] == 0xEF && s[i + 1] == 0xBF && s[i + 2] == 0xBD))
            return 0;
        i += adv;
    }
    return 1;
}

/* ---- character classes ---------------------------------------------------------------- */

#define L UC_LETTER
#define N UC_NUMBER
#define S UC_SPACE
#define O UC_OTHER
const uint8_t er_uc_ascii_class[128] = {
    O, O, O, O, O, O, O, O, O, S, S, S, S, S, O, O, /* 00-0F: \t \n \v \f \r */
    O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* 10-1F */
    S, O, O, O, O, O, O, O, O, O, O, O, O, O, O, O, /* space !"#$%&'()*+,-./ */
    N, N, N, N, N, N, N, N, N, N, O, O, O, O, O, O, /* 0-9 :;<=>? */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* @ A-O */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* P-Z [\]^_ */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* ` a-o */
    L, L, L, L, L, L, L, L, L, L, L, O, O, O, O, O, /* p-z {|}~ DEL */
};
#undef L
#undef N
#undef S
#undef O

int er_uc_class_slow(uint32_t c) {
    if (uc_is_white_space(c)) return UC_SPACE;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return UC_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return UC_NUMBER;
    default:
        return UC_OTHER;
    }
}

int er_uc_is_category_c(uint32_t c) {
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return 1;
    default:
        return 0;
    }
}

int er_uc_is_category_zs(uint32_t c) { return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ZS; }

int er_uc_is_category_mn(uint32_t c) { return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN; }

int er_uc_is_category_p(uint32_t c) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

int er_uc_py_lower(uint32_t c, uint32_t out[2]) {
    if (c < 0x80) {
        out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        return 1;
    }
    /* The one unconditional multi-character lower-case mapping of SpecialCasing.txt. A lone
     * U+03A3 has no cased letter before it, so Python's Final_Sigma rule gives U+03C3, which
     * is the simple mapping. */
    if (c == 0x130) {
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    return 1;
}
