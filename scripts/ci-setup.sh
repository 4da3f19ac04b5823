#!/usr/bin/env bash
# Prepare a fresh Debian 12 build/CI machine (root, no systemd) for the full test run:
# OS packages, a running dockerd, Podman with its Docker-compatible API socket, the newest Node 24
# LTS, npm dependencies.
#
#   scripts/ci-setup.sh
#
# Node 24 comes from the npm registry (scripts/fetch-node.sh) into $CW_NODE_DIR (default
# /opt/cw-ci/node24); the machine's own node is left alone. `npm ci` and the tests run under it:
#   export PATH=$CW_NODE_DIR/bin:$PATH npm_config_nodedir=$CW_NODE_DIR   (what .ci/run does)
#
# Idempotent: each step checks first and skips what is already in place. Quiet: one line per step
# with its duration; the details go to log files under $CI_LOG_DIR (default /var/log/cw-ci), and a
# failing step prints the end of its log.
#
# The Podman settings written here (runc, fixed ulimits) work around limits of the CI machines
# (hybrid cgroups, no CAP_SYS_RESOURCE); they are not product defaults.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CI_LOG_DIR=${CI_LOG_DIR:-/var/log/cw-ci}
CW_NODE_DIR=${CW_NODE_DIR:-/opt/cw-ci/node24}
mkdir -p "$CI_LOG_DIR"
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  docker.io podman runc debootstrap        # engines and the base-image builder
  tftp-hpa isc-dhcp-client busybox-static curl # real clients (udhcpc) and the initramfs busybox
  iproute2 openssh-client tcpdump kea-admin # namespaces/bridges, ssh, capture, perfdhcp
  iptables util-linux                      # FORWARD rules for VM taps; nsenter into an appliance's netns
  isc-dhcp-server                          # a bare dhcpd for the real-daemon DHCP tests
  dnsmasq-base bind9-dnsutils              # the DNS server's real-daemon tests, and dig to ask it
  nginx openssh-server                     # nginx -t and sshd -t on the rendered configs
  qemu-system-x86 ipxe-qemu ovmf           # compute-node VMs (TCG), their PXE ROMs and UEFI
  openipmi ipmitool redfishtool            # ipmi_sim as a real BMC, its client, a Redfish client
  squashfs-tools fdisk cpio kmod           # cwsquash images, initramfs building
  dnf rpm createrepo-c gnupg               # RPM roots with the real dnf, from a repo the test builds
  rpm2cpio                                 # the reference the RPM to TAR conversion is compared with
  shellcheck                               # the diskful-node installers are checked with it
  openssl                                  # certificates for the HTTPS tests, as the appliance makes them
  resource-agents libxml2-utils            # the OCF agent: ocf-tester and its meta-data lint (xmllint)
  pcs pacemaker-cli-utils fence-agents     # the pcs recipe checked on a CIB file (crm_verify), fence_ipmilan
  docker-compose                           # compose.networks.yaml is started with it in the networks test
  etcd-server etcd-client                  # the etcd store's tests start a real etcd (3.4); etcdctl to inspect it
  jq ca-certificates git
)

