#!/usr/bin/env bash
# bench_eval.sh — full-ranking evaluation speed of `easyrec eval --user-emb --item-emb`
# against a PyTorch re-implementation of the original evaluation loop (eval_text_emb.py
# style: batches of 256 users, per-user python metrics) and a vectorised PyTorch one, in one
# run, 2 threads each, on the real movies trn/tst matrices (../shared/data/easyrec/movies:
# 16,994 users x 9,370 items, 9,577 test users) with random 768-d unit embeddings. Prints
# seconds, speed-ups, peak RSS, and checks the three agree on Recall/NDCG@10/20.
#
#   bench/bench_eval.sh [--threads N] [--rounds R] [--dim D]   (options go to bench_eval.py run)
#
# Needs: make (build/easyrec), /usr/bin/python3 with torch + numpy + scipy
# (tools/setup.sh --bench). Embeddings are cached under bench/out/eval/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -e ../shared/data/easyrec/movies/tst_mat.pkl ] || { echo "bench_eval: ../shared/data/easyrec/movies missing"; exit 1; }
/usr/bin/python3 -c 'import torch, numpy, scipy' 2>/dev/null ||
  { echo "bench_eval: /usr/bin/python3 lacks torch/numpy/scipy: run tools/setup.sh --bench"; exit 1; }
make -s build/easyrec
exec /usr/bin/python3 bench/bench_eval.py run --out bench/out/eval "$@"
