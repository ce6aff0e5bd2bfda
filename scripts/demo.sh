#!/usr/bin/env bash
# Quick start, part 1: installs what is missing, builds, and runs the main
# job: the bus daemon (started automatically by the first client) and a
# fan-out demo, one publisher and several subscriber processes in libuv
# loops; then the two-process "first writes, second reads later" pattern, and
# the shmbus CLI.
#
# Arguments go to the fan-out example (--subs N, --messages N).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHMBUS_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

# A private bus for the demo, so it never meets another daemon; the
# examples start build/daemon/shmbusd on it by themselves (autostart).
SHMBUS_DIR=$(mktemp -d /tmp/shmbus-demo-XXXXXX)
export SHMBUS_DIR
export SHMBUS_DAEMON="$PWD/build/daemon/shmbusd"
stop_daemon() {
  if [ -s "$SHMBUS_DIR/shmbusd.lock" ]; then
    kill "$(cat "$SHMBUS_DIR/shmbusd.lock")" 2>/dev/null || true
  fi
  rm -rf "$SHMBUS_DIR"
}
trap stop_daemon EXIT

echo "== fan-out: one publisher, subscribers asleep in libuv loops (bus: $SHMBUS_DIR) =="
./build/examples/shmbus-example-uv-fanout "$@"
echo
echo "== back-pressure: a slow reliable logger holds the publisher back, loses nothing =="
./build/examples/shmbus-example-reliable --messages 50000
echo
echo "== two processes, one after the other: the second reads through history =="
./build/examples/shmbus-example-hello-pub "Hello from the first process"
./build/examples/shmbus-example-hello-sub
echo
echo "== the shmbus CLI: an echo, a publisher that waits for it, the daemon's view =="
./build/cli/shmbus echo demo/cli --count 2 &
echo_pid=$!
./build/cli/shmbus pub demo/cli --wait-subs 1 "plain text"
./build/cli/shmbus pub demo/cli --json '{"hello": "from the CLI", "n": 2}'
wait "$echo_pid"
./build/cli/shmbus ls --interval 0
