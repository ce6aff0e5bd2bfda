# Fresh Debian roots for CI (sourced by .ci/run; usable by hand):
#
#   . .ci/fresh-root.sh
#   fr_debootstrap trixie DIR        debootstrap --variant=minbase from this machine's mirror
#   fr_enter DIR SRC                 mount /proc, /sys and a fresh /dev/shm in DIR, and put a
#                                    bare clone of SRC (a git checkout) at /mnt/src inside DIR
#   fr_remove DIR                    rm -rf DIR, refused while anything is mounted below it
#   fr_run DIR 'commands'            run bash -c 'commands' as root in DIR, with CI=true, no
#                                    stdin, HOME=/root, in /root
#   fr_leave DIR                     stop what still runs in DIR, unmount everything
#   fr_leave_all                     fr_leave every root entered (for an EXIT trap)
#
# The root's own /tmp is used (not a tmpfs), so a run can check that
# nothing was left there. Needs root, debootstrap and util-linux.
#
# Nothing of the host's own file systems is ever mounted into a root: no
# bind mount of /dev (debootstrap made the root's own device nodes) nor of
# the source tree (the root gets a copy). On a machine whose /dev is a plain
# directory of the root file system, a bind-mounted /dev is the same file
# system as the chroot, and removing the chroot through a mount left behind
# would delete the host's device nodes (this happened once). Only proc,
# sysfs and a tmpfs are mounted, and fr_remove refuses to remove a root
# while anything is mounted below it.

fr_entered=()

# The URI this machine's apt uses for Debian's main archive: deb822 stanzas
# in /etc/apt/sources.list.d/*.sources, then one-line sources; the first
# one serving a release suite (not -security, -updates or -backports).
fr_mirror() {
  local uri=""
  uri=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
    BEGIN { RS = ""; FS = "\n" }
    {
      u = ""; ok = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
        if ($i ~ /^Suites:/) {
          n = split($i, s, /[ \t]+/)
          for (j = 2; j <= n; j++) if (s[j] ~ /^(bookworm|trixie|forky|stable|testing|sid|unstable)$/) ok = 1
        }
      }
      if (ok && u != "") { print u; exit }
    }')
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list 2>/dev/null | sed 's/\[[^]]*\]//' | awk '
      $1 == "deb" && $3 ~ /^(bookworm|trixie|forky|stable|testing|sid|unstable)$/ { print $2; exit }')
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

fr_debootstrap() {
  local suite=$1 dir=$2 mirror
  mirror=$(fr_mirror)
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
      return
  fi
  echo "fresh-root: debootstrap --variant=minbase $suite $dir $mirror"
  debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 || {
    tail -30 "$dir.debootstrap.log" >&2
    return 1
  }
  rm -f "$dir.debootstrap.log"
  # The root's apt uses the same mirror; resolv.conf for its lookups.
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
  # The certificate authorities this machine adds to Debian's (a proxy's,
  # on a machine whose traffic goes through one): copied, so that the root
  # trusts what the host trusts once its ca-certificates package is
  # installed (its postinst reads /usr/local/share/ca-certificates). Without
  # them, npm in the root cannot reach the registry through such a proxy.
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$dir/usr/local/share/ca-certificates" &&
      cp -L /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/" \
        2>/dev/null || true
  fi
}

fr_enter() {
  local dir=$1 src=$2
  dir=$(cd "$dir" && pwd)
  fr_entered+=("$dir")
  mkdir -p "$dir/dev/shm" "$dir/mnt" &&
    rm -rf "$dir/mnt/src" &&
    git clone -q --bare "$src" "$dir/mnt/src" &&
    mount -t proc proc "$dir/proc" &&
    mount -t sysfs sysfs "$dir/sys" &&
    mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dir/dev/shm"
}

fr_run() {
  local dir=$1
  shift
  chroot "$dir" /usr/bin/env -i HOME=/root USER=root LOGNAME=root CI=true LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    /bin/bash -c "cd /root && $*" </dev/null
}

# Processes whose root directory is DIR (started inside it).
fr_pids() {
  local dir=$1 p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$r" = "$dir" ]; then echo "${p#/proc/}"; fi
  done
  return 0
}

fr_leave() {
  local dir=$1 pids m
  pids=$(fr_pids "$dir")
  if [ -n "$pids" ]; then
    echo "fresh-root: stopping what was left running in $dir: $(echo $pids)" >&2
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
  fi
  # Innermost first; lazily if something still holds one.
  for m in dev/shm sys proc; do
    if mountpoint -q "$dir/$m"; then
      umount "$dir/$m" 2>/dev/null || umount -l "$dir/$m"
    fi
  done
}

fr_leave_all() {
  local d
  for d in "${fr_entered[@]}"; do fr_leave "$d"; done
  fr_entered=()
}

# Whether anything is mounted at or below DIR (absolute).
fr_mounted_below() {
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}

fr_remove() {
  local dir
  [ -e "$1" ] || return 0
  dir=$(cd "$1" && pwd)
  if fr_mounted_below "$dir"; then
    echo "fresh-root: something is still mounted below $dir; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}
