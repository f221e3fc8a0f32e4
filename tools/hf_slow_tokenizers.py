"""hf_slow_tokenizers.py — a faithful, dependency-free port of Hugging Face transformers'
*slow* RobertaTokenizer (GPT-2 byte-level BPE) and BertTokenizer (BasicTokenizer +
WordpieceTokenizer), used to generate test fixtures and for differential testing of the C
tokenizer (tools/gen_tokenizer_fixtures.py, tools/tokenizer_difftest.py).

Sources followed (transformers 4.4x): tokenization_utils.PreTrainedTokenizer.tokenize
(added-token split with lstrip/rstrip, do_lower_case pre-pass), tokenization_gpt2 /
tokenization_roberta (bytes_to_unicode, the GPT-2 pattern, bpe()), tokenization_bert
(BasicTokenizer, WordpieceTokenizer, load_vocab). Differences from the original, none of
which change results:
  * HF runs the GPT-2 pattern with the third-party `regex` module (\\p{L}, \\p{N}); Python's
    `re` has no \\p{..}, so the pattern is built here with explicit character classes from
    unicodedata (L* = Lu Ll Lt Lm Lo, N* = Nd Nl No) and \\s = Unicode White_Space, which is
    what `regex` uses for \\s. Python's unicodedata is this interpreter's Unicode version.
  * the added-token split uses "leftmost occurrence, longest token there" instead of HF's
    Trie (identical for the standard special tokens, none of which is a prefix of another).
Run with Debian's /usr/bin/python3; stdlib only.
"""
import json
import re
import sys
import unicodedata

# ---- Unicode classes ------------------------------------------------------------------------

WHITE_SPACE = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + [
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000]


def _ranges(pred):
    out, start, prev = [], None, None
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if pred(cp):
            if start is None:
                start = cp
            elif cp != prev + 1:
                out.append((start, prev))
                start = cp
            prev = cp
    if start is not None:
        out.append((start, prev))
    return out


def _cls(ranges):
    def esc(c):
        return "\\U%08x" % c
    return "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)


_L = _cls(_ranges(lambda c: unicodedata.category(chr(c)) in ("Lu", "Ll", "Lt", "Lm", "Lo")))
_N = _cls(_ranges(lambda c: unicodedata.category(chr(c)) in ("Nd", "Nl", "No")))
_S = _cls([(c, c) for c in WHITE_SPACE])
GPT2_PATTERN = re.compile(
    r"'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+" % (_L, _N, _S, _L, _N, _S, _S, _S))


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(n) for n in cs]))


# ---- the added-token split of PreTrainedTokenizer.tokenize ----------------------------------


def split_added(text, added):
    """added: {content: (lstrip, rstrip)} -> list of (piece, is_added) after strip rules."""
    toks = sorted(added, key=lambda t: -len(t))
    pieces, i, seg = [], 0, 0
    while i < len(text):
        hit = next((t for t in toks if text.startswith(t, i)), None)
        if hit is None:
            i += 1
            continue
        if i > seg:
            pieces.append([text[seg:i], False])
        pieces.append([hit, True])
        i += len(hit)
        seg = i
    if seg < len(text):
        pieces.append([text[seg:], False])
    for k, (p, is_added) in enumerate(pieces):
        if not is_added:
            continue
        lstrip, rstrip = added[p]
        if rstrip and k + 1 < len(pieces) and not pieces[k + 1][1]:
            pieces[k + 1][0] = pieces[k + 1][0].lstrip()
        if lstrip and k > 0 and not pieces[k - 1][1]:
            pieces[k - 1][0] = pieces[k - 1][0].rstrip()
    return [(p, a) for p, a in pieces if p]


# ---- RoBERTa ----------------------------------------------------------------------------------


