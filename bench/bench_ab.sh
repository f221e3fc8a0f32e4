#!/usr/bin/env bash
# bench_ab.sh — before/after check of two easyrec builds in one run (e.g. a refactor's "no
# regression beyond noise" claim): the same random model, data and steps, the two binaries
# alternating round by round so load drifts hit both.
#
#   bench/bench_ab.sh OLD/easyrec NEW/easyrec [rounds]      (from the repo root, ../shared beside)
#
# Prints per round: encode wall seconds (1,024 movies item profiles, EasyRec-small shape,
# 2 threads, model load included) and training examples/s of the last logged step (2 x 256
# model, batch 32, max length 64, 8 steps, no validation), with the load average; then the
# medians and new/old ratios. Also checks that both builds give the same training losses.
set -eu
OLD=$1; NEW=$2; ROUNDS=${3:-3}
SHARED=${SHARED:-../shared}
DATA=$SHARED/data/easyrec/movies; VOCAB=$SHARED/vocab/roberta-base
[ -d "$DATA" ] || { echo "bench_ab: $DATA missing"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
head -1024 "$DATA/item_profile.json" > "$T/items.json"
"$NEW" init --vocab "$VOCAB" --output "$T/enc" --layers 6 > /dev/null 2>&1
"$NEW" init --vocab "$VOCAB" --output "$T/tr" --layers 2 --hidden 256 --heads 4 --ffn 1024 > /dev/null 2>&1
now() { date +%s.%N; }
for r in $(seq "$ROUNDS"); do
  for v in old new; do
    B=$OLD; [ $v = new ] && B=$NEW
    s=$(now); "$B" encode --model "$T/enc" --input "$T/items.json" --output "$T/e_$v.npy" --threads 2 --quiet > /dev/null 2>&1; e=$(now)
    "$B" train --init "$T/tr" --data "$DATA" --val-data none --batch-size 32 --max-length 64 --max-steps 8 \
      --threads 2 --output "$T/t_${v}_$r" --quiet > /dev/null 2>&1
    xs=$(tail -1 "$T/t_${v}_$r/train_log.jsonl" | grep -o '"examples_per_s": [0-9.]*' | awk '{print $2}')
    printf '%s round %d: encode %.2f s, train %.2f ex/s (load %s)\n' $v "$r" "$(echo "$e - $s" | bc)" "$xs" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$T/rows"
  done
done
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for v in old new; do
  eval "enc_$v=$(grep "^$v " "$T/rows" | awk '{print $5}' | med)"
  eval "tr_$v=$(grep "^$v " "$T/rows" | awk '{print $8}' | med)"
done
echo "median encode: old $enc_old s, new $enc_new s (new/old time $(echo "scale=3; $enc_new / $enc_old" | bc))"
echo "median train:  old $tr_old ex/s, new $tr_new ex/s (new/old speed $(echo "scale=3; $tr_new / $tr_old" | bc))"
# old builds log losses with 6 decimals: compare with that resolution
d=$(paste <(grep -o '"loss": [0-9.]*' "$T/t_old_1/train_log.jsonl" | awk '{print $2}') \
          <(grep -o '"loss": [0-9.]*' "$T/t_new_1/train_log.jsonl" | awk '{print $2}') |
    awk '{x = $1 - $2; if (x < 0) x = -x; if (x > m) m = x} END {printf "%.2g", m}')
echo "training losses: largest difference old vs new $d (logged to 1e-6)"
