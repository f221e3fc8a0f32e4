#!/usr/bin/env bash
# quality_lowp.sh — what bf16 and int8 cost in ranking quality (issue 15): `easyrec eval --model M
# --precision P` on movies and xrec-yelp (test split) for fp32, bf16 and int8, Recall@20 / NDCG@20
# (mean over the dataset's profile sets, as `easyrec eval` reports) and the relative change of each
# low precision against fp32. A measurement, not a test.
#
#   bench/quality_lowp.sh MODEL_DIR [--threads 2] [--datasets DIR,DIR]
# MODEL_DIR: a trained model (e.g. bench/quality_train.sh's checkpoint-last). The issue's goals:
# relative Recall@20 change <= 0.5 % (bf16) and <= 1 % (int8).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/quality_lowp.sh MODEL_DIR [--threads N] [--datasets D1,D2]" >&2; exit 2; }
MODEL=$1; shift
THREADS=2 DATASETS=../shared/data/easyrec/movies,../shared/data/xrec-yelp
while [ $# -gt 0 ]; do
  case $1 in
    --threads) THREADS=$2; shift 2 ;;
    --datasets) DATASETS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
make -s -j2 build/easyrec >/dev/null
OUT=bench/out/quality_lowp
mkdir -p "$OUT"
echo "quality_lowp: model $MODEL, $THREADS threads, load average at start: $(cat /proc/loadavg)"
printf '%-10s %-6s %-10s %-10s %-12s %-12s\n' dataset prec Recall@20 NDCG@20 "dRecall rel" "dNDCG rel"
IFS=, read -ra DS <<< "$DATASETS"
for d in "${DS[@]}"; do
  name=$(basename "$d")
  for p in fp32 bf16 int8; do
    f="$OUT/$name-$p.json"
    build/easyrec eval --model "$MODEL" --data "$d" --user-text auto:10 --precision "$p" \
      --k 20 --threads "$THREADS" --json --quiet > "$f"
  done
  /usr/bin/python3 - "$name" "$OUT/$name-fp32.json" "$OUT/$name-bf16.json" "$OUT/$name-int8.json" <<'PY'
import json, sys
name = sys.argv[1]
rs = [json.load(open(p))["mean"] for p in sys.argv[2:]]
r0, n0 = rs[0]["recall@20"], rs[0]["ndcg@20"]
for prec, m in zip(("fp32", "bf16", "int8"), rs):
    r, n = m["recall@20"], m["ndcg@20"]
    print("%-10s %-6s %-10.5f %-10.5f %+11.3f%% %+11.3f%%" % (name, prec, r, n, 100 * (r - r0) / r0, 100 * (n - n0) / n0))
PY
done
echo "load average at end: $(cat /proc/loadavg)"
