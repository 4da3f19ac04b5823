#!/usr/bin/env bash
# Builds the tools and prints the network boot figures (see bench/netboot.ts).
# Needs root, Docker with the cw-headnode image loaded, nginx and curl on the host; P1 also needs
# qemu-system-x86, ipxe-qemu, ipxe, dnsmasq, debootstrap, squashfs-tools and busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in nginx curl iptables; do
  command -v "$bin" >/dev/null || { echo "ERROR: $bin not found (apt-get install -y nginx curl iptables)" >&2; exit 1; }
done
npm run -s build
exec npx tsx bench/netboot.ts "$@"
