#!/usr/bin/env bash
# bench_lowp.sh — profiles/s of `easyrec encode --precision fp32|bf16|int8` at the
# EasyRec-small shape next to PyTorch fp32 (eager sorted + fused), bf16 (autocast) and int8
# (quantize_dynamic), one run, plus cosine agreement with fp32 and peak RSS.
#   bench/bench_lowp.sh [-n N] [--threads T] [--rounds R]   (options go to bench_lowp.py run)
# Needs make (build/easyrec) and /usr/bin/python3 with torch + numpy. Shares bench/out/encode
# (data sample, model) with bench_encode.sh. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -e ../shared/data ] || { echo "bench_lowp: ../shared/data missing"; exit 1; }
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null ||
  { echo "bench_lowp: /usr/bin/python3 lacks torch/numpy: run tools/setup.sh --bench"; exit 1; }
make -s build/easyrec
exec /usr/bin/python3 bench/bench_lowp.py run "$@"
