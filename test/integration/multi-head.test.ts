// Three head nodes on one test bridge, each the real appliance in its own container with its own storage
// and its own etcd member: A starts a cluster (--etcd-member), B and C join it (--join A, as the admin in
// the tool settings). Then: `heads ls` shows three healthy members and a leader; a node created on A is
// in B's and C's dhcpd within a second, and each head's dhcpd alone (the others paused) answers a real
// DHCP client with the node's address and itself as server; A killed while a writer keeps writing through
// B → after A is back, every acknowledged write is on every head; `heads rm` refuses to break the quorum.
import test from 'ava';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/appliance/db/sqlite/store.js';
import { ApiClient } from '../../src/tools/common/client/api-client.js';
import type { SslVerify } from '../../src/tools/common/client/settings.js';
import { requireTools } from '../helpers/tools.js';
import { fakeBzImage, fakeInitramfs } from '../unit/lib/boot-file-fixtures.js';
import { AdminSession, ctl, imageTarball, PxeVm, sh, TestHost, tempDir, unmountUnder, waitFor } from './helpers.js';

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
/** The qemu VM's NIC: node n1 of the cluster.conf the VM tests load. */
const VM_MAC = '52:54:00:66:00:02';
const TAP = 'cwmhtap0';
// Frames between the tap and the appliances cross the docker bridge; docker's FORWARD policy can drop
// them when br_netfilter is loaded, so the suite accepts traffic within its own bridge while it runs.
const FORWARD_RULE = ['FORWARD', '-i', NET, '-o', NET, '-m', 'comment', '--comment', 'cwit-multi-head', '-j', 'ACCEPT'];
const top = tempDir('cwmh');
const home = tempDir('cwmh-home');
const workspace = join(home, 'ws');
const admin = new AdminSession(home, `https://${A.ip}/api/v1`, { 'modimg.workspace': workspace });
const vm = new PxeVm(TAP, VM_MAC, join(home, 'serial.log'));
const storageOf = (h: (typeof HEADS)[number]) => join(top, h.name);
const client = new TestHost('cwmhn', NET, '', NODE_MAC);
const headsTest = requireTools('root', 'ip', 'busybox', 'iptables', 'curl', 'qemu-system-x86_64', 'debootstrap');
let imageRef = '';
const apis = new Map<string, ApiClient>();

