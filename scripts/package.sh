#!/usr/bin/env bash
# Builds the Debian packages (debian/) from this checkout's committed HEAD:
# libshmbus0.1, libshmbus-dev, shmbusd, shmbus-tools, shmbus-bridge.
#
#   scripts/package.sh [OUTDIR]     the .deb files go to OUTDIR (default: out/deb)
#
# Works on Debian 12 and 13; installs the build dependencies first
# (scripts/deps.sh --package). Builds in a temporary clone (git clone of
# this checkout), so uncommitted changes are not packaged and the work tree
# stays clean; the clone is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

bash scripts/deps.sh --package
work=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone -q "$PWD" "$work/shmbus"
(cd "$work/shmbus" && dpkg-buildpackage -us -uc -b -j"$(nproc)" >"$work/build.log" 2>&1) || {
  tail -60 "$work/build.log" >&2
  echo "package.sh: dpkg-buildpackage failed (log above)" >&2
  exit 1
}
cp "$work"/*.deb "$out"/
for deb in "$work"/*.deb; do
  echo "package.sh: $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
done
