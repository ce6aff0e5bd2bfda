#!/usr/bin/env bash
# Installs the reference MCAP reader, @mcap/core, and fzstd (for its zstd
# chunks) from the npm registry into DIR/node_modules, for the tests that
# check shmbus's MCAP files with it (tests/mcap_check.js). Run by ctest
# (mcap_node_setup) before them; does nothing when they are there already.
# Exits 77 (skipped) when node or npm is missing or the registry cannot be
# reached: those tests then skip themselves with the reason.
set -euo pipefail
dir=${1:?usage: mcap_node_setup.sh DIR}
if [ -f "$dir/node_modules/@mcap/core/package.json" ] && [ -f "$dir/node_modules/fzstd/package.json" ]; then
  echo "mcap_node_setup: @mcap/core is in $dir"
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "mcap_node_setup: $tool is missing (scripts/deps.sh --test installs it): skipped"
    exit 77
  fi
done
mkdir -p "$dir"
# npm trusts the system's certificate authorities too (Debian's bundle, which
# also holds what the machine's administrator added, e.g. a proxy's);
# without this, a NodeSource or upstream node knows only its own list.
if [ -z "${npm_config_cafile:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  export npm_config_cafile=/etc/ssl/certs/ca-certificates.crt
fi
if ! npm install --prefix "$dir" --no-audit --no-fund --loglevel=error @mcap/core@2 fzstd@0.1 >"$dir/npm.log" 2>&1; then
  echo "mcap_node_setup: npm install failed (no registry?); see $dir/npm.log: skipped"
  tail -5 "$dir/npm.log"
  exit 77
fi
echo "mcap_node_setup: installed @mcap/core into $dir"
