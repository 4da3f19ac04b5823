// Power through the real appliance: the appliance's in-process IPMI client drives a real BMC (OpenIPMI's
// ipmi_sim in a namespace on the test bridge), asked by `cw-nodectl power` on the host through the
// API. The password stays out of listings, command lines and the appliance's log files. (execa strips
// the tool's final newline.)
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allCommandLines, eventually, IpmiSim, stopAllIpmiSims } from '../helpers/ipmi-sim.js';
import { requireTools } from '../helpers/tools.js';
import { ApiClient } from '../../src/tools/common/client/api-client.js';
import { AdminSession, TestHost, sh, startOnTestBridge, tempDir } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const ipmiTest = requireTools('ipmi_sim', 'ipmitool', 'ip');
const NET = 'cwpw0';
const SUBNET = '10.213.40.0/24';
const HEAD_IP = '10.213.40.10';
const BMC_IP = '10.213.40.50';
const SILENT_IP = '10.213.40.77';
/** A BMC that answers the first question of a session and nothing after (a hung IPMI stack), beside ipmi_sim. */
const HUNG_PORT = 6230;
const NAME = 'cwit-power';
const PASSWORD = `Pw$${Math.random().toString(16).slice(2, 10)}`;
const bmcHost = new TestHost('cwpwbmc', NET, `${BMC_IP}/24`, '52:54:00:7c:00:50');
const work = tempDir('cwpw');
const storage = join(work, 'cw_container_storage');
const home = tempDir('cwpw-home');
const admin = new AdminSession(home, `https://${HEAD_IP}/api/v1`);
const bmc = new IpmiSim({ dir: join(work, 'bmc'), addr: BMC_IP, password: PASSWORD, netns: bmcHost.ns });
const nodectl = (args: string[]) => admin.tool('nodectl', args);
const uri = (addr: string, password = PASSWORD) => `ipmi:///admin:${encodeURIComponent(password)}@${addr}`;

let hung: ResultPromise | undefined;

/**
 * Answers Get Channel Authentication Capabilities (the appliance's probe) and stays silent to everything
 * else, so the appliance's session retries until the node's deadline.
 */
function startHungBmc(): void {
  const script = join(work, 'hung-bmc.mjs');
  writeFileSync(
    script,
    [
      "import { createSocket } from 'node:dgram';",
      "const s = createSocket('udp4');",
      's.on(\'message\', (m, from) => { if (m.length > 19 && m[19] === 0x38) s.send(Buffer.from([6, 0, 255, 7, 0]), from.port, from.address); });',
      `s.bind(${HUNG_PORT}, '${BMC_IP}');`,
    ].join('\n'),
  );
  hung = execa('ip', ['netns', 'exec', bmcHost.ns, process.execPath, script], { reject: false });
}

