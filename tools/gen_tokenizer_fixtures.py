#!/usr/bin/python3
"""gen_tokenizer_fixtures.py — writes the tokenizer test fixtures.

    /usr/bin/python3 tools/gen_tokenizer_fixtures.py [--vocab ../shared/vocab/roberta-base]

Outputs (all small, committed):
  tests/fixtures/tokenizer/utf8_replace.json   byte strings (hex) and what CPython's
      bytes.decode("utf-8", errors="replace") makes of them (hex of the re-encoded text), plus
      their RoBERTa ids (needs --vocab)
  tests/fixtures/tokenizer/roberta_cases.json  edge-case texts with RoBERTa ids, some with a
      max_length (needs --vocab)
  tests/fixtures/wordpiece/{uncased,cased}/    vocab.txt, tokenizer_config.json, cases.json:
      a small hand-written WordPiece vocabulary and texts with their ids

Expected ids come from tools/hf_slow_tokenizers.py, a port of HF transformers' slow
RobertaTokenizer / BertTokenizer (stdlib only; see that file for how it follows HF). The
vocabulary files of ../shared are read, never copied.
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_slow_tokenizers as hf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- invalid UTF-8 ---------------------------------------------------------------------------

UTF8_CASES = [
    b"", b"abc", b"\xff", b"\xfe\xff", b"\x80", b"\xbf\x80", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xc2\x41",
    b"\xc3\xa9", b"\xe0\x80\x80", b"\xe0\xa0", b"\xe0\xa0\x80", b"\xe2\x82", b"\xe2\x82\xac", b"\xe2\x82A",
    b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xef\xbf\xbd", b"\xf0\x80\x80\x80", b"\xf0\x90",
    b"\xf0\x90\x80", b"\xf0\x9f\x98\x80", b"\xf0\x9f\x98", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"a\xe2\x82\xacb\xe2\x82c",
    b"Hello \xffworld", b"caf\xc3", b"caf\xc3 ", b"\xe2\x80\x99s", b"don\xe2\x80t", b" \xa0 x", b"<mask>\xff",
    b"\xff<mask>", b"a \xc2<s>", b"\xe4\xb8\xad\xe6\x96", b"\xe4\xb8\xad\xe6\x96\x87",
]


def random_bytes(rng, n):
    pool = [b"a", b" ", b"\n", b"\x80", b"\xbf", b"\xc2", b"\xc3\xa9", b"\xe0", b"\xe2\x82", b"\xed", b"\xf0",
            b"\xf0\x9f", b"\xf4", b"\xff", b"'s", b"1", b"\xe2\x82\xac", b"<mask>"]
    return b"".join(rng.choice(pool) for _ in range(n))


def gen_utf8(rob, out):
    rng = random.Random(7)
    cases = UTF8_CASES + [random_bytes(rng, rng.randint(1, 12)) for _ in range(60)]
    rows = []
    for b in cases:
        text = b.decode("utf-8", errors="replace")
        row = {"bytes": b.hex(), "replaced": text.encode("utf-8").hex()}
        if rob:
            row["roberta_ids"] = rob.encode(text)
        rows.append(row)
    write_json(out, rows)


# ---- RoBERTa edge cases ------------------------------------------------------------------------

ROBERTA_TEXTS = [
    "Hello world", " Hello world", "Hello  world", "Hello   world ", "Hello\n\nworld\n", "a\t\t b", "a \t b",
    "x\r\ny", "x \u00a0 y", "x\u3000y", "x\u2028y", "x\x1cy", "x \x1f y", "x\x85y", "x\ufeffy",
    "don't", "DON'T", "it's we're they've I'm you'll he'd", "'s's''s", " 's", "'", "''", "rock'n'roll",
    "<s>", "</s>", "<pad>", "<unk>", "<mask>", "a <mask> b", "a<mask>b", "a   <mask>", "a\n\t <mask>!",
    "<mask> a", "<s><mask></s>", "<s> hi", "hi </s> ", "<mas k>", "<<mask>>", " <mask>", "\u3000<mask>",
    "x\x1c<mask>", "12345678901234567890", "3.14159", "Ⅻ chapters", "½ cup", "x²", "①②③",
    "caf\u00e9", "cafe\u0301", "\u0301\u0301abc", "中文字符", "日本語のテキスト", "한국어 텍스트", "Ελληνικά",
    "русский язык", "עברית", "العربية ١٢٣", "हिन्दी", "ภาษาไทย", "😀😃 emoji 👍🏽 🇫🇷",
    "\U0001d518\U0001d52b\U0001d526", "tab\there", "\x00nul", "ctrl\x07bell", "soft\u00adhyphen",
    "zero\u200bwidth", "€100 — “quoted” «guillemets» …", "https://example.com/path?q=1&r=2#frag",
    "user@example.com", "#hashtag @mention", "C++ and C# and F#", "   leading", "trailing   ",
    "\n", " \n ", "a" * 300, "ab" * 200, " " * 50 + "x", "This user is a basketball fan!!!",
]


def gen_roberta(rob, out):
    rows = [{"text": t, "roberta_ids": rob.encode(t)} for t in ROBERTA_TEXTS]
    long = "This item is nice for swimming lovers. " * 20
    for ml in (2, 3, 4, 10, 64, 512):
        rows.append({"text": long, "max_length": ml, "roberta_ids": rob.encode(long, max_length=ml)})
    write_json(out, rows)


# ---- WordPiece ------------------------------------------------------------------------------------

WP_WORDS = """the a an is was be to of and in for on with this that it user item likes like fan play
plays playing played basket ball game games watch nba swim swimming lover lovers nice good great
un aff able hello world cafe naive resume istanbul sigma greek word piece token tokenization
music movie movies book books read reading run running runner 2024 100 3 14 rock roll don t s
über strasse cafe résumé naïve zoë ελληνικα σοφος σοφοσ москва 中 国 人 文 日 本 の カ 한 글""".split()
WP_SUFFIXES = """s ing ed er ers ly able ball ize ization ation en ment ness ful less al ic ist est
ity ous ive ies ion """.split()


def wp_vocab(cased):
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += [chr(c) for c in range(33, 127)]
    toks += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)] + ["##" + d for d in "0123456789"]
    toks += ["é", "è", "ü", "ß", "σ", "ς", "ο", "φ", "λ", "ñ", "ç", "å", "…", "—", "“", "”", "€", "½", "²", "😀",
             "##é", "##ü", "##ß", "##σ", "##ς", "##ο", "##φ", "##ï", "##ë"]
    words = WP_WORDS + ([w.capitalize() for w in WP_WORDS[:40]] + ["NBA", "Istanbul", "İstanbul", "Éclair", "ÜBER"]
                        if cased else [])
    toks += words + ["##" + s for s in WP_SUFFIXES] + ["##" + w for w in WP_WORDS[:60]]
    seen, out = set(), []
    for t in toks:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


WP_TEXTS = [
    "Hello world!", "hello, World.", "This user is a basketball fan and likes to play basketball.",
    "UNAFFABLE", "unaffable", "Tokenization plays", "swimming lovers", "The NBA games",
    "Café résumé naïve Zoë", "CAFÉ RÉSUMÉ", "cafe\u0301", "Über Straße", "İstanbul", "ΣΟΦΟΣ σοφος", "ΣΟΦΟΣΣ",
    "中国人 日本の", "中文字符", "한글 텍스트", "Москва", "😀 emoji", "a\u00a0b\u3000c", "x\u2028y", "tab\tnew\nline\rcr",
    "ctrl\x00\x07\x1b chars", "zero\u200bwidth soft\u00adhyphen", "bad\ufffdchar", "rock'n'roll don't",
    "punct!!!...???", "(parens) [brackets] {braces}", "€100 — “quoted” …", "$3.14 and 100%", "2024-01-01",
    "[CLS] hello [SEP]", "[MASK]", "un[MASK]able", "[cls] lower", "[UNK]", "[PAD][PAD]", "x [MASK] y",
    "a" * 100, "a" * 101, "ab" * 60, "supercalifragilisticexpialidocious", "Zoë's resumé", "", "   ", "\n",
    "ǅemal", "ﬁne ﬂow", "Ⅻ ½ ²", "ℌello", "ǰ", "Å", "Å",
]


def gen_wordpiece(cased, outdir):
    os.makedirs(outdir, exist_ok=True)
    vocab = wp_vocab(cased)
    with open(os.path.join(outdir, "vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(vocab) + "\n")
    cfg = {"tokenizer_class": "BertTokenizer", "do_lower_case": not cased, "strip_accents": None,
           "tokenize_chinese_chars": True, "model_max_length": 512}
    write_json(os.path.join(outdir, "tokenizer_config.json"), cfg)
    ref = hf.BertSlow(os.path.join(outdir, "vocab.txt"), do_lower_case=not cased)
    rows = [{"text": t, "ids": ref.encode(t)} for t in WP_TEXTS]
    long = "Hello world, this user likes basketball. " * 10
    for ml in (2, 5, 16):
        rows.append({"text": long, "max_length": ml, "ids": ref.encode(long, max_length=ml)})
    write_json(os.path.join(outdir, "cases.json"), rows)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, ensure_ascii=True, indent=0)
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", default=os.path.join(ROOT, "..", "shared", "vocab", "roberta-base"))
    args = ap.parse_args()
    rob = None
    if os.path.exists(os.path.join(args.vocab, "vocab.json")):
        rob = hf.RobertaSlow(os.path.join(args.vocab, "vocab.json"), os.path.join(args.vocab, "merges.txt"))
    else:
        print("no RoBERTa vocabulary at %s: RoBERTa ids not generated" % args.vocab)
    fx = os.path.join(ROOT, "tests", "fixtures")
    gen_utf8(rob, os.path.join(fx, "tokenizer", "utf8_replace.json"))
    if rob:
        gen_roberta(rob, os.path.join(fx, "tokenizer", "roberta_cases.json"))
    gen_wordpiece(False, os.path.join(fx, "wordpiece", "uncased"))
    gen_wordpiece(True, os.path.join(fx, "wordpiece", "cased"))


if __name__ == "__main__":
    main()
