#!/usr/bin/env bash
# Bash completion (dist/bash-completion/shmbus): sources it and checks
# COMPREPLY for verbs, options, option values and topic names from a real
# daemon. Usage: completion_test.sh SOURCE_DIR SHMBUS SHMBUSD
# No -e or -u: completion functions run in interactive shells, which have
# neither (compgen with no match returns 1, unset array items are empty).
set -o pipefail
src=$1 shmbus=$2 shmbusd=$3
dir=$(mktemp -d /tmp/shmbus-comptest-XXXXXX)
bin=$(mktemp -d /tmp/shmbus-compbin-XXXXXX)
export SHMBUS_DIR=$dir SHMBUS_DAEMON=$shmbusd SHMBUS_IDLE_EXIT=0
cleanup() {
  SHMBUS_NO_AUTOSTART=1 "$shmbus" daemon stop >/dev/null 2>&1 || true
  rm -rf "$dir" "$bin"
}
trap cleanup EXIT
# The completion runs `shmbus` as the command line names it: put it on PATH.
ln -s "$shmbus" "$bin/shmbus"
export PATH=$bin:$PATH

# shellcheck source=/dev/null
source "$src/dist/bash-completion/shmbus"
complete -p shmbus | grep -q _shmbus || { echo "completion_test: not registered" >&2; exit 1; }

fail=0
# expect "WORDS..." -- EXPECTED...: completes the last word.
expect() {
  local words=() want=()
  while [[ $1 != -- ]]; do words+=("$1"); shift; done
  shift
  want=("$@")
  COMP_WORDS=("${words[@]}")
  COMP_CWORD=$(( ${#words[@]} - 1 ))
  COMPREPLY=()
  _shmbus
  local got
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')
  local exp
  exp=$(printf '%s\n' "${want[@]}" | sort | tr '\n' ' ')
  if [[ $got != "$exp" ]]; then
    echo "completion_test: '${words[*]}': got [$got], want [$exp]" >&2
    fail=1
  fi
}

# No daemon yet: verbs and options need none.
expect shmbus "" -- pub echo hz bw metrics ls stat daemon config topic record play
expect shmbus e -- echo
expect shmbus --dir /tmp ec -- echo
expect shmbus daemon s -- status stop
expect shmbus topic "" -- rm
expect shmbus metrics --li -- --listen
expect shmbus metrics --format p -- prometheus
expect shmbus echo --rel -- --reliable
expect shmbus hz --win -- --window
expect shmbus echo --count "" --
expect shmbus echo 'x/**' -- # no daemon: no topics, and no error
# record -o and play take files: one in the directory the test runs in.
: >"$dir/comp.mcap"
expect shmbus record -o "$dir/comp.m" -- "$dir/comp.mcap"
expect shmbus record --output "$dir/comp.m" -- "$dir/comp.mcap"
expect shmbus play "$dir/comp.m" -- "$dir/comp.mcap"

# Topics from a daemon: pub (autostarted on this dir) creates retained ones.
"$shmbus" pub --retain comp/alpha one >/dev/null 2>&1 || { echo "completion_test: pub failed" >&2; exit 1; }
"$shmbus" pub --retain comp/beta two >/dev/null 2>&1 || { echo "completion_test: pub failed" >&2; exit 1; }
"$shmbus" pub --retain other/gamma three >/dev/null 2>&1 || { echo "completion_test: pub failed" >&2; exit 1; }
expect shmbus echo comp/ -- comp/alpha comp/beta
expect shmbus hz comp/alpha o -- other/gamma
expect shmbus record -o "$dir/comp.mcap" comp/a -- comp/alpha
expect shmbus topic rm comp/b -- comp/beta
expect shmbus stat o -- other/gamma
expect shmbus --dir "$dir" echo comp/a -- comp/alpha
expect shmbus pub comp/alpha "" -- # the text, not a topic

[[ $fail -eq 0 ]] && echo "completion_test: all completions as expected"
exit "$fail"