step_start=0
step() { step_name=$1; step_start=$SECONDS; }
done_step() { printf 'ci-setup: %-34s %s (%ds)\n' "$step_name" "${1:-ok}" $((SECONDS - step_start)); }
fail() {
  printf 'ci-setup: %-34s FAILED (%ds)\n' "$step_name" $((SECONDS - step_start)) >&2
  [ -z "${2:-}" ] || tail -n 30 "$2" >&2
  echo "ERROR: $1${2:+ (log: $2)}" >&2
  exit 1
}
wait_for() { # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

[ "$(id -u)" = 0 ] || { echo "ERROR: ci-setup.sh must run as root" >&2; exit 1; }

# --- OS packages -------------------------------------------------------------------------------
step "apt packages"
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  done_step "already installed"
else
  log=$CI_LOG_DIR/apt.log
  # Daemons installed for tests must not start on the host (a host dhcpd would hold port 67).
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d && policy_added=1
  fi
  rc=0
  { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } >>"$log" 2>&1 || rc=$?
  [ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || fail "apt-get install ${missing[*]} failed" "$log"
  done_step "installed ${#missing[@]}: ${missing[*]}"
fi

# --- dockerd -----------------------------------------------------------------------------------
step "dockerd"
if docker info >/dev/null 2>&1; then
  done_step "already running"
else
  log=$CI_LOG_DIR/dockerd.log
  if ! pgrep -x dockerd >/dev/null; then
    setsid dockerd >>"$log" 2>&1 </dev/null &
  fi
  wait_for 60 docker info || fail "dockerd did not answer on /var/run/docker.sock within 60s" "$log"
  done_step "started"
fi

# --- podman ------------------------------------------------------------------------------------
step "podman containers.conf"
conf=/etc/containers/containers.conf
want=$(cat <<'EOF'
# Written by cw-headnode scripts/ci-setup.sh for CI machines: crun fails on their hybrid cgroups
# and they lack CAP_SYS_RESOURCE, so use runc and ulimits that need no raising.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
)
if [ -f "$conf" ] && grep -qE '^runtime *= *"runc"' "$conf" && grep -q '^default_ulimits' "$conf"; then
  done_step "already set"
else
  mkdir -p /etc/containers
  [ ! -f "$conf" ] || cp -p "$conf" "$conf.before-ci-setup"
  printf '%s\n' "$want" >"$conf"
  done_step "written"
fi

step "podman API socket"
sock=${CW_PODMAN_SOCK:-/run/podman/podman.sock}
podman_ping() { curl -fsS --max-time 3 --unix-socket "$sock" http://d/_ping; }
if [ -S "$sock" ] && podman_ping >/dev/null 2>&1; then
  done_step "already serving"
else
  log=$CI_LOG_DIR/podman-service.log
  mkdir -p "$(dirname "$sock")"
  rm -f "$sock"
  setsid podman system service --time=0 "unix://$sock" >>"$log" 2>&1 </dev/null &
  wait_for 30 podman_ping || fail "podman API did not answer on $sock within 30s" "$log"
  done_step "started on $sock"
fi

# --- Node 24 ------------------------------------------------------------------------------------
step "node 24"
log=$CI_LOG_DIR/node.log
command -v npm >/dev/null || fail "npm is not installed (it asks the registry for the newest Node 24)"
node_version=$(bash "$repo/scripts/fetch-node.sh" "$CW_NODE_DIR" 2>>"$log" | tail -n 1) ||
  fail "could not install Node 24 from the npm registry into $CW_NODE_DIR" "$log"
export PATH=$CW_NODE_DIR/bin:$PATH npm_config_nodedir=$CW_NODE_DIR
[ "$(node --version)" = "$node_version" ] || fail "node on PATH is $(node --version), not $node_version"
done_step "node $node_version in $CW_NODE_DIR"

# --- npm dependencies ----------------------------------------------------------------------------
step "npm ci"
cd "$repo"
# A tree installed under another Node ABI (native addons) is installed again.
stamp=node_modules/.package-lock.json
abi_stamp=node_modules/.cw-node-abi
abi=$(node -p 'process.versions.modules')
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] &&
  [ "$(cat "$abi_stamp" 2>/dev/null)" = "$abi" ] && [ "${CI_FORCE_NPM_CI:-0}" != 1 ]; then
  done_step "up to date (node $(node --version))"
else
  log=$CI_LOG_DIR/npm-ci.log
  npm ci --no-audit --no-fund >>"$log" 2>&1 || fail "npm ci failed" "$log"
  printf '%s\n' "$abi" >"$abi_stamp"
  done_step "installed (node $(node --version))"
fi
