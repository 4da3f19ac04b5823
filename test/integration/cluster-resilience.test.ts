// The cluster model under stress in the real appliance: DHCP keeps answering a node while other nodes
// change rapidly, attribute groups and boot configs survive stop/start, and a 10,000-node cluster.conf
// load cut short by a kill -9 of the whole container leaves all of it or none of it.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/tools/common/client/api-client.js';
import { AdminSession, TestHost, ctl, dhcpLease, health, restartCommand, sh, tempDir, waitFor, writeLeaseScript } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwrs0';
const SUBNET = '10.213.11.0/24';
const HEAD_IP = '10.213.11.10';
const NAME = 'cwit-resil';
const IMAGE = 'cw-headnode:0.1.0';
const N0_IP = '10.213.11.100';
const BASE_URL = `https://${HEAD_IP}/api/v1`;
/** Known nodes n0..n3, each with a client namespace that asks for its lease. */
const CLIENTS = [0, 1, 2, 3].map((i) => ({
  name: `n${i}`,
  ip: `10.213.11.${100 + i}`,
  host: new TestHost(`cwrsn${i}`, NET, '', `52:54:00:7c:00:0${i + 1}`),
}));
const n0Host = CLIENTS[0]!.host;
const storage = join(tempDir('cwrs'), 'cw_container_storage');
const home = tempDir('cwrs-home');
const admin = new AdminSession(home, BASE_URL);
const agentSock = admin.agentSock;
const tool = (name: string, args: string[]) => admin.tool(name, args, 300_000);
let udhcpcScript = '';

interface NodeView {
  uid: string;
  name: string;
  index: number;
  mac: string | null;
  ip: string | null;
}

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  for (const c of CLIENTS) await c.host.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

/** The admin's API client in this process (a fresh one after each restart: old connections are dead). */
function api(): ApiClient {
  return new ApiClient({ baseUrl: BASE_URL, user: 'alice', sslVerify: admin.sslVerify, env: { SSH_AUTH_SOCK: agentSock }, timeoutMs: 60_000 });
}

const lease = (host: TestHost, tries: number) => dhcpLease(host, udhcpcScript, tries);

/** The number of nodes the API knows (0 when it answers "none"). */
async function nodeCount(): Promise<number> {
  const client = api();
  try {
    return (await client.get<NodeView[]>('/nodes')).length;
  } finally {
    await client.close();
  }
}

/** Waits until the supervisor reports healthy and the API answers an authenticated read. */
async function waitReady(timeoutMs = 120_000): Promise<void> {
  await waitFor(async () => (await health('docker', NAME).catch(() => undefined))?.status === 'healthy', timeoutMs, 500);
  await waitFor(async () => {
    await nodeCount();
    return true;
  }, timeoutMs, 500);
}

/** `-i` selection output of a tool as JSON. */
async function json(name: string, args: string[]): Promise<unknown> {
  const r = await tool(name, [...args, '--json']);
  if (r.exitCode !== 0) throw new Error(`${name} ${args.join(' ')}: ${r.all}`);
  return JSON.parse(r.stdout) as unknown;
}

function mac(a: number, b: number): string {
  return `52:54:00:7c:${a.toString(16).padStart(2, '0')}:${b.toString(16).padStart(2, '0')}`;
}

