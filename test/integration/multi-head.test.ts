// Three head nodes on one test bridge, each the real appliance in its own container with its own storage
// and its own etcd member: A starts a cluster (--etcd-member), B and C join it (--join A, as the admin in
// the tool settings). Then: `heads ls` shows three healthy members and a leader; a node created on A is
// in B's and C's dhcpd within a second, and each head's dhcpd alone (the others paused) answers a real
// DHCP client with the node's address and itself as server; A killed while a writer keeps writing through
// B → after A is back, every acknowledged write is on every head; `heads rm` refuses to break the quorum.
import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/tools/common/client/api-client.js';
import type { SslVerify } from '../../src/tools/common/client/settings.js';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, ctl, imageTarball, sh, TestHost, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwmh0';
const SUBNET = '10.213.66.0/24';
const HEADS = [
  { name: 'cwit-head-a', ip: '10.213.66.11' },
  { name: 'cwit-head-b', ip: '10.213.66.12' },
  { name: 'cwit-head-c', ip: '10.213.66.13' },
] as const;
const [A, B, C] = HEADS;
const NODE_MAC = '52:54:00:66:00:01';
const top = tempDir('cwmh');
const home = tempDir('cwmh-home');
const admin = new AdminSession(home, `https://${A.ip}/api/v1`);
const storageOf = (h: (typeof HEADS)[number]) => join(top, h.name);
const client = new TestHost('cwmhn', NET, '', NODE_MAC);
const headsTest = requireTools('root', 'ip', 'busybox');
let imageRef = '';
const apis = new Map<string, ApiClient>();

