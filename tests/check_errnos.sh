#!/usr/bin/env bash
# Every errno code the library, the daemon or the CLI returns as a literal
# (`-ENAME`) must have a text in shmbus_strerror's table (src/error_table.h), so
# that no documented error reads "unknown error". Run by ctest (errnos).
set -euo pipefail
top=${1:-$(dirname "$0")/..}
missing=0
for name in $(grep -rohE -- '-E[A-Z0-9]{2,}\b' "$top/src" "$top/daemon" "$top/cli" "$top/include" | sort -u | sed 's/^-//'); do
  if ! grep -qE "XX\\($name," "$top/src/error_table.h"; then
    echo "check_errnos: -$name is returned but src/error_table.h has no text for it" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] && echo "check_errnos: every returned errno has a text"
exit "$missing"