class RobertaSlow:
    def __init__(self, vocab_json, merges_txt):
        with open(vocab_json, encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {v: k for k, v in self.encoder.items()}
        with open(merges_txt, encoding="utf-8") as f:
            merges = f.read().split("\n")[1:-1]
        self.bpe_ranks = dict(zip([tuple(m.split()) for m in merges], range(len(merges))))
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.cache = {}
        self.added = {"<s>": (False, False), "</s>": (False, False), "<pad>": (False, False),
                      "<unk>": (False, False), "<mask>": (True, False)}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = set(zip(word, word[1:]))
        if not pairs:
            return token
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = set(zip(word, word[1:]))
        word = " ".join(word)
        self.cache[token] = word
        return word

    def tokenize(self, text):
        out = []
        for piece, is_added in split_added(text, self.added):
            if is_added:
                out.append(piece)
                continue
            for tok in GPT2_PATTERN.findall(piece):
                tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
                out.extend(self.bpe(tok).split(" "))
        return out

    def encode(self, text, max_length=None):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        unk = self.encoder.get("<unk>")
        ids = [self.encoder.get(t, unk) for t in self.tokenize(text)]
        if max_length is not None:
            ids = ids[:max(max_length - 2, 0)]
        return [self.encoder["<s>"]] + ids + [self.encoder["</s>"]]


# ---- BERT -------------------------------------------------------------------------------------


def _is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class BertSlow:
    def __init__(self, vocab_txt, do_lower_case=True, strip_accents=None, tokenize_chinese_chars=True):
        self.vocab = {}
        with open(vocab_txt, "r", encoding="utf-8") as f:
            for i, tok in enumerate(f.readlines()):
                self.vocab[tok.rstrip("\n")] = i
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.specials = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]
        self.added = {t: (False, False) for t in self.specials if t in self.vocab}

    # BasicTokenizer
    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        return "".join(c for c in text if unicodedata.category(c) != "Mn")

    def _run_split_on_punc(self, text):
        out, start_new = [], True
        for ch in text:
            if _is_punctuation(ch):
                out.append([ch])
                start_new = True
            else:
                if start_new:
                    out.append([])
                start_new = False
                out[-1].append(ch)
        return ["".join(x) for x in out]

    def _clean_text(self, text):
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            out.append(" " if _is_whitespace(ch) else ch)
        return "".join(out)

    def _tokenize_chinese_chars(self, text):
        return "".join(" %s " % ch if _is_chinese_char(ord(ch)) else ch for ch in text)

    def basic_tokenize(self, text):
        text = self._clean_text(text)
        if self.tokenize_chinese_chars:
            text = self._tokenize_chinese_chars(text)
        text = unicodedata.normalize("NFC", text)
        split_tokens = []
        for token in text.strip().split():
            if self.do_lower_case:
                token = token.lower()
                if self.strip_accents is not False:
                    token = self._run_strip_accents(token)
            elif self.strip_accents:
                token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token))
        return " ".join(split_tokens).strip().split()

    def wordpiece(self, text):
        out = []
        for token in text.strip().split():
            chars = list(token)
            if len(chars) > 100:
                out.append("[UNK]")
                continue
            is_bad, start, sub = False, 0, []
            while start < len(chars):
                end, cur = len(chars), None
                while start < end:
                    s = "".join(chars[start:end])
                    if start > 0:
                        s = "##" + s
                    if s in self.vocab:
                        cur = s
                        break
                    end -= 1
                if cur is None:
                    is_bad = True
                    break
                sub.append(cur)
                start = end
            out.extend(["[UNK]"] if is_bad else sub)
        return out

    def tokenize(self, text):
        if self.do_lower_case:  # PreTrainedTokenizer.tokenize: (special)|(.+?) -> lower per char
            pat = r"(" + r"|".join(re.escape(t) for t in self.specials) + r")|" + r"(.+?)"
            text = re.sub(pat, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        out = []
        for piece, is_added in split_added(text, self.added):
            if is_added:
                out.append(piece)
                continue
            for tok in self.basic_tokenize(piece):
                out.extend(self.wordpiece(tok))
        return out

    def encode(self, text, max_length=None):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        ids = [self.vocab[t] for t in self.tokenize(text)]
        if max_length is not None:
            ids = ids[:max(max_length - 2, 0)]
        return [self.vocab["[CLS]"]] + ids + [self.vocab["[SEP]"]]
