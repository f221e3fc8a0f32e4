#!/usr/bin/env bash
# bench_mpi.sh — training examples/s of `easyrec train` on 1 rank vs 2 ranks (mpirun), one
# thread each, the same global batch (1 rank: --batch-size B --grad-accum 2; 2 ranks:
# --batch-size B each), the same model and data; plus the bytes all-reduced per step (the
# flat gradient, 4 bytes x parameters). Needs make MPI=1 (build-mpi/easyrec) and mpirun.
# One run each (shared machine): the load average is printed with the numbers.
#
#   bench/bench_mpi.sh [--batch 8] [--steps 12] [--preset tiny|small] [--data D1,D2]
set -euo pipefail
cd "$(dirname "$0")/.."
B=8 STEPS=12 PRESET=tiny DATA=build-mpi/fixtures/train/data/d1,build-mpi/fixtures/train/data/d2
while [ $# -gt 0 ]; do
  case $1 in
    --batch) B=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x build-mpi/easyrec ] || make -j2 MPI=1 >/dev/null
[ -d build-mpi/fixtures/train ] || make MPI=1 build-mpi/fixtures/.stamp >/dev/null
E=build-mpi/easyrec
W=$(mktemp -d /tmp/bench-mpi-XXXXXX)
trap 'rm -rf "$W"' EXIT
ROOT=""; [ "$(id -u)" -eq 0 ] && ROOT=--allow-run-as-root
$E init --vocab ../shared/vocab/roberta-base --preset "$PRESET" --output "$W/init" >/dev/null 2>&1
COMMON="train --init $W/init --data $DATA --epochs 1000 --max-steps $STEPS --lr 1e-4 --quiet --eval-steps 0 --val-data none --threads 1"
t() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
echo "load average before: $(cat /proc/loadavg)"
t1=$(t $E $COMMON --batch-size "$B" --grad-accum 2 --output "$W/r1")
t2=$(t mpirun $ROOT --oversubscribe -np 2 $E $COMMON --batch-size "$B" --output "$W/r2")
echo "load average after:  $(cat /proc/loadavg)"
ex=$((STEPS * 2 * B))
params=$(grep -o '"n_params"[^,]*' "$W/r1/checkpoint-last/"*.json 2>/dev/null | head -1 || true)
# the training rate: examples_per_s of the last log line (timed from the loop's start: no start-up)
rate() { tail -1 "$1/train_log.jsonl" | grep -o '"examples_per_s": [0-9.e+-]*' | cut -d' ' -f2; }
r1=$(rate "$W/r1"); r2=$(rate "$W/r2")
printf 'preset %s, global batch %d, %d steps (%d examples)\n' "$PRESET" $((2*B)) "$STEPS" "$ex"
printf '1 rank  x 1 thread: %7.1f examples/s  (wall %.2f s incl. start-up)\n' "$r1" "$t1"
printf '2 ranks x 1 thread: %7.1f examples/s  (wall %.2f s incl. start-up)\n' "$r2" "$t2"
printf 'speed-up %.2fx (goal >= 1.8x), efficiency %.0f%%\n' "$(echo "$r2 / $r1" | bc -l)" "$(echo "50 * $r2 / $r1" | bc -l)"
sz=$(stat -c %s "$W/r1/checkpoint-last/model.safetensors")
printf 'all-reduced per step: about %.1f MB (the float32 gradient, ~ the model file of %d bytes) %s\n' "$(echo "$sz / 1000000" | bc -l)" "$sz" "$params"
