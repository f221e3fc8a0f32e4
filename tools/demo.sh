#!/usr/bin/env bash
# make demo — EasyRec end to end on the built-in catalog, no download (docs/demo.md):
#   1. generate the catalog (6 domains; travel is held out)
#   2. learn a BPE vocabulary and train a small encoder from scratch on 5 domains
#      (the from-scratch recipe of docs/train.md: dropout 0, no MLM) — or use EASYREC_MODEL=DIR
#   3. zero-shot evaluation on the held-out domain: trained vs untrained vs BM25 vs popularity
#      (and the same on a training domain, for contrast)
#   4. a user whose profile moves from basketball to swimming: top items before and after,
#      same model, no retraining
#   5. the t-SNE picture (users and items by interest, the moving user with an arrow)
# Environment: EASYREC_MODEL=DIR (skip training), DEMO_QUICK=1 (tiny catalog, few steps: the
# test in make test), DEMO_OUT=DIR (default build/demo), DEMO_THREADS=N (default 2),
# EASYREC_BIN (default build/easyrec).
set -eu
cd "$(dirname "$0")/.."
E=${EASYREC_BIN:-build/easyrec}
OUT=${DEMO_OUT:-build/demo}
QUICK=${DEMO_QUICK:-0}
T=${DEMO_THREADS:-2}
START=$(date +%s)
NSTEPS=6
step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n[%d/%d, %3ds] %s\n' "$step_no" "$NSTEPS" "$(($(date +%s) - START))" "$*"
}
[ -x "$E" ] || { echo "demo: $E not built (run make demo)" >&2; exit 1; }
mkdir -p "$OUT"
TRAIN_DOMAINS="sports books food games music"
HELD=travel
if [ "$QUICK" = 1 ]; then
  CAT_OPTS="--users 40 --items-per-interest 6"; VOCAB=600; EPOCHS=1; WARMUP=2; BATCH=16; ITERS=250
  STEPS="--max-steps 4"
else
  CAT_OPTS="--users 300 --items-per-interest 40"; VOCAB=4000; EPOCHS=${DEMO_EPOCHS:-8}; WARMUP=50; BATCH=64; ITERS=1000
  STEPS=""
fi

step "Building the catalog: $E catalog --output $OUT/catalog $CAT_OPTS"
rm -rf "$OUT/catalog"
# shellcheck disable=SC2086
"$E" catalog --output "$OUT/catalog" --seed 2024 $CAT_OPTS | sed 's/^/    /'
C=$OUT/catalog

data_list=""
for d in $TRAIN_DOMAINS; do data_list="$data_list${data_list:+,}$C/$d"; done
if [ -n "${EASYREC_MODEL:-}" ]; then
  step "Model: EASYREC_MODEL=$EASYREC_MODEL (no training)"
  MODEL=$EASYREC_MODEL
  VOCAB_DIR=$EASYREC_MODEL
else
  step "Training a small encoder from scratch on $TRAIN_DOMAINS ($HELD held out)"
  corpus=""
  for d in $TRAIN_DOMAINS; do corpus="$corpus $C/$d/profiles.txt"; done
  echo "    BPE vocabulary (at most $VOCAB) from the training domains' profiles"
  # shellcheck disable=SC2086
  "$E" tokenizer train --input $corpus --vocab-size $VOCAB --output "$OUT/vocab" 2>&1 | sed 's/^/    /'
  VOCAB_DIR=$OUT/vocab
  rm -rf "$OUT/model"
  echo "    $E train: 2 layers x 256, dropout 0, no MLM, lr 1e-3, batch $BATCH, $EPOCHS epochs $STEPS"
  "$E" init --vocab "$VOCAB_DIR" --output "$OUT/init" --layers 2 --hidden 256 --heads 4 --ffn 1024 --seed 2024 >/dev/null 2>&1
  # shellcheck disable=SC2086
  "$E" train --init "$OUT/init" --data "$data_list" --val-data none --output "$OUT/model" \
    --epochs "$EPOCHS" --batch-size "$BATCH" --lr 1e-3 --warmup-steps "$WARMUP" --weight-decay 0.01 \
    --max-length 96 --dropout 0 --mlm-weight 0 --threads "$T" --quiet $STEPS
  MODEL=$OUT/model
  # --max-steps (quick mode) leaves the model in checkpoint-last/, itself a model directory
  [ -f "$MODEL/config.json" ] || MODEL=$OUT/model/checkpoint-last
  grep '"loss' "$OUT/model/train_log.jsonl" | sed -n '1p;$p' |
    sed 's/.*"step": \([0-9]*\).*"loss_cl": \([0-9.]*\).*"examples_per_s": \([0-9.]*\).*/    step \1: contrastive loss \2 (\3 examples\/s)/'
  UNTRAINED=$OUT/init
