// Node secrets against the real appliance, through nginx: a node's boot script carries a secret only when
// asked for from the node's own address; status reports without it, with a wrong one or with another
// node's are refused (401/403), counted for admins, logged with their source and change nothing; the
// node's own secret is accepted. Hosts are network namespaces on the appliance's test bridge.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient, type TokenCache } from '../../src/tools/common/client/api-client.js';
import { fakeBzImage, fakeInitramfs } from '../unit/lib/boot-file-fixtures.js';
import { AdminSession, TestHost, containerLogs, health, sh, startOnTestBridge, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwns0';
const SUBNET = '10.213.31.0/24';
const HEAD_IP = '10.213.31.10';
const NAME = 'cwit-secrets';
const BASE_URL = `https://${HEAD_IP}/api/v1`;
const N0_MAC = '52:54:00:7e:00:01';
const N1_MAC = '52:54:00:7e:00:02';
const n0Host = new TestHost('cwnsn0', NET, '10.213.31.100/24', N0_MAC);
const n1Host = new TestHost('cwnsn1', NET, '10.213.31.101/24', N1_MAC);
/** Any other host on the cluster network. */
const stranger = new TestHost('cwnsx', NET, '10.213.31.66/24', '52:54:00:7e:00:99');
const storage = join(tempDir('cwns'), 'cw_container_storage');
const home = tempDir('cwns-home');
const admin = new AdminSession(home, BASE_URL);
const tokens: TokenCache = new Map();
let api: ApiClient;

async function cleanup(): Promise<void> {
  await api?.close().catch(() => {});
  await sh('docker', ['rm', '-f', NAME], { reject: false });
  for (const h of [n0Host, n1Host, stranger]) await h.destroy();
  await sh('docker', ['network', 'rm', NET], { reject: false });
  admin.close();
}

const SECRET_RE = / cw\.secret=([A-Za-z0-9_-]{43}) /;

/** The iPXE script of `mac` as `host` gets it through nginx. */
async function scriptFrom(host: TestHost, mac: string): Promise<string> {
  const r = await host.exec(['curl', '-sS', '--max-time', '20', `http://${HEAD_IP}/api/v1/boot/ipxe/${mac}`]);
  return r.stdout;
}

/** A status report from `host` for `mac`, with `secret` in the header (given to curl on stdin, not argv). */
async function reportFrom(host: TestHost, mac: string, body: unknown, secret?: string): Promise<{ status: number; body: any }> {
  const config = secret === undefined ? '' : `header = "X-CW-Node-Secret: ${secret}"\n`;
  const r = await host.exec(
    ['curl', '-sS', '--max-time', '20', '-K', '-', '-w', '\n%{http_code}', '-X', 'POST', '-H', 'Content-Type: application/json', '--data', JSON.stringify(body), `http://${HEAD_IP}/api/v1/boot/status/${mac}`],
    { input: config, reject: false },
  );
  const split = r.stdout.lastIndexOf('\n');
  const text = r.stdout.slice(0, split);
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: kept as text for the assertion message
  }
  return { status: Number(r.stdout.slice(split + 1)), body: parsed };
}

interface NodeView {
  name: string;
  status: Record<string, unknown>;
  last_seen: string | null;
}

test.before(async () => {
  await cleanup();
  await startOnTestBridge({ name: NAME, net: NET, subnet: SUBNET, headIp: HEAD_IP, storage, admin });
  for (const h of [n0Host, n1Host, stranger]) await h.create();
  api = new ApiClient({ baseUrl: BASE_URL, user: 'alice', sslVerify: admin.sslVerify, env: { SSH_AUTH_SOCK: admin.agentSock }, tokens, timeoutMs: 60_000 });
  await waitFor(async () => (await health('docker', NAME).catch(() => undefined))?.status === 'healthy', 120_000, 500);
  // A bootable node: kernel and initramfs (the smallest files that pass for them) and an image with content.
  const files = { kernel: join(home, 'vmlinuz'), initramfs: join(home, 'initramfs.img'), image: join(home, 'image.img') };
  writeFileSync(files.kernel, fakeBzImage('6.1.0-test (builder@example) #1 SMP'));
  writeFileSync(files.initramfs, fakeInitramfs());
  writeFileSync(files.image, Buffer.alloc(64 * 1024, 7));
  for (const [tool, args] of [
    ['imgctl', ['create', 'name=SecretImage', `content=@${files.image}`]],
    ['bootctl', ['create', 'name=SecretBoot', `kernel=@${files.kernel}`, `initramfs=@${files.initramfs}`, 'image=SecretImage']],
    ['attribctl', ['-i', 'DefaultAttribs', 'set', '_boot_config=SecretBoot']],
  ] as const) {
    const r = await admin.tool(tool, [...args]);
    if (r.exitCode !== 0) throw new Error(`cw-${tool} ${args.join(' ')}: ${r.all}`);
  }
  await api.post('/cluster/conf', { text: `iprange 10.213.31.100/24\nnode ${N0_MAC}\nnode ${N1_MAC}\n` });
});

