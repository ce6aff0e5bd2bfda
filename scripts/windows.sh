#!/usr/bin/env bash
# Cross-builds shmbus for 64-bit Windows with Debian's mingw-w64, and runs
# the Windows tests under Wine:
#
#   scripts/windows.sh           install the cross compiler, build libuv,
#                                msgpack-c, jansson, zstd and libdeflate for
#                                Windows from Debian's own source packages,
#                                then the Windows programs
#   scripts/windows.sh --test    also install Wine and run the Windows tests
#                                under it (ctest through Wine)
#   scripts/windows.sh --help
#
# Everything it makes lives in build-windows/ of this checkout:
#   build-windows/deps/          libuv, msgpack-c, jansson, zstd and
#                                libdeflate for Windows (include/, lib/;
#                                static libraries)
#   build-windows/deps-build/    the private apt state, the unpacked source
#                                packages and their build trees
#   build-windows/               the top-level CMake build for Windows
#   build-windows/bin/           libshmbus.dll, shmbusd.exe, shmbus.exe, the
#                                examples and the Windows tests
#                                (docs/windows.md says what builds)
#
# The sources come from the deb-src counterparts of the machine's own
# Debian entries, fetched with apt through a private sources list, list
# directory and cache (build-windows/deps-build/apt): the machine's apt
# configuration is read, never changed. Idempotent: a library already in
# build-windows/deps (its stamp file names the source version) is neither
# fetched nor rebuilt; remove build-windows/ to start over.
#
# --test runs Wine in a private, temporary WINEPREFIX (removed at exit,
# with the wineserver this script started for it), WINEDEBUG=-all, without
# a display: the tests are console programs. The files the Windows tests
# make for the Linux side (a recording, metrics texts) land in
# build-windows/artifacts/ and are checked here with @mcap/core (when the
# Linux build's tests installed it) and promtool (when installed).
#
# Environment: SHMBUS_JOBS build jobs (default 2); SHMBUS_CTEST_ARGS more
# arguments for ctest (-V shows every test's lines and notes).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

run_tests=0
while [ $# -gt 0 ]; do
  case "$1" in
    --test) run_tests=1 ;;
    --help | -h) usage; exit 0 ;;
    *) echo "windows.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

out=$src/build-windows
deps=$out/deps
work=$out/deps-build
jobs=${SHMBUS_JOBS:-2}
t_start=$SECONDS
say() { echo "windows.sh: $*" >&2; }

# ---- packages -------------------------------------------------------------

need=(mingw-w64 cmake make dpkg-dev)
[ "$run_tests" -eq 1 ] && need+=(wine wine64)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    say "missing packages: ${missing[*]}; run this script as root to install them"
    exit 1
  fi
  say "installing ${missing[*]}"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi

toolchain=$src/cmake/mingw-w64-x86_64.cmake

# ---- Debian's sources, through a private apt state -------------------------

apt_dir=$work/apt
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  # The private directories belong to whoever runs this; apt's download
  # user (_apt) may not be able to write them.
  -o "APT::Sandbox::User=$(id -un)"
)
apt_ready=0

# Writes a deb-src line for every Debian repository the machine installs
# binary packages from (same mirror, suite and component), and downloads
# those repositories' Sources indexes into the private list directory.
apt_prepare() {
  [ "$apt_ready" -eq 1 ] && return 0
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg opt=
  [ -r "$keyring" ] && opt="[signed-by=$keyring] "
  # indextargets lists what the machine's own lists hold: none on a
  # machine whose lists were cleaned (containers). Fill them first.
  if [ -z "$(apt-get indextargets 'Created-By: Packages' 2>/dev/null)" ]; then
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  fi
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' |
    sort -u | while read -r uri suite comp; do
      # Only Debian's own archive: other vendors' entries do not carry
      # the Debian packages we build.
      case "$uri" in */debian/ | */debian-security/) echo "deb-src $opt$uri $suite $comp" ;; esac
    done >"$apt_dir/sources.list.new"
  if ! [ -s "$apt_dir/sources.list.new" ]; then
    say "no Debian repository found in the machine's apt configuration"
    return 1
  fi
  mv "$apt_dir/sources.list.new" "$apt_dir/sources.list"
  say "fetching the Sources indexes of: $(awk '{print $(NF-2), $(NF-1)}' "$apt_dir/sources.list" | paste -sd, -)"
  apt-get "${apt_opts[@]}" -qq update || return 1
  apt_ready=1
}