fi
if [ -n "${EASYREC_MODEL:-}" ]; then # the untrained reference: same shape as the demo's, the model's vocabulary
  UNTRAINED=$OUT/untrained
  rm -rf "$UNTRAINED"
  "$E" init --vocab "$VOCAB_DIR" --output "$UNTRAINED" --layers 2 --hidden 256 --heads 4 --ffn 1024 --seed 2024 >/dev/null 2>&1
fi

step "Zero-shot evaluation on the held-out domain '$HELD' (test split; 1 + 3 profile sets averaged)"
num() { sed -n "s/.*\"mean\"[^}]*\"$1\": *\([0-9.e-]*\).*/\1/p" "$2" | head -1; }
pnum() { sed -n "s/.*\"$1\": *\([0-9.e-]*\).*/\1/p" "$2" | head -1; }
eval_table() { # domain tag: four scorers -> $OUT/eval_<tag>_<scorer>.json and a Markdown table on stdout
  local dom=$1 tag=$2 s f r n
  "$E" eval --data "$C/$dom" --json --quiet --threads "$T" --model "$MODEL" >"$OUT/eval_${tag}_trained.json"
  "$E" eval --data "$C/$dom" --json --quiet --threads "$T" --model "$UNTRAINED" >"$OUT/eval_${tag}_untrained.json"
  "$E" eval --data "$C/$dom" --json --quiet --baseline bm25 >"$OUT/eval_${tag}_bm25.json"
  "$E" eval --data "$C/$dom" --json --quiet --baseline popularity >"$OUT/eval_${tag}_popularity.json"
  printf '| %s: scorer | Recall@20 | NDCG@20 |\n|---|---|---|\n' "$dom"
  for s in trained untrained bm25 popularity; do
    f=$OUT/eval_${tag}_$s.json
    r=$(num recall@20 "$f"); n=$(num ndcg@20 "$f")
    [ -n "$r" ] || { r=$(pnum recall@20 "$f"); n=$(pnum ndcg@20 "$f"); }
    printf '| %s | %.4f | %.4f |\n' "$s" "$r" "$n"
  done
}
eval_table "$HELD" heldout >"$OUT/eval_table.md"
sed 's/^/    /' "$OUT/eval_table.md"
echo "    For contrast, in domain: 'sports' (trained on its training split; test split here)"
eval_table sports indomain >"$OUT/eval_table_indomain.md"
sed 's/^/    /' "$OUT/eval_table_indomain.md"

