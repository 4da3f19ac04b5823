// The IPMI power plugin against real BMCs: OpenIPMI's ipmi_sim on loopback addresses, driven by the
// same code the API runs (the in-process RMCP+ client; ipmitool on a relay). Power state as the BMC
// reports it, as its machine process shows it and as ipmitool reads it; a wrong password and a silent BMC
// each give one line, the silent one after its deadline and no later; the password never appears in any
// process's command line.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { powerMany, powerNode, type PowerNode, type PowerResult } from '../../src/appliance/power/run.js';
import { ensureSshKey } from '../../src/appliance/power/ssh.js';
import { allCommandLines, eventually, IpmiSim, stopAllIpmiSims } from '../helpers/ipmi-sim.js';
import { writeTestSshd } from '../helpers/sshd.js';
import { findTool, requireTools } from '../helpers/tools.js';
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
  await removeRelay();
  await execa('rm', ['-rf', dir], { reject: false });
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
  // The BMC stops its machine (SIGTERM) within a second or two, as a real one takes its time.
  const allOff = async () => JSON.stringify(byName(await powerMany(nodes, 'status', { identity }))) === JSON.stringify({ n1: 'off', n2: 'off', n3: 'off' });
  t.true(await eventually(allOff), JSON.stringify(byName(await powerMany(nodes, 'status', { identity }))));
  for (const s of sims) t.false(s.machineRunning());
});

