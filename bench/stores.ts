// The figures of bench/cluster.ts runs side by side, one column per run in the order they ran (bench/heads.sh:
// the database in SQLite and in etcd, taking turns): the 10,000-node load and the API at 64 concurrent
// GETs, each with its target.
// Usage: npx tsx bench/stores.ts FIGURES.json...   (the files CW_BENCH_FIGURES made)
import { readFileSync } from 'node:fs';

interface Latency {
  count: number;
  seconds: number;
  p50: number;
  p90?: number;
  p99: number;
  max: number;
  etcdRanges?: number;
}

interface ClusterFigures {
  image: string;
  store: 'sqlite' | 'etcd';
  nodes: number;
  cores: number;
  loadavgBefore: number[];
  loadavgAfter: number[];
  loadMs: number;
  loadToLastOfferMs: number;
  api?: Latency;
  apiDirect?: Latency;
}

const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: npx tsx bench/stores.ts FIGURES.json...');
const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as ClusterFigures);

const ms = (x: number) => `${x.toFixed(1)} ms`;
const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
const or = <T>(x: T | undefined, show: (x: T) => string) => (x === undefined ? '-' : show(x));
const rows: Array<[string, (r: ClusterFigures) => string, string]> = [
  ['load average before / after', (r) => `${r.loadavgBefore[0]!.toFixed(1)} / ${r.loadavgAfter[0]!.toFixed(1)}`, ''],
  [`cw-cluster-conf load, ${runs[0]!.nodes} nodes`, (r) => s(r.loadMs), '<= 3 s (SQLite), <= 5 s (etcd)'],
  ['  load returned -> last node offered', (r) => s(r.loadToLastOfferMs), ''],
  ['API GET /node, 64 concurrent (nginx): p50', (r) => or(r.api, (a) => ms(a.p50)), ''],
  ['  p99', (r) => or(r.api, (a) => ms(a.p99)), '<= 10 ms'],
  ['  max', (r) => or(r.api, (a) => ms(a.max)), ''],
  ['  throughput', (r) => or(r.api, (a) => `${Math.round(a.count / a.seconds)} req/s`), ''],
  ['  etcd Range requests per GET', (r) => or(r.api?.etcdRanges, (n) => (n / r.api!.count).toFixed(2)), ''],
  ['same, API socket in the container: p50', (r) => or(r.apiDirect, (a) => ms(a.p50)), '(no nginx)'],
  ['  p99', (r) => or(r.apiDirect, (a) => ms(a.p99)), ''],
];

const first = runs[0]!;
console.log(`cw-headnode, database in ${[...new Set(runs.map((r) => r.store))].join(' vs ')}: ${first.image}, ${first.nodes} nodes, ${first.cores} cores`);
console.log(`  ${'(in the order they ran)'.padEnd(42)} ${runs.map((r) => r.store.padStart(12)).join(' ')}`);
for (const [what, value, target] of rows) {
  console.log(`  ${what.padEnd(42)} ${runs.map((r) => value(r).padStart(12)).join(' ')}   ${target && !target.startsWith('(') ? `target ${target}` : target}`.trimEnd());
}
