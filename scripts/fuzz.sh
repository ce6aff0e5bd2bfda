#!/usr/bin/env bash
# Fuzzes the control-protocol decoder, region-header validation, msgpack
# payload unpacking and the MCAP reader of `shmbus play` with libFuzzer
# (clang, ASan+UBSan), starting from the corpus in tests/fuzz/corpus/.
#
#   scripts/fuzz.sh                  20 s per target (what CI runs)
#   scripts/fuzz.sh --seconds 3600   a longer run: an hour per target
#   scripts/fuzz.sh --target proto   one target only (proto, region, msgpack or mcap)
#   scripts/fuzz.sh --regen-corpus   rewrite the seed corpus from valid messages and regions
#
# New interesting inputs go to build-fuzz/fuzz-work/<target>/ (not into the
# repository); a crash, leak or hang leaves its input in
# build-fuzz/fuzz-artifacts/ and fails the run. Turn it into a regression
# test (docs/testing.md, "Fuzzing") and copy it into tests/fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
targets=(proto region msgpack mcap)
regen=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --target) targets=("$2"); shift 2 ;;
    --regen-corpus) regen=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$regen" -eq 1 ]; then
  bash scripts/deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target fuzz_gen_corpus >/dev/null
  rm -rf tests/fuzz/corpus.new
  ./build/tests/fuzz/fuzz_gen_corpus tests/fuzz/corpus.new
  # Keep the regression inputs (regress-*), replace the generated seeds.
  for t in proto region; do
    mkdir -p "tests/fuzz/corpus/$t"
    find "tests/fuzz/corpus/$t" -type f ! -name 'regress-*' -delete
    cp tests/fuzz/corpus.new/"$t"/* "tests/fuzz/corpus/$t/"
  done
  rm -rf tests/fuzz/corpus.new
  echo "fuzz.sh: corpus written to tests/fuzz/corpus/"
  exit 0
fi

bash scripts/deps.sh --fuzz
dir=build-fuzz
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_WERROR=ON \
  -DSHMBUS_BUILD_FUZZ=ON -DSHMBUS_SANITIZE=address,undefined \
  -DSHMBUS_BUILD_EXAMPLES=OFF -DSHMBUS_BUILD_BENCH=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

mkdir -p "$dir/fuzz-artifacts"
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$dir/fuzz-work/$t"
  case "$t" in
    proto) max_len=4200 ;;   # a datagram is at most 4096 bytes
    region) max_len=8192 ;;  # two headers and the first slots
    msgpack) max_len=4096 ;; # msgpack payloads (shmbus_msgpack_unpack)
    mcap) max_len=65536 ;;   # MCAP files (cli/mcap.c: mcap_read)
    *) echo "fuzz.sh: unknown target $t" >&2; exit 2 ;;
  esac
  echo "== fuzz_$t: $seconds s =="
  # -timeout: a single input running 10 s is a hang, reported as a failure.
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "./$dir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -max_len="$max_len" \
      -print_final_stats=1 -artifact_prefix="$dir/fuzz-artifacts/$t-" \
      "$dir/fuzz-work/$t" "tests/fuzz/corpus/$t" >"$dir/fuzz-$t.log" 2>&1; then
    failed=1
    echo "fuzz_$t FAILED; the end of its log ($dir/fuzz-$t.log):" >&2
    grep -v '^#' "$dir/fuzz-$t.log" | tail -40 >&2
  fi
  grep -E '^stat::number_of_executed_units|^stat::new_units_added|^Done' "$dir/fuzz-$t.log" || true
done
[ "$failed" -eq 0 ] && echo "fuzz.sh: no crash, leak or hang"
exit "$failed"
