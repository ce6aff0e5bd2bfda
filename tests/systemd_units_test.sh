#!/usr/bin/env bash
# systemd_units: the units `cmake --install` ships (dist/systemd) pass
# `systemd-analyze verify` as a system unit and as a user unit, with no
# complaint at all (verify warns about a bad key but still exits 0, so any
# output fails the test). ExecStart is pointed at this build's shmbusd, since
# the configured prefix need not be installed; the rest of each unit is
# verified as shipped.
#
#   systemd_units_test.sh BUILD_DIR SHMBUSD INSTALLED_BINDIR
# Exit 77 (skipped) when systemd-analyze is missing (scripts/deps.sh --test
# installs it).
set -euo pipefail
build=$1 daemon=$2 bindir=$3
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd_units: SKIP: systemd-analyze not installed (apt-get install systemd)" >&2
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmbus-units-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/system" "$tmp/user" "$tmp/run"
chmod 0700 "$tmp/run"
sed "s#$bindir/shmbusd#$daemon#g" "$build/dist/shmbusd.service" > "$tmp/system/shmbusd.service"
sed "s#$bindir/shmbusd#$daemon#g" "$build/dist/user/shmbusd.service" > "$tmp/user/shmbusd.service"
for u in system/shmbusd.service user/shmbusd.service; do
  grep -q "^ExecStart=$daemon " "$tmp/$u" || { echo "systemd_units: $u: no ExecStart=$daemon" >&2; exit 1; }
  grep -q '^Type=notify$' "$tmp/$u" || { echo "systemd_units: $u: not Type=notify" >&2; exit 1; }
done
grep -q -- '--foreground --system$' "$tmp/system/shmbusd.service"
rc=0
out=$(systemd-analyze verify --man=no "$tmp/system/shmbusd.service" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  echo "systemd_units: system unit: status $rc: $out" >&2
  exit 1
fi
out=$(XDG_RUNTIME_DIR="$tmp/run" systemd-analyze --user verify --man=no "$tmp/user/shmbusd.service" 2>&1) || rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
  echo "systemd_units: user unit: status $rc: $out" >&2
  exit 1
fi
echo "systemd_units: system and user units verified"
