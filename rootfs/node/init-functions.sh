# Functions of the node initramfs (/usr/lib/cw/init-functions.sh), sourced by /init.
# busybox sh; nothing here runs on its own, so the pieces can be tested one by one.

CW_STATUS_PATH=/api/v1/boot/status
CW_SECRET_PATH=/api/v1/boot/secret
CW_SECRET_HEADER=X-CW-Node-Secret
CW_KEY_PATH=/api/v1/boot/authorized-keys
# Seconds a head node has to answer before /init goes on with another one that answered DHCP.
CW_HEAD_PROBE_SECONDS=5
# Seconds an image download may go without a byte before it counts as failed: a head node whose host
# went down sends neither data nor a reset, and busybox wget has no read timeout.
CW_STALL_SECONDS=60

cw_say() {
  echo "cw-init: $*"
}

# cw_cmdline_value KEY [CMDLINE]: the value of KEY=... on the kernel command line (last one wins).
cw_cmdline_value() {
  _key=$1
  _line=${2-$(cat /proc/cmdline 2>/dev/null)}
  _val=
  for _word in $_line; do
    case "$_word" in
      "$_key="*) _val=${_word#"$_key="} ;;
    esac
  done
  printf '%s' "$_val"
}

# cw_normalize_mac MAC: lower case with colons; accepts BOOTIF's 01-aa-bb-... and aa-bb-.. forms.
# Prints nothing for anything that is not a MAC.
cw_normalize_mac() {
  _m=$(printf '%s' "$1" | tr 'A-F-' 'a-f:')
  case "$_m" in
    01:??:??:??:??:??:??) _m=${_m#01:} ;;
  esac
  case "$_m" in
    [0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]) printf '%s' "$_m" ;;
  esac
}

# cw_json_escape TEXT: TEXT as the inside of a JSON string (quotes, backslashes, control characters).
cw_json_escape() {
  printf '%s' "$1" | tr '\n\r\t' '   ' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\000-\037'
}

# cw_is_secret VALUE: whether VALUE has the form of a node secret (43 base64url characters).
cw_is_secret() {
  [ ${#1} -eq 43 ] || return 1
  case "$1" in
    *[!A-Za-z0-9_-]*) return 1 ;;
  esac
  return 0
}

# cw_trade_secret: trades this boot's secret (CW_SECRET, from the kernel command line, which anyone who
# can read /proc/cmdline or the console log has seen) for a new one the head node hands only to us, and
# prints it. Fails, printing nothing, when the head node does not answer with one.
cw_trade_secret() {
  [ -n "${CW_SECRET:-}" ] || return 1
  _answer=$(timeout 10 wget -q -O - --header "$CW_SECRET_HEADER: $CW_SECRET" --header 'Content-Type: application/json' \
    --post-data '{}' "$CW_HEAD$CW_SECRET_PATH/$CW_MAC" 2>/dev/null) || return 1
  _new=$(printf '%s' "$_answer" | sed -n 's/.*"secret":"\([A-Za-z0-9_-]*\)".*/\1/p')
  cw_is_secret "$_new" || return 1
  printf '%s' "$_new"
}

# cw_install_head_key ROOT: puts the head node's ssh public key into ROOT/root/.ssh/authorized_keys, so
# the head node can log in as root (cw-nodectl exec, reboot --soft, shutdown --soft). Fetched every boot:
# a new key on the head node reaches a node by rebooting it. The image's own lines are kept, an older
# head node key (comment cw-appliance) is replaced. Only one well-formed ssh-ed25519 line is accepted.
cw_install_head_key() {
  _key=$(timeout 10 wget -q -O - "$CW_HEAD$CW_KEY_PATH" 2>/dev/null | head -n 1 | tr -d '\r') || return 1
  case "$_key" in
    'ssh-ed25519 '*' cw-appliance') ;;
    *) return 1 ;;
  esac
  case "$_key" in
    *[!A-Za-z0-9+/=\ -]*) return 1 ;;
  esac
  _ssh=$1/root/.ssh
  mkdir -p "$_ssh" && chmod 700 "$_ssh" || return 1
  { grep -v ' cw-appliance$' "$_ssh/authorized_keys" 2>/dev/null; printf '%s\n' "$_key"; } >/tmp/authorized_keys || return 1
  cat /tmp/authorized_keys >"$_ssh/authorized_keys" && chmod 600 "$_ssh/authorized_keys" || return 1
  chown -R 0:0 "$_ssh" 2>/dev/null
  rm -f /tmp/authorized_keys
  return 0
}

