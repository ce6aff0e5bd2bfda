#!/usr/bin/env bash
# An outside consumer against an installed shmbus, the way a user gets one:
# builds shmbus with the default prefix, installs it with
# `cmake --install --prefix P`, then moves the tree elsewhere (it must be
# relocatable), and there
#   - builds tests/consumer with pkg-config and with find_package(shmbus),
#     strict C11 (-std=c11 -pedantic -Werror): every public header, msgpack,
#     a libuv subscriber that calls libuv itself;
#   - checks find_package(shmbus 0.<minor+1>) is refused (0.x: same minor);
#   - builds the examples outside the tree (examples/CMakeLists.txt);
#   - runs the subscriber with the defaults, so the library autostarts the
#     installed shmbusd (no $SHMBUS_DAEMON), and the examples on that bus.
# Everything lives in one temporary directory, removed at exit; the daemons
# started are stopped.
#
#   scripts/consumer-test.sh [--build DIR]   reuse a configured build tree
#   scripts/consumer-test.sh --installed     use the system's installed shmbus
#                                            (e.g. the Debian packages)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

build=""
installed=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --installed) installed=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "consumer-test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$installed" -eq 1 ]; then bash scripts/deps.sh --installed; else bash scripts/deps.sh; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-consumer-XXXXXX")
bus="$work/bus"
cleanup() {
  local rc=$?
  if [ -s "$bus/shmbusd.lock" ]; then
    kill "$(cat "$bus/shmbusd.lock")" 2>/dev/null || true
    timeout 30 flock "$bus/shmbusd.lock" true 2>/dev/null || true
  fi
  rm -rf "$work"
  [ "$rc" -eq 0 ] || echo "consumer-test: FAILED (status $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT
step() { echo "consumer-test: $*"; }

cc=${CC:-cc}
strict=(-std=c11 -pedantic -Wall -Wextra -Werror)
if [ "$installed" -eq 1 ]; then
  prefix=/usr
  pc_path=""
  cmake_prefix=""
else
  if [ -z "$build" ]; then
    build="$work/build"
    step "building shmbus (default prefix) in $build"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_BUILD_TESTS=OFF \
      -DSHMBUS_BUILD_BENCH=OFF -DSHMBUS_BUILD_EXAMPLES=OFF >/dev/null
    cmake --build "$build" -j"$(nproc)" >/dev/null
  fi
  step "cmake --install --prefix $work/first, then moved to $work/moved"
  cmake --install "$build" --prefix "$work/first" >/dev/null
  mv "$work/first" "$work/moved"
  prefix="$work/moved"
  libdir=$(dirname "$(find "$prefix" -name libshmbus.so -print -quit)")
  pc_path="$libdir/pkgconfig"
  cmake_prefix="$prefix"
  [ -x "$prefix/bin/shmbusd" ] || { echo "consumer-test: no $prefix/bin/shmbusd" >&2; exit 1; }
fi

# ---- pkg-config ----
pc() { PKG_CONFIG_PATH="$pc_path" pkg-config "$@"; }
pc --exists --print-errors shmbus
pc_prefix=$(pc --variable=prefix shmbus)
if [ "$installed" -eq 0 ] && [ "$(cd "$pc_prefix" && pwd)" != "$prefix" ]; then
  echo "consumer-test: shmbus.pc says prefix=$pc_prefix, the tree is in $prefix" >&2
  exit 1
fi
pc_libdir=$(pc --variable=libdir shmbus)
step "pkg-config: shmbus $(pc --modversion shmbus): $(pc --cflags --libs shmbus)"
mkdir -p "$work/pc"
for prog in headers uv_sub; do
  # shellcheck disable=SC2046
  "$cc" "${strict[@]}" $(pc --cflags shmbus) "$src/tests/consumer/$prog.c" -o "$work/pc/$prog" \
    $(pc --libs shmbus) -Wl,-rpath,"$pc_libdir"
done
step "pkg-config --static: headers against libshmbus.a"
# shellcheck disable=SC2046
"$cc" "${strict[@]}" $(pc --cflags shmbus) "$src/tests/consumer/headers.c" \
  -o "$work/pc/headers-static" "$pc_libdir/libshmbus.a" $(pc --libs --static shmbus | sed 's/-lshmbus//')
"$work/pc/headers"
"$work/pc/headers-static"

# ---- CMake ----
minor=$(pc --modversion shmbus | cut -d. -f2)
major=$(pc --modversion shmbus | cut -d. -f1)
step "find_package(shmbus $major.$minor), strict C11"
cmake -S "$src/tests/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$cmake_prefix" \
  -DWANT_VERSION="$major.$minor" >"$work/cm.log" 2>&1 || { cat "$work/cm.log" >&2; exit 1; }
cmake --build "$work/cm" >"$work/cm-build.log" 2>&1 || { cat "$work/cm-build.log" >&2; exit 1; }
"$work/cm/consumer-headers"
"$work/cm/consumer-headers-static"
if [ "$major" -eq 0 ]; then
  step "find_package(shmbus 0.$((minor + 1))) must be refused (0.x: same minor only)"
  if cmake -S "$src/tests/consumer" -B "$work/cm-next" -DCMAKE_PREFIX_PATH="$cmake_prefix" \
       -DWANT_VERSION="0.$((minor + 1))" >"$work/cm-next.log" 2>&1; then
    echo "consumer-test: find_package(shmbus 0.$((minor + 1))) accepted $major.$minor" >&2
    exit 1
  fi
  grep -q 'not compatible\|The following configuration files were considered' "$work/cm-next.log"
fi

step "examples, built outside the tree"
cmake -S "$src/examples" -B "$work/ex" -DCMAKE_PREFIX_PATH="$cmake_prefix" >"$work/ex.log" 2>&1 \
  || { cat "$work/ex.log" >&2; exit 1; }
cmake --build "$work/ex" -j"$(nproc)" >"$work/ex-build.log" 2>&1 \
  || { cat "$work/ex-build.log" >&2; exit 1; }

# ---- running: the library autostarts the installed daemon ----
mkdir -m 0700 "$bus"
export SHMBUS_DIR="$bus"
unset SHMBUS_DAEMON SHMBUS_NO_AUTOSTART
run_on_bus() {
  "$@"
  # The program stopped the daemon (or left it running): wait for its lock
  # to be released, an event, before the next program autostarts another.
  if [ -s "$bus/shmbusd.lock" ]; then
    kill "$(cat "$bus/shmbusd.lock")" 2>/dev/null || true
    timeout 30 flock "$bus/shmbusd.lock" true
  fi
}
step "libuv subscriber (pkg-config build), autostarting $prefix/bin/shmbusd"
run_on_bus "$work/pc/uv_sub" 2000
step "libuv subscriber (CMake build)"
run_on_bus "$work/cm/consumer-uv-sub" 2000
step "examples: hello-pub then hello-sub (history), uv-fanout"
"$work/ex/shmbus-example-hello-pub" "Hello from an installed tree"
out=$("$work/ex/shmbus-example-hello-sub")
echo "$out"
echo "$out" | grep -q "Hello from an installed tree"
run_on_bus "$work/ex/shmbus-example-uv-fanout" --subs 2 --messages 2000
step "passed"
