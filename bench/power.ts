// Power figures: `status` of 500 nodes whose BMCs are real ipmi_sim processes on loopback addresses
// (100 BMCs, 5 nodes each: ipmi_sim allows a user 10 sessions), then 400 of them plus 100 BMCs that never
// answer, through the same code the API runs (src/appliance/power/run.ts: an in-process RMCP+ session per
// node), beside the baseline in the same run: one ipmitool process per node, as the appliance did before.
// The silent case also runs without the BMC probe, to show what the probe still saves.
// Usage: npx tsx bench/power.ts   (needs ipmi_sim and ipmitool: apt-get install openipmi ipmitool)
//   CW_BENCH_FANOUT (default 64, the API's default) sets the nodes at once. Everything listens on
//   127.0.20.x/127.0.99.x port 6231 and is killed at the end, also on failure.
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execaRunner } from '../src/appliance/power/command.js';
import { ipmitoolPlugin } from '../src/appliance/power/ipmi.js';
import { powerMany, type PowerManyOptions, type PowerNode } from '../src/appliance/power/run.js';
import type { PowerTarget } from '../src/appliance/power/uri.js';
import { IpmiSim, stopAllIpmiSims } from '../test/helpers/ipmi-sim.js';

const BMCS = 100;
const NODES = 500;
const SILENT = 100;
const PORT = 6231;
const FANOUT = Number(process.env.CW_BENCH_FANOUT ?? 64);
const dir = mkdtempSync(join(tmpdir(), 'cw-bench-power-'));
const identity = { keyFile: join(dir, 'id_ed25519'), knownHostsFile: join(dir, 'known_hosts') };
const sims = Array.from({ length: BMCS }, (_, i) => new IpmiSim({ dir: join(dir, `bmc${i}`), addr: `127.0.20.${i + 1}`, port: PORT, password: 'bench-pw' }));

type Way = 'in-process' | 'ipmitool';

/** The baseline: every local ipmi target through one ipmitool process, as before the in-process client. */
const ipmitoolFor = (target: PowerTarget) => {
  if (target.scheme !== 'ipmi') throw new Error(`not an ipmi target: ${target.scheme}`);
  return ipmitoolPlugin(target, execaRunner, identity);
};

async function timed(what: string, way: Way, nodes: PowerNode[], expectOk: number, probe = true): Promise<void> {
  const options: PowerManyOptions = { identity, fanout: FANOUT, timeoutMs: 10_000, probe };
  if (way === 'ipmitool') options.pluginFor = ipmitoolFor;
  const cpu = process.cpuUsage();
  const started = Date.now();
  const results = await powerMany(nodes, 'status', options);
  const ms = Date.now() - started;
  const used = process.cpuUsage(cpu);
  const ok = results.filter((r) => r.ok).length;
  const failed = results.filter((r) => !r.ok && !/did not answer/.test(r.error ?? ''));
  console.log(
    `${what}, ${way}: ${(ms / 1000).toFixed(2)} s wall, ${((used.user + used.system) / 1e6).toFixed(2)} s CPU in this process ` +
      `(${ok} answered, ${results.length - ok} failed${ok === expectOk ? '' : `, expected ${expectOk} to answer`})` +
      (failed[0] ? ` first error: ${failed[0].error}` : ''),
  );
}

try {
  await Promise.all(sims.map((s) => s.start()));
  const nodes = Array.from({ length: NODES }, (_, i) => ({ name: `n${i}`, powerUri: `ipmi:///admin:bench-pw@${sims[i % BMCS]!.addr}:${PORT}` }));
  const silent = Array.from({ length: SILENT }, (_, i) => ({ name: `s${i}`, powerUri: `ipmi:///admin:bench-pw@127.0.99.${i + 1}:${PORT}` }));
  console.log(`fanout ${FANOUT}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (let run = 1; run <= 3; run++) {
    await timed(`power status, ${NODES} nodes (run ${run})`, 'in-process', nodes, NODES);
    await timed(`power status, ${NODES} nodes (run ${run})`, 'ipmitool', nodes, NODES);
  }
  const mixed = [...nodes.slice(0, NODES - SILENT), ...silent];
  const withSilent = `power status, ${NODES - SILENT} nodes + ${SILENT} silent BMCs (10 s deadline)`;
  await timed(`${withSilent}, BMCs probed first`, 'in-process', mixed, NODES - SILENT);
  await timed(`${withSilent}, BMCs probed first`, 'ipmitool', mixed, NODES - SILENT);
  // Without the probe every silent BMC holds a fan-out slot for its whole deadline.
  await timed(`${withSilent}, without the probe`, 'in-process', mixed, NODES - SILENT, false);
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  await stopAllIpmiSims();
  rmSync(dir, { recursive: true, force: true });
}
