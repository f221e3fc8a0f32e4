#!/usr/bin/env bash
# bench_profile.sh — records per second of `easyrec profile items` against the fake
# OpenAI-compatible server (tests/fake_llm.c) answering after a fixed latency, at several
# concurrencies, next to the goal 0.8 x concurrency / latency (the client is never the
# bottleneck). Usage: bench/bench_profile.sh [LATENCY_MS=50] [CONCURRENCIES="1 8 32"]
# Each run profiles max(100, 3 s worth at the goal rate) items from a fresh journal.
set -eu
cd "$(dirname "$0")/.."
lat=${1:-50}
concs=${2:-1 8 32}
make -s -j2 build/easyrec build/tests/fake_llm >/dev/null
work=$(mktemp -d /tmp/easyrec-bench-profile-XXXXXX)
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
n_items=2000
awk -v n=$n_items 'BEGIN { for (i = 0; i < n; i++) { printf "%d\t%d\n", i % 97, i; printf "%d\t%d\n", (i + 13) % 97, i } }' > "$work/inter.tsv"
awk -v n=$n_items 'BEGIN { for (i = 0; i < n; i++) printf "{\"item_id\": \"%d\", \"title\": \"Item %d\", \"description\": \"A thing of kind %d for people who like kind %d.\"}\n", i, i, i % 17, i % 5 }' > "$work/meta.jsonl"
build/easyrec data import --interactions "$work/inter.tsv" --items "$work/meta.jsonl" --output "$work/ds" >/dev/null 2>&1
build/tests/fake_llm --port-file "$work/port" --latency-ms "$lat" &
srv=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")
echo "fake server latency ${lat} ms; load average $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
printf "%-12s %8s %12s %12s %8s\n" concurrency records "records/s" "goal/s" ratio
for c in $concs; do
  goal=$(awk -v c="$c" -v l="$lat" 'BEGIN { printf "%.1f", 0.8 * c * 1000 / l }')
  n=$(awk -v g="$goal" -v m="$n_items" 'BEGIN { n = int(g * 3.75); if (n < 100) n = 100; if (n > m) n = m; print n }')
  rm -rf "$work/ds/profile_journal" "$work/ds/item_profile.json"
  t0=$(date +%s.%N)
  build/easyrec profile items --data "$work/ds" --endpoint "http://127.0.0.1:$port/v1" --model fake \
      --prompts prompts --concurrency "$c" --limit "$n" >/dev/null 2>"$work/log.txt" || true
  [ -n "${BENCH_VERBOSE:-}" ] && grep "requests" "$work/log.txt" >&2
  t1=$(date +%s.%N)
  done_n=$(wc -l < "$work/ds/profile_journal/items.jsonl")
  awk -v c="$c" -v n="$done_n" -v t0="$t0" -v t1="$t1" -v g="$goal" \
      'BEGIN { r = n / (t1 - t0); printf "%-12d %8d %12.1f %12.1f %8.2f\n", c, n, r, g, r / (g / 0.8) }'
done
echo "ratio = measured / (concurrency / latency), the ideal; goal: >= 0.80. load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
