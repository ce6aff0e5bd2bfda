#!/usr/bin/env bash
# Installs what shmbus needs on Debian 12 (bookworm) or 13 (trixie), and
# nothing it does not:
#
#   scripts/deps.sh             build the library, daemon, CLI, examples and shmbus-bridge (scripts/demo.sh)
#   scripts/deps.sh --test      also the test suite, benchmark, valgrind, systemd-analyze, nats-server
#                               (scripts/test.sh)
#   scripts/deps.sh --bench     also shmbus-bench's peers: ZeroMQ, NATS (nats-server), iceoryx 2.0
#                               (RouDi and the C binding) where the distribution has it (Debian 12 does)
#   scripts/deps.sh --fuzz      also clang with libFuzzer (scripts/fuzz.sh)
#   scripts/deps.sh --format    also clang-format (scripts/format.sh)
#   scripts/deps.sh --package   also what dpkg-buildpackage needs for debian/ (scripts/package.sh)
#   scripts/deps.sh --installed only a compiler, CMake and pkg-config: build against the
#                               installed packages (demo.sh --installed, consumer-test.sh --installed)
#
# Idempotent: installs only the packages that are missing. Runs apt-get as
# root, or through sudo when that is available; never asks a question
# (DEBIAN_FRONTEND=noninteractive), so it works without a terminal (CI).
set -euo pipefail

base=(build-essential cmake pkg-config)
# msgpack-c's development package: libmsgpack-c-dev from Debian 13 on
# (msgpack-c 6; libmsgpack-dev is only a transitional package there),
# libmsgpack-dev on Debian 12 (msgpack-c 4).
msgpack=libmsgpack-dev
if apt-cache show libmsgpack-c-dev >/dev/null 2>&1 ||
   dpkg-query -W -f='${Status}' libmsgpack-c-dev 2>/dev/null | grep -q 'install ok installed'; then
  msgpack=libmsgpack-c-dev
fi
# The library and daemon (libuv, msgpack-c), the shmbus CLI (jansson; zstd
# and libdeflate for the chunks and CRCs of `shmbus record`), shmbus-bridge
# (libnats-dev: the NATS C client with its libuv adapter; 3.4 in Debian 12,
# 3.10 in Debian 13, same package names).
packages=("${base[@]}" libuv1-dev "$msgpack" libjansson-dev libzstd-dev libdeflate-dev libnats-dev)
for arg in "$@"; do
  case "$arg" in
    # Criterion for the suite; libzmq for the benchmark's ZeroMQ peer (its smoke test);
    # valgrind for test.sh --valgrind; gnuplot for the benchmark smoke test's plot;
    # systemd for systemd-analyze (the systemd_units test); strace for
    # trust::forged_sleeper_bits_cost_the_publisher_nothing, which counts syscalls;
    # prometheus (promtool) and python3-prometheus-client (the reference OpenMetrics
    # parser) check `shmbus metrics` (opscli::metrics_*).
    # nats-server (2.9 in Debian 12, 2.10 in Debian 13) for the bridge's tests and the
    # NATS test fixture (tests/natsfix.c), which start their own clusters on loopback.
    # node and npm run the reference MCAP reader (@mcap/core, which the tests install
    # from npm into the build directory): Debian's packages only when no node or npm
    # is there already (a NodeSource nodejs brings its own npm, and conflicts with
    # Debian's).
    --test) packages+=(libcriterion-dev libzmq3-dev valgrind gnuplot-nox systemd strace
                       prometheus python3-prometheus-client nats-server)
            command -v node >/dev/null 2>&1 || packages+=(nodejs)
            command -v npm >/dev/null 2>&1 || packages+=(npm) ;;
    # The benchmark's peers (bench/README.md): libzmq, nats-server (libnats-dev is in the
    # base set), and iceoryx's RouDi (iox-roudi) and C binding. Without them shmbus-bench
    # builds and skips those peers with a note; the suite's iceoryx smoke test is skipped too.
    --bench) packages+=(libzmq3-dev nats-server iceoryx libiceoryx-binding-c-dev) ;;
    --fuzz) packages+=(clang libclang-rt-dev) ;;
    # clang-format for scripts/format.sh (the committed format is clang-format 14's, Debian 12).
    --format) packages+=(clang-format) ;;
    --package) packages+=(debhelper dpkg-dev fakeroot) ;;
    --installed) packages=("${base[@]}") ;;
    *) echo "deps.sh: unknown option $arg" >&2; exit 2 ;;
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
# The msgpack-c name may only be known after the update (a fresh machine).
if [ "$msgpack" = libmsgpack-dev ] && apt-cache show libmsgpack-c-dev >/dev/null 2>&1; then
  missing=("${missing[@]/#libmsgpack-dev/libmsgpack-c-dev}")
fi
# iceoryx is optional: left out (with a note) where the distribution has no package.
# Any other package that the distribution does not have fails here, by name,
# before apt-get does (its message would not say which of the list it was).
known=()
unknown=()
for p in "${missing[@]}"; do
  if ! apt-cache show "$p" >/dev/null 2>&1; then
    case "$p" in
      iceoryx | libiceoryx-binding-c-dev)
        echo "shmbus: $p is not packaged here; shmbus-bench will skip its iceoryx peer" >&2 ;;
      *) unknown+=("$p") ;;
    esac
    continue
  fi
  known+=("$p")
done
if [ "${#unknown[@]}" -gt 0 ]; then
  echo "shmbus: not packaged in this distribution (or its apt sources): ${unknown[*]}" >&2
  echo "shmbus: install them by other means, or add the sources that have them, then run this again" >&2
  exit 1
fi
missing=("${known[@]}")
[ "${#missing[@]}" -eq 0 ] && exit 0
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
