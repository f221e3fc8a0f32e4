#!/usr/bin/python3
"""tokenizer_difftest.py — randomized differential test of the C RoBERTa tokenizer against
the Python port of HF's slow RobertaTokenizer (tools/hf_slow_tokenizers.py).

    /usr/bin/python3 tools/tokenizer_difftest.py [--n 20000] [--seed 1] [--vocab ../shared/vocab/roberta-base]

Generates random strings over an adversarial alphabet (whitespace of every kind, contractions,
letters/numbers of every general category, marks, CJK, emoji, U+FFFD, special tokens and
pieces of them), tokenizes them with both, and prints every mismatch. Needs the bench program
(make it with bench/bench_tokenizer.sh, or it is built here into bench/out/). Exit 1 on any
mismatch. Characters whose category differs between this Python's Unicode version and
utf8proc's are avoided (both are at least Unicode 14).
"""
import argparse
import json
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_slow_tokenizers as hf  # noqa: E402

ALPHABET = (
    list("abcxyzABCXYZ0123456789") + list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~") + ["'"] * 6 +
    ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL"] +
    [" "] * 12 + ["\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
                  "\u2000", "\u2003", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "\u200b"] +
    ["é", "ñ", "ß", "Ä", "ǅ", "ʰ", "ª", "e\u0301", "\u0301", "\u20dd", "ा", "क", "ក", "ា", "ع", "٣", "۳", "߁", "Ⅳ", "ↂ",
     "½", "²", "①", "〇", "中", "文", "の", "カ", "한", "글", "😀", "👍🏽", "🇫🇷", "𝔘", "𐍈", "\ufffd", "\x00", "\x7f", "\u00ad",
     "€", "©", "™", "—", "…", "«", "»", "“", "”", "¡", "¿"] +
    ["<s>", "</s>", "<pad>", "<unk>", "<mask>", " <mask>", "  <mask>", "\t<mask>", "<mask> ", "<mas", "</", "<s", "mask>"] +
    ["the", " the", "The", " token", "ization", " basketball", " NBA", "1234567", " 2024"]
)


def random_text(rng):
    n = rng.choice([1, 2, 3, 5, 8, 13, 30, 80])
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vocab", default="../shared/vocab/roberta-base")
    ap.add_argument("--bench", default="bench/out/bench_tokenizer")
    args = ap.parse_args()
    if not os.path.exists(args.bench):
        sys.exit("%s missing: run bench/bench_tokenizer.sh first (it builds it)" % args.bench)
    rng = random.Random(args.seed)
    texts = [random_text(rng) for _ in range(args.n)]
    ref = hf.RobertaSlow(os.path.join(args.vocab, "vocab.json"), os.path.join(args.vocab, "merges.txt"))
    os.makedirs("bench/out", exist_ok=True)
    tpath, ipath = "bench/out/difftest_texts.jsonl", "bench/out/difftest_ids.txt"
    with open(tpath, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
    subprocess.run([args.bench, args.vocab, tpath, ipath, "1"], check=True, stdout=subprocess.DEVNULL)
    with open(ipath) as f:
        got = [[int(x) for x in line.split()] for line in f]
    bad = 0
    for t, g in zip(texts, got):
        want = ref.encode(t)
        if g != want:
            bad += 1
            if bad <= 20:
                print("MISMATCH %r\n  C:      %s\n  Python: %s" % (t, g, want))
    print("%d texts, %d mismatches" % (len(texts), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