step "Preference shift: sports user 0 moves from basketball to swimming (same model, no retraining)"
shift_field() { sed -n "s/.*\"$1\": \"\(.*\)\".*/\1/p" "$C/shift.json"; }
BEFORE=$(shift_field before)
AFTER=$(shift_field after)
show_recs() { # json-lines file
  grep -o '"item_id": *[0-9]*, *"score": *[-0-9.e]*' "$1" | head -5 | while read -r line; do
    id=$(echo "$line" | sed 's/.*"item_id": *\([0-9]*\).*/\1/')
    sc=$(echo "$line" | sed 's/.*"score": *\([-0-9.e]*\).*/\1/')
    lab=$(sed -n "$((id + 1))p" "$C/sports/item_labels.txt")
    txt=$(grep "^{\"item_id\": $id," "$C/sports/item_profile.json" | sed 's/.*"profile": "\(.*\)"}/\1/' | cut -c1-78)
    printf '      %-10s %.4f  item %-4s %s\n' "$lab" "$sc" "$id" "$txt"
  done
}
for when in before after; do
  text=$BEFORE; [ $when = after ] && text=$AFTER
  "$E" recommend --model "$MODEL" --catalog "$C/sports" --text "$text" --k 10 --quiet --threads "$T" \
    --output "$OUT/recs_$when.jsonl"
  echo "    $when: \"$text\""
  show_recs "$OUT/recs_$when.jsonl"
  sw=$(grep -o '"item_id": *[0-9]*' "$OUT/recs_$when.jsonl" | sed 's/.*: *//' | while read -r id; do
    sed -n "$((id + 1))p" "$C/sports/item_labels.txt"; done | grep -c swimming || true)
  bb=$(grep -o '"item_id": *[0-9]*' "$OUT/recs_$when.jsonl" | sed 's/.*: *//' | while read -r id; do
    sed -n "$((id + 1))p" "$C/sports/item_labels.txt"; done | grep -c basketball || true)
  echo "      top 10: $bb basketball, $sw swimming items"
  eval "BB_$when=$bb; SW_$when=$sw"
done

step "t-SNE picture of the sports domain: items and users by interest, the moving user"
printf '%s\n%s\n' "$BEFORE" "$AFTER" >"$OUT/shift.txt"
"$E" encode --model "$MODEL" --input "$C/sports/item_profile.json" --output "$OUT/sports_items.npy" --threads "$T" 2>/dev/null
"$E" encode --model "$MODEL" --input "$C/sports/user_profile.json" --output "$OUT/sports_users.npy" --threads "$T" 2>/dev/null
"$E" encode --model "$MODEL" --input "$OUT/shift.txt" --text --output "$OUT/shift.npy" --threads "$T" 2>/dev/null
NI=$(wc -l <"$C/sports/item_labels.txt"); NU=$(wc -l <"$C/sports/user_labels.txt")
cat "$C/sports/item_labels.txt" "$C/sports/user_labels.txt" >"$OUT/tsne_labels.txt"
printf 'basketball\nswimming\n' >>"$OUT/tsne_labels.txt"
B=$((NI + NU)); A=$((B + 1))
"$E" tsne --emb "$OUT/sports_items.npy,$OUT/sports_users.npy,$OUT/shift.npy" --labels "$OUT/tsne_labels.txt" \
  --highlight "$B=user 0 before,$A=user 0 after" --arrows "$B:$A" --iterations $ITERS \
  --title "Sports: $NI items + $NU users by interest; user 0 moves basketball -> swimming" \
  --output "$OUT/tsne.png,$OUT/tsne.svg" --coords "$OUT/tsne_coords.npy" --quiet
echo "    $OUT/tsne.png and $OUT/tsne.svg ($((NI + NU + 2)) points)"

step "Summary ($(($(date +%s) - START)) s)"
cat <<EOT
    catalog        $C  (6 domains in the EasyRec release layout; shift.json)
    model          $MODEL$([ -z "${EASYREC_MODEL:-}" ] && echo "  (trained from scratch here; vocabulary $OUT/vocab, log $OUT/model/train_log.jsonl)")
    held-out eval  $OUT/eval_table.md, in-domain $OUT/eval_table_indomain.md  (JSON: $OUT/eval_*.json)
EOT
sed 's/^/                   /' "$OUT/eval_table.md"
cat <<EOT
    shift          $OUT/recs_before.jsonl, recs_after.jsonl: top 10 basketball/swimming $BB_before/$SW_before before, $BB_after/$SW_after after
    picture        $OUT/tsne.png, $OUT/tsne.svg
EOT
