#!/usr/bin/env bash
# Installs the Debian packages easyrec needs when they are missing (fresh Debian 12, as root).
#   tools/setup.sh          build + test dependencies
#   tools/setup.sh --bench  also the benchmark/fixture peers (python3-torch, numpy, node)
set -eu
pkgs="gcc make pkg-config libopenblas-dev libjansson-dev libutf8proc-dev libzip-dev"
if [ "${1:-}" = "--bench" ]; then
  pkgs="$pkgs python3-torch python3-numpy python3-scipy time"
  # a Node.js installed outside apt (nvm, NodeSource) conflicts with Debian's npm: keep it
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "setup: installing$missing"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
