#!/usr/bin/env bash
# Prints the exec figures (see bench/exec.ts): `exec true` on 200 sshd targets in network namespaces,
# beside a sequential ssh loop. Needs root (namespaces, a bridge).
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in ip sshd ssh ssh-keygen unshare; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || { echo "ERROR: $bin not found (apt-get install -y iproute2 openssh-server openssh-client)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "ERROR: run as root (network namespaces and a bridge)" >&2; exit 1; }
exec npx tsx bench/exec.ts "$@"
