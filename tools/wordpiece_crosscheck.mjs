// wordpiece_crosscheck.mjs — compare the WordPiece fixture ids (tests/fixtures/wordpiece/*/
// cases.json, made by tools/hf_slow_tokenizers.py) with @huggingface/transformers' BERT
// tokenizer built from the same vocab.txt (BertNormalizer, BertPreTokenizer, WordPiece,
// BertProcessing). Prints every difference; differences are expected only where
// transformers.js (like HF's fast tokenizer) departs from the slow tokenizer.
//   node tools/wordpiece_crosscheck.mjs   (after: npm install --no-save @huggingface/transformers)
import fs from "fs";
import os from "os";
import path from "path";

const { AutoTokenizer, env } = await import("@huggingface/transformers");
env.allowRemoteModels = false;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "wpx-"));
env.localModelPath = tmp + "/";
let diffs = 0, total = 0;
for (const kind of ["uncased", "cased"]) {
  const dir = path.join("tests/fixtures/wordpiece", kind);
  const vocabList = fs.readFileSync(path.join(dir, "vocab.txt"), "utf8").split("\n").slice(0, -1);
  const vocab = {};
  vocabList.forEach((t, i) => (vocab[t] = i));
  const lower = kind === "uncased";
  const special = (t) => ({ id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tok = {
    version: "1.0", truncation: null, padding: null,
    added_tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(special),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: lower },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: { type: "BertProcessing", sep: ["[SEP]", vocab["[SEP]"]], cls: ["[CLS]", vocab["[CLS]"]] },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
  const cfg = { tokenizer_class: "BertTokenizer", do_lower_case: lower, model_max_length: 1e9, unk_token: "[UNK]", sep_token: "[SEP]", pad_token: "[PAD]", cls_token: "[CLS]", mask_token: "[MASK]" };
  fs.mkdirSync(path.join(tmp, kind));
  fs.writeFileSync(path.join(tmp, kind, "tokenizer.json"), JSON.stringify(tok));
  fs.writeFileSync(path.join(tmp, kind, "tokenizer_config.json"), JSON.stringify(cfg));
  const t = await AutoTokenizer.from_pretrained(kind);
  for (const c of JSON.parse(fs.readFileSync(path.join(dir, "cases.json"), "utf8"))) {
    if (c.max_length) continue;
    total++;
    const got = t.encode(c.text);
    if (JSON.stringify(got) !== JSON.stringify(c.ids)) {
      diffs++;
      console.log(`${kind} ${JSON.stringify(c.text)}\n  fixture:         ${c.ids.map((i) => vocabList[i]).join(" ")}\n  transformers.js: ${got.map((i) => vocabList[i]).join(" ")}`);
    }
  }
}
fs.rmSync(tmp, { recursive: true });
console.log(`${total} cases, ${diffs} differ from transformers.js`);
