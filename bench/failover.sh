#!/usr/bin/env bash
# A booting VM's power-on → up with no head failing vs with the head it boots from killed (docker kill)
# once that head has sent it its boot script: three appliances on etcd, one qemu VM (TCG, BIOS), in one
# run. The figures come from the multi-head suite's VM tests (test/integration/multi-head.test.ts), which
# set everything up and remove it again; this prints them side by side.
# Needs what that suite needs: root, Docker, the image tarball (scripts/build-image.sh), qemu-system-x86,
# ipxe-qemu, debootstrap, iptables, nsenter, curl, busybox-static (scripts/ci-setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s build
log=$(mktemp)
trap 'rm -f "$log"' EXIT
CI=true npx ava --config ava.integration.config.mjs test/integration/multi-head.test.ts \
  --match '*VM*' 2>&1 | tee "$log" >&2 || { echo "ERROR: the multi-head VM tests failed (above)" >&2; exit 1; }
calm=$(sed -n 's/.*no head failing: power-on -> up in \([0-9.]*\) s.*/\1/p' "$log" | tail -n 1)
killed=$(sed -n 's/.*first head killed: power-on -> up in \([0-9.]*\) s.*/\1/p' "$log" | tail -n 1)
when=$(sed -n 's/.*\(A killed [0-9.]* s after power-on\).*/\1/p' "$log" | tail -n 1)
echo
echo "power-on -> up (qemu TCG, BIOS, DefaultImage), load average $(cut -d' ' -f1-3 /proc/loadavg):"
printf '  %-44s %8s s\n' 'no head failing (booted through C)' "${calm:-?}" "first head killed during the boot ($when)" "${killed:-?}"
