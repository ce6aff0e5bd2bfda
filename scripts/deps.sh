#!/usr/bin/env bash
# Installs what shmbus needs to build and test on Debian (bookworm or later).
# Idempotent: installs only the packages that are missing. Runs apt-get as
# root, or through sudo when that is available.
set -euo pipefail

packages=(build-essential cmake pkg-config libuv1-dev libmsgpack-dev libcriterion-dev)
# The shmbus CLI and shmbus-bench (built by default): jansson for JSON; libzmq for the
# benchmark's ZeroMQ peer.
packages+=(libjansson-dev libzmq3-dev)
for arg in "$@"; do
  case "$arg" in
    # valgrind: scripts/test.sh --valgrind; gnuplot: the benchmark smoke test draws a plot (--plot);
    # strace: trust::forged_sleeper_bits_cost_the_publisher_nothing counts syscalls with it.
    --test) packages+=(valgrind gnuplot-nox strace) ;;
    --fuzz) packages+=(clang libclang-rt-dev) ;; # scripts/fuzz.sh: clang with libFuzzer
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "shmbus: missing packages: ${missing[*]}; run this script as root to install them" >&2
  exit 1
fi
echo "shmbus: installing ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
