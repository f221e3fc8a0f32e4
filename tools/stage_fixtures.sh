#!/usr/bin/env bash
# stage_fixtures.sh SRC DST — copy every SRC/**/*.in test fixture to DST/** without the ".in"
# suffix. Fixtures laid out like the EasyRec release (trn_mat.pkl, item_profile.json, ...) are
# committed under a suffix so that nothing in the repository looks like release data; the
# tests read the staged copies (make test runs this into $(BUILD)/fixtures).
set -eu
src=$1 dst=$2
cd "$src"
find . -name '*.in' -type f | while read -r f; do
  out="$dst/${f%.in}"
  mkdir -p "$(dirname "$out")"
  cp "$f" "$out"
done
