// bench_tokenizer.mjs — the transformers.js side of bench/bench_tokenizer.sh.
//
//   node bench/bench_tokenizer.mjs extract DATA_DIR OUT.jsonl
//       every "profile" of every JSON-lines *_profile*.json under DATA_DIR (recursive, sorted
//       paths) -> OUT.jsonl, one JSON string per line
//   node bench/bench_tokenizer.mjs build VOCAB_DIR OUT_DIR
//       vocab.json + merges.txt -> OUT_DIR/tokenizer.json (HF tokenizers format: BPE model,
//       ByteLevel pre-tokenizer with add_prefix_space false, RobertaProcessing post-processor,
//       <mask> with lstrip) + OUT_DIR/tokenizer_config.json (RobertaTokenizer)
//   node bench/bench_tokenizer.mjs run TOK_DIR TEXTS.jsonl OUT_IDS [REPEATS]
//       tokenizes every text with @huggingface/transformers (AutoTokenizer, offline), best of
//       REPEATS (default 3) timed passes; writes the ids, one text per line, space separated,
//       and prints "transformers.js: N texts, T tokens, S s, R tokens/s"
import fs from "fs";
import path from "path";

function walk(dir, out) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/_profile.*\.json$/.test(e.name)) out.push(p);
  }
  return out;
}

function extract(dataDir, outFile) {
  const files = walk(dataDir, []);
  const out = fs.openSync(outFile, "w");
  let n = 0;
  for (const f of files) {
    for (const line of fs.readFileSync(f, "utf8").split("\n")) {
      if (!line.trim()) continue;
      const obj = JSON.parse(line);
      if (typeof obj.profile !== "string") continue;
      fs.writeSync(out, JSON.stringify(obj.profile) + "\n");
      n++;
    }
  }
  fs.closeSync(out);
  console.log(`extracted ${n} profiles from ${files.length} files`);
}

function build(vocabDir, outDir) {
  const vocab = JSON.parse(fs.readFileSync(path.join(vocabDir, "vocab.json"), "utf8"));
  // like the slow tokenizer: skip the first line (#version) and what follows the last "\n"
  const merges = fs.readFileSync(path.join(vocabDir, "merges.txt"), "utf8").split("\n").slice(1, -1).filter((l) => l.trim().split(/\s+/).length === 2);
  const special = (content, lstrip = false) => ({ id: vocab[content], content, single_word: false, lstrip, rstrip: false, normalized: false, special: true });
  const tok = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special("<s>"), special("<pad>"), special("</s>"), special("<unk>"), special("<mask>", true)],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "RobertaProcessing", sep: ["</s>", vocab["</s>"]], cls: ["<s>", vocab["<s>"]], trim_offsets: true, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const cfg = {
    tokenizer_class: "RobertaTokenizer", add_prefix_space: false, errors: "replace", model_max_length: 1000000000,
    bos_token: "<s>", eos_token: "</s>", cls_token: "<s>", sep_token: "</s>", unk_token: "<unk>", pad_token: "<pad>",
    mask_token: { content: "<mask>", lstrip: true, rstrip: false, normalized: false, single_word: false, __type: "AddedToken" },
  };
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "tokenizer.json"), JSON.stringify(tok));
  fs.writeFileSync(path.join(outDir, "tokenizer_config.json"), JSON.stringify(cfg, null, 1));
  console.log(`wrote ${outDir}/tokenizer.json (${Object.keys(vocab).length} tokens, ${merges.length} merges)`);
}

async function run(tokDir, textsFile, outIds, repeats) {
  const { AutoTokenizer, env } = await import("@huggingface/transformers");
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(path.resolve(tokDir)) + "/";
  let t0 = performance.now();
  const tokenizer = await AutoTokenizer.from_pretrained(path.basename(path.resolve(tokDir)));
  const loadMs = performance.now() - t0;
  const texts = fs.readFileSync(textsFile, "utf8").split("\n").filter((l) => l.length).map((l) => JSON.parse(l));
  let best = Infinity, all = null, ntok = 0;
  for (let r = 0; r < repeats; r++) {
    const ids = new Array(texts.length);
    ntok = 0;
    t0 = performance.now();
    for (let i = 0; i < texts.length; i++) {
      ids[i] = tokenizer.encode(texts[i]);
      ntok += ids[i].length;
    }
    const dt = (performance.now() - t0) / 1000;
    if (dt < best) best = dt;
    all = ids;
  }
  fs.writeFileSync(outIds, all.map((a) => a.join(" ")).join("\n") + "\n");
  console.log(`transformers.js: load ${loadMs.toFixed(1)} ms, ${texts.length} texts, ${ntok} tokens, ${best.toFixed(3)} s, ${(ntok / best).toFixed(0)} tokens/s`);
}

const [cmd, a, b, c, d] = process.argv.slice(2);
if (cmd === "extract") extract(a, b);
else if (cmd === "build") build(a, b);
else if (cmd === "run") await run(a, b, c, Number(d || 3));
else {
  console.error("usage: bench_tokenizer.mjs extract DATA_DIR OUT | build VOCAB_DIR OUT_DIR | run TOK_DIR TEXTS OUT_IDS [REPEATS]");
  process.exit(2);
}
