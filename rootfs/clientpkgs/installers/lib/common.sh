#!/bin/sh
# shellcheck disable=SC2015 # "A && B || cw_die": any failure of A or B stops the installer, as meant
# Shared by the cw installers (README, "Installers and registration"). Not served on its own: the head
# node puts this file, from "set -u" on, in place of the line "# @cw-common" of an installer it serves,
# so every node gets one self-contained script and the functions exist once in the source.
# The installer sets CW_HEAD (filled in by the head node) and CW_LOG_NAME before this block. Logs go to
# /tmp unless CW_LOG_DIR names another directory.
set -u
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
CW_LOG_DIR=${CW_LOG_DIR:-/tmp}
CW_LOG=$CW_LOG_DIR/${CW_LOG_NAME:-CW_INSTALL_LOG}
CW_WORK=

cw_log() {
  printf '%s %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >>"$CW_LOG"
  printf '%s\n' "$*" >&2
}

cw_die() {
  cw_log "ERROR: $*"
  [ -n "$CW_WORK" ] && rm -rf "$CW_WORK"
  exit 1
}

# cw_have TOOL: TOOL is installed for real, not a busybox applet (busybox's rpm and dpkg cannot install
# packages; busybox sh names its applets without a path).
cw_have() {
  _t=$(command -v "$1" 2>/dev/null) || return 1
  case "$_t" in
    /*) ;;
    *) return 1 ;;
  esac
  case "$(readlink -f "$_t" 2>/dev/null)" in
    */busybox) return 1 ;;
  esac
  return 0
}

