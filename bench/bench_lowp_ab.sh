#!/usr/bin/env bash
# bench_lowp_ab.sh — two easyrec builds side by side at fp32 / bf16 / int8 (e.g. before/after a
# change to allocation or kernels): `easyrec encode --precision P` of bench_lowp.sh's 128-profile
# sample at both shapes, the builds alternating within every round so load drifts hit both.
# Timed as bench_lowp.sh times easyrec: the CLI's own "(X s)" (tokenize + forward + .npy write,
# after model load and conversion). Prints every round, then per build the best time per
# precision and the ratio to the same build's fp32.
#
#   bench/bench_lowp_ab.sh OLD/easyrec NEW/easyrec [rounds=3]
# Needs bench/out/encode from bench_encode.sh / bench_lowp.sh (models and the n128 sample).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/bench_lowp_ab.sh OLD/easyrec NEW/easyrec [rounds]" >&2; exit 2; }
OLD=$1 NEW=$2 ROUNDS=${3:-3}
T=bench/out/encode/data-n128-s0-L512/texts.jsonl
[ -f "$T" ] || { echo "bench_lowp_ab: $T missing: run bench/bench_lowp.sh once" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "load at start: $(cat /proc/loadavg)"
for shape in easyrec-small roberta-base; do
  for r in $(seq "$ROUNDS"); do
    for p in fp32 bf16 int8; do
      for b in old new; do
        bin=$NEW; [ $b = old ] && bin=$OLD
        t=$("$bin" encode --model bench/out/encode/model-$shape --input "$T" --output "$tmp/e.npy" --threads 2 \
             --max-length 512 --precision $p 2>&1 | grep -o '([0-9.]* s)' | tr -d '(s) ')
        echo "$shape $r $p $b $t"
      done
    done
  done
done | tee "$tmp/log"
echo "load at end: $(cat /proc/loadavg)"
/usr/bin/python3 - "$tmp/log" <<'PY'
import collections, sys
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    s, r, p, b, t = l.split()
    d[s, p, b].append(float(t))
for s in ("easyrec-small", "roberta-base"):
    for b in ("old", "new"):
        f = min(d[s, "fp32", b])
        print(f"{s:14s} {b}: " + "  ".join(f"{p} {min(d[s, p, b]):.3f} s ({f / min(d[s, p, b]):.2f}x fp32)" for p in ("fp32", "bf16", "int8")))
PY