# Downloads and unpacks source package $1 into $work/src/$1 (Debian's
# patches applied by dpkg-source). apt checks every file against the signed
# indexes. A mirror may lack the newest upload in one suite (the same
# version is often also in the point release): then each repository is
# tried on its own, in the list's order.
fetch_source() {
  local pkg=$1 dir=$work/src/$1 list dsc
  rm -rf "$dir" && mkdir -p "$dir"
  if ! (cd "$dir" && apt-get "${apt_opts[@]}" -qq source --download-only "$pkg" >/dev/null 2>"$dir/apt.err"); then
    local ok=0
    while read -r line; do
      list=$apt_dir/one.list
      echo "$line" >"$list"
      rm -f "$dir"/*.dsc "$dir"/*.tar.* "$dir"/*.diff.gz
      if (cd "$dir" && apt-get "${apt_opts[@]}" -o "Dir::Etc::SourceList=$list" -qq \
        source --download-only "$pkg" >/dev/null 2>>"$dir/apt.err"); then
        ok=1
        break
      fi
    done <"$apt_dir/sources.list"
    if [ "$ok" -eq 0 ]; then
      say "could not download the source of $pkg:"
      cat "$dir/apt.err" >&2
      return 1
    fi
  fi
  dsc=$(ls "$dir"/*.dsc)
  (cd "$dir" && dpkg-source --no-check -x "$(basename "$dsc")" tree >/dev/null) || return 1
  # The version, from the .dsc: it names the stamp.
  sed -n 's/^Version: //p' "$dsc" >"$dir/version"
}

# Builds source package $1 with CMake for Windows and installs it into
# $deps; the rest of the arguments are its CMake options (a first
# --subdir DIR: the CMake project is in that folder of the source). Skipped
# when the stamp says it is there.
build_dep() {
  local pkg=$1 sub=.
  shift
  if [ "${1:-}" = --subdir ]; then
    sub=$2
    shift 2
  fi
  if [ -f "$deps/.stamp-$pkg" ]; then
    say "$pkg $(cat "$deps/.stamp-$pkg") already built"
    return 0
  fi
  local t0=$SECONDS
  apt_prepare
  fetch_source "$pkg"
  local dir=$work/src/$pkg version
  version=$(cat "$dir/version")
  say "cross-building $pkg $version"
  rm -rf "$work/build-$pkg"
  cmake -S "$dir/tree/$sub" -B "$work/build-$pkg" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$deps" -DBUILD_TESTING=OFF "$@" \
    >"$work/build-$pkg.log" 2>&1 &&
    cmake --build "$work/build-$pkg" -j"$jobs" >>"$work/build-$pkg.log" 2>&1 &&
    cmake --install "$work/build-$pkg" >>"$work/build-$pkg.log" 2>&1 || {
    say "building $pkg failed; the log:"
    tail -n 40 "$work/build-$pkg.log" >&2
    return 1
  }
  echo "$version" >"$deps/.stamp-$pkg"
  say "$pkg $version built in $((SECONDS - t0)) s"
}

mkdir -p "$deps" "$work"
build_dep libuv1 -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
build_dep msgpack-c -DMSGPACK_BUILD_TESTS=OFF -DMSGPACK_BUILD_EXAMPLES=OFF
# libjansson for the command-line tool (shmbus.exe), static like the others.
build_dep jansson -DJANSSON_BUILD_SHARED_LIBS=OFF -DJANSSON_EXAMPLES=OFF -DJANSSON_BUILD_DOCS=OFF \
  -DJANSSON_WITHOUT_TESTS=ON
# zstd for the chunks of `shmbus record` (its CMake project is in
# build/cmake): the static library alone, single-threaded (record
# compresses on its own writer thread).
build_dep libzstd --subdir build/cmake -DZSTD_BUILD_SHARED=OFF -DZSTD_BUILD_STATIC=ON \
  -DZSTD_BUILD_PROGRAMS=OFF -DZSTD_BUILD_TESTS=OFF -DZSTD_BUILD_CONTRIB=OFF \
  -DZSTD_MULTITHREAD_SUPPORT=OFF -DZSTD_LEGACY_SUPPORT=OFF
# libdeflate for the MCAP files' CRC-32. Debian's 1.14 has only a Makefile
# (CMake came with 1.15): its static library target for MinGW, installed by
# hand as libdeflate.a with its one header.
build_libdeflate() {
  local pkg=libdeflate
  if [ -f "$deps/.stamp-$pkg" ]; then
    say "$pkg $(cat "$deps/.stamp-$pkg") already built"
    return 0
  fi
  local t0=$SECONDS dir=$work/src/$pkg version cc ar lib=
  apt_prepare
  fetch_source "$pkg"
  version=$(cat "$dir/version")
  say "cross-building $pkg $version"
  cc=$(command -v x86_64-w64-mingw32-gcc-win32 || command -v x86_64-w64-mingw32-gcc)
  ar=$(command -v x86_64-w64-mingw32-gcc-ar-win32 || command -v x86_64-w64-mingw32-ar)
  # The static library's name for MinGW: libdeflatestatic.lib when the
  # Makefile's static suffix there is static.lib (libdeflate.lib is then
  # the DLL's import library), libdeflate.lib in older releases.
  if grep -q 'static\.lib' "$dir/tree/Makefile"; then lib=libdeflatestatic.lib; else lib=libdeflate.lib; fi
  make -C "$dir/tree" -j"$jobs" CC="$cc" AR="$ar" "$lib" >"$work/build-$pkg.log" 2>&1 &&
    install -D -m 0644 "$dir/tree/$lib" "$deps/lib/libdeflate.a" &&
    install -D -m 0644 "$dir/tree/libdeflate.h" "$deps/include/libdeflate.h" || {
    say "building $pkg failed; the log:"
    tail -n 40 "$work/build-$pkg.log" >&2
    return 1
  }
  echo "$version" >"$deps/.stamp-$pkg"
  say "$pkg $version built in $((SECONDS - t0)) s"
}
build_libdeflate

# ---- shmbus for Windows ------------------------------------------------------

# The normal top-level build with the toolchain file: shmbus.dll (with its
# import library) and the static library, the examples that do not fork, and
# the Windows tests (tests/windows/, the top level's tests on Windows).
t0=$SECONDS
cmake -S "$src" -B "$out" -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DSHMBUS_WINDOWS_DEPS="$deps" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHMBUS_WERROR=ON -DSHMBUS_BUILD_CLI=ON \
  -DSHMBUS_BUILD_BENCH=ON >"$out/configure.log" 2>&1 || {
  cat "$out/configure.log" >&2
  exit 1
}
cmake --build "$out" -j"$jobs"
say "shmbus for Windows built in $((SECONDS - t0)) s (total $((SECONDS - t_start)) s): programs and DLL in $out/bin"

[ "$run_tests" -eq 1 ] || exit 0

# ---- the tests, under Wine --------------------------------------------------

wine=$(command -v wine64 || true)
[ -n "$wine" ] || { [ -x /usr/lib/wine/wine64 ] && wine=/usr/lib/wine/wine64; } || wine=$(command -v wine)
wineserver=$(command -v wineserver64 || true)
[ -n "$wineserver" ] || { [ -x /usr/lib/wine/wineserver64 ] && wineserver=/usr/lib/wine/wineserver64; } ||
  wineserver=$(command -v wineserver)

# One temporary directory holds the prefix and Wine's TMPDIR (wineserver
# makes its socket directory, wine-XXXXXX, there): removing it leaves
# nothing behind.
wine_root=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-wine.XXXXXX")
cleanup() {
  local rc=$?
  # Ends the wineserver of this prefix only (and the programs it runs).
  if [ -d "$wine_root/prefix" ]; then
    "$wineserver" -k >/dev/null 2>&1 || true
    "$wineserver" -w >/dev/null 2>&1 || true
  fi
  rm -rf "$wine_root"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$wine_root/prefix" "$wine_root/tmp"
export WINEPREFIX=$wine_root/prefix TMPDIR=$wine_root/tmp WINEDEBUG=-all WINEARCH=win64
# No Mono or Gecko installer prompts (the tests need neither), and no
# debugger for a program that crashes (some tests crash children on
# purpose): the crash is then only its exit code.
export WINEDLLOVERRIDES="mscoree,mshtml=;winedbg.exe=d"
unset DISPLAY WAYLAND_DISPLAY

t0=$SECONDS
# A persistent wineserver: otherwise each test program starts and stops
# its own, which costs seconds. Then the prefix is created once.
"$wineserver" -p
"$wine" wineboot --init >/dev/null 2>&1
# Then Wine starts again on the prefix it made: right after wineboot, in
# the same session, Wine's service manager timed out a service's start and
# failed its calls (tests/windows/service_test.c); on a prefix booted
# before, it starts services at once.
"$wineserver" -k >/dev/null 2>&1 || true
"$wineserver" -w >/dev/null 2>&1 || true
"$wineserver" -p
# Booted again here, so that the services Wine starts hold /dev/null, not
# the output pipe of the first test (ctest would wait for its end).
"$wine" wineboot >/dev/null 2>&1
say "Wine prefix ready in $((SECONDS - t0)) s ($("$wine" --version))"
t0=$SECONDS
# What the tests leave for the Linux side (tests/windows/tools_test.c),
# through Wine's Z: drive (the host's root).
artifacts=$out/artifacts
rm -rf "$artifacts" && mkdir -p "$artifacts"
export SHMBUS_WIN_ARTIFACTS="Z:${artifacts//\//\\}"
ctest --test-dir "$out" --output-on-failure -j1 ${SHMBUS_CTEST_ARGS:-}
say "Windows tests passed under Wine in $((SECONDS - t0)) s"

# The Linux side's checks of what shmbus.exe wrote: the recording with the
# reference MCAP reader (tests/mcap_check.js with @mcap/core, as the Linux
# suite installs it into build*/node), the metrics with promtool.
if [ -f "$artifacts/record.mcap" ]; then
  modules=
  for d in "$src"/build*/node/node_modules; do
    [ -f "$d/@mcap/core/package.json" ] && [ -f "$d/fzstd/package.json" ] && modules=$d && break
  done
  if [ -n "$modules" ] && command -v node >/dev/null 2>&1; then
    # Both reads (streamed and indexed) agree, the file is complete, its
    # data CRC right, and it holds the test's 2000 messages of rec/t with
    # consecutive sequence numbers.
    if ! node "$src/tests/mcap_check.js" "$modules" "$artifacts/record.mcap" >"$artifacts/record.json" ||
      ! node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const t = r.stream && r.stream.topics["rec/t"], i = r.indexed && r.indexed.topics["rec/t"];
        const ok = r.stream.done && r.data_crc_ok && t && i && t.count === 2000 && i.count === 2000 &&
          t.seq_contiguous && i.seq_contiguous && t.fnv === i.fnv && r.stream.messages === 2000;
        process.exit(ok ? 0 : 1);' "$artifacts/record.json"; then
      say "@mcap/core disagrees with the recording made under Wine:"
      cat "$artifacts/record.json" >&2
      exit 1
    fi
    say "the recording made under Wine reads back with @mcap/core: 2000 messages, both reads agree"
  else
    say "not checked with @mcap/core: node, or @mcap/core in build*/node (the Linux suite installs it), is missing"
  fi
fi
# The metrics as the Linux suite checks its own (tests/opscli_test.c): the
# Prometheus format (the textfile) with promtool, OpenMetrics (what
# `metrics` prints) with prometheus_client's OpenMetrics parser.
if [ -f "$artifacts/metrics.prom" ]; then
  if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$artifacts/metrics.prom" ||
      { say "promtool refuses the textfile of shmbus.exe metrics"; exit 1; }
    say "the textfile of shmbus.exe metrics passes promtool check metrics"
  else
    say "not checked with promtool: it is not installed (Debian package prometheus)"
  fi
fi
if [ -f "$artifacts/metrics.om" ]; then
  # Debian's python3 (python3-prometheus-client), as tests/opscli_test.c runs it.
  if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
    /usr/bin/python3 -c '
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as p
print(len(list(p(sys.stdin.read()))))' <"$artifacts/metrics.om" >/dev/null ||
      { say "the OpenMetrics parser refuses the output of shmbus.exe metrics"; exit 1; }
    say "the output of shmbus.exe metrics passes prometheus_client's OpenMetrics parser"
  else
    say "not checked as OpenMetrics: python3-prometheus-client is not installed"
  fi
fi
