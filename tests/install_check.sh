#!/usr/bin/env bash
# install_check.sh BUILD — `make install` into a temporary prefix, then: the installed easyrec
# runs (--version), examples/encode.c builds with `pkg-config --cflags --libs easyrec` against
# the installed libeasyrec.so and runs, libeasyrec.so exports exactly the functions easyrec.h
# declares (nm -D: nothing but easyrec_*), DESTDIR staging and `make uninstall` work.
# Run by tests/test_install.c; prints "ok ..." lines, exits non-zero at the first failure.
set -euo pipefail
B=${1:-build}
T=$(mktemp -d /tmp/easyrec-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mk() { env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -s --no-print-directory SKIP_SETUP=1 BUILD="$B" "$@"; }
V=$(sed -n 's/^#define EASYREC_VERSION "\(.*\)"/\1/p' include/easyrec.h)
M=$(sed -n 's/^#define EASYREC_VERSION_MAJOR \([0-9]*\)/\1/p' include/easyrec.h)

P=$T/usr
mk install PREFIX="$P" > "$T/log" 2>&1 || { cat "$T/log"; fail "make install PREFIX=$P"; }
for f in bin/easyrec lib/libeasyrec.so.$V lib/libeasyrec.so.$M lib/libeasyrec.so lib/libeasyrec.a \
         include/easyrec.h lib/pkgconfig/easyrec.pc share/man/man1/easyrec.1; do
  [ -e "$P/$f" ] || fail "make install did not create $f"
done
[ "$(readlink "$P/lib/libeasyrec.so")" = "libeasyrec.so.$M" ] || fail "libeasyrec.so does not point at .so.$M"
echo "ok make install PREFIX (bin, lib .so.$M + .so + .a, include, pkgconfig, man1)"

out=$("$P/bin/easyrec" --version | head -n 1)  # line 2 names the instruction set (isa: ...)
[ "$out" = "easyrec $V" ] || fail "installed easyrec --version printed '$out', expected 'easyrec $V'"
echo "ok installed easyrec --version: $out"

export PKG_CONFIG_PATH=$P/lib/pkgconfig
[ "$(pkg-config --modversion easyrec)" = "$V" ] || fail "pkg-config --modversion easyrec"
# shellcheck disable=SC2046
cc -o "$T/encode" examples/encode.c $(pkg-config --cflags --libs easyrec) || fail "example does not build with pkg-config"
readelf -d "$T/encode" | grep -q "NEEDED.*libeasyrec.so.$M" || fail "example is not linked to libeasyrec.so.$M"
export LD_LIBRARY_PATH=$P/lib
if [ -f ../shared/vocab/roberta-base/vocab.json ]; then
  "$P/bin/easyrec" init --vocab ../shared/vocab/roberta-base --output "$T/model" --layers 1 --hidden 32 --heads 2 \
    --ffn 64 --max-positions 66 > /dev/null 2>&1 || fail "installed easyrec init"
  "$T/encode" "$T/model" "sci-fi fan" "space opera" > "$T/ex.txt" || { cat "$T/ex.txt"; fail "example run"; }
  grep -q "^easyrec $V (header $V)$" "$T/ex.txt" || fail "example version line: $(head -1 "$T/ex.txt")"
  grep -q "^dim 32$" "$T/ex.txt" || fail "example dim"
  # the example's cosine equals the installed CLI's
  want=$("$P/bin/easyrec" similarity --model "$T/model" "sci-fi fan" "space opera" | cut -f1)
  got=$(sed -n 3,4p "$T/ex.txt" | tail -1 | cut -d' ' -f1)
  [ "$want" = "$got" ] || fail "example cosine $got, easyrec similarity $want"
  # and its first values equal the installed CLI's .npy (float32 after the npy v1 header)
  printf 'sci-fi fan\nspace opera\n' > "$T/in.txt"
  "$P/bin/easyrec" encode --model "$T/model" --text --input "$T/in.txt" --output "$T/e.npy" --quiet
  hl=$(od -A n -t u2 -j 8 -N 2 "$T/e.npy" | tr -d ' ')
  npy=$(od -A n -t f4 -j $((10 + hl + 32 * 4)) -N 12 -v "$T/e.npy" | awk '{printf "%.6f %.6f %.6f", $1, $2, $3}')
  ex=$(sed -n 4p "$T/ex.txt" | sed 's/.*\[\(.*\) \.\.\.\].*/\1/')
  [ "$npy" = "$ex" ] || fail "example embedding [$ex], easyrec encode [$npy]"
  echo "ok example built with pkg-config runs against the installed .so (cosine $got, embedding [$ex ...] as the CLI)"
else
  set +e; "$T/encode" > "$T/ex.txt" 2>/dev/null; rc=$?; set -e
  [ $rc -eq 2 ] && grep -q "^easyrec $V" "$T/ex.txt" || fail "example run (no ../shared/vocab: version only)"
  echo "ok example built with pkg-config runs (../shared/vocab absent: no model to encode with)"
fi

bad=$(nm -D --defined-only "$P/lib/libeasyrec.so" | awk '{print $NF}' | grep -v '^easyrec_' || true)
[ -z "$bad" ] || fail "libeasyrec.so exports non-easyrec_ symbols: $(echo $bad | head -c 300)"
declared=$(grep -E '^[a-z].*\beasyrec_[a-z0-9_]+\(' include/easyrec.h | grep -oE '\beasyrec_[a-z0-9_]+\(' | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$P/lib/libeasyrec.so" | awk '{print $NF}' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
[ -z "$missing" ] || fail "declared in easyrec.h but not exported: $missing"
echo "ok nm -D: $(echo "$exported" | wc -l) symbols, all easyrec_*, every function of easyrec.h"

mk uninstall PREFIX="$P" > "$T/log" 2>&1 || { cat "$T/log"; fail "make uninstall"; }
left=$(find "$P" -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "ok make uninstall removes every installed file"

mk install PREFIX=/usr/local DESTDIR="$T/stage" > "$T/log" 2>&1 || { cat "$T/log"; fail "make install DESTDIR"; }
[ -x "$T/stage/usr/local/bin/easyrec" ] || fail "DESTDIR not honoured"
grep -q '^prefix=/usr/local$' "$T/stage/usr/local/lib/pkgconfig/easyrec.pc" || fail "easyrec.pc prefix under DESTDIR"
mk uninstall PREFIX=/usr/local DESTDIR="$T/stage" > /dev/null 2>&1
[ ! -e "$T/stage/usr/local/bin/easyrec" ] || fail "make uninstall DESTDIR"
echo "ok DESTDIR staging (prefix=/usr/local in easyrec.pc) and uninstall"
