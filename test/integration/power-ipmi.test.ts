// The IPMI power plugin against real BMCs: OpenIPMI's ipmi_sim on loopback addresses, driven by the
// same code the API runs (real ipmitool processes). Power state as the BMC reports it and as its
// machine process shows it; a wrong password and a silent BMC each give one line, the silent one after
// its deadline and no later; the password never appears in any process's command line.
import test from 'ava';
import { join } from 'node:path';
import { powerMany, powerNode, type PowerNode, type PowerResult } from '../../src/appliance/power/run.js';
import { allCommandLines, IpmiSim, stopAllIpmiSims } from '../helpers/ipmi-sim.js';
import { requireTools } from '../helpers/tools.js';
import { tempDir } from './helpers.js';

const ipmiTest = requireTools('ipmi_sim', 'ipmitool');
const PORT = 6230;
// A `$` in the password: written %24 in the power_uri, as a shell would never see it.
const PASSWORD = `S3c$${Math.random().toString(16).slice(2, 8)}`;
const dir = tempDir('cw-ipmi');
const identity = { keyFile: join(dir, 'id_ed25519'), knownHostsFile: join(dir, 'known_hosts') };
const sims = [1, 2, 3].map((i) => new IpmiSim({ dir: join(dir, `bmc${i}`), addr: `127.0.15.${i}`, port: PORT, password: PASSWORD }));
const uri = (addr: string, password = PASSWORD) => `ipmi:///admin:${encodeURIComponent(password)}@${addr}:${PORT}`;
const nodes: PowerNode[] = sims.map((s, i) => ({ name: `n${i + 1}`, powerUri: uri(s.addr) }));

ipmiTest.before(async () => {
  for (const s of sims) await s.start();
});

test.after.always(async () => {
  await stopAllIpmiSims();
});

const byName = (results: PowerResult[]) => Object.fromEntries(results.map((r) => [r.name, r.ok ? r.result : `ERROR: ${r.error}`]));

ipmiTest.serial('status, on, boot, cycle and off as the BMCs report them, and their machines show', async (t) => {
  t.deepEqual(byName(await powerMany(nodes, 'status', { identity })), { n1: 'off', n2: 'off', n3: 'off' });

  t.deepEqual(byName(await powerMany(nodes.slice(0, 2), 'on', { identity })), { n1: 'on', n2: 'on' });
  t.true(sims[0]?.machineRunning());
  t.true(sims[1]?.machineRunning());
  t.false(sims[2]?.machineRunning());
  t.deepEqual(byName(await powerMany(nodes, 'status', { identity })), { n1: 'on', n2: 'on', n3: 'off' });
  // ipmitool itself agrees.
  t.regex((await sims[0]!.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is on/);

  // boot: n3 is off, so it is powered on (on n1 it would be a reset, which ipmi_sim only does for a VM).
  t.deepEqual(await powerNode(nodes[2]!, 'boot', { identity }), { name: 'n3', ok: true, state: 'off', result: 'on' });
  t.true(sims[2]?.machineRunning());

  t.deepEqual(await powerNode(nodes[1]!, 'cycle', { identity }), { name: 'n2', ok: true, result: 'cycle' });

  t.deepEqual(byName(await powerMany(nodes, 'off', { identity })), { n1: 'off', n2: 'off', n3: 'off' });
  t.deepEqual(byName(await powerMany(nodes, 'status', { identity })), { n1: 'off', n2: 'off', n3: 'off' });
  for (const s of sims) t.false(s.machineRunning());
});

ipmiTest.serial('a wrong password is one line; a silent BMC costs its deadline and no more', async (t) => {
  const wrong = await powerNode({ name: 'n4', powerUri: uri(sims[0]!.addr, 'not-it') }, 'status', { identity });
  t.deepEqual(wrong, {
    name: 'n4',
    ok: false,
    error: 'BMC 127.0.15.1 refused the session (wrong user or password?): Unable to establish IPMI v2 / RMCP+ session',
  });

  // Nothing listens on 127.0.15.9: ipmitool would retry on and on; the deadline ends it.
  const silent: PowerNode[] = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, powerUri: uri('127.0.15.9') }));
  const started = Date.now();
  const results = await powerMany([...silent, nodes[0]!], 'status', { identity, timeoutMs: 2000, fanout: 64 });
  const elapsed = Date.now() - started;
  t.true(results.slice(0, 20).every((r) => r.error === 'BMC 127.0.15.9 did not answer within 2 s'), JSON.stringify(results[0]));
  t.deepEqual(results[20], { name: 'n1', ok: true, state: 'off', result: 'off' });
  t.true(elapsed < 4000, `20 silent BMCs at once took ${elapsed} ms`);
  t.log(`20 silent BMCs and 1 live one, 2 s deadline: ${elapsed} ms`);
  // No ipmitool is left behind.
  await new Promise((r) => setTimeout(r, 1500));
  t.false(allCommandLines().some((l) => l.startsWith('ipmitool') && l.includes('127.0.15.9')));
});

ipmiTest.serial('during power calls the password is in no process command line', async (t) => {
  const seen: string[] = [];
  let sawIpmitool = false;
  const calls = powerMany(
    Array.from({ length: 6 }, (_, i) => ({ name: `x${i}`, powerUri: i % 2 === 0 ? uri('127.0.15.9') : uri(sims[i % 3]!.addr) })),
    'status',
    { identity, timeoutMs: 1500 },
  );
  const until = Date.now() + 1200;
  while (Date.now() < until) {
    for (const line of allCommandLines()) {
      if (line.startsWith('ipmitool')) sawIpmitool = true;
      if (line.includes(PASSWORD) || line.includes(encodeURIComponent(PASSWORD))) seen.push(line);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await calls;
  t.true(sawIpmitool, 'ipmitool processes were running while we looked');
  t.deepEqual(seen, []);
});
