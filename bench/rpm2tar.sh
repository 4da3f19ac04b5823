#!/usr/bin/env bash
# Prints the RPM → TAR figures (see bench/rpm2tar.ts): ours against rpm2cpio | cpio -idm && tar czf.
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in rpmbuild rpm2cpio cpio tar; do
  command -v "$bin" >/dev/null || { echo "ERROR: $bin not found (apt-get install -y rpm rpm2cpio cpio tar)" >&2; exit 1; }
done
exec npx tsx bench/rpm2tar.ts "$@"
