#!/usr/bin/env bash
# Installs the Debian packages easyrec needs when they are missing (fresh Debian 12, as root).
#   tools/setup.sh          build + test dependencies
#   tools/setup.sh --bench  also the benchmark/fixture peers (python3-torch, numpy, node)
#   tools/setup.sh --mpi    also Open MPI (make MPI=1)
# Waits for another apt/dpkg process holding the lock (up to 10 minutes) instead of failing.
set -eu
pkgs="gcc make pkg-config libopenblas-dev libjansson-dev libutf8proc-dev libzip-dev"
pkgs="$pkgs libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev libcairo2-dev"
for a in "$@"; do
  case "$a" in
  --bench)
    pkgs="$pkgs python3-torch python3-numpy python3-scipy python3-faiss python3-sklearn python3-pandas time wrk"
    # a Node.js installed outside apt (nvm, NodeSource) conflicts with Debian's npm: keep it
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm" ;;
  --mpi) pkgs="$pkgs libopenmpi-dev openmpi-bin" ;;
  esac
done
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "setup: installing$missing"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
lock="-o DPkg::Lock::Timeout=600"
$SUDO apt-get $lock update -q >/dev/null
$SUDO apt-get $lock install -y -q --no-install-recommends $missing >/dev/null
