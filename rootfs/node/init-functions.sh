# Functions of the node initramfs (/usr/lib/cw/init-functions.sh), sourced by /init.
# busybox sh; nothing here runs on its own, so the pieces can be tested one by one.

CW_STATUS_PATH=/api/v1/boot/status
CW_SECRET_PATH=/api/v1/boot/secret
CW_SECRET_HEADER=X-CW-Node-Secret
CW_KEY_PATH=/api/v1/boot/authorized-keys

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
