#!/usr/bin/env bash
# Formats the C sources with the committed .clang-format, or (--check)
# lists the files that drift from it and fails.
#
#   bash scripts/format.sh           rewrite files in place
#   bash scripts/format.sh --check   fail if any file would change
#
# Formatting differs between clang-format releases; the check uses the
# release CI installs on Debian 12 (clang-format 14) and refuses another,
# so a developer on a newer Debian is not told their file drifts when only
# the tool changed. SHMBUS_CLANG_FORMAT names another binary.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "format.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
esac

cf=${SHMBUS_CLANG_FORMAT:-}
if [ -z "$cf" ]; then
  for c in clang-format-14 clang-format; do
    if command -v "$c" > /dev/null; then
      cf=$c
      break
    fi
  done
fi
if [ -z "$cf" ]; then
  echo "format.sh: clang-format not found (apt-get install clang-format)" >&2
  exit 2
fi
major=$("$cf" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [ "$major" != 14 ] && [ -z "${SHMBUS_CLANG_FORMAT:-}" ]; then
  echo "format.sh: $cf is version $major; the committed format is clang-format 14's" \
    "(set SHMBUS_CLANG_FORMAT to use it anyway)" >&2
  exit 2
fi

mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "$check" = 1 ]; then
  bad=()
  for f in "${files[@]}"; do
    "$cf" --dry-run -Werror "$f" > /dev/null 2>&1 || bad+=("$f")
  done
  if [ "${#bad[@]}" -gt 0 ]; then
    echo "format.sh: ${#bad[@]} file(s) differ from .clang-format (run bash scripts/format.sh):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format.sh: ${#files[@]} files match .clang-format"
else
  "$cf" -i "${files[@]}"
fi