# cw_get URL OUT [JSON]: downloads URL into OUT (POSTs JSON when given) with curl or wget.
cw_get() {
  if command -v curl >/dev/null 2>&1; then
    if [ $# -ge 3 ]; then
      curl -fsS --max-time 300 -H 'content-type: application/json' --data-binary "$3" -o "$2" "$1"
    else
      curl -fsS --max-time 300 -o "$2" "$1"
    fi
  elif command -v wget >/dev/null 2>&1; then
    if [ $# -ge 3 ]; then
      wget -q --header='content-type: application/json' --post-data="$3" -O "$2" "$1"
    else
      wget -q -O "$2" "$1"
    fi
  else
    cw_die "neither curl nor wget is installed: install one of them and run this again"
  fi
}

cw_start() {
  case "$CW_HEAD" in
    http://?*) ;;
    *) cw_die "no head node URL in this script: download it from http://HEAD/api/v1/install/client/installer" ;;
  esac
  [ "$(id -u)" = 0 ] || cw_die "run this as root"
  CW_WORK=$(mktemp -d /tmp/cw-install.XXXXXX) || cw_die "cannot make a temporary directory in /tmp"
  cw_log "$1 started, head node $CW_HEAD"
}

# cw_head_mac: the MAC of the interface this system reaches the head node through.
cw_head_mac() {
  _h=${CW_HEAD#http://}
  _h=${_h%%/*}
  _h=${_h%:*}
  case "$_h" in
    *[!0-9.]*) _a=$(getent hosts "$_h" 2>/dev/null | awk 'NR == 1 { print $1 }') ;;
    *) _a=$_h ;;
  esac
  _dev=
  if [ -n "$_a" ] && command -v ip >/dev/null 2>&1; then
    _dev=$(ip route get "$_a" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
  fi
  if [ -n "$_dev" ] && [ "$_dev" != lo ] && [ -r "/sys/class/net/$_dev/address" ]; then
    tr 'A-F' 'a-f' <"/sys/class/net/$_dev/address"
  elif [ -n "$_dev" ] && [ "$_dev" != lo ]; then
    ip link show dev "$_dev" 2>/dev/null | sed -n 's|.*link/ether \([0-9a-fA-F:]*\).*|\1|p' | head -n 1 | tr 'A-F' 'a-f'
  else
    # The head node is this system itself (or no route): the first Ethernet interface.
    ip -o link show 2>/dev/null | sed -n 's|.*link/ether \([0-9a-fA-F:]*\).*|\1|p' | head -n 1 | tr 'A-F' 'a-f'
  fi
}

# cw_configure: /etc/cw/node.conf, the node secret (if the head node knows this node) and root's key.
cw_configure() {
  CW_MAC=$(cw_head_mac)
  case "$CW_MAC" in
    [0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]) ;;
    *) cw_die "cannot tell the MAC of the interface that reaches $CW_HEAD" ;;
  esac
  CW_NODE=$(hostname 2>/dev/null | cut -d. -f1)
  mkdir -p /etc/cw || cw_die "cannot create /etc/cw"
  if cw_get "$CW_HEAD/api/v1/install/client/register" "$CW_WORK/register" "{\"mac\":\"$CW_MAC\"}" 2>>"$CW_LOG"; then
    _name=$(sed -n 's/.*"name":"\([A-Za-z0-9._-]*\)".*/\1/p' "$CW_WORK/register")
    _secret=$(sed -n 's/.*"secret":"\([A-Za-z0-9_-]*\)".*/\1/p' "$CW_WORK/register")
    [ -n "$_name" ] && CW_NODE=$_name
    if [ -n "$_secret" ]; then
      ( umask 077; printf '%s\n' "$_secret" >/etc/cw/node-secret.new ) && mv -f /etc/cw/node-secret.new /etc/cw/node-secret \
        || cw_die "cannot write /etc/cw/node-secret"
      chmod 600 /etc/cw/node-secret
      cw_log "registered as node $CW_NODE ($CW_MAC): node secret in /etc/cw/node-secret"
    fi
  else
    cw_log "WARNING: the head node does not know this system as a node with MAC $CW_MAC from this address; installing anyway. Add it (cw-nodectl add) and run this installer again to get its node secret"
  fi
  {
    echo "# Written by the cw installer; read by cw-status-updater."
    echo "CW_HEAD=$CW_HEAD"
    echo "CW_MAC=$CW_MAC"
    echo "CW_NODE=$CW_NODE"
  } >/etc/cw/node.conf.new && mv -f /etc/cw/node.conf.new /etc/cw/node.conf || cw_die "cannot write /etc/cw/node.conf"
  cw_log "wrote /etc/cw/node.conf (CW_NODE=$CW_NODE CW_MAC=$CW_MAC)"
  cw_install_head_key
}

# cw_install_head_key: the appliance's ssh key for root (only a well-formed ssh-ed25519 line is taken).
cw_install_head_key() {
  if ! cw_get "$CW_HEAD/api/v1/boot/authorized-keys" "$CW_WORK/key" 2>>"$CW_LOG"; then
    cw_log "WARNING: could not fetch the head node's ssh key; root logins from the head node will not work"
    return 0
  fi
  _key=$(head -n 1 "$CW_WORK/key" | tr -d '\r')
  case "$_key" in
    'ssh-ed25519 '*' cw-appliance') ;;
    *) cw_log "WARNING: the head node's ssh key is not an ssh-ed25519 line; not installed"; return 0 ;;
  esac
  case "$_key" in
    *[!A-Za-z0-9+/=\ -]*) cw_log "WARNING: the head node's ssh key has unexpected characters; not installed"; return 0 ;;
  esac
  _ssh=$(getent passwd root 2>/dev/null | cut -d: -f6)
  _ssh=${_ssh:-/root}/.ssh
  mkdir -p "$_ssh" && chmod 700 "$_ssh" || cw_die "cannot create $_ssh"
  { grep -v ' cw-appliance$' "$_ssh/authorized_keys" 2>/dev/null; printf '%s\n' "$_key"; } >"$CW_WORK/authorized_keys" \
    && cat "$CW_WORK/authorized_keys" >"$_ssh/authorized_keys" && chmod 600 "$_ssh/authorized_keys" \
    || cw_die "cannot write $_ssh/authorized_keys"
  cw_log "installed the head node's ssh key for root in $_ssh/authorized_keys"
}

# cw_enable_services: enabled, not started (reboot, or systemctl start cw-status-updater). The package's
# own script enables it; this only says so, or enables it where that script could not.
cw_enable_services() {
  if ! command -v systemctl >/dev/null 2>&1; then
    cw_log "WARNING: no systemd here: cw-status-updater is installed but not enabled; start the cw-status-updater agent from this system's init"
    return 0
  fi
  [ -d /run/systemd/system ] && systemctl daemon-reload >>"$CW_LOG" 2>&1
  if [ "$(systemctl is-enabled cw-status-updater.service 2>/dev/null)" = enabled ]; then
    _how="is enabled (by the package)"
  else
    systemctl enable cw-status-updater.service >>"$CW_LOG" 2>&1 || cw_die "systemctl enable cw-status-updater failed (see $CW_LOG)"
    _how="enabled"
  fi
  if [ -d /run/systemd/system ]; then
    cw_log "cw-status-updater $_how, not started: reboot, or systemctl start cw-status-updater"
  else
    cw_log "cw-status-updater $_how (systemd is not running here: it starts at the next boot)"
  fi
}

cw_done() {
  rm -rf "$CW_WORK"
  cw_log "$1 finished"
}
