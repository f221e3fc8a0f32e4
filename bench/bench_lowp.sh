#!/usr/bin/env bash
# bench_lowp.sh — profiles/s of `easyrec encode --precision fp32|bf16|int8` at the
# EasyRec-small (6 x 768) and roberta-base (12 x 768) shapes next to PyTorch fp32 (eager
# sorted + fused), bf16 (autocast) and int8 (quantize_dynamic) and ONNX Runtime fp32 and
# dynamically quantised int8 (npm onnxruntime-node), one run, plus cosine agreement of each
# low-precision path with its own fp32 and every process's peak RSS.
#   bench/bench_lowp.sh [-n N] [--threads T] [--rounds R] [--models easyrec-small,roberta-base]
#   (options go to bench_lowp.py run)
# Needs make (build/easyrec), /usr/bin/python3 with torch + numpy, node + npm; installs
# onnxruntime-node into bench/out/node when missing (as bench_encode.sh; offline afterwards).
# Shares bench/out/encode (data sample, models, ONNX files) with bench_encode.sh. See
# bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in ../shared/vocab/roberta-base/vocab.json ../shared/data; do
  [ -e "$f" ] || { echo "bench_lowp: $f missing (needs ../shared)"; exit 1; }
done
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null ||
  { echo "bench_lowp: /usr/bin/python3 lacks torch/numpy: run tools/setup.sh --bench"; exit 1; }
command -v node >/dev/null || { echo "bench_lowp: node missing: run tools/setup.sh --bench"; exit 1; }
if ! node -e 'require("onnxruntime-node")' 2>/dev/null; then
  if [ ! -d bench/out/node/node_modules/onnxruntime-node ]; then
    echo "installing onnxruntime-node (npm, into bench/out/node)"
    mkdir -p bench/out/node
    ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix bench/out/node --no-save --no-package-lock --silent \
      onnxruntime-node >/dev/null
  fi
  export NODE_PATH="$PWD/bench/out/node/node_modules${NODE_PATH:+:$NODE_PATH}"
fi
make -s build/easyrec
exec /usr/bin/python3 bench/bench_lowp.py run "$@"
