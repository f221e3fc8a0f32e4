#!/usr/bin/env bash
# quality_cf.sh — does aligning CF to text help? Test Recall@20 / NDCG@20 of `easyrec cf` on a
# dataset for plain LightGCN (or GCCF) vs RLMRec-Con vs RLMRec-Gen, with text embeddings from
# TF-IDF + SVD of the profiles (tools/cf_text_vectors.py) and from random unit vectors of the
# same shape (the control), over several seeds (mean ± sample std); and plain LightGCN against
# the PyTorch reference (tools/cf_reference.py) with the same hyper-parameters, epochs and
# seeds (means compared: the two draw different random numbers).
#
#   bench/quality_cf.sh [--data DIR] [--algo lightgcn] [--epochs 24] [--seeds 2024,2025]
#                       [--text-dim 64] [--threads 2] [--no-reference] [--text NAME=PREFIX]...
# --text adds a text source: PREFIX.users.npy and PREFIX.items.npy (rows = dense ids), e.g. the
# output of `easyrec encode` with a trained model; it is run with con and gen like the others.
# Every run is capped at --epochs (early stopping may end it sooner): on a 2-core machine the
# original's 3000-epoch budget is out of reach, so the numbers are for equal, capped budgets.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data/easyrec/movies ALGO=lightgcn EPOCHS=24 SEEDS=2024,2025 K=64 THREADS=2 REF=1
TEXTS="tfidf random" EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --data) DATA=$2; shift 2 ;;
    --algo) ALGO=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --text-dim) K=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --no-reference) REF=0; shift ;;
    --text) EXTRA+=("$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=bench/out/cf_quality/$(basename "$DATA")
mkdir -p "$OUT"
make -s -j2 build/easyrec >/dev/null
[ -f "$OUT/tfidf.users.npy" ] || /usr/bin/python3 tools/cf_text_vectors.py "$DATA" "$OUT/tfidf" --dim "$K" >&2
[ -f "$OUT/random.users.npy" ] || /usr/bin/python3 tools/cf_text_vectors.py "$DATA" "$OUT/random" --dim "$K" --random >&2
for e in "${EXTRA[@]}"; do
  name=${e%%=*} prefix=${e#*=}
  for side in users items; do
    [ -f "$prefix.$side.npy" ] || { echo "quality_cf: $prefix.$side.npy not found" >&2; exit 2; }
    [ "$prefix.$side.npy" -ef "$OUT/$name.$side.npy" ] || cp "$prefix.$side.npy" "$OUT/$name.$side.npy"
  done
  TEXTS="$name $TEXTS"
done
echo "quality_cf: $DATA, $ALGO, at most $EPOCHS epochs (test step 3, patience 5), seeds $SEEDS, text dim $K, $THREADS threads"
echo "load average at start: $(cat /proc/loadavg)"
IFS=, read -ra SEEDL <<< "$SEEDS"
summary() { /usr/bin/python3 -c '
import json, sys, statistics as st
rs = [json.load(open(p)) for p in sys.argv[2:]]
r = [x["test"]["recall@20"] for x in rs]; n = [x["test"]["ndcg@20"] for x in rs]
sd = lambda v: st.stdev(v) if len(v) > 1 else 0.0
ep = ",".join(str(x["epochs"]) for x in rs)
print("%-22s %.4f ± %.4f   %.4f ± %.4f   epochs %s" % (sys.argv[1], st.mean(r), sd(r), st.mean(n), sd(n), ep))
' "$@"; }
printf "%-22s %-18s %-18s\n" run "Recall@20" "NDCG@20"
runs="none:-"
for a in gen con; do for t in $TEXTS; do runs="$runs $a:$t"; done; done
for run in $runs; do
  align=${run%%:*} text=${run#*:}
  files=()
  for s in "${SEEDL[@]}"; do
    f="$OUT/$ALGO-$align-$text-$s-e$EPOCHS.json"
    args=(--algo "$ALGO" --data "$DATA" --max-epochs "$EPOCHS" --seed "$s" --threads "$THREADS" --json --quiet)
    [ "$align" != none ] && args+=(--align "$align" --text-emb "$OUT/$text.users.npy,$OUT/$text.items.npy")
    [ -f "$f" ] || { build/easyrec cf "${args[@]}" > "$f.tmp" && mv "$f.tmp" "$f"; }
    files+=("$f")
  done
  label="$ALGO"; [ "$align" != none ] && label="$ALGO+$align ($text)"
  summary "$label" "${files[@]}"
done
if [ "$REF" = 1 ] && [ "$ALGO" = lightgcn ]; then
  # the reference with every seed (its own draws): at capped budgets one seed of either side
  # moves Recall@20 by several per cent, so means are compared, not one run against one run
  refs=() mine=()
  for s in "${SEEDL[@]}"; do
    mine+=("$OUT/$ALGO-none---$s-e$EPOCHS.json")
    f="$OUT/reference-$ALGO-$s-e$EPOCHS.json"
    [ -f "$f" ] || { /usr/bin/python3 tools/cf_reference.py train --data "$DATA" --algo lightgcn --layers 3 --reg 1e-6 \
        --epochs "$EPOCHS" --seed "$s" --threads "$THREADS" 2>/dev/null > "$f.tmp" && mv "$f.tmp" "$f"; }
    refs+=("$f")
  done
  summary "PyTorch reference" "${refs[@]}"
  /usr/bin/python3 -c '
import json, sys, statistics as st
n = len(sys.argv) // 2
a = [json.load(open(p))["test"]["recall@20"] for p in sys.argv[1:1 + n]]
b = [json.load(open(p))["test"]["recall@20"] for p in sys.argv[1 + n:]]
print("plain LightGCN, %d seeds: easyrec %.4f vs PyTorch reference %.4f (easyrec / reference = %.3f); per seed %s vs %s"
      % (n, st.mean(a), st.mean(b), st.mean(a) / st.mean(b), " ".join("%.4f" % x for x in a), " ".join("%.4f" % x for x in b)))
' "${mine[@]}" "${refs[@]}"
fi
echo "load average at end: $(cat /proc/loadavg)"