async function cleanup(): Promise<void> {
  hung?.kill('SIGKILL');
  await hung;
  hung = undefined;
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  await stopAllIpmiSims();
  await bmcHost.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

ipmiTest.before(async () => {
  await cleanup();
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  await bmcHost.create();
  await bmc.start();
  startHungBmc();
});

test.after.always(async () => {
  await cleanup();
  await sh('rm', ['-rf', work, home], { reject: false });
});

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

ipmiTest.serial('cw-nodectl power status/on/off through the appliance against ipmi_sim; the password stays hidden', async (t) => {
  for (const [index, power] of [
    [0, uri(BMC_IP)],
    [1, uri(BMC_IP, 'wrong-one')],
    [2, uri(SILENT_IP)],
    [3, uri(`${BMC_IP}:${HUNG_PORT}`)],
  ] as const) {
    const r = await nodectl(['create', `index=${index}`, `power_uri=${power}`]);
    t.is(r.exitCode, 0, r.all);
    t.false(r.all.includes(PASSWORD.slice(3)), r.all);
  }
  const ls = await nodectl(['-i', 'n0', 'ls', '-l']);
  t.true(ls.stdout.includes(`power_uri: ipmi:///admin:********@${BMC_IP}`), ls.all);
  t.false(ls.all.includes(PASSWORD.slice(3)));

  const off = await nodectl(['-i', 'n0', 'power', 'status']);
  t.is(off.exitCode, 0, off.all);
  t.is(off.stdout, 'n0: off');

  const on = await nodectl(['-i', 'n0', 'power', 'on']);
  t.is(on.stdout, 'n0: on', on.all);
  t.true(bmc.machineRunning(), 'ipmi_sim started its machine');
  t.is((await nodectl(['-i', 'n0', 'power', 'status'])).stdout, 'n0: on');

  // One live, one refusing, one silent and one hung BMC: a line each, the silent and the hung one after
  // their deadline (the silent one found out by the probe; the hung one answers the probe, so the
  // appliance's session retries against it until the deadline). No ipmitool runs for any of them.
  const leaks: string[] = [];
  let sawIpmitool = false;
  const started = Date.now();
  const mixed = nodectl(['-i', 'n[0-3]', 'power', 'status', '--timeout', '3']);
  while (Date.now() - started < 2500) {
    for (const line of allCommandLines()) {
      if (line.startsWith('ipmitool') && (line.includes(BMC_IP) || line.includes(SILENT_IP))) sawIpmitool = true;
      if (line.includes(PASSWORD.slice(3))) leaks.push(line);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const r = await mixed;
  const elapsed = Date.now() - started;
  t.is(r.exitCode, 1, r.all);
  t.deepEqual(r.stdout.trim().split('\n').sort(), [
    'n0: on',
    `n1: ERROR: BMC ${BMC_IP} refused the session (wrong user or password?): its RAKP 2 key exchange code does not match the password`,
    `n2: ERROR: BMC ${SILENT_IP} did not answer within 3 s`,
    `n3: ERROR: BMC ${BMC_IP} did not answer within 3 s`,
  ]);
  t.is(r.stderr.trim(), 'ERROR: power status failed on 3 of 4 nodes: n[1-3]');
  t.true(elapsed < 6000, `${elapsed} ms`);
  t.false(sawIpmitool, 'the appliance asks its BMCs in process, without ipmitool');
  t.deepEqual(leaks, [], 'no command line holds the password');

  // Streamed through nginx: the tool prints the live BMC's line while the silent one is still pending.
  const seen: Array<{ at: number; line: string }> = [];
  const streamStarted = Date.now();
  const streamed = nodectl(['-i', 'n[0,2]', 'power', 'status', '--timeout', '3']);
  streamed.stdout?.on('data', (chunk: Buffer) => {
    for (const line of String(chunk).split('\n').filter((l) => l !== '')) seen.push({ at: Date.now() - streamStarted, line });
  });
  const sr = await streamed;
  t.is(sr.exitCode, 1, sr.all);
  t.deepEqual(seen.map((s) => s.line), ['n0: on', `n2: ERROR: BMC ${SILENT_IP} did not answer within 3 s`]);
  t.true((seen[0]?.at ?? Infinity) < (seen[1]?.at ?? 0) - 1500, JSON.stringify(seen));

  // A client that goes away after the first line stops nothing: the run is logged when it is over.
  const api = new ApiClient({ baseUrl: admin.baseUrl, user: admin.user, sslVerify: admin.sslVerify, env: { SSH_AUTH_SOCK: admin.agentSock }, tokens: new Map() });
  for await (const line of api.stream<{ name?: string }>('POST', '/nodes/power', { body: { ids: 'n[0,2]', action: 'status', timeout: 2 } })) {
    t.is(line.name, 'n0');
    break;
  }
  await api.close();
  const apiLogged = () =>
    filesUnder(join(storage, 'logs')).some((f) => statSync(f).size < 64 * 1024 * 1024 && readFileSync(f, 'utf8').includes('power status n[0,2] by alice: 1 ok, 1 failed (n2)'));
  t.true(await eventually(async () => apiLogged()), 'the summary of the abandoned stream is in the API log');

  const down = await nodectl(['-i', 'n0', 'power', 'off', '--json']);
  t.deepEqual(JSON.parse(down.stdout), { n0: { ok: true, result: 'off' } });
  t.true(await eventually(async () => (await nodectl(['-i', 'n0', 'power', 'status'])).stdout === 'n0: off'));
  t.false(bmc.machineRunning());
  t.regex((await bmc.ipmitool(['chassis', 'power', 'status'])).stdout, /Chassis Power is off/);

  // Nothing under the storage's logs holds it either.
  const logs = join(storage, 'logs');
  const logFiles = filesUnder(logs).filter((f) => statSync(f).size < 64 * 1024 * 1024);
  t.true(logFiles.length > 0);
  for (const f of logFiles) t.false(readFileSync(f, 'utf8').includes(PASSWORD.slice(3)), f);
});
