# shellcheck shell=bash
# Sourced by scripts/redmine, scripts/postgres and scripts/chromium (which define `say` and `die`).
#
#   apt_install LOG PACKAGE...   install Debian packages non-interactively, keeping existing
#                                config files; if the install fails (stale or missing package
#                                lists), run `apt-get update` and retry once. Output goes to LOG;
#                                on failure its tail is shown and the script dies.
# Runs apt-get directly as root, else through `sudo -n` (dies if that is not allowed).

apt_install() {
  local log=$1
  shift
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || die "installing $* needs root: sudo apt-get install $*"
    as_root=(sudo -n)
  fi
  local install=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q
    --no-install-recommends -o DPkg::Lock::Timeout=300
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@")
  if ! "${install[@]}" >"$log" 2>&1; then
    say "install failed; refreshing the package lists (apt-get update) and retrying once"
    "${as_root[@]}" apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$log" 2>&1 || {
      tail -n 20 "$log" >&2
      die "apt-get update failed (full log: $log)"
    }
    "${install[@]}" >>"$log" 2>&1 || {
      tail -n 30 "$log" >&2
      die "apt-get install $* failed (full log: $log)"
    }
  fi
}
