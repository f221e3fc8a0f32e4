#!/usr/bin/env bash
# bench_cf.sh — seconds per training epoch of `easyrec cf` against the PyTorch CPU reference
# (tools/cf_reference.py, written as the original trains: per-interaction rejection sampling,
# torch.sparse propagation, autograd, torch.optim.Adam), same data, batch, hyper-parameters
# and threads; peak RSS of each from /usr/bin/time -v. One run per peer (the machines are
# small and shared: the load average is printed with the numbers).
#
#   bench/bench_cf.sh [--threads 2] [--epochs 2] [--text-dim 768] [--data DIR] [--configs LIST]
#
# LIST: comma-separated of lightgcn,gccf,lightgcn+con,gccf+con,lightgcn+gen,gccf+gen (default
# the first four). Aligned runs use random text embeddings of --text-dim columns (timing only).
# easyrec validates once after epoch 0 (not counted); the reference does not validate.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=2 EPOCHS=2 H=768 DATA=../shared/data/easyrec/movies CONFIGS=lightgcn,gccf,lightgcn+con,gccf+con
while [ $# -gt 0 ]; do
  case $1 in
    --threads) THREADS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --text-dim) H=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f "$DATA/trn_mat.pkl" ] || { echo "bench_cf: $DATA/trn_mat.pkl absent" >&2; exit 1; }
OUT=bench/out/cf
mkdir -p "$OUT"
make -s -j2 build/easyrec >/dev/null
/usr/bin/python3 - "$DATA" "$H" "$OUT" <<'PY'
import pickle, sys, numpy as np
d, H, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
N, M = pickle.load(open(f"{d}/trn_mat.pkl", "rb")).shape
rs = np.random.RandomState(0)
for name, n in (("u", N), ("i", M)):
    x = rs.randn(n, H).astype(np.float32)
    np.save(f"{out}/{name}{H}.npy", x / np.linalg.norm(x, axis=1, keepdims=True))
PY
# the original's defaults per configuration (docs/cf.md), given to both peers
hp() {
  case $1 in
    lightgcn) echo "--layers 3 --reg 1e-6" ;;
    gccf) echo "--layers 3 --reg 1e-6" ;;
    lightgcn+con) echo "--layers 3 --reg 1e-8 --kd-weight 1e-3 --kd-temp 0.1" ;;
    gccf+con) echo "--layers 2 --reg 1e-6 --kd-weight 1e-2 --kd-temp 0.5" ;;
    lightgcn+gen) echo "--layers 3 --reg 1e-7 --kd-weight 0.1 --kd-temp 0.2 --mask-ratio 0.1" ;;
    gccf+gen) echo "--layers 3 --reg 1e-6 --kd-weight 0.1 --kd-temp 1.0 --mask-ratio 0.05" ;;
  esac
}
rss() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$1"; }
spe() { /usr/bin/python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["seconds_per_epoch"])' "$1"; }
echo "bench_cf: $DATA, $EPOCHS epochs, batch 4096, $THREADS threads, text dim $H (aligned runs); $(nproc) cores"
printf "%-14s %12s %12s %8s %14s %14s %s\n" config "easyrec s/ep" "torch s/ep" ratio "easyrec MiB" "torch MiB" "load avg"
IFS=, read -ra LIST <<< "$CONFIGS"
for c in "${LIST[@]}"; do
  algo=${c%%+*}; align=none; [ "$c" != "$algo" ] && align=${c#*+}
  text=""; [ "$align" != none ] && text="--text-emb $OUT/u$H.npy,$OUT/i$H.npy"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  /usr/bin/time -v -o "$OUT/time_c.txt" build/easyrec cf --algo "$algo" --align "$align" $text --data "$DATA" \
    $(hp "$c") --max-epochs "$EPOCHS" --test-step 1000000 --threads "$THREADS" --json --quiet > "$OUT/c.json"
  /usr/bin/time -v -o "$OUT/time_t.txt" /usr/bin/python3 tools/cf_reference.py train --algo "$algo" --align "$align" \
    $text --data "$DATA" $(hp "$c") --epochs "$EPOCHS" --threads "$THREADS" --no-val --no-eval 2>/dev/null > "$OUT/t.json"
  a=$(spe "$OUT/c.json"); b=$(spe "$OUT/t.json")
  printf "%-14s %12s %12s %7.2fx %14s %14s %s\n" "$c" "$a" "$b" "$(echo "$b / $a" | bc -l)" \
    "$(rss "$OUT/time_c.txt")" "$(rss "$OUT/time_t.txt")" "$load"
done
