#!/usr/bin/env bash
# bench_train.sh — `easyrec train` examples/s against PyTorch CPU (Debian python3-torch) doing the
# same EasyRec step, at a small shape (2 x 256, 4 heads, FFN 1024) and at EasyRec-small shape
# (6 x 768, 12 heads, FFN 3072), both with the real RoBERTa vocabulary (50265), in the same run.
#
#   bench/bench_train.sh [bench_train.py run options]     (from anywhere; e.g. --rounds 3)
#
# Same batch (32 user/positive/negative triples of ../shared/data/easyrec/movies profiles, max
# length 64), same losses (InfoNCE + 0.1 MLM), dropout 0.1, AdamW lr 5e-5, clipping 1.0, 2
# threads everywhere. PyTorch runs twice: as the original computes the step (four padded passes,
# LM head on ALL positions) and with the LM head on the masked positions only. Also measures the
# 2-thread OpenBLAS sgemm peak for model-FLOPs utilisation, and each process's peak RSS.
# Method and results: bench/README.md ("Training"). Outputs: bench/out/train/ (table.md,
# results.json). About 15 minutes on 2 quiet cores; longer on a loaded machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
VOCAB=../shared/vocab/roberta-base
DATA=../shared/data/easyrec/movies
for f in $VOCAB/vocab.json $VOCAB/merges.txt $DATA/trn_mat.pkl; do
  [ -f "$f" ] || { echo "bench_train: $f missing (needs ../shared)"; exit 1; }
done
/usr/bin/python3 -c 'import torch, scipy' 2>/dev/null || { echo "bench_train: needs Debian python3-torch and python3-scipy"; exit 1; }
mkdir -p $OUT
make -s build/easyrec build/libeasyrec.a
PKGS="openblas jansson libutf8proc libzip"
${CC:-cc} -std=c11 -O2 -Iinclude -Isrc $(pkg-config --cflags $PKGS) bench/bench_train_sgemm.c build/libeasyrec.a \
  $(pkg-config --libs $PKGS) -fopenmp -lmvec -lm -lpthread -o $OUT/bench_train_sgemm
exec /usr/bin/python3 bench/bench_train.py run --sgemm $OUT/bench_train_sgemm \
  --vocab $VOCAB --data $DATA --out $OUT --threads 2 "$@"
