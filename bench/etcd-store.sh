#!/usr/bin/env bash
# Prints the etcd store figures beside SQLite's (see bench/etcd-store.ts). Needs etcd (Debian etcd-server).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v etcd >/dev/null || { echo "ERROR: etcd not found (apt-get install -y etcd-server)" >&2; exit 1; }
exec npx tsx bench/etcd-store.ts "$@"