test.before(async () => {
  await cleanup();
  await sh('docker', ['network', 'create', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  for (const c of CLIENTS) await c.host.create();
  udhcpcScript = writeLeaseScript(home);
  await admin.open();
  const start = await ctl(['start', storage, IMAGE, '--name', NAME, '--network', NET, '--ip', HEAD_IP, '--ssh-port', '22']);
  if (start.exitCode !== 0) throw new Error(start.all);
  const add = await ctl(['add-admin', 'alice', `@${admin.keyFile}.pub`, '--name', NAME]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await admin.adopt(NAME);
  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange ${N0_IP}/24\n${CLIENTS.map((c) => `node ${c.host.mac}`).join('\n')}\n`);
  const load = await tool('cluster-conf', ['load', conf]);
  if (load.exitCode !== 0) throw new Error(load.all);
  for (const c of CLIENTS) await waitFor(async () => (await lease(c.host, 1)) === c.ip, 30_000, 200);
});

test.after.always(cleanup);

test('during 200 rapid changes of other nodes, every DHCP round of the known nodes ends with their address', async (t) => {
  // 50 other nodes, each created, moved to another address, given another MAC and deleted: 200 writes,
  // each one a DHCP-affecting commit, from 4 concurrent writers.
  const SLOTS = 50;
  const WRITERS = 4;
  const client = api();
  await client.get('/nodes'); // authenticate before the changes start
  let changes = 0;
  let churnStart = 0;
  let churnEnd = 0;
  const writer = async (w: number) => {
    for (let k = w; k < SLOTS; k += WRITERS) {
      const created = await client.post<NodeView>('/nodes', { index: 100 + k, mac: mac(1, k), ip: `10.213.11.${150 + k}` });
      changes++;
      await client.patch(`/node/${created.uid}`, { ip: `10.213.11.${200 + k}` });
      changes++;
      await client.patch(`/node/${created.uid}`, { mac: mac(2, k) });
      changes++;
      await client.delete(`/node/${created.uid}`);
      changes++;
    }
  };

  // Every known node's client asks again and again (3 tries of 1 s each per round), from before the
  // first change until a few rounds after the last.
  interface Round {
    node: string;
    ip: string | undefined;
    wanted: string;
    began: number;
    ms: number;
  }
  const rounds: Round[] = [];
  const askers = CLIENTS.map(async (c) => {
    let after = 0;
    while (churnEnd === 0 || after < 3) {
      const began = Date.now();
      const ip = await lease(c.host, 3);
      rounds.push({ node: c.name, ip, wanted: c.ip, began, ms: Date.now() - began });
      if (churnEnd !== 0) after++;
    }
  });
  await waitFor(async () => CLIENTS.every((c) => rounds.some((r) => r.node === c.name)), 30_000, 50);
  churnStart = Date.now();
  const churn = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w))).finally(() => {
    churnEnd = Date.now();
  });
  await churn;
  await Promise.all(askers);
  await client.close();

  const during = rounds.filter((r) => r.began + r.ms >= churnStart && r.began <= churnEnd);
  const maxMs = Math.max(...rounds.map((r) => r.ms));
  const maxDuring = Math.max(...during.map((r) => r.ms));
  t.log(
    `${changes} changes in ${churnEnd - churnStart} ms; ${rounds.length} DHCP rounds from ${CLIENTS.length} clients, ` +
      `${during.length} overlapping the changes; max round ${maxMs} ms (${maxDuring} ms during the changes)`,
  );
  t.is(changes, 200);
  t.true(during.length >= CLIENTS.length, 'every client asked while the changes ran');
  t.deepEqual(
    rounds.filter((r) => r.ip !== r.wanted),
    [],
    'every round ended with the node address',
  );
  // The changed nodes are all gone again.
  t.is(await nodeCount(), CLIENTS.length);
});

test('attribute groups, group membership and boot configs read back identically after stop and start', async (t) => {
  const steps: [string, string[]][] = [
    ['attribctl', ['create', 'name=rack1', 'description=Rack one, row B', 'priority=5']],
    ['attribctl', ['-i', 'rack1', 'set', 'slurm_partition=batch', '_boot_rw_layer=rwtab']],
    ['bootctl', ['create', 'name=Resil1', 'description=Kept across restarts', 'cmdline=console=ttyS0,115200 quiet rd.shell=0']],
    ['nodectl', ['-i', 'n1', 'update', 'groups=rack1']],
    ['nodectl', ['-i', 'n1', 'set', '_boot_config=Resil1', 'rack_slot=7']],
  ];
  for (const [name, args] of steps) {
    const r = await tool(name, args);
    t.is(r.exitCode, 0, `${name} ${args.join(' ')}: ${r.all}`);
  }

  const snapshot = async () => ({
    groups: await json('attribctl', ['ls', '-L']),
    boots: await json('bootctl', ['ls', '-L']),
    node: await json('nodectl', ['-i', 'n1', 'ls', '-L']),
  });
  const before = await snapshot();
  const client = api();
  const resolvedBefore = await client.get('/node/n1/attributes', { query: { resolved: 1 } });
  await client.close();
  t.regex(JSON.stringify(before.groups), /Rack one, row B/);
  t.regex(JSON.stringify(before.boots), /console=ttyS0,115200 quiet rd\.shell=0/);

  const stop = await ctl(['stop', '--name', NAME]);
  t.is(stop.exitCode, 0, stop.all);
  const again = await ctl(restartCommand(stop.stdout));
  t.is(again.exitCode, 0, again.all);
  await waitReady();

  const after = await snapshot();
  t.deepEqual(after, before);
  const client2 = api();
  const resolvedAfter = await client2.get('/node/n1/attributes', { query: { resolved: 1 } });
  await client2.close();
  t.deepEqual(resolvedAfter, resolvedBefore);
  t.log(JSON.stringify(resolvedAfter));
});

test('kill -9 of the container during a 10,000-node cluster.conf load leaves all of it or none', async (t) => {
  const BIG = 10_000;
  const original = await nodeCount();
  // The file keeps the known nodes as they are and adds 10,000 more in another subnet (data only).
  const lines = [`iprange ${N0_IP}/24`, ...CLIENTS.map((c) => `node ${c.host.mac}`), 'iprange 10.50.0.1/16'];
  for (let i = 0; i < BIG; i++) lines.push(`node 52:54:01:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);

  const text = `${lines.join('\n')}\n`;

  // How long one whole load takes here (request sent to answer), measured with a load that is then undone.
  const timing = api();
  await timing.get('/nodes'); // authenticated before the clock starts
  const began = Date.now();
  await timing.post('/cluster/conf', { text });
  const loadMs = Date.now() - began;
  t.is(await nodeCount(), original + BIG);
  await timing.delete('/nodes', { query: { ids: `n[${original}-${original + BIG - 1}]` } });
  await timing.close();
  t.is(await nodeCount(), original);
  t.log(`a load of ${BIG} nodes takes ${loadMs} ms from request to answer`);

  const outcomes: string[] = [];
  for (const fraction of [0.2, 0.5, 0.8]) {
    const delay = Math.max(20, Math.round(loadMs * fraction));
    const client = api();
    await client.get('/nodes');
    const sent = Date.now();
    const load = client.post('/cluster/conf', { text }).then(
      () => `returned after ${Date.now() - sent} ms`,
      (err: unknown) => `failed after ${Date.now() - sent} ms (${err instanceof Error ? err.message : String(err)})`,
    );
    await new Promise((r) => setTimeout(r, delay));
    await sh('docker', ['kill', '--signal', 'KILL', NAME]);
    const result = await load;
    await client.close();
    const completed = result.startsWith('returned');
    await sh('docker', ['start', NAME]);
    await waitReady();
    const count = await nodeCount();
    outcomes.push(`kill ${delay} ms after the request was sent: the request ${result}; ${count} nodes afterwards`);
    t.true(count === original || count === original + BIG, `node count ${count} is neither ${original} nor ${original + BIG}`);
    if (completed) t.is(count, original + BIG, 'a load that returned success is kept');
    // n0 still gets its lease from the restarted appliance.
    const { value } = await waitFor(() => lease(n0Host, 1), 30_000, 200);
    t.is(value, N0_IP);
    if (count !== original) {
      const undo = api();
      await undo.delete('/nodes', { query: { ids: `n[${original}-${original + BIG - 1}]` } });
      await undo.close();
      t.is(await nodeCount(), original);
    }
  }
  t.log(outcomes.join('\n'));

  // And a load through the tool, left alone, completes and is kept whole.
  const conf = join(home, 'big.conf');
  writeFileSync(conf, text);
  const full = await tool('cluster-conf', ['load', conf]);
  t.is(full.exitCode, 0, full.all);
  t.is(await nodeCount(), original + BIG);
});
