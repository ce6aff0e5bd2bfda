#!/usr/bin/env bash
# Quick start, part 2: installs what is missing, builds, runs the test suite.
#
#   scripts/test.sh                            the whole suite (what CI runs first)
#   scripts/test.sh --sanitize address,undefined   the whole suite under ASan+UBSan
#   scripts/test.sh --sanitize thread          the in-process stress tests under TSan
#   scripts/test.sh --valgrind                 unit, process, daemon, API, crash and CLI tests under valgrind
set -euo pipefail
cd "$(dirname "$0")/.."

mode=plain
sanitize=""
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize="$2"; mode=sanitize; shift 2 ;;
    --valgrind) mode=valgrind; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash scripts/deps.sh --test
case "$mode" in
  plain) dir=build-test ;;
  sanitize) dir="build-san-${sanitize//,/-}" ;;
  valgrind) dir=build-valgrind ;;
esac
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_WERROR=ON \
  -DSHMBUS_SANITIZE="$sanitize" -DSHMBUS_BUILD_EXAMPLES=ON -DSHMBUS_BUILD_BENCH=ON >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null

cd "$dir"
rm -rf sanitizer-logs valgrind-logs
mkdir -p sanitizer-logs valgrind-logs
# Reports from sanitizers or valgrind fail the run even where Criterion
# passed the test (a leak found at a worker's exit does not fail it).
check_reports() {
  local found
  # Any sanitizer report is a failure. In valgrind's logs, only errors and
  # leaks are: the tests that check a write faults leave a "terminating
  # with signal 11" note there on purpose.
  found=$(find sanitizer-logs -type f -size +0 2>/dev/null;
          grep -lE 'Invalid (read|write|free)|uninitialised|definitely lost|indirectly lost|Syscall param|Mismatched|overlap|Jump to the invalid' \
            valgrind-logs/* 2>/dev/null || true)
  if [ -n "$found" ]; then
    echo "== reports from sanitizers or valgrind ==" >&2
    for f in $found; do echo "--- $f" >&2; head -60 "$f" >&2; done
    exit 1
  fi
}
trap check_reports EXIT
case "$mode" in
  plain) ctest --output-on-failure ;;
  sanitize)
    if [ "$sanitize" = thread ]; then
      ctest --output-on-failure -L stress
    else
      ctest --output-on-failure
    fi ;;
  valgrind)
    # Criterion runs each test in a child process; valgrind follows it, and
    # any memory error or leak makes it exit 99, which fails the test.
    export SHMBUS_UNDER_VALGRIND=1
    failed=0
    # The reference MCAP reader that record_test also runs (ctest's fixture
    # installs it; the binaries below run without ctest).
    ctest --output-on-failure -R '^mcap_node_setup$' || failed=1
    # Longest first (valgrind's times on an idle machine), so that the two
    # lanes below end together.
    tests=(bus daemon crash ring cli record limits proto region admin process discover msgpack quota security host mcap error notify)
    # The NATS fixture's test, when built (with libnats).
    [ -x tests/natsfix_test ] && tests+=(natsfix)
    # valgrind runs a program's threads one at a time: the test programs run
    # side by side, one per CPU (at most 2: each also starts daemons and
    # clients under valgrind), each printing into its own file, shown in
    # order once all are done.
    rm -rf valgrind-out && mkdir -p valgrind-out
    vg_one() {
      # Only definite and indirect leaks are ours to fix: Criterion's runner
      # (nanomsg) leaves "possibly lost" blocks in every forked child.
      # nats-server (a Go program the NATS tests start) and node (the
      # reference MCAP reader record_test runs) are not ours: valgrind stays
      # out of them (under valgrind, V8's own reports made node exit 99).
      local t=$1 start=$SECONDS rc=0
      valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect \
        --trace-children=yes --trace-children-skip='*/nats-server,*/node' --vgdb=no -q \
        --log-file="valgrind-logs/${t}.%p" "./tests/${t}_test" --jobs 1 \
        >"valgrind-out/${t}" 2>&1 || rc=$?
      echo "valgrind: ${t}_test: exit ${rc} after $((SECONDS - start)) s" >>"valgrind-out/${t}"
      return "$rc"
    }
    vg_jobs=$(nproc)
    [ "$vg_jobs" -le 2 ] || vg_jobs=2
    running=0
    for t in "${tests[@]}"; do
      if [ "$running" -ge "$vg_jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
      fi
      vg_one "$t" &
      running=$((running + 1))
    done
    while [ "$running" -gt 0 ]; do
      wait -n || failed=1
      running=$((running - 1))
    done
    for t in "${tests[@]}"; do
      echo "valgrind: ${t}_test"
      cat "valgrind-out/${t}"
    done
    [ "$failed" -eq 0 ] || { echo "valgrind: failures above" >&2; exit 1; } ;;
esac