ipmiTest.serial('a wrong password is one line; a silent BMC costs its deadline and no more', async (t) => {
  const wrong = await powerNode({ name: 'n4', powerUri: uri(sims[0]!.addr, 'not-it') }, 'status', { identity });
  t.deepEqual(wrong, {
    name: 'n4',
    ok: false,
    error: 'BMC 127.0.15.1 refused the session (wrong user or password?): its RAKP 2 key exchange code does not match the password',
  });
  const stranger = await powerNode({ name: 'n5', powerUri: `ipmi:///nobody:${encodeURIComponent(PASSWORD)}@${sims[0]!.addr}:${PORT}` }, 'status', { identity });
  t.is(stranger.error, 'BMC 127.0.15.1 refused the session (wrong user or password?): RAKP 2 status 0x0d (unauthorized name)');

  // Nothing listens on 127.0.15.9: a session would retry on and on; the deadline ends it.
  const silent: PowerNode[] = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}`, powerUri: uri('127.0.15.9') }));
  const started = Date.now();
  const results = await powerMany([...silent, nodes[0]!], 'status', { identity, timeoutMs: 2000, fanout: 64 });
  const elapsed = Date.now() - started;
  t.true(results.slice(0, 20).every((r) => r.error === 'BMC 127.0.15.9 did not answer within 2 s'), JSON.stringify(results[0]));
  t.deepEqual(results[20], { name: 'n1', ok: true, state: 'off', result: 'off' });
  t.true(elapsed < 4000, `20 silent BMCs at once took ${elapsed} ms`);
  t.log(`20 silent BMCs and 1 live one, 2 s deadline: ${elapsed} ms`);
  // With a fan-out of 2 the silent BMCs are still found out together (the probe takes no slot), and the
  // live BMC behind them answers at once: one deadline, not ten. Without the probe the same call takes 20 s.
  const narrow = Date.now();
  const probed = await powerMany([...silent, nodes[0]!], 'status', { identity, timeoutMs: 2000, fanout: 2 });
  const narrowMs = Date.now() - narrow;
  t.true(probed.slice(0, 20).every((r) => r.error === 'BMC 127.0.15.9 did not answer within 2 s'));
  t.deepEqual(probed[20], { name: 'n1', ok: true, state: 'off', result: 'off' });
  t.true(narrowMs < 4000, `fan-out 2: ${narrowMs} ms`);
  t.log(`the same at fan-out 2: ${narrowMs} ms`);
  // No session is left behind: the BMC still takes the 10 sessions ipmi_sim allows a user.
  const ten = await powerMany(Array.from({ length: 10 }, () => nodes[0]!), 'status', { identity, fanout: 10 });
  t.true(ten.every((r) => r.ok), JSON.stringify(ten.find((r) => !r.ok)));
});

ipmiTest.serial('the in-process client and ipmitool agree on the state after on, cycle and off, either way round, and on refusing soft', async (t) => {
  const node = nodes[0]!;
  const sim = sims[0]!;
  const viaIpmitool = async () => /Chassis Power is (on|off)/.exec((await sim.ipmitool(['chassis', 'power', 'status'])).stdout)?.[1];
  const viaClient = async () => (await powerNode(node, 'status', { identity })).state;
  const agree = async (state: 'on' | 'off') =>
    eventually(async () => (await viaClient()) === state && (await viaIpmitool()) === state && sim.machineRunning() === (state === 'on'));

  t.deepEqual(await powerNode(node, 'on', { identity }), { name: 'n1', ok: true, result: 'on' });
  t.true(await agree('on'), 'on');
  const before = sim.machineRunning();
  t.deepEqual(await powerNode(node, 'cycle', { identity }), { name: 'n1', ok: true, result: 'cycle' });
  t.true(before);
  t.true(await agree('on'), 'on again after the cycle');
  t.deepEqual(await powerNode(node, 'off', { identity }), { name: 'n1', ok: true, result: 'off' });
  t.true(await agree('off'), 'off');
  // ipmitool powers on, the client reads it; the client powers off, ipmitool reads it.
  t.is((await sim.ipmitool(['chassis', 'power', 'on'])).exitCode, 0);
  t.true(await agree('on'), 'on through ipmitool');
  // ipmi_sim has no ACPI soft off (Chassis Control 5): it refuses the client and ipmitool alike.
  t.deepEqual(await powerNode(node, 'soft', { identity }), {
    name: 'n1',
    ok: false,
    error: 'BMC 127.0.15.1: Chassis Control answered completion code 0xcc (invalid data field in request)',
  });
  const soft = await sim.ipmitool(['chassis', 'power', 'soft']);
  t.not(soft.exitCode, 0);
  t.regex(soft.stderr, /Soft failed: Invalid data field in request/i);
  t.true(await agree('on'), 'still on');
  t.deepEqual(await powerNode(node, 'off', { identity }), { name: 'n1', ok: true, result: 'off' });
  t.true(await agree('off'), 'off through the client');
});

ipmiTest.serial('during power calls no process is started and the password is in no command line', async (t) => {
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
  t.false(sawIpmitool, 'local BMCs are asked in process, without ipmitool');
  t.deepEqual(seen, []);
});

// ipmi://RELAY/...: the appliance's key logs in to a real sshd in a namespace, whose ipmitool talks to an
// ipmi_sim only that namespace can reach (its own loopback); the password travels on ssh's stdin.
const relayTest = requireTools('ipmi_sim', 'ipmitool', 'ip', 'sshd', 'ssh-keygen');
const RELAY_NS = 'cwpwrelay';
const RELAY_IP = '10.213.41.2';

async function removeRelay(): Promise<void> {
  await execa('ip', ['netns', 'del', RELAY_NS], { reject: false });
  await execa('ip', ['link', 'del', 'vcwpwrelay'], { reject: false });
}

relayTest.serial('ipmi://root@RELAY/...: ipmitool runs on the relay over ssh with the appliance key; the password never reaches an argv', async (t) => {
  const relayDir = join(dir, 'relay');
  mkdirSync(relayDir, { recursive: true });
  await removeRelay();
  let sshd: ResultPromise | undefined;
  const relaySim = new IpmiSim({ dir: join(relayDir, 'bmc'), addr: '127.0.0.1', password: PASSWORD, netns: RELAY_NS });
  try {
    await execa('ip', ['netns', 'add', RELAY_NS]);
    await execa('ip', ['link', 'add', 'vcwpwrelay', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', RELAY_NS]);
    await execa('ip', ['addr', 'add', '10.213.41.1/30', 'dev', 'vcwpwrelay']);
    await execa('ip', ['link', 'set', 'vcwpwrelay', 'up']);
    for (const args of [['link', 'set', 'lo', 'up'], ['addr', 'add', `${RELAY_IP}/30`, 'dev', 'eth0'], ['link', 'set', 'eth0', 'up']]) {
      await execa('ip', ['netns', 'exec', RELAY_NS, 'ip', ...args]);
    }
    await relaySim.start();

    // The appliance key is made on first use: run once to create it, then authorize it on the relay.
    const relayUri = `ipmi://root@${RELAY_IP}/admin:${encodeURIComponent(PASSWORD)}@127.0.0.1`;
    await ensureSshKey(identity);
    await writeTestSshd(relayDir, readFileSync(`${identity.keyFile}.pub`), [`PidFile ${join(relayDir, 'sshd.pid')}`]);
    sshd = execa('ip', ['netns', 'exec', RELAY_NS, findTool('sshd') ?? 'sshd', '-D', '-e', '-f', join(relayDir, 'sshd_config')], { reject: false });
    const node = { name: 'r0', powerUri: relayUri };
    let first: PowerResult | undefined;
    for (let i = 0; i < 50; i++) {
      first = await powerNode(node, 'status', { identity });
      if (first.ok || !/cannot reach relay/.test(first.error ?? '')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.deepEqual(first, { name: 'r0', ok: true, state: 'off', result: 'off' });

    const seen: string[] = [];
    const on = powerNode(node, 'on', { identity });
    const until = Date.now() + 300;
    while (Date.now() < until) {
      for (const line of allCommandLines()) if (line.includes(PASSWORD)) seen.push(line);
      await new Promise((r) => setTimeout(r, 10));
    }
    t.deepEqual(await on, { name: 'r0', ok: true, result: 'on' });
    t.deepEqual(seen, []);
    t.true(relaySim.machineRunning());
    t.deepEqual(await powerNode(node, 'off', { identity }), { name: 'r0', ok: true, result: 'off' });
    t.true(await eventually(async () => (await powerNode(node, 'status', { identity })).state === 'off'));
    t.false(relaySim.machineRunning());

    const wrong = await powerNode({ name: 'r1', powerUri: `ipmi://root@${RELAY_IP}/admin:nope@127.0.0.1` }, 'status', { identity });
    t.is(wrong.error, `BMC 127.0.0.1 (through ${RELAY_IP}) refused the session (wrong user or password?): Unable to establish IPMI v2 / RMCP+ session`);
    const stranger = await powerNode({ name: 'r2', powerUri: `ipmi://nobody@${RELAY_IP}/admin:pw@127.0.0.1` }, 'status', { identity });
    t.regex(stranger.error ?? '', new RegExp(`^cannot reach relay ${RELAY_IP.replace(/\./g, '\\.')} over ssh: .*Permission denied`));
  } finally {
    await relaySim.stop();
    if (sshd?.pid) {
      sshd.kill('SIGTERM');
      await sshd;
    }
    await removeRelay();
  }
});
