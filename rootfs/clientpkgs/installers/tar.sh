#!/bin/sh
# shellcheck disable=SC2015 # "A && B || cw_die": any failure of A or B stops the installer, as meant
# cw tar installer: for systems without rpm or dpkg. Usage: sh tar.sh [PACKAGE...] (default cw-node).
# Served by the head node with its URL on the next line and lib/common.sh in place of "# @cw-common".
CW_HEAD=
CW_LOG_NAME=CW_INSTALL_LOG
# @cw-common

# cw_manifest_value FILE KEY: a top-level string of pkg/manifest.json (written one key a line).
cw_manifest_value() {
  sed -n "s/^  \"$2\": \"\\([^\"]*\\)\",\{0,1\}\$/\\1/p" "$1" | head -n 1
}

# cw_run_script DIR PHASE ARG: runs pkg/scripts/PHASE with the interpreter of its #! line, as rpm would.
cw_run_script() {
  _f=$1/pkg/scripts/$2
  _phase=$2
  [ -f "$_f" ] || return 0
  _interp=$(head -n 1 "$_f" | sed -n 's/^#!//p')
  [ -n "$_interp" ] || cw_die "$_f has no #! line"
  set -f
  # shellcheck disable=SC2086 # the interpreter line is a command and its arguments
  set -- $_interp "$_f" "$3"
  set +f
  command -v "$1" >/dev/null 2>&1 || cw_die "the %$_phase script needs $1, which is not installed"
  cw_log "running the %$_phase script ($_interp)"
  "$@" >>"$CW_LOG" 2>&1 || cw_die "the %$_phase script failed (see $CW_LOG)"
}

# cw_pkg_paths DIR TYPE: the paths under DIR (a TAR's pkg/) of type TYPE (find's d or the rest, !d), as ./PATH,
# without the scripts, triggers and manifest (which are not installed).
cw_pkg_paths() {
  (
    cd "$1" || exit 1
    if [ "$2" = d ]; then
      find . -mindepth 1 \( -path ./scripts -o -path ./triggers -o -path ./manifest.json \) -prune -o -type d -print
    else
      find . -mindepth 1 \( -path ./scripts -o -path ./triggers -o -path ./manifest.json \) -prune -o ! -type d -print
    fi
  )
}

# cw_remove_dropped OLD NEW: removes from / the files of the old version (OLD, its pkg/) that the new one
# (NEW) does not have, then those of its directories that are left empty, deepest first.
cw_remove_dropped() {
  cw_pkg_paths "$1" f | while IFS= read -r _p; do
    if [ ! -e "$2/$_p" ] && [ ! -L "$2/$_p" ]; then
      rm -f "/${_p#./}" && cw_log "removed /${_p#./} (not in the new version)"
    fi
  done
  cw_pkg_paths "$1" d | sort -r | while IFS= read -r _d; do
    [ -d "$2/$_d" ] || rmdir "/${_d#./}" 2>/dev/null || true
  done
}

# cw_install_tar NAME
cw_install_tar() {
  case "$1" in
    ''|.*|*[!A-Za-z0-9._+-]*) cw_die "not a package name: $1" ;;
  esac
  _dest=/opt/cw/$1
  _new=$CW_WORK/$1
  cw_get "$CW_HEAD/api/v1/install/client/download/tar/$1" "$CW_WORK/$1.tar.gz" 2>>"$CW_LOG" \
    || cw_die "cannot download the TAR of $1 from $CW_HEAD"
  mkdir -p "$_new" && tar -xzf "$CW_WORK/$1.tar.gz" -C "$_new" 2>>"$CW_LOG" || cw_die "the TAR of $1 does not unpack"
  [ -f "$_new/pkg/manifest.json" ] || cw_die "the TAR of $1 has no pkg/manifest.json"
  _sha=$(cw_manifest_value "$_new/pkg/manifest.json" rpmSha256)
  _ver=$(cw_manifest_value "$_new/pkg/manifest.json" version)-$(cw_manifest_value "$_new/pkg/manifest.json" release)
  if [ -n "$_sha" ] && [ -f "$_dest/pkg/manifest.json" ] && [ "$(cw_manifest_value "$_dest/pkg/manifest.json" rpmSha256)" = "$_sha" ]; then
    cw_log "$1 $_ver is already installed in $_dest: nothing to install"
    return 0
  fi
  # An upgrade runs as rpm -U does: the new %pre 2, the new files, the new %post 2, then the old version's
  # %preun 1, its files the new one no longer has removed, its %postun 1.
  _count=1
  _old=
  if [ -d "$_dest" ]; then
    _count=2
    _old=$CW_WORK/$1.old
  fi
  cw_run_script "$_new" pre "$_count"
  mkdir -p /opt/cw || cw_die "cannot create /opt/cw"
  if [ -n "$_old" ]; then
    mv "$_dest" "$_old" || cw_die "cannot move the installed $1 aside"
  fi
  mv "$_new" "$_dest" || cw_die "cannot move $1 into $_dest"
  # Every file under pkg/ except the scripts, triggers and manifest goes to its path under /.
  {
    cw_pkg_paths "$_dest/pkg" d | while IFS= read -r _d; do mkdir -p "/${_d#./}" || exit 1; done \
      && cw_pkg_paths "$_dest/pkg" f | while IFS= read -r _p; do rm -f "/${_p#./}" && cp -a "$_dest/pkg/$_p" "/${_p#./}" || exit 1; done
  } || cw_die "cannot copy the files of $1 into place"
  cw_log "installed $1 $_ver: $_dest, files copied from $_dest/pkg"
  CW_CHANGED=1
  cw_run_script "$_dest" post "$_count"
  if [ -n "$_old" ]; then
    cw_run_script "$_old" preun 1
    cw_remove_dropped "$_old/pkg" "$_dest/pkg"
    cw_run_script "$_old" postun 1
  fi
  for _t in "$_dest"/pkg/triggers/*; do
    [ -f "$_t" ] || continue
    cw_log "SKIPPED trigger $_t ($(sed -n '2s/^# //p' "$_t")): the tar installer runs no triggers; check whether this system needs it"
  done
}

cw_start "tar installer"
command -v tar >/dev/null 2>&1 && command -v gzip >/dev/null 2>&1 || cw_die "tar and gzip are needed"
[ $# -gt 0 ] || set -- cw-node
cw_configure
CW_CHANGED=
for _pkg in "$@"; do
  cw_install_tar "$_pkg"
done
[ -z "$CW_CHANGED" ] || cw_enable_services
cw_done "tar installer"
