#!/usr/bin/env bash
# Prints the power figures (see bench/power.ts): 500 nodes' status against ipmi_sim BMCs on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in ipmi_sim ipmitool; do
  command -v "$bin" >/dev/null || { echo "ERROR: $bin not found (apt-get install -y openipmi ipmitool)" >&2; exit 1; }
done
exec npx tsx bench/power.ts "$@"
