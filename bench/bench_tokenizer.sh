#!/usr/bin/env bash
# bench_tokenizer.sh — easyrec's RoBERTa tokenizer vs @huggingface/transformers (transformers.js)
# on every profile text of ../shared/data, in the same run, plus a check that both give the
# same ids for every text, and easyrec's vocabulary load time.
#
#   bench/bench_tokenizer.sh [REPEATS]      (from the repository root; REPEATS default 2)
#
# Needs: the library (make), node + npm; installs @huggingface/transformers into
# ./node_modules (gitignored) when missing — offline afterwards (no model downloads: the
# tokenizer.json is built here from ../shared/vocab/roberta-base). Outputs go to bench/out/.
# Both sides run single-threaded, no truncation, timing only tokenization (best of REPEATS).
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS=${1:-2}
VOCAB=../shared/vocab/roberta-base
DATA=../shared/data
OUT=bench/out
[ -f $VOCAB/vocab.json ] || { echo "bench_tokenizer: $VOCAB missing"; exit 1; }
mkdir -p $OUT

if [ ! -d node_modules/@huggingface/transformers ]; then
  echo "installing @huggingface/transformers (npm, into ./node_modules)"
  ONNXRUNTIME_NODE_INSTALL=skip npm install --no-save --no-package-lock --silent @huggingface/transformers >/dev/null
fi
JSV=$(node -p 'require("./node_modules/@huggingface/transformers/package.json").version')

make -s build/libeasyrec.a
PKGS="openblas jansson libutf8proc libzip"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc $(pkg-config --cflags $PKGS) bench/bench_tokenizer.c \
  build/libeasyrec.a $(pkg-config --libs $PKGS) -fopenmp -lmvec -lm -lpthread -o $OUT/bench_tokenizer

node bench/bench_tokenizer.mjs extract $DATA $OUT/profiles.jsonl
node bench/bench_tokenizer.mjs build $VOCAB $OUT/roberta-tokjs

C_LINE=$($OUT/bench_tokenizer $VOCAB $OUT/profiles.jsonl $OUT/ids_easyrec.txt "$REPEATS")
echo "$C_LINE"
JS_LINE=$(node bench/bench_tokenizer.mjs run $OUT/roberta-tokjs $OUT/profiles.jsonl $OUT/ids_js.txt "$REPEATS")
echo "$JS_LINE (@huggingface/transformers $JSV)"

rate() { sed -E 's/.* ([0-9]+) tokens\/s.*/\1/' <<<"$1"; }
C_RATE=$(rate "$C_LINE"); JS_RATE=$(rate "$JS_LINE")
awk -v c="$C_RATE" -v j="$JS_RATE" 'BEGIN { printf "speed-up: easyrec / transformers.js = %.1fx (goal >= 5x)\n", c / j }'

# id-for-id comparison over all texts
if cmp -s $OUT/ids_easyrec.txt $OUT/ids_js.txt; then
  echo "ids: identical for all $(wc -l < $OUT/ids_easyrec.txt) texts"
else
  node -e '
    const fs = require("fs");
    const a = fs.readFileSync(process.argv[1], "utf8").split("\n"), b = fs.readFileSync(process.argv[2], "utf8").split("\n");
    const t = fs.readFileSync(process.argv[3], "utf8").split("\n");
    let bad = 0;
    for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) {
      if (++bad <= 10) console.log(`text ${i}: ${t[i].slice(0, 200)}\n  easyrec: ${(a[i] || "").slice(0, 200)}\n  transformers.js: ${(b[i] || "").slice(0, 200)}`);
    }
    console.log(`ids: ${bad} of ${a.length - 1} texts differ`);
  ' $OUT/ids_easyrec.txt $OUT/ids_js.txt $OUT/profiles.jsonl
fi