async function cleanup(): Promise<void> {
  await vm.stop();
  await sh('docker', ['rm', '-f', ...HEADS.map((h) => h.name)], { reject: false });
  await client.destroy();
  await sh('ip', ['link', 'del', TAP], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  while ((await sh('iptables', ['-D', ...FORWARD_RULE], { reject: false })).exitCode === 0);
  admin.close();
  await unmountUnder(workspace);
}

/**
 * Makes head `h`'s dhcpd deaf (stopped with SIGSTOP) or hear again (SIGCONT). Not a firewall rule: dhcpd
 * reads and writes through packet sockets, which netfilter never sees.
 */
async function deafDhcp(h: (typeof HEADS)[number], deaf: boolean): Promise<void> {
  const top = await sh('docker', ['top', h.name, '-eo', 'pid,comm']);
  const pids = top.stdout.split('\n').flatMap((line) => /^\s*(\d+)\s+dhcpd\s*$/.exec(line)?.[1] ?? []);
  if (pids.length === 0) throw new Error(`no dhcpd in ${h.name}:\n${top.stdout}`);
  for (const pid of pids) process.kill(Number(pid), deaf ? 'SIGSTOP' : 'SIGCONT');
}

const sha256Of = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The sha256 (hex) of DefaultBoot's kernel and initramfs and of its image, as the store names them. */
async function defaultBlobs(): Promise<{ bootUid: string; kernel: string; initramfs: string; image: string }> {
  const a = await apiOf(A);
  const boot = await a.get<{ uid: string; image: string; kernel: { checksum: string }; initramfs: { checksum: string } }>('/bootconfig/DefaultBoot');
  const image = await a.get<{ checksum: string }>(`/image/${boot.image}`);
  const hex = (c: string) => c.slice('sha256:'.length);
  return { bootUid: boot.uid, kernel: hex(boot.kernel.checksum), initramfs: hex(boot.initramfs.checksum), image: hex(image.checksum) };
}

async function logsOf(h: (typeof HEADS)[number]): Promise<string> {
  const r = await sh('docker', ['logs', h.name], { reject: false });
  return `${r.stdout}\n${r.stderr}`;
}

async function waitHealthy(h: (typeof HEADS)[number]): Promise<void> {
  await waitFor(async () => {
    const r = await sh('docker', ['inspect', '-f', '{{.State.Health.Status}}', h.name], { reject: false });
    return r.stdout.trim() === 'healthy';
  }, 180_000, 1000);
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
  await sh('iptables', ['-I', ...FORWARD_RULE]);
  await sh('ip', ['tuntap', 'add', TAP, 'mode', 'tap']);
  await sh('ip', ['link', 'set', TAP, 'master', NET, 'up']);
  await admin.open();
  const load = await ctl(['img-load', imageTarball()]);
  imageRef = /Loaded image: (\S+)/.exec(load.stdout)?.[1] ?? '';
  if (!imageRef) throw new Error(load.all);
  // A was one head before (SQLite, an attribute set of its own): its data becomes the cluster's.
  mkdirSync(join(storageOf(A), 'db'), { recursive: true, mode: 0o700 });
  const before = openSqliteStore(join(storageOf(A), 'db', 'cw.sqlite'));
  await before.create('attribs', { name: 'from-sqlite', attributes: { origin: 'one head' } });
  await before.close();
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

headsTest.serial('heads ls: three healthy members, one leader; the cluster database is shared, seeded from A\'s SQLite database', async (t) => {
  const ls = await admin.tool('clusterctl', ['heads', 'ls']);
  t.is(ls.exitCode, 0, ls.all);
  for (const name of ['head-a', 'head-b', 'head-c']) t.regex(ls.stdout, new RegExp(`^${name}\\s+healthy\\s`, 'm'), ls.stdout);
  t.is(ls.stdout.split('\n').filter((l) => /^head-\S+\s+healthy\s+\*/.test(l)).length, 1, ls.stdout);
  // The admin added on A is an admin of B and C: they share the database.
  const onC = await (await apiOf(C)).get<unknown[]>('/heads');
  t.is(onC.length, 3);
  // A's SQLite database from when it was one head is the cluster's data now, on every head.
  for (const h of HEADS) t.deepEqual((await (await apiOf(h)).get<{ attributes: Record<string, string> }>('/attrib/from-sqlite')).attributes, { origin: 'one head' }, h.name);
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

headsTest.serial('an image uploaded to A is copied to B and C, verified, and boots a qemu VM from C', async (t) => {
  t.timeout(1_800_000);
  const started = Date.now();
  const made = await admin.tool('add-boot-config', ['--make-defaults'], 1_200_000);
  t.is(made.exitCode, 0, made.all);
  t.log(`--make-defaults through A: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const conf = join(home, 'cluster-vm.conf');
  writeFileSync(conf, `iprange 10.213.66.100/24\nnode ${NODE_MAC}\nnode ${VM_MAC}\n`);
  const load = await admin.tool('cluster-conf', ['load', conf]);
  t.is(load.exitCode, 0, load.all);

  const blobs = await defaultBlobs();
  const uploaded = Date.now();
  const filesOn = (h: (typeof HEADS)[number]) => [blobs.kernel, blobs.initramfs, blobs.image].map((hex) => join(storageOf(h), 'blobs', hex));
  // Both heads watched at once, before anything slower (hashing, their logs) is looked at.
  const heldAfter = await Promise.all(
    [B, C].map(async (h) => {
      await waitFor(async () => filesOn(h).every((f) => existsSync(f)), 300_000, 100);
      return Date.now() - uploaded;
    }),
  );
  for (const [i, h] of [B, C].entries()) {
    const files = filesOn(h);
    t.log(`${h.name} held all three blobs ${((heldAfter[i] as number) / 1000).toFixed(1)} s after the uploads returned`);
    t.log((await logsOf(h)).split('\n').filter((l) => l.includes('blobs:')).join('\n'));
    for (const [i, hex] of [blobs.kernel, blobs.initramfs, blobs.image].entries()) t.is(sha256Of(files[i] as string), hex);
    // The image file is the blob (one inode), and the copy was verified as the log says.
    t.deepEqual(readFileSync(join(storageOf(h), 'boot', blobs.bootUid, 'kernel')), readFileSync(files[0] as string));
    t.regex(await logsOf(h), /blobs: copying image DefaultImage \([0-9.]+ MiB, sha256 [0-9a-f]{12}…\) from http:\/\/10\.213\.66\.1[123]/);
    t.regex(await logsOf(h), /blobs: image DefaultImage copied from http:\/\/10\.213\.66\.1[123] and verified/);
  }

  // A (which took the uploads) is paused and B's dhcpd stopped: the VM can only boot through C, from C's copies.
  await sh('docker', ['pause', A.name]);
  await deafDhcp(B, true);
  try {
    const poweredOn = Date.now();
    vm.start({ reboot: false });
    await vm.waitForSerial(/cw-node-agent: n1 is up/, 480_000);
    t.log(`VM through C, no head failing: power-on -> up in ${((Date.now() - poweredOn) / 1000).toFixed(1)} s`);
    t.regex(vm.serial(), /cw-init: node n1 \(uid [0-9a-f]+\), head http:\/\/10\.213\.66\.13, image \/blobs\/[0-9a-f]{64}/);
    t.regex(vm.serial(), /cw-init: node secret of this boot received/);
    t.regex(vm.serial(), /cw-init: image checksum verified/);
    // C's nginx served the blobs itself.
    t.regex(await logsOf(C), new RegExp(`"GET /blobs/${blobs.image} HTTP/1\\.1" 200`));
    const n1 = await (await apiOf(C)).get<{ status: { state?: string } }>('/node/n1');
    t.is(n1.status.state, 'up');
  } finally {
    await vm.stop();
    await deafDhcp(B, false);
    await sh('docker', ['unpause', A.name]);
  }
});

headsTest.serial('a blob a head lacks is redirected to a head that holds it, then copied back', async (t) => {
  const blobs = await defaultBlobs();
  const blob = join(storageOf(C), 'blobs', blobs.kernel);
  rmSync(blob);
  rmSync(join(storageOf(C), 'boot', blobs.bootUid, 'kernel'));
  const head = await sh('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `http://${C.ip}/blobs/${blobs.kernel}`]);
  t.regex(head.stdout, new RegExp(`^302 http://10\\.213\\.66\\.1[12]/blobs/here/${blobs.kernel}$`));
  const got = join(home, 'kernel.got');
  const follow = await sh('curl', ['-sSfL', '-o', got, `http://${C.ip}/blobs/${blobs.kernel}`]);
  t.is(follow.exitCode, 0, follow.stderr);
  t.is(sha256Of(got), blobs.kernel, 'the redirect gives the right bytes');
  // Something no image or boot config names is not looked for anywhere.
  const unknown = await sh('curl', ['-s', '-w', ' %{http_code}', `http://${C.ip}/blobs/${'0'.repeat(64)}`]);
  t.is(unknown.stdout, `no image or boot file has sha256 ${'0'.repeat(64)}\n 404`);
  const { ms } = await waitFor(async () => existsSync(blob), 60_000, 200);
  t.log(`C copied the kernel back ${ms} ms later`);
  t.is(sha256Of(blob), blobs.kernel);
  t.is(sha256Of(join(storageOf(C), 'boot', blobs.bootUid, 'kernel')), blobs.kernel);
});

headsTest.serial('A killed while a VM PXE-boots from it: the VM reaches up through B or C', async (t) => {
  t.timeout(1_200_000);
  const b = await apiOf(B);
  // Only A answers DHCP until it has handed n1 its boot script: the boot is under way on A.
  await deafDhcp(B, true);
  await deafDhcp(C, true);
  let killedAt = 0;
  try {
    const poweredOn = Date.now();
    vm.start();
    await waitFor(async () => (await b.get<{ status: { stage?: string } }>('/node/n1')).status.stage === 'ipxe', 300_000, 100);
    await sh('docker', ['kill', A.name]);
    killedAt = Date.now();
    t.log(`A killed ${((killedAt - poweredOn) / 1000).toFixed(1)} s after power-on, once it had sent n1 its boot script`);
    await deafDhcp(B, false);
    await deafDhcp(C, false);
    await vm.waitForSerial(/cw-node-agent: n1 is up/, 900_000);
    t.log(`VM with its first head killed: power-on -> up in ${((Date.now() - poweredOn) / 1000).toFixed(1)} s`);
    const inits = vm.serial().split(/\r?\n/).filter((l) => l.includes('cw-init:'));
    t.log(inits.join('\n'));
    t.regex(inits.join('\n'), /cw-init: .*head http:\/\/10\.213\.66\.1[23]/, 'the initramfs went on with B or C');
    const n1 = await waitFor(async () => {
      const node = await b.get<{ status: { state?: string } }>('/node/n1');
      return node.status.state === 'up' ? node : undefined;
    }, 60_000, 500);
    t.truthy(n1.value);
  } finally {
    await vm.stop();
    await deafDhcp(B, false).catch(() => undefined);
    await deafDhcp(C, false).catch(() => undefined);
    if (killedAt > 0 || (await sh('docker', ['inspect', '-f', '{{.State.Running}}', A.name])).stdout.trim() !== 'true') {
      await sh('docker', ['start', A.name]);
      await waitHealthy(A);
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
  await waitHealthy(A);
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

headsTest.serial('cw-containerctl backup on an etcd head: the cluster data of every head, restorable as a SQLite database', async (t) => {
  const file = join(home, 'heads-backup.tar.gz');
  const r = await ctl(['backup', file, '--name', C.name]);
  t.is(r.exitCode, 0, r.all);
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', file, 'manifest.json'], { encoding: 'utf8' })) as { backend: string };
  t.is(manifest.backend, 'etcd');
  const dir = join(home, 'heads-backup');
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', file, '-C', dir, 'db/cw.sqlite']);
  // What A says now is in the backup taken through C: nodes and attribute sets alike.
  const copy = openSqliteStore(join(dir, 'db', 'cw.sqlite'));
  try {
    const a = await apiOf(A);
    const nodes = await a.get<Array<{ name: string }>>('/nodes');
    const attribs = await a.get<Array<{ name: string }>>('/attribs');
    t.deepEqual((await copy.listNodes()).map((n) => n.name).sort(), nodes.map((n) => n.name).sort());
    t.deepEqual((await copy.list('attribs')).map((x) => x.name).sort(), attribs.map((x) => x.name).sort());
  } finally {
    await copy.close();
  }
});

// One head cut off from the others (its link to them down, both ways; the nodes' side of the bridge still
// reaches it): it refuses writes with a clear error and keeps booting nodes from what it has, while the
// others carry on; once the link is back, every head has the same data.
const CUT_MAC = '52:54:00:66:00:0c';
const CUT_IP = '10.213.66.150';
/** A node of its own for this test, on the bridge at its assigned address (so its boot asks for a secret). */
const cutNode = new TestHost('cwmhcut', NET, `${CUT_IP}/24`, CUT_MAC);

/** Runs `ip ARGS` in the network namespace of head `h`'s container. */
async function ipIn(h: (typeof HEADS)[number], args: string[], reject = true) {
  const pid = (await sh('docker', ['inspect', '-f', '{{.State.Pid}}', h.name])).stdout.trim();
  return sh('nsenter', ['-t', pid, '-n', 'ip', ...args], { reject });
}

/** The routes that cut C off from A and B: blackholes in C towards them and in them towards C. */
const CUT_ROUTES = [
  { on: C, to: A.ip },
  { on: C, to: B.ip },
  { on: A, to: C.ip },
  { on: B, to: C.ip },
] as const;

/** GET `path` on head `h` from `host` as a booting node does (curl; anonymous): status, body and seconds taken. */
async function nodeRequest(host: TestHost, h: (typeof HEADS)[number], path: string, options: { post?: unknown; secret?: string } = {}) {
  const args = ['curl', '-sS', '--max-time', '30', '-K', '-', '-w', '\n%{http_code} %{time_total}'];
  if (options.post !== undefined) args.push('-X', 'POST', '-H', 'Content-Type: application/json', '--data', JSON.stringify(options.post));
  // The secret goes to curl on stdin, not on its command line.
  const config = options.secret === undefined ? '' : `header = "X-CW-Node-Secret: ${options.secret}"\n`;
  const r = await host.exec([...args, `http://${h.ip}/api/v1${path}`], { input: config, reject: false });
  const split = r.stdout.lastIndexOf('\n');
  const [status, seconds] = r.stdout.slice(split + 1).split(' ');
  return { status: Number(status), text: r.stdout.slice(0, split), seconds: Number(seconds), stderr: r.stderr };
}

/** What must be equal on every head: the nodes and the attribute sets. */
async function viewOf(h: (typeof HEADS)[number]): Promise<string> {
  const api = await apiOf(h);
  const nodes = await api.get<Array<{ name: string; mac: string | null; ip: string | null; attributes: Record<string, string> }>>('/nodes');
  const attribs = await api.get<Array<{ name: string; attributes: Record<string, string> }>>('/attribs');
  return JSON.stringify({ nodes: nodes.map((n) => [n.name, n.mac, n.ip, n.attributes]), attribs: attribs.map((a) => [a.name, a.attributes]) });
}

headsTest.serial('C cut off from A and B: C refuses writes with a clear error, still boots its node and answers DHCP; A takes writes; once the link is back every head has the same data', async (t) => {
  const a = await apiOf(A);
  // A bootable node (kernel, initramfs, image with content), created through A; C copies the files.
  const files = { kernel: join(home, 'cut-vmlinuz'), initramfs: join(home, 'cut-initramfs.img'), image: join(home, 'cut-image.img') };
  writeFileSync(files.kernel, fakeBzImage('6.1.0-cut (builder@example) #1 SMP'));
  writeFileSync(files.initramfs, fakeInitramfs());
  writeFileSync(files.image, Buffer.alloc(64 * 1024, 7));
  for (const [tool, args] of [
    ['imgctl', ['create', 'name=CutImage', `content=@${files.image}`]],
    ['bootctl', ['create', 'name=CutBoot', `kernel=@${files.kernel}`, `initramfs=@${files.initramfs}`, 'image=CutImage']],
  ] as const) {
    const r = await admin.tool(tool, [...args]);
    t.is(r.exitCode, 0, `cw-${tool} ${args.join(' ')}: ${r.all}`);
  }
  const boot = await a.get<{ kernel: { checksum: string }; initramfs: { checksum: string } }>('/bootconfig/CutBoot');
  const image = await a.get<{ checksum: string }>('/image/CutImage');
  const blobsOnC = [boot.kernel.checksum, boot.initramfs.checksum, image.checksum].map((c) => join(storageOf(C), 'blobs', c.slice('sha256:'.length)));
  await waitFor(async () => blobsOnC.every((f) => existsSync(f)), 60_000, 200);
  await a.post('/nodes', { mac: CUT_MAC, ip: CUT_IP, attributes: { _boot_config: 'CutBoot', rack: 'before' } });
  // Gone again afterwards: at its address the nodes could no longer be written as a cluster.conf.
  t.teardown(() => a.delete(`/node/${CUT_MAC}`).catch(() => undefined));
  t.teardown(() => cutNode.destroy());
  await cutNode.create();
  // Before the cut, C boots the node with a secret (which the node keeps for its reports).
  const { value: before } = await waitFor(async () => {
    const r = await nodeRequest(cutNode, C, `/boot/ipxe/${CUT_MAC}`);
    return /^kernel /m.test(r.text) ? r : undefined;
  }, 10_000, 200);
  const secret = / cw\.secret=([A-Za-z0-9_-]{43}) /.exec(before.text)?.[1];
  t.truthy(secret, before.text);

  const c = await apiOf(C);
  try {
    for (const r of CUT_ROUTES) await ipIn(r.on, ['route', 'add', 'blackhole', `${r.to}/32`]);
    const cutAt = Date.now();

    // A write through C: refused, naming what is wrong.
    const refused = await c.post('/attribs', { name: 'cut-on-c' }).then(
      () => 'written',
      (err: Error) => err.message,
    );
    const refusedMs = Date.now() - cutAt;
    t.regex(refused, /^etcd unavailable \(endpoints https:\/\/127\.0\.0\.1:2379\): .*; this head takes no changes until etcd answers again \(it serves reads from the copy it has\)$/);
    // A write through A: taken (A and B are a quorum).
    await a.post('/attribs', { name: 'cut-on-a' });
    await a.patch(`/node/${CUT_MAC}`, { attributes: { rack: 'during' } });

    // C still boots the node, from what it had: a real script, without a secret (C cannot store one).
    const script = await nodeRequest(cutNode, C, `/boot/ipxe/${CUT_MAC}`);
    t.is(script.status, 200, script.text + script.stderr);
    t.regex(script.text, /^kernel --timeout \d+ http:\/\/10\.213\.66\.13\/blobs\/[0-9a-f]{64} .* \|\| goto failed$/m, script.text);
    t.false(script.text.includes('cw.secret='), script.text);
    t.true(script.seconds < 5, `boot script took ${script.seconds} s`);
    // The node's reports and its secret trade: refused at once with the reason, the boot goes on.
    const report = await nodeRequest(cutNode, C, `/boot/status/${CUT_MAC}`, { post: { stage: 'initramfs' }, secret });
    const trade = await nodeRequest(cutNode, C, `/boot/secret/${CUT_MAC}`, { post: {}, secret });
    for (const r of [report, trade]) {
      t.is(r.status, 503, r.text);
      t.regex(r.text, /etcd unavailable .*; this head takes no changes until etcd answers again/);
      t.true(r.seconds < 5, `took ${r.seconds} s`);
    }
    // Reads on C: what it had before the cut.
    t.is((await c.get<{ attributes: Record<string, string> }>(`/node/${CUT_MAC}`)).attributes.rack, 'before');

    // C's dhcpd alone (A and B paused) still answers a node.
    await sh('docker', ['pause', A.name, B.name]);
    try {
      const { value: lease } = await waitFor(async () => {
        const r = await client.exec(['busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'eth0', '-t', '2', '-T', '1', '-s', join(home, 'udhcpc.sh')], { reject: false, timeout: 20_000 });
        return /^LEASE (\S+) FROM (\S+)/m.exec(r.stdout) ?? undefined;
      }, 30_000, 200);
      t.deepEqual([lease[1], lease[2]], ['10.213.66.100', C.ip]);
    } finally {
      await sh('docker', ['unpause', A.name, B.name]);
    }
    t.log(`cut off: write through C refused after ${refusedMs} ms; boot script ${script.seconds} s, status report ${report.seconds} s, secret trade ${trade.seconds} s`);
  } finally {
    for (const r of CUT_ROUTES) await ipIn(r.on, ['route', 'del', 'blackhole', `${r.to}/32`], false);
  }

  // The link is back: within seconds every head has the same data, the write made during the cut too.
  const back = Date.now();
  let seen: string[] = [];
  const { value: views } = await waitFor(async () => {
    seen = await Promise.all(HEADS.map((h) => viewOf(h).catch((err: Error) => err.message)));
    return seen.every((v) => v === seen[0]) && seen[0]!.includes('"cut-on-a"') && seen[0]!.includes('"during"') ? seen : undefined;
  }, 30_000, 250).catch(async (err: Error) => {
    const routes = await ipIn(C, ['route'], false);
    const ls = await admin.tool('clusterctl', ['heads', 'ls']);
    throw new Error(`${err.message}: the heads differ\n${HEADS.map((h, i) => `${h.name}: ${seen[i]}`).join('\n')}\nC's routes:\n${routes.stdout}\nheads ls:\n${ls.all}`);
  });
  t.log(`every head the same ${Date.now() - back} ms after the link came back`);
  t.false(views[0]!.includes('cut-on-c'));
  // And C takes writes again, which reach A.
  await waitFor(async () => c.post('/attribs', { name: 'after-cut-on-c' }).then(() => true, () => false), 30_000, 500);
  await waitFor(async () => (await viewOf(A)).includes('"after-cut-on-c"'), 10_000, 100);
  t.is(await viewOf(A), await viewOf(C));
});
