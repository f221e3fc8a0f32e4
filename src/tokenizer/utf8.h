/* utf8.h — UTF-8 decoding with CPython's errors="replace" semantics, and the character
 * classes the tokenizers need.
 *
 * Decoding follows the Unicode "maximal subpart" practice that CPython implements: each
 * maximal prefix of a well-formed sequence that cannot be completed (or a byte that cannot
 * start one) becomes exactly one U+FFFD. Surrogates encoded in UTF-8 (ED A0..BF ..) and
 * overlong forms (C0, C1, E0 80..9F, F0 80..8F) are invalid, as in CPython.
 *
 * Whitespace comes in two flavours: the `regex` module's \s (the Unicode White_Space
 * property) used by the GPT-2 pattern, and Python's str.isspace() (White_Space plus
 * U+001C..U+001F) used by str.strip()/str.split().
 */
#ifndef ER_TOK_UTF8_H
#define ER_TOK_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

uint32_t er_utf8_decode_slow(const uint8_t *s, size_t n, size_t *adv);

/* Decode the code point at s[0..n) (n >= 1); *adv = bytes consumed (>= 1). */
static inline uint32_t utf8_decode(const uint8_t *s, size_t n, size_t *adv) {
    if (s[0] < 0x80) {
        *adv = 1;
        return s[0];
    }
    return er_utf8_decode_slow(s, n, adv);
}

/* Encode cp (< 0x110000) into out[0..4); returns the byte count. */
static inline int utf8_encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of s[0..n) once invalid sequences are replaced by U+FFFD (3 bytes each). */
size_t er_utf8_replaced_len(const uint8_t *s, size_t n);
/* Copy s[0..n) into out (er_utf8_replaced_len(s, n) bytes), replacing invalid sequences. */
void er_utf8_replace(const uint8_t *s, size_t n, uint8_t *out);
/* 1 when s[0..n) is well-formed UTF-8. */
int er_utf8_valid(const uint8_t *s, size_t n);

/* Unicode White_Space (the `regex` module's \s). */
static inline int uc_is_white_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.isspace() for one character. */
static inline int uc_is_py_space(uint32_t c) {
    return (c >= 0x1C && c <= 0x1F) || uc_is_white_space(c);
}

/* Classes of the GPT-2 pre-tokenisation pattern. */
enum {
    UC_LETTER = 1, /* \p{L}: Lu Ll Lt Lm Lo */
    UC_NUMBER = 2, /* \p{N}: Nd Nl No */
    UC_SPACE = 3,  /* \s (White_Space) */
    UC_OTHER = 4,  /* everything else */
};
extern const uint8_t er_uc_ascii_class[128];
int er_uc_class_slow(uint32_t c);
static inline int uc_class(uint32_t c) { return c < 0x80 ? er_uc_ascii_class[c] : er_uc_class_slow(c); }

/* General-category predicates (utf8proc). */
int er_uc_is_category_c(uint32_t c);  /* Cc Cf Cs Co Cn */
int er_uc_is_category_zs(uint32_t c); /* Zs */
int er_uc_is_category_mn(uint32_t c); /* Mn */
int er_uc_is_category_p(uint32_t c);  /* Pc Pd Ps Pe Pi Pf Po */

/* Python's str.lower() of a one-character string: writes 1 or 2 code points. */
int er_uc_py_lower(uint32_t c, uint32_t out[2]);

#endif