# --- several head nodes ---------------------------------------------------------------------------
# Head nodes share one database: any of them serves this node's secret, image and reports. The one
# that served the boot script (cw.head=) may be gone by the time /init runs; the one that answered
# DHCP just now is up.

# cw_is_ipv4 VALUE: whether VALUE is a dotted IPv4 address.
cw_is_ipv4() {
  case "$1" in
    '' | *[!0-9.]* | .* | *. | *..*) return 1 ;;
  esac
  _old_ifs=$IFS
  IFS=.
  set -- $1
  IFS=$_old_ifs
  [ $# -eq 4 ] || return 1
  for _octet in "$@"; do
    [ ${#_octet} -le 3 ] && [ "$_octet" -le 255 ] || return 1
  done
  return 0
}

# cw_head_at ADDRESS URL: the URL of the head node at ADDRESS (IPv4, e.g. the lease's DHCP server) with
# the port of URL (a cw.head= value). Prints nothing and fails for anything else.
# Example: cw_head_at 10.0.0.2 http://10.0.0.1:8080 -> http://10.0.0.2:8080
cw_head_at() {
  cw_is_ipv4 "$1" || return 1
  _hostport=${2#http://}
  _hostport=${_hostport%%/*}
  case "$_hostport" in
    *\]) _port= ;;
    *:*) _port=${_hostport##*:} ;;
    *) _port= ;;
  esac
  case "$_port" in
    *[!0-9]*) return 1 ;;
  esac
  printf 'http://%s%s' "$1" "${_port:+:$_port}"
}

# cw_head_answers URL: whether the head node at URL answers within CW_HEAD_PROBE_SECONDS (it hands its
# ssh key to anyone: a cheap request).
cw_head_answers() {
  timeout "$CW_HEAD_PROBE_SECONDS" wget -q -O /dev/null "$1$CW_KEY_PATH" 2>/dev/null
}

# cw_pick_head OTHER: keeps CW_HEAD when it answers (so a floating head address stays in use); when it
# does not and OTHER (the URL of the head node that answered DHCP) is another one, says so and makes
# OTHER CW_HEAD for the rest of the boot.
cw_pick_head() {
  cw_head_answers "$CW_HEAD" && return 0
  if [ -n "${1:-}" ] && [ "$1" != "$CW_HEAD" ]; then
    cw_say "head $CW_HEAD does not answer; going on with $1, which answered DHCP"
    CW_HEAD=$1
  else
    cw_say "warning: head $CW_HEAD does not answer and no other head node answered DHCP; trying it anyway"
  fi
  return 0
}

# cw_download URL FILE: wget URL into FILE. Fails when wget does, and when FILE has not grown for
# CW_STALL_SECONDS (wget is stopped then).
cw_download() {
  wget -q -O "$2" "$1" &
  _pid=$!
  _size=-1
  _still=0
  while kill -0 "$_pid" 2>/dev/null; do
    sleep 1
    _now=$(stat -c %s "$2" 2>/dev/null) || _now=0
    if [ "$_now" != "$_size" ]; then
      _size=$_now
      _still=0
    elif [ $((_still += 1)) -ge "$CW_STALL_SECONDS" ]; then
      kill "$_pid" 2>/dev/null
      wait "$_pid" 2>/dev/null
      cw_say "no data from $1 for $CW_STALL_SECONDS s"
      return 1
    fi
  done
  wait "$_pid"
}

# cw_fetch_image FILE OTHER: downloads $CW_HEAD$CW_IMAGE into FILE. If that fails (the head node went
# away part-way) and OTHER is another head node's URL, once more from OTHER, which becomes CW_HEAD.
cw_fetch_image() {
  cw_download "$CW_HEAD$CW_IMAGE" "$1" && return 0
  [ -n "${2:-}" ] && [ "$2" != "$CW_HEAD" ] || return 1
  cw_say "download from $CW_HEAD failed; trying once more from $2, which answered DHCP"
  CW_HEAD=$2
  rm -f "$1"
  cw_download "$CW_HEAD$CW_IMAGE" "$1"
}

# cw_other_heads CURRENT URL...: the URLs that are not CURRENT, each once, space-separated: the head
# nodes the node agent turns to when CURRENT does not answer (node.conf's CW_HEADS).
cw_other_heads() {
  _current=$1
  shift
  _others=
  for _url in "$@"; do
    [ -n "$_url" ] && [ "$_url" != "$_current" ] || continue
    case " $_others " in
      *" $_url "*) ;;
      *) _others=${_others:+$_others }$_url ;;
    esac
  done
  printf '%s' "$_others"
}

# cw_sha256_of FILE: the SHA-256 of FILE in hex.
cw_sha256_of() {
  sha256sum "$1" 2>/dev/null | cut -d' ' -f1
}

# cw_report STAGE [MESSAGE]: tells the head node how far the boot got, with this boot's node secret
# (CW_SECRET; without it the head node refuses the report). Never fails, never waits long.
cw_report() {
  [ -n "${CW_HEAD:-}" ] && [ -n "${CW_MAC:-}" ] || return 0
  _body="{\"stage\":\"$1\""
  # The API takes at most 300 characters of message.
  [ -n "${2:-}" ] && _body="$_body,\"message\":\"$(cw_json_escape "$(printf '%s' "$2" | cut -c1-250)")\""
  [ -n "${CW_IP:-}" ] && _body="$_body,\"ip\":\"$CW_IP\""
  _body="$_body}"
  timeout 10 wget -q -O /dev/null --header 'Content-Type: application/json' \
    ${CW_SECRET:+--header "$CW_SECRET_HEADER: $CW_SECRET"} \
    --post-data "$_body" "$CW_HEAD$CW_STATUS_PATH/$CW_MAC" 2>/dev/null ||
    cw_say "warning: could not report stage $1 to $CW_HEAD"
  return 0
}

# cw_squash_offset FILE: byte offset of the squashfs in a cwsquash image, read from the MBR:
# start LBA of partition 1 (little-endian 32 bits at byte 454) x 512. Fails without a valid table.
cw_squash_offset() {
  _sig=$(dd if="$1" bs=1 skip=510 count=2 2>/dev/null | od -A n -t x1 | tr -d ' \n')
  if [ "$_sig" != "55aa" ]; then
    echo "no partition table in $1" >&2
    return 1
  fi
  _type=$(dd if="$1" bs=1 skip=450 count=1 2>/dev/null | od -A n -t u1 | tr -d ' \n')
  if [ "$_type" = "0" ] || [ -z "$_type" ]; then
    echo "partition 1 of $1 is empty" >&2
    return 1
  fi
  # Byte by byte, so the result does not depend on the machine's byte order.
  set -- $(dd if="$1" bs=1 skip=454 count=4 2>/dev/null | od -A n -t u1)
  if [ $# -ne 4 ]; then
    echo "partition table truncated" >&2
    return 1
  fi
  _lba=$(( $1 + $2 * 256 + $3 * 65536 + $4 * 16777216 ))
  if [ "$_lba" -le 0 ]; then
    echo "partition 1 starts at sector 0" >&2
    return 1
  fi
  echo $(( _lba * 512 ))
}

# cw_prefix_of NETMASK: 255.255.255.0 -> 24.
cw_prefix_of() {
  _bits=0
  _old_ifs=$IFS
  IFS=.
  set -- $1
  IFS=$_old_ifs
  for _octet in "$@"; do
    while [ "$_octet" -gt 0 ]; do
      _bits=$(( _bits + (_octet & 1) ))
      _octet=$(( _octet >> 1 ))
    done
  done
  echo "$_bits"
}

# cw_iface_of_mac MAC: the interface carrying MAC, if any.
cw_iface_of_mac() {
  for _dev in /sys/class/net/*; do
    [ -e "$_dev/address" ] || continue
    if [ "$(cat "$_dev/address")" = "$1" ]; then
      basename "$_dev"
      return 0
    fi
  done
  return 1
}

# cw_ifaces: the interfaces that could reach the head node: not loopback, with an Ethernet address.
cw_ifaces() {
  for _dev in /sys/class/net/*; do
    _name=$(basename "$_dev")
    [ "$_name" = lo ] && continue
    [ "$(cat "$_dev/type" 2>/dev/null)" = 1 ] || continue
    echo "$_name"
  done
}

# cw_loaded_modules: names of the loaded modules, sorted.
cw_loaded_modules() {
  cut -d' ' -f1 /proc/modules 2>/dev/null | sort
}
