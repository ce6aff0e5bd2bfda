#!/usr/bin/env bash
# Quick start, part 1: installs what is missing, builds, and runs the main
# job: one publisher process fanning out to several subscriber processes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSHMBUS_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/examples/shmbus-example-fanout "$@"
