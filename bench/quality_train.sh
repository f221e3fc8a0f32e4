#!/usr/bin/env bash
# quality_train.sh — does training help? (issue 5's quality check; a measurement, not a test)
#
# Trains a small RoBERTa-shaped encoder FROM SCRATCH on the six EasyRec training domains
# for a wall-clock budget, then evaluates zero-shot on domains held out of training
# (xrec-yelp: LLM user + item profiles; sports: diverse item profiles, users described by
# 5 training items) against the same model untrained and the BM25 baseline.
#
#   bench/quality_train.sh [BUDGET_MINUTES=50] [OUT=bench/out/quality]
#   PARAPHRASE=1 bench/quality_train.sh 40 bench/out/quality-para    (the ablation below)
#
# Recipe (docs/train.md "Training from scratch"): an 8k byte-level BPE vocabulary learned
# from the training domains' profiles only; 2 layers x 256; batch 64, lr 1e-3 with 100
# warmup steps, weight decay 0.01, max length 192, dropout 0, no MLM; a one-epoch schedule
# (~46 min on 2 cores), stopped by SIGTERM at the budget if it has not finished.
# PARAPHRASE=1 adds, for each domain, a paraphrase-matching set built from its own item
# profiles (tools/make_paraphrase_data.py: diverse profile 0 of an item -> the same item's
# other profiles), mixed within batches; needs Debian python3-numpy and python3-scipy.
# Prints one table; the run's log is OUT/trained/train_log.jsonl.
set -eu
cd "$(dirname "$0")/.."
budget=${1:-50}
out=${2:-bench/out/quality}
D=../shared/data/easyrec
train_domains="arts games movies home electronics tools"
bin=build/easyrec
make -s build/easyrec
mkdir -p "$out"
if [ ! -f "$out/vocab/vocab.json" ]; then
  for d in $train_domains; do
    cat $D/$d/diverse_profile/*.json $(ls $D/$d/item_profile.json 2>/dev/null)
  done | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    if line.strip(): print(json.loads(line)["profile"].replace("\n", " "))' > "$out/corpus.txt"
  $bin tokenizer train --input "$out/corpus.txt" --vocab-size 8192 --output "$out/vocab"
fi
[ -f "$out/init/model.safetensors" ] || $bin init --vocab "$out/vocab" --output "$out/init" \
  --layers 2 --hidden 256 --heads 4 --ffn 1024 --seed 2024
data=$(for d in $train_domains; do printf '%s,' $D/$d; done)
if [ "${PARAPHRASE:-0}" = 1 ]; then
  for d in $train_domains; do
    [ -f "$out/para_$d/trn_mat.pkl" ] || /usr/bin/python3 tools/make_paraphrase_data.py $D/$d "$out/para_$d"
  done
  data=$(for d in $train_domains; do printf '%s,%s,' $D/$d "$out/para_$d"; done)
fi
data=${data%,}
if [ ! -f "$out/trained/checkpoint-last/model.safetensors" ]; then
  start=$(date +%s)
  $bin train --init "$out/init" --data "$data" --val-data none --epochs 1 --batch-size 64 --lr 1e-3 \
    --warmup-steps 100 --weight-decay 0.01 --max-length 192 --dropout 0 --mlm-weight 0 \
    --threads 2 --quiet --output "$out/trained" & pid=$!
  ( sleep $((budget * 60)); kill -TERM $pid 2>/dev/null ) & timer=$!
  wait $pid || true
  kill $timer 2>/dev/null || true
  echo "trained for $(( ($(date +%s) - start) / 60 )) min (budget ${budget} min, 2 threads)"
fi
model=$out/trained/checkpoint-last # a model directory (weights + tokenizer files)
steps=$(grep -o '"step": [0-9]*' "$model/trainer_state.json" | grep -o '[0-9]*')
echo "trained $steps steps x 64 examples"
printf '%-10s %-22s %10s %10s\n' dataset scorer Recall@20 NDCG@20
for ds in ../shared/data/xrec-yelp $D/sports; do
  ut=profiles; [ -f $ds/user_profile.json ] || ut=items:5
  for s in "--baseline bm25" "--model $out/init" "--model $model"; do
    r=$($bin eval $s --data $ds --user-text $ut --k 20 --json --quiet --threads 2)
    rec=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin)["mean"]; print("%.4f %.4f" % (m["recall@20"], m["ndcg@20"]))')
    printf '%-10s %-22s %10s %10s\n' "$(basename $ds)" "$(echo $s | sed "s|$out/||")" $rec
  done
done
