// Power figures: `status` of 500 nodes whose BMCs are real ipmi_sim processes on loopback addresses
// (100 BMCs, 5 nodes each: ipmi_sim allows a user 10 sessions), then 400 of them plus 100 BMCs that never
// answer, through the same code the API runs (src/appliance/power/run.ts, one ipmitool per node), with
// the BMC probe and, as the baseline, without it.
// Usage: npx tsx bench/power.ts   (needs ipmi_sim and ipmitool: apt-get install openipmi ipmitool)
//   CW_BENCH_FANOUT (default 64, the API's default) sets the nodes at once. Everything listens on
//   127.0.20.x/127.0.99.x port 6231 and is killed at the end, also on failure.
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { powerMany, type PowerNode } from '../src/appliance/power/run.js';
import { IpmiSim, stopAllIpmiSims } from '../test/helpers/ipmi-sim.js';

const BMCS = 100;
const NODES = 500;
const SILENT = 100;
const PORT = 6231;
const FANOUT = Number(process.env.CW_BENCH_FANOUT ?? 64);
const dir = mkdtempSync(join(tmpdir(), 'cw-bench-power-'));
const identity = { keyFile: join(dir, 'id_ed25519'), knownHostsFile: join(dir, 'known_hosts') };
const sims = Array.from({ length: BMCS }, (_, i) => new IpmiSim({ dir: join(dir, `bmc${i}`), addr: `127.0.20.${i + 1}`, port: PORT, password: 'bench-pw' }));

async function timed(what: string, nodes: PowerNode[], expectOk: number, probe = true): Promise<void> {
  const started = Date.now();
  const results = await powerMany(nodes, 'status', { identity, fanout: FANOUT, timeoutMs: 10_000, probe });
  const ms = Date.now() - started;
  const ok = results.filter((r) => r.ok).length;
  console.log(`${what}: ${(ms / 1000).toFixed(2)} s (${ok} answered, ${results.length - ok} failed${ok === expectOk ? '' : `, expected ${expectOk} to answer`})`);
}

try {
  await Promise.all(sims.map((s) => s.start()));
  const nodes = Array.from({ length: NODES }, (_, i) => ({ name: `n${i}`, powerUri: `ipmi:///admin:bench-pw@${sims[i % BMCS]!.addr}:${PORT}` }));
  const silent = Array.from({ length: SILENT }, (_, i) => ({ name: `s${i}`, powerUri: `ipmi:///admin:bench-pw@127.0.99.${i + 1}:${PORT}` }));
  console.log(`fanout ${FANOUT}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (let run = 1; run <= 3; run++) await timed(`power status, ${NODES} nodes (run ${run})`, nodes, NODES);
  const mixed = [...nodes.slice(0, NODES - SILENT), ...silent];
  await timed(`power status, ${NODES - SILENT} nodes + ${SILENT} silent BMCs (10 s deadline), BMCs probed first`, mixed, NODES - SILENT);
  // The baseline: the same without the probe, every silent BMC holding a fan-out slot for its deadline.
  await timed(`power status, ${NODES - SILENT} nodes + ${SILENT} silent BMCs (10 s deadline), without the probe`, mixed, NODES - SILENT, false);
} finally {
  await stopAllIpmiSims();
  rmSync(dir, { recursive: true, force: true });
}
