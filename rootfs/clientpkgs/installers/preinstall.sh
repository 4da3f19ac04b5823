#!/bin/sh
# shellcheck disable=SC2015 # "A && B || cw_die": any failure of A or B stops the installer, as meant
# cw pre-installer: finds out what this system is, tells the head node and runs the installer it answers
# with (README, "Installers and registration").
# Served by the head node with its URL on the next line and lib/common.sh in place of "# @cw-common".
CW_HEAD=
CW_LOG_NAME=CW_PREINSTALL_LOG
# @cw-common

# cw_word VALUE: VALUE if it is a plain word (what the head node accepts), else "unknown".
cw_word() {
  case "$1" in
    ''|*[!A-Za-z0-9._-]*) echo unknown ;;
    *) printf '%s\n' "$1" | cut -c1-64 ;;
  esac
}

# cw_os_release KEY: a value of /etc/os-release, read as text (never sourced).
cw_os_release() {
  [ -r /etc/os-release ] || return 0
  sed -n "s/^$1=//p" /etc/os-release | head -n 1 | tr -d "\"'"
}

case "$CW_HEAD" in
  http://?*) ;;
  *) cw_die "no head node URL in this script: download it from http://HEAD/api/v1/install/client/installer" ;;
esac
[ "$(id -u)" = 0 ] || cw_die "run this as root"
cw_log "pre-installer started, head node $CW_HEAD"

arch=$(cw_word "$(uname -m 2>/dev/null)")
os_id=$(cw_word "$(cw_os_release ID)")
os_like=$(cw_os_release ID_LIKE | tr -cd 'A-Za-z0-9._ -' | cut -c1-200)
tools=
for t in rpm dnf yum dpkg apt-get; do
  cw_have "$t" && tools="$tools${tools:+,}\"$t\""
done
if [ -d /run/systemd/system ]; then init=systemd; else init=other; fi
cw_log "detected: arch=$arch os=$os_id like=\"$os_like\" tools=[$tools] init=$init"

body="{\"arch\":\"$arch\",\"os_id\":\"$os_id\",\"os_like\":\"$os_like\",\"tools\":[$tools],\"init\":\"$init\"}"
installer=$(mktemp /tmp/cw-installer.XXXXXX) || cw_die "cannot make a temporary file in /tmp"
if command -v curl >/dev/null 2>&1; then
  curl -fsS --max-time 60 -H 'content-type: application/json' --data-binary "$body" -o "$installer" "$CW_HEAD/api/v1/install/client/installer" 2>>"$CW_LOG"
elif command -v wget >/dev/null 2>&1; then
  wget -q --header='content-type: application/json' --post-data="$body" -O "$installer" "$CW_HEAD/api/v1/install/client/installer" 2>>"$CW_LOG"
else
  rm -f "$installer"
  cw_die "neither curl nor wget is installed: install one of them and run this again"
fi || { rm -f "$installer"; cw_die "the head node $CW_HEAD did not answer with an installer (see $CW_LOG)"; }
case "$(head -n 1 "$installer")" in
  '#!/bin/sh'*) ;;
  *) rm -f "$installer"; cw_die "what the head node sent is not a shell script" ;;
esac
cw_log "running the installer the head node chose ($(sed -n 's/^# \(cw [^:]*\):.*/\1/p' "$installer" | head -n 1))"
sh "$installer" "$@"
rc=$?
rm -f "$installer"
[ "$rc" = 0 ] || cw_die "the installer failed (exit $rc): see $CW_LOG_DIR/CW_INSTALL_LOG"
cw_log "pre-installer finished"
