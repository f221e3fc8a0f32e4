#!/usr/bin/env bash
# bench_encode.sh — encoding throughput of `easyrec encode` against PyTorch (HF-style eager
# layers and nn.TransformerEncoderLayer's fused path) and ONNX Runtime (npm onnxruntime-node),
# side by side in one run, on real profile texts of ../shared/data, with random models of
# roberta-base shape (12 layers) and EasyRec-small shape (6 layers); plus the OpenBLAS sgemm
# peak, useful GFLOP/s, peak RSS, and max |diff| of every peer's embeddings against PyTorch.
#
#   bench/bench_encode.sh [OPTIONS]      (from anywhere; options go to bench_encode.py run)
#     -n N              profiles sampled from ../shared/data (default 256, seed 0)
#     --threads 1,2     thread counts to measure (default 2)
#     --rounds R        alternating rounds per peer, best reported (default 2)
#     --models roberta-base,easyrec-small
#
# Needs: make (build/easyrec), /usr/bin/python3 with torch + numpy (tools/setup.sh --bench),
# node + npm; installs onnxruntime-node into bench/out/node when ./node_modules lacks it (the
# package ships its CPU binary; offline afterwards). Models, ONNX files, samples and
# embeddings are cached under bench/out/encode/ (gitignored). See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out/encode
mkdir -p $OUT
for f in ../shared/vocab/roberta-base/vocab.json ../shared/data; do
  [ -e "$f" ] || { echo "bench_encode: $f missing (needs ../shared)"; exit 1; }
done
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null ||
  { echo "bench_encode: /usr/bin/python3 lacks torch/numpy: run tools/setup.sh --bench"; exit 1; }
command -v node >/dev/null || { echo "bench_encode: node missing: run tools/setup.sh --bench"; exit 1; }

if ! node -e 'require("onnxruntime-node")' 2>/dev/null; then
  if [ ! -d $OUT/../node/node_modules/onnxruntime-node ]; then
    echo "installing onnxruntime-node (npm, into bench/out/node)"
    mkdir -p bench/out/node
    ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix bench/out/node --no-save --no-package-lock --silent \
      onnxruntime-node >/dev/null
  fi
  export NODE_PATH="$PWD/bench/out/node/node_modules${NODE_PATH:+:$NODE_PATH}"
fi

make -s build/easyrec build/libeasyrec.a
PKGS="openblas jansson libutf8proc libzip"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Iinclude -Isrc $(pkg-config --cflags $PKGS) \
  bench/bench_encode_sgemm.c build/libeasyrec.a $(pkg-config --libs $PKGS) -lmvec -lm -lpthread \
  -o $OUT/bench_encode_sgemm

exec /usr/bin/python3 bench/bench_encode.py run --out $OUT "$@"
