#!/usr/bin/env bash
# Several heads on etcd: write on one head → visible through another (bench/heads.ts), then the database in
# SQLite and in etcd side by side: the 10,000-node `cw-cluster-conf load` and the API at 64 concurrent GETs
# (bench/cluster.ts once per store and round; bench/stores.ts prints the table). The stores take turns,
# SQLite first then etcd first (CW_BENCH_ROUNDS rounds, default 2), so that the other work on the machine,
# which shifts every figure, falls on both alike.
# Usage: bash bench/heads.sh [IMAGE:TAG]   (default cw-headnode:0.1.0, what scripts/build-image.sh makes)
# Needs root, Docker with the image loaded, and wrk on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "ERROR: run as root: the benchmark makes network namespaces and bridges" >&2; exit 1; }
for bin in docker wrk; do
  command -v "$bin" >/dev/null || { echo "ERROR: $bin not found: the API latency is measured with wrk through the head's nginx (apt-get install -y $bin)" >&2; exit 1; }
done
image=${1:-cw-headnode:0.1.0}
rounds=${CW_BENCH_ROUNDS:-2}
figures=$(mktemp -d)
trap 'rm -rf "$figures"' EXIT
npm run -s build
npx tsx bench/heads.ts "$image"
runs=()
order=(sqlite etcd)
for ((round = 1; round <= rounds; round++)); do
  for store in "${order[@]}"; do
    echo "--- round $round: database in $store (one head$([ "$store" = etcd ] && echo ', its etcd member on it'))"
    # Only the figures compared here: the DHCP parts would heat the machine for the next run.
    CW_BENCH_STORE=$store CW_BENCH_PARTS=api CW_BENCH_FIGURES="$figures/$round-$store.json" npx tsx bench/cluster.ts "$image"
    runs+=("$figures/$round-$store.json")
  done
  order=("${order[1]}" "${order[0]}")
done
echo "--- side by side, in the order they ran"
npx tsx bench/stores.ts "${runs[@]}"
