#!/usr/bin/env bash
# Runs every built test binary (from the repo root), prints each one's output and one
# closing line "N passed, N failed, N skipped" summed over all of them; exits 1 on any
# failure (including a binary that crashed). Usage: tests/run.sh BIN...
set -u
passed=0; failed=0; skipped=0; crashed=0
for t in "$@"; do
  echo "== $t"
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out"
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' | tail -1)
  if [ -z "$line" ]; then
    echo "FAIL $t: exited $rc without a summary line"; crashed=$((crashed+1)); continue
  fi
  read -r p _ f _ s _ <<<"$(echo "$line" | tr -d ,)"
  passed=$((passed+p)); failed=$((failed+f)); skipped=$((skipped+s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL $t: exit status $rc"; crashed=$((crashed+1)); fi
done
failed=$((failed+crashed))
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
