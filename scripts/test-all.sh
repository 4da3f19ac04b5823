#!/usr/bin/env bash
# Runs every test: unit tests, the image and cw-tools package builds, and the slow suites on real engines.
# CW_SKIP_SLOW=1 runs only the unit tests; CW_SKIP_IMAGE_BUILD=1 reuses the tarball in build/.
# Tests whose tools are missing are skipped and counted; under CI=true nothing may be skipped, so a
# skip counts as a failure there (requireTools already fails such tests; this also catches test.skip).
# CW_NODE_DIR=DIR runs everything under the Node in DIR (scripts/fetch-node.sh, what CI uses);
# otherwise the node on PATH, which must be Node 24 or later (package.json's engines).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CW_NODE_DIR:-}" ]; then
  [ -x "$CW_NODE_DIR/bin/node" ] || { echo "ERROR: no node in CW_NODE_DIR=$CW_NODE_DIR (run scripts/fetch-node.sh $CW_NODE_DIR)"; exit 1; }
  export PATH=$CW_NODE_DIR/bin:$PATH npm_config_nodedir=$CW_NODE_DIR
fi
node_version=$(node --version 2>/dev/null) || { echo "ERROR: node is not on PATH"; exit 1; }
node_major=${node_version#v}
node_major=${node_major%%.*}
if [ "$node_major" -lt 24 ]; then
  echo "ERROR: the tests need Node 24 or later, $(command -v node) is $node_version" \
    "(scripts/fetch-node.sh DIR installs it; then CW_NODE_DIR=DIR npm test)"
  exit 1
fi

logdir=${CW_TEST_LOGS:-build/test-logs}
mkdir -p "$logdir"
passed=0
failed=0
skipped=0
status=0
case "${CI:-}" in '' | false | 0) ci=0 ;; *) ci=1 ;; esac

step() { printf '==> %s\n' "$*"; }

# Runs ava with a TAP reporter, shows its output, and adds its counts to the totals.
run_ava() {
  local name=$1
  shift
  local log="$logdir/$name.tap"
  npx ava --tap "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f s
  p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$log" | tail -n1)
  f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$log" | tail -n1)
  s=$(sed -n 's/^# skip \([0-9]*\)/\1/p' "$log" | tail -n1)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  skipped=$((skipped + ${s:-0}))
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "${f:-0}" -gt 0 ] || failed=$((failed + 1))
  fi
  if [ "$ci" = 1 ] && [ "${s:-0}" -gt 0 ]; then
    echo "ERROR: $name: ${s} skipped under CI=true; every test must run in CI:"
    grep '# SKIP' "$log" | sed 's/^ok [0-9]* - /  /'
    status=1
  fi
}

step "typecheck and build (node $node_version)"
if ! npm run -s typecheck || ! npm run -s build; then
  echo "ERROR: TypeScript build failed"
  echo "Total: 0 passed, 1 failed, 0 skipped"
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

# Under CI a skipped test is a failed one.
[ "$ci" = 0 ] || failed=$((failed + skipped))
echo "Total: $passed passed, $failed failed, $skipped skipped"
exit $status
