#!/usr/bin/env bash
# bench_serve.sh — the recommendation service side by side in one run (bench/bench_serve.py):
#   1. exact top-K of easyrec (er_recommend, the engine of `serve` and `recommend`: bf16 scan,
#      exact rescoring) against FAISS IndexFlatIP (Debian python3-faiss) on the same random
#      100k x 768 unit vectors: batched queries/s (products of 64, as the server forms them;
#      FAISS also with all queries at once) and single-query latency p50/p99; the lists are
#      compared; the bf16 copy's size and the RSS with it.
#   2. `easyrec serve` with that catalog (embeddings loaded from --state, not re-encoded) under
#      wrk: /recommend (stored user, k 20) and /v1/embeddings (one short text) with 1 and 64
#      connections: requests/s, p50, p99; embeddings route texts/s vs offline `easyrec encode`;
#      server RSS.
#   bench/bench_serve.sh [--items N] [--dim D] [--threads T] [--seconds S] [--layers L]
# Needs: make, wrk, /usr/bin/python3 with numpy + faiss (tools/setup.sh --bench),
# ../shared/vocab/roberta-base. Output under bench/out/serve/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 -c 'import numpy, faiss' 2>/dev/null ||
  { echo "bench_serve: /usr/bin/python3 lacks numpy/faiss: run tools/setup.sh --bench"; exit 1; }
command -v wrk >/dev/null || { echo "bench_serve: wrk missing: run tools/setup.sh --bench"; exit 1; }
OUT=bench/out/serve
mkdir -p $OUT
make -s build/easyrec build/libeasyrec.a
PKGS="openblas jansson libutf8proc libzip libmicrohttpd sqlite3 libcurl"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -fopenmp -Iinclude -Isrc $(pkg-config --cflags $PKGS) \
  bench/bench_serve_topk.c build/libeasyrec.a $(pkg-config --libs $PKGS) -lmvec -lm -lpthread \
  -o $OUT/bench_serve_topk
exec /usr/bin/python3 bench/bench_serve.py --out $OUT "$@"
