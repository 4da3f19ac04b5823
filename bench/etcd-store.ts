// Store figures, etcd beside SQLite (see README, Performance):
//   - applyClusterConf of 10,000 nodes (MACs and IPs) into an empty store, on SQLite and on etcd (one
//     member on this machine, default limits, fsync on), and how long until a second etcd store sees them;
//   - a write through one etcd store → seen by a `watch` on another: p50/p99 over CW_BENCH_WRITES writes;
//   - 64 concurrent getNode calls: p50/p99 per call, on each backend.
// Usage: npx tsx bench/etcd-store.ts   (needs etcd from Debian etcd-server; CW_BENCH_RUNS, default 3)
// etcd and the SQLite file live in temporary directories, removed at the end (also on failure).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEtcdStore, type EtcdStore } from '../src/appliance/db/etcd/store.js';
import { openSqliteStore } from '../src/appliance/db/sqlite/store.js';
import type { StoreHandle } from '../src/appliance/db/store.js';
import { parseClusterConf } from '../src/lib/clusterconf.js';
import { startTestEtcd } from '../test/helpers/etcd.js';

const RUNS = Number(process.env.CW_BENCH_RUNS ?? 3);
const NODES = 10_000;
const WRITES = Number(process.env.CW_BENCH_WRITES ?? 300);

const mac = (i: number) => `52:54:05:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const conf = parseClusterConf(['iprange 10.30.0.1/16', ...Array.from({ length: NODES }, (_, i) => `node ${mac(i)}`), ''].join('\n'));

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;

async function timed<T>(fn: () => Promise<T>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** p50/p99 of one getNode each, 64 at a time, over 20 rounds. */
async function concurrentGets(store: StoreHandle): Promise<string> {
  const times: number[] = [];
  for (let round = 0; round < 20; round++) {
    await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        times.push(await timed(() => store.getNode(`n${(round * 64 + i) % NODES}`)));
      }),
    );
  }
  times.sort((a, b) => a - b);
  return `p50 ${ms(pct(times, 50))}, p99 ${ms(pct(times, 99))}`;
}

const dir = mkdtempSync(join(tmpdir(), 'cw-bench-etcd-'));
const etcd = await startTestEtcd();
const open: StoreHandle[] = [];
try {
  console.log(`etcd store benchmark: ${NODES} nodes, ${RUNS} runs, load ${loadavg()[0]!.toFixed(2)}, etcd ${etcd.endpoint} (default limits)`);

  const sqliteTimes: number[] = [];
  let sqlite: StoreHandle | undefined;
  for (let run = 0; run < RUNS; run++) {
    await sqlite?.close();
    sqlite = openSqliteStore(join(dir, `run${run}.sqlite`));
    open.push(sqlite);
    sqliteTimes.push(await timed(() => sqlite!.applyClusterConf(conf)));
  }
  console.log(`applyClusterConf ${NODES} nodes, SQLite:              median ${ms(median(sqliteTimes))} (${sqliteTimes.map(ms).join(', ')})`);

  const etcdTimes: number[] = [];
  const seenTimes: number[] = [];
  let a: EtcdStore | undefined;
  let b: EtcdStore | undefined;
  for (let run = 0; run < RUNS; run++) {
    const prefix = `/bench/${run}/`;
    a = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
    b = await openEtcdStore({ endpoints: [etcd.endpoint], prefix });
    open.push(a, b);
    const other = b;
    const seen = new Promise<number>((resolve) => {
      const off = other.watch((c) => {
        if (c.tables.includes('nodes')) {
          off();
          resolve(performance.now());
        }
      });
    });
    const start = performance.now();
    await a.applyClusterConf(conf);
    etcdTimes.push(performance.now() - start);
    seenTimes.push((await seen) - start);
  }
  console.log(`applyClusterConf ${NODES} nodes, etcd (generation switch):   median ${ms(median(etcdTimes))} (${etcdTimes.map(ms).join(', ')})`);
  console.log(`  ... in a second etcd store (watch + reload):  median ${ms(median(seenTimes))} from the start of the write`);

  // Write on one store -> visible through watch on the other, one write at a time.
  const latencies: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const node = `n${i % NODES}`;
    const other = b!;
    const seen = new Promise<number>((resolve) => {
      const off = other.watch((c) => {
        if (c.origin === 'remote') {
          off();
          resolve(performance.now());
        }
      });
    });
    const start = performance.now();
    await a!.updateNode(node, { attributes: { bench: String(i) } });
    latencies.push((await seen) - start);
  }
  latencies.sort((x, y) => x - y);
  console.log(`write on one etcd store -> watch on another (${WRITES} writes): p50 ${ms(pct(latencies, 50))}, p99 ${ms(pct(latencies, 99))}, max ${ms(latencies.at(-1)!)}`);

  console.log(`getNode, 64 concurrent, SQLite:                 ${await concurrentGets(sqlite!)}`);
  console.log(`getNode, 64 concurrent, etcd:                   ${await concurrentGets(b!)}`);
} finally {
  for (const store of open) await store.close().catch(() => undefined);
  await etcd.destroy();
  rmSync(dir, { recursive: true, force: true });
}
