#!/usr/bin/env bash
# Runs every test: unit tests, the image and cw-tools package builds, and the slow suites on real engines.
# CW_SKIP_SLOW=1 runs only the unit tests; CW_SKIP_IMAGE_BUILD=1 reuses the tarball in build/.
set -uo pipefail
cd "$(dirname "$0")/.."

logdir=${CW_TEST_LOGS:-build/test-logs}
mkdir -p "$logdir"
passed=0
failed=0
status=0

step() { printf '==> %s\n' "$*"; }

# Runs ava with a TAP reporter, shows its output, and adds its counts to the totals.
run_ava() {
  local name=$1
  shift
  local log="$logdir/$name.tap"
  npx ava --tap "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$log" | tail -n1)
  f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$log" | tail -n1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "${f:-0}" -gt 0 ] || failed=$((failed + 1))
  fi
}

step "typecheck and build"
if ! npm run -s typecheck || ! npm run -s build; then
  echo "ERROR: TypeScript build failed"
  echo "Total: 0 passed, 1 failed"
  exit 1
fi

step "unit tests"
run_ava unit

if [ "${CW_SKIP_SLOW:-0}" != 1 ]; then
  if [ "${CW_SKIP_IMAGE_BUILD:-0}" != 1 ]; then
    step "image build"
    if ! bash scripts/build-image.sh --out build; then
      echo "ERROR: image build failed"
      failed=$((failed + 1))
      status=1
    fi
  fi
  # The cw-tools packages (DEB, RPM, tarball) for hosts without Node; the integration suite installs them.
  step "cw-tools packages"
  if ! bash scripts/build-tools-packages.sh --out build; then
    echo "ERROR: cw-tools package build failed"
    failed=$((failed + 1))
    status=1
  fi
  if [ -n "$(ls build/cw-headnode-*.tar 2>/dev/null)" ]; then
    step "integration tests (Docker, Podman, network namespaces)"
    run_ava integration --config ava.integration.config.mjs
  fi
fi

echo "Total: $passed passed, $failed failed"
exit $status
