#!/usr/bin/env bash
# quality_train.sh — does training help? (issue 5's quality check; a measurement, not a test)
#
# Trains a small RoBERTa-shaped encoder FROM SCRATCH on the six EasyRec training domains
# for a wall-clock budget, then evaluates zero-shot on domains held out of training
# (xrec-yelp: LLM user + item profiles; sports: diverse item profiles, users described by
# 5 training items) against the same model untrained and the BM25 baseline.
#
#   bench/quality_train.sh [BUDGET_MINUTES=50] [OUT=bench/out/quality]
# Prints one table; the run's log is OUT/trained/train_log.jsonl.
set -eu
cd "$(dirname "$0")/.."
budget=${1:-50}
out=${2:-bench/out/quality}
D=../shared/data/easyrec
bin=build/easyrec
make -s build/easyrec
mkdir -p "$out"
[ -f "$out/init/model.safetensors" ] || $bin init --vocab ../shared/vocab/roberta-base --output "$out/init" \
  --layers 2 --hidden 128 --heads 4 --ffn 512 --seed 2024
# one epoch schedule (lr 1e-3 after 100 warmup steps, batch 64); stopped by SIGTERM at the budget
if [ ! -f "$out/trained/checkpoint-last/model.safetensors" ]; then
  $bin train --init "$out/init" --data $D/arts,$D/games,$D/movies,$D/home,$D/electronics,$D/tools \
    --val-data none --epochs 1 --batch-size 64 --lr 1e-3 --warmup-steps 100 --weight-decay 0.01 \
    --threads 2 --quiet --output "$out/trained" & pid=$!
  ( sleep $((budget * 60)); kill -TERM $pid 2>/dev/null ) & timer=$!
  wait $pid || true
  kill $timer 2>/dev/null || true
fi
# the stopped state is a model directory once the tokenizer files are beside it
cp ../shared/vocab/roberta-base/vocab.json ../shared/vocab/roberta-base/merges.txt "$out/trained/checkpoint-last/"
steps=$(grep -o '"step": [0-9]*' "$out/trained/checkpoint-last/trainer_state.json" | grep -o '[0-9]*')
echo "trained $steps steps x 64 examples (budget ${budget} min, 2 threads)"
printf '%-10s %-22s %10s %10s\n' dataset scorer Recall@20 NDCG@20
for ds in ../shared/data/xrec-yelp $D/sports; do
  ut=profiles; [ -f $ds/user_profile.json ] || ut=items:5
  for s in "--baseline bm25" "--model $out/init" "--model $out/trained/checkpoint-last"; do
    r=$($bin eval $s --data $ds --user-text $ut --k 20 --json --quiet --threads 2)
    rec=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; m=json.load(sys.stdin)["mean"]; print("%.4f %.4f" % (m["recall@20"], m["ndcg@20"]))')
    printf '%-10s %-22s %10s %10s\n' "$(basename $ds)" "$(echo $s | sed "s|$out/||")" $rec
  done
done