async function cleanup(): Promise<void> {
  await sh('docker', ['rm', '-f', ...HEADS.map((h) => h.name)], { reject: false });
  await client.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

/** The certificate pin `tool-config` proposes for a head (each head made its own certificate). */
async function pinOf(container: string): Promise<SslVerify> {
  const r = await ctl(['tool-config', '--name', container]);
  const pin = /^client\.sslverify = (sha256:\S+)$/m.exec(r.stdout)?.[1];
  if (!pin) throw new Error(r.all);
  return pin as SslVerify;
}

/** The API of a head as admin alice (her key in the test's ssh-agent). */
async function apiOf(h: (typeof HEADS)[number]): Promise<ApiClient> {
  const known = apis.get(h.name);
  if (known) return known;
  const api = new ApiClient({ baseUrl: `https://${h.ip}/api/v1`, user: admin.user, sslVerify: await pinOf(h.name), env: { SSH_AUTH_SOCK: admin.agentSock }, timeoutMs: 15_000 });
  apis.set(h.name, api);
  return api;
}

const adminEnv = () => ({ HOME: home, SSH_AUTH_SOCK: admin.agentSock });

async function startHead(h: (typeof HEADS)[number], how: string[]): Promise<void> {
  const r = await ctl(['start', storageOf(h), imageRef, '--name', h.name, '--network', NET, '--ip', h.ip, '--ssh-port', '22', '--timeout', '180', ...how], { env: adminEnv() });
  if (r.exitCode !== 0) throw new Error(`${h.name}: ${r.all}`);
}

test.before(async () => {
  await cleanup();
  await sh('docker', ['network', 'create', '--subnet', SUBNET, '-o', `com.docker.network.bridge.name=${NET}`, NET]);
  await admin.open();
  const load = await ctl(['img-load', imageTarball()]);
  imageRef = /Loaded image: (\S+)/.exec(load.stdout)?.[1] ?? '';
  if (!imageRef) throw new Error(load.all);
  await startHead(A, ['--etcd-member', '--etcd-name', 'head-a']);
  const add = await ctl(['add-admin', admin.user, `@${admin.keyFile}.pub`, '--name', A.name]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await admin.adopt(A.name);
  // B and C join through A, as the admin whose tool settings point at A.
  await startHead(B, ['--join', A.ip, '--etcd-name', 'head-b']);
  await startHead(C, ['--join', A.ip, '--etcd-name', 'head-c']);
});

test.after.always(async () => {
  for (const api of apis.values()) await api.close?.();
  await cleanup();
});

headsTest.serial('heads ls: three healthy members, one leader; the cluster database is shared', async (t) => {
  const ls = await admin.tool('clusterctl', ['heads', 'ls']);
  t.is(ls.exitCode, 0, ls.all);
  for (const name of ['head-a', 'head-b', 'head-c']) t.regex(ls.stdout, new RegExp(`^${name}\\s+healthy\\s`, 'm'), ls.stdout);
  t.is(ls.stdout.split('\n').filter((l) => /^head-\S+\s+healthy\s+\*/.test(l)).length, 1, ls.stdout);
  // The admin added on A is an admin of B and C: they share the database.
  const onC = await (await apiOf(C)).get<unknown[]>('/heads');
  t.is(onC.length, 3);
});

headsTest.serial('a node created on A is in the dhcpd of B and C within a second; each head alone answers DHCP with itself as server', async (t) => {
  const conf = join(home, 'cluster.conf');
  writeFileSync(conf, `iprange 10.213.66.100/24\nnode ${NODE_MAC}\n`);
  const started = Date.now();
  const load = await admin.tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);
  const loaded = Date.now();
  for (const h of [B, C]) {
    const file = join(storageOf(h), 'etc', 'generated', 'dhcpd.conf');
    const { ms } = await waitFor(async () => existsSync(file) && readFileSync(file, 'utf8').includes(NODE_MAC), 10_000, 20);
    t.log(`${h.name}: the node in dhcpd.conf ${Date.now() - loaded} ms after load returned (${ms} ms polling; load took ${loaded - started} ms)`);
    t.true(Date.now() - loaded <= 1000 + 200, `${h.name} took ${Date.now() - loaded} ms`);
  }

  await client.create();
  const script = join(home, 'udhcpc.sh');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip FROM $serverid"\nexit 0\n', { mode: 0o755 });
  for (const h of HEADS) {
    const others = HEADS.filter((o) => o !== h).map((o) => o.name);
    await sh('docker', ['pause', ...others]);
    let last = '';
    try {
      const { value } = await waitFor(async () => {
        const r = await client.exec(['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '2', '-T', '1', '-s', script], { reject: false, timeout: 20_000 });
        last = `${r.stdout}\n${r.stderr}`;
        return /^LEASE (\S+) FROM (\S+)/m.exec(r.stdout) ?? undefined;
      }, 30_000, 200).catch(async (err: Error) => {
        const logs = await sh('docker', ['logs', '--tail', '200', h.name], { reject: false });
        const dhcp = `${logs.stdout}\n${logs.stderr}`.split('\n').filter((l) => /dhcp/i.test(l)).slice(-15).join('\n');
        throw new Error(`${h.name} alone gave no lease: ${err.message}\nudhcpc: ${last}\n${dhcp}`);
      });
      t.deepEqual([value[1], value[2]], ['10.213.66.100', h.ip], `${h.name} alone`);
    } finally {
      await sh('docker', ['unpause', ...others]);
    }
  }
});

headsTest.serial('A killed while a writer writes through B: every acknowledged write is on every head once A is back; heads rm refuses to break the quorum', async (t) => {
  const b = await apiOf(B);
  const acknowledged: string[] = [];
  const failures: string[] = [];
  let stop = false;
  const writer = (async () => {
    for (let i = 0; !stop; i++) {
      const name = `w${i}`;
      try {
        await b.post('/attribs', { name });
        acknowledged.push(name);
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  await waitFor(async () => acknowledged.length >= 5, 30_000, 50);
  await sh('docker', ['kill', A.name]);
  const killedAt = acknowledged.length;
  await waitFor(async () => acknowledged.length >= killedAt + 10, 60_000, 100);

  // Two of three left: removing a live head would leave one of two, below their quorum.
  const rm = await (await apiOf(C)).delete('/head/head-b').then(
    () => 'removed',
    (err: Error) => err.message,
  );
  t.regex(rm, /would leave 1 healthy of 2 heads, fewer than their quorum of 2/);

  stop = true;
  await writer;
  t.log(`${acknowledged.length} writes acknowledged (${acknowledged.length - killedAt} after A was killed), ${failures.length} refused`);
  await sh('docker', ['start', A.name]);
  await waitFor(async () => {
    const r = await sh('docker', ['inspect', '-f', '{{.State.Health.Status}}', A.name], { reject: false });
    return r.stdout.trim() === 'healthy';
  }, 180_000, 1000);
  for (const h of HEADS) {
    const api = await apiOf(h);
    const { value: names } = await waitFor(async () => {
      const rows = await api.get<Array<{ name: string }>>('/attribs').catch(() => undefined);
      return rows ? new Set(rows.map((r) => r.name)) : undefined;
    }, 60_000, 500);
    const missing = acknowledged.filter((n) => !names.has(n));
    t.deepEqual(missing, [], `${h.name} lacks acknowledged writes`);
  }
});
