#!/bin/sh
# movielens_meta.sh DIR > items.jsonl — MovieLens-100K's u.item (Latin-1, `|`-separated:
# id|title|release date|video date|IMDb URL|19 genre flags) and u.genre as JSON lines
# {"item_id": "1", "title": "...", "release_date": "...", "genres": ["Animation", ...]} for
# `easyrec data import --items` (docs/profile.md). Needs only iconv and awk.
set -eu
dir=${1:?usage: movielens_meta.sh MOVIELENS_100K_DIR}
iconv -f latin1 -t utf-8 "$dir/u.item" | awk -F'|' -v genres="$(iconv -f latin1 -t utf-8 "$dir/u.genre" | cut -d'|' -f1 | tr '\n' '|')" '
function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); gsub(/\r/, "", s); return s }
BEGIN { ng = split(genres, g, "|") }
NF >= 24 {
  out = ""
  for (k = 6; k <= 24; k++) if ($k == "1") out = out (out == "" ? "" : ", ") "\"" esc(g[k - 5]) "\""
  printf "{\"item_id\": \"%s\", \"title\": \"%s\", \"release_date\": \"%s\", \"genres\": [%s]}\n", $1, esc($2), esc($3), out
}'
