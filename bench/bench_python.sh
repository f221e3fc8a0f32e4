#!/usr/bin/env bash
# bench_python.sh — Python `easyrec.Model.encode` (ctypes over libeasyrec.so) vs `easyrec encode`
# on the same texts, model, threads and options. Each round runs both as fresh processes
# (alternating, CLI first) and times the whole process (start, model load, encode, output) and,
# for Python, the encode call alone; reports medians, the ratio and the load average.
#   bench/bench_python.sh [-n 256] [--threads 2] [--rounds 3] [--layers 6]
set -euo pipefail
cd "$(dirname "$0")/.."
N=256 THREADS=2 ROUNDS=3 LAYERS=6
while [ $# -gt 0 ]; do
  case $1 in
    -n) N=$2; shift 2 ;; --threads) THREADS=$2; shift 2 ;; --rounds) ROUNDS=$2; shift 2 ;;
    --layers) LAYERS=$2; shift 2 ;; *) echo "usage: $0 [-n N] [--threads T] [--rounds R] [--layers L]"; exit 2 ;;
  esac
done
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "needs /usr/bin/python3 with numpy"; exit 1; }
[ -f ../shared/vocab/roberta-base/vocab.json ] || { echo "needs ../shared/vocab/roberta-base"; exit 1; }
make -s -j2 build/easyrec shared > /dev/null
OUT=bench/out/python; mkdir -p "$OUT"
MODEL=$OUT/model-l$LAYERS
[ -f "$MODEL/model.safetensors" ] || build/easyrec init --vocab ../shared/vocab/roberta-base --output "$MODEL" \
  --layers "$LAYERS" > /dev/null
# N real profiles (fixed sample, seed 0) when ../shared/data has them, else synthetic sentences
/usr/bin/python3 - "$N" "$OUT/texts.txt" <<'PY'
import glob, json, random, sys
n, out = int(sys.argv[1]), sys.argv[2]
texts = []
for f in sorted(glob.glob("../shared/data/**/*_profile*.json", recursive=True))[:8]:
    for line in open(f, encoding="utf-8"):
        try:
            p = json.loads(line).get("profile")
        except ValueError:
            continue
        if isinstance(p, str) and p.strip():
            texts.append(" ".join(p.split()))
random.seed(0)
if len(texts) < n:
    words = "user enjoys quiet thrillers space opera jazz vinyl cooking hiking cameras novels".split()
    texts += [" ".join(random.choice(words) for _ in range(40 + i % 80)) for i in range(n)]
texts = random.sample(texts, n)
open(out, "w", encoding="utf-8").write("\n".join(texts) + "\n")
PY
export EASYREC_LIB=$PWD/build/libeasyrec.so
cli=(); py=(); pyenc=()
for r in $(seq "$ROUNDS"); do
  t0=$(date +%s.%N)
  build/easyrec encode --model "$MODEL" --text --input "$OUT/texts.txt" --output "$OUT/cli.npy" --threads "$THREADS" --quiet
  t1=$(date +%s.%N)
  enc=$(PYTHONPATH=python /usr/bin/python3 - "$MODEL" "$OUT/texts.txt" "$THREADS" "$OUT/py.npy" <<'PY'
import sys, time
import numpy as np
import easyrec
m = easyrec.Model(sys.argv[1])
texts = open(sys.argv[2], encoding="utf-8").read().splitlines()
t = time.perf_counter()
e = m.encode(texts, threads=int(sys.argv[3]))
print(time.perf_counter() - t)
np.save(sys.argv[4], e)
PY
)
  t2=$(date +%s.%N)
  cli+=("$(echo "$t1 - $t0" | bc -l)"); py+=("$(echo "$t2 - $t1" | bc -l)"); pyenc+=("$enc")
  echo "round $r: cli ${cli[-1]} s, python ${py[-1]} s (encode call ${enc} s)   load $(cut -d' ' -f1-3 /proc/loadavg)"
done
/usr/bin/python3 - "$OUT/cli.npy" "$OUT/py.npy" "$N" "${cli[*]}" "${py[*]}" "${pyenc[*]}" <<'PY'
import statistics, sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
n = int(sys.argv[3])
c, p, e = (statistics.median(map(float, s.split())) for s in sys.argv[4:7])
print("identical embeddings: %s" % bool(np.array_equal(a.view(np.uint32), b.view(np.uint32))))
print("median whole process: easyrec encode %.3f s (%.1f texts/s), python %.3f s (%.1f texts/s); "
      "python/cli throughput ratio %.3f" % (c, n / c, p, n / p, c / p))
print("python Model.encode call alone: %.3f s (%.1f texts/s)" % (e, n / e))
PY
echo "load average: $(cat /proc/loadavg)"