test.after.always(cleanup);

test.serial('a forged node report is refused through nginx and changes nothing; the node\'s own secret is accepted', async (t) => {
  const image = await api.get<{ checksum: string }>('/image/SecretImage');
  // Anyone gets a bootable script with the image checksum, but only the node itself gets a secret.
  const strangers = await scriptFrom(stranger, N0_MAC);
  t.regex(strangers, new RegExp(` cw\\.sha256=${image.checksum.replace('sha256:', '')} `), strangers);
  t.false(strangers.includes('cw.secret'), strangers);
  t.regex(strangers, /^echo cw-headnode: no node secret: .*reports will be refused$/m);
  t.deepEqual((await api.get<NodeView>('/node/n0')).status, { state: 'new' }, 'a script asked for elsewhere records nothing');

  const n0Secret = SECRET_RE.exec(await scriptFrom(n0Host, N0_MAC))?.[1] ?? '';
  const n1Secret = SECRET_RE.exec(await scriptFrom(n1Host, N1_MAC))?.[1] ?? '';
  t.regex(n0Secret, /^[A-Za-z0-9_-]{43}$/);
  t.regex(n1Secret, /^[A-Za-z0-9_-]{43}$/);
  const before = await api.get<NodeView>('/node/n0');
  t.is(before.status.state, 'booting:ipxe');

  const forged = { stage: 'error', message: 'forged: n0 is broken' };
  const none = await reportFrom(stranger, N0_MAC, forged);
  t.is(none.status, 401, JSON.stringify(none.body));
  t.regex(none.body.error, /^node secret required: send the secret of this boot in the x-cw-node-secret header/);
  const wrong = await reportFrom(stranger, N0_MAC, forged, 'A'.repeat(43));
  t.is(wrong.status, 403, JSON.stringify(wrong.body));
  t.regex(wrong.body.error, /^node secret not accepted for n0/);
  t.is((await reportFrom(stranger, N0_MAC, forged, n1Secret)).status, 403, 'another node\'s secret');
  t.is((await reportFrom(n1Host, N0_MAC, forged, n1Secret)).status, 403, 'another node\'s secret from that node');
  t.is((await reportFrom(n0Host, N0_MAC, { stage: 'up' })).status, 401, 'the node\'s address alone is not enough');
  t.deepEqual(await api.get<NodeView>('/node/n0'), before, 'n0 unchanged');

  // The node's own secret is accepted (from wherever it comes: the secret is the proof).
  const up = await reportFrom(n0Host, N0_MAC, { stage: 'up', ip: '10.213.31.100' }, n0Secret);
  t.is(up.status, 200, JSON.stringify(up.body));
  t.deepEqual(up.body, { success: true, data: { name: 'n0', state: 'up' } });
  t.is((await api.get<NodeView>('/node/n0')).status.state, 'up');
  t.is((await reportFrom(n1Host, N1_MAC, { stage: 'up' }, n1Secret)).status, 200);

  // A new boot replaces the secret: the old one stops working.
  const next = SECRET_RE.exec(await scriptFrom(n0Host, N0_MAC))?.[1] ?? '';
  t.not(next, n0Secret);
  t.is((await reportFrom(stranger, N0_MAC, { stage: 'up' }, n0Secret)).status, 403, 'the previous boot\'s secret');
  t.is((await reportFrom(n0Host, N0_MAC, { stage: 'up' }, next)).status, 200);

  // Counted for admins (not for anyone), logged with the source address, and no secret anywhere.
  const stats = await api.get<{ refused_reports: { total: number; missing: number; wrong: number; last: { source: string; mac: string } } }>('/boot/stats');
  t.like(stats.refused_reports, { total: 6, missing: 2, wrong: 4 });
  t.like(stats.refused_reports.last, { source: '10.213.31.66', mac: N0_MAC });
  const anonymous = await stranger.exec(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${HEAD_IP}/api/v1/boot/stats`]);
  t.is(anonymous.stdout, '401');
  const logs = await containerLogs('docker', NAME);
  t.regex(logs, /refused a status report for 52:54:00:7e:00:01 from 10\.213\.31\.66 without a node secret/);
  t.regex(logs, /refused a status report for 52:54:00:7e:00:01 from 10\.213\.31\.101 with a wrong node secret/);
  const listing = JSON.stringify(await api.get('/nodes')) + JSON.stringify(await api.get('/node/n0'));
  for (const secret of [n0Secret, n1Secret, next]) {
    t.false(logs.includes(secret), 'no secret in the container log');
    t.false(listing.includes(secret), 'no secret in the node listing');
  }
});
