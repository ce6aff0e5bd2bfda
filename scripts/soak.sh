#!/usr/bin/env bash
# Soak test: shmbusd, 4 publishers and 5 subscribers on a reliable and a lossy
# topic, for a bounded time, while random participants and the daemon are
# killed (SIGKILL) and restarted; then checks that nothing committed was lost,
# losses were counted exactly, every payload was intact, and the daemon's
# descriptors and memory stayed flat. Prints a summary ending in
# "RESULT: PASS" or "RESULT: FAIL" (exit status 0 or 1). Not part of CI.
#
#   scripts/soak.sh                 2 minutes
#   scripts/soak.sh --minutes 10    ten minutes (or --seconds N)
#   scripts/soak.sh --seed 42       repeat a run's choice of victims
#   scripts/soak.sh --verbose       keep the daemon's log on stderr
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
seconds=120
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) seconds=$(( $2 * 60 )); shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --seed) args+=(--seed "$2"); shift 2 ;;
    --verbose) args+=(--verbose); shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash scripts/deps.sh --test
dir=build-soak
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_WERROR=ON \
  -DSHMBUS_BUILD_EXAMPLES=OFF -DSHMBUS_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target shmbus-soak >/dev/null
"./$dir/tests/soak/shmbus-soak" --seconds "$seconds" "${args[@]}" 2>&1 | tee "$dir/soak.log"
exit "${PIPESTATUS[0]}"
