#!/usr/bin/env bash
# run_all.sh — runs every bench/bench_*.sh in turn (`make bench`); see bench/README.md.
# Each benchmark prints its own report; a failing one does not stop the others, and the
# script exits 1 when any failed. Arguments are not passed on (each has its own defaults).
set -u
cd "$(dirname "$0")/.."
failed=""
for b in bench/bench_*.sh; do
  [ -f "$b" ] || continue
  echo "==== $b ($(date '+%H:%M:%S'))"
  if ! bash "$b"; then
    echo "==== $b FAILED"
    failed="$failed $b"
  fi
  echo
done
if [ -n "$failed" ]; then
  echo "failed:$failed"
  exit 1
fi
echo "all benchmarks ran"
