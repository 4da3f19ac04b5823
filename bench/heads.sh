#!/usr/bin/env bash
# Several heads on etcd: write on one head → visible through another (bench/heads.ts), then the cluster
# figures (10,000-node load, API p99 at 64 concurrent GETs, ...) with the database in SQLite and in etcd,
# one after the other in this run (bench/cluster.ts with CW_BENCH_STORE). Needs what bench/cluster.ts needs.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s build
npx tsx bench/heads.ts "$@"
echo "--- database in SQLite (one head)"
npx tsx bench/cluster.ts "$@"
echo "--- database in etcd (a member on the head)"
CW_BENCH_STORE=etcd npx tsx bench/cluster.ts "$@"
