#!/usr/bin/env bash
# Quick start, part 1: installs what is missing, builds, and runs the main
# job: the bus daemon (started automatically by the first client) and a
# fan-out demo, one publisher and several subscriber processes in libuv
# loops; then the two-process "first writes, second reads later" pattern, and
# the shmbus CLI.
#
#   scripts/demo.sh [--subs N] [--messages N]   build here (build/), run the demo
#   scripts/demo.sh --installed [...]           the same against the installed packages
#                                               (libshmbus-dev, shmbusd, shmbus-tools): the
#                                               examples are built outside the tree, the
#                                               library autostarts /usr/bin/shmbusd
#
# Other arguments go to the fan-out example. Leaves nothing behind but the
# build directory: the demo's bus lives in a temporary directory, removed
# at exit, and its daemon is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

installed=0
args=()
for arg in "$@"; do
  case "$arg" in
    --installed) installed=1 ;;
    *) args+=("$arg") ;;
  esac
done

# A private bus for the demo, so it never meets another daemon; the
# examples start shmbusd on it by themselves (autostart).
SHMBUS_DIR=""
stop_daemon() {
  if [ -n "$SHMBUS_DIR" ] && [ -s "$SHMBUS_DIR/shmbusd.lock" ]; then
    kill "$(cat "$SHMBUS_DIR/shmbusd.lock")" 2>/dev/null || true
    # The daemon holds the lock until it has exited: wait for that, not
    # for a time, so the directory is removed after it.
    timeout 30 flock "$SHMBUS_DIR/shmbusd.lock" true 2>/dev/null || true
  fi
  [ -z "$SHMBUS_DIR" ] || rm -rf "$SHMBUS_DIR"
  [ -z "${exbuild:-}" ] || rm -rf "$exbuild"
}
trap stop_daemon EXIT

if [ "$installed" -eq 1 ]; then
  bash scripts/deps.sh --installed
  pkg-config --exists shmbus || {
    echo "demo.sh --installed: shmbus is not installed (pkg-config shmbus); install libshmbus-dev," \
         "shmbusd and shmbus-tools, or run without --installed" >&2
    exit 1
  }
  exbuild=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-demo-examples-XXXXXX")
  cmake -S examples -B "$exbuild" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$exbuild" -j"$(nproc)" >/dev/null
  ex="$exbuild"
  cli=shmbus
  unset SHMBUS_DAEMON # the library's own choice: the installed shmbusd
else
  bash scripts/deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHMBUS_BUILD_TESTS=OFF -DSHMBUS_BUILD_BENCH=OFF \
    -DSHMBUS_BUILD_EXAMPLES=ON >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
  ex=./build/examples
  cli=./build/cli/shmbus
  export SHMBUS_DAEMON="$PWD/build/daemon/shmbusd"
fi
SHMBUS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-demo-XXXXXX")
export SHMBUS_DIR

echo "== fan-out: one publisher, subscribers asleep in libuv loops (bus: $SHMBUS_DIR) =="
"$ex"/shmbus-example-uv-fanout "${args[@]}"
echo
echo "== back-pressure: a slow reliable logger holds the publisher back, loses nothing =="
"$ex"/shmbus-example-reliable --messages 50000
echo
echo "== two processes, one after the other: the second reads through history =="
"$ex"/shmbus-example-hello-pub "Hello from the first process"
"$ex"/shmbus-example-hello-sub
echo
echo "== the shmbus CLI: an echo, a publisher that waits for it, the daemon's view =="
"$cli" echo demo/cli --count 2 &
echo_pid=$!
"$cli" pub demo/cli --wait-subs 1 "plain text"
"$cli" pub demo/cli --json '{"hello": "from the CLI", "n": 2}'
wait "$echo_pid"
"$cli" ls --interval 0
