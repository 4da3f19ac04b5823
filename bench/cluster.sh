#!/usr/bin/env bash
# Builds the tools and prints the 10,000-node cluster figures (see bench/cluster.ts).
# Needs root, Docker with the cw-headnode image loaded, and perfdhcp, dhcpd, iptables and wrk on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in perfdhcp dhcpd iptables wrk; do
  command -v "$bin" >/dev/null || { echo "ERROR: $bin not found (apt-get install -y kea-admin isc-dhcp-server iptables wrk)" >&2; exit 1; }
done
npm run -s build
exec npx tsx bench/cluster.ts "$@"
