// The anonymous boot endpoints in-process: iPXE scripts by MAC (or why not), and status reports.
import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { EtcdUnavailableError } from '../../../src/appliance/db/index.js';
import { session, type Session } from './helpers.js';

const MAC0 = '52:54:00:00:00:01';
const MAC0_EXTRA = '52:54:00:00:01:01';
const HOST = '10.0.0.1:8080';
const HEAD = `http://${HOST}`;
/** n0's assigned address: only a request from there gets a node secret. */
const N0_IP = '10.0.0.100';
const SECRET_RE = / cw\.secret=([A-Za-z0-9_-]{43}) /;

class FakeClock {
  constructor(public ms = Date.parse('2025-06-01T12:00:00Z')) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

interface Booting extends Session {
  clock: FakeClock;
  bootUid: string;
  imageUid: string;
  nodeUid: string;
  /** GET /boot/ipxe[/mac] without credentials, as iPXE asks (from `from`, default n0's address). */
  script(mac?: string, host?: string, from?: string): Promise<{ status: number; type: string; text: string }>;
  /** n0's secret of a new boot (a script asked for from its address). */
  boot(): Promise<string>;
  /** POST /boot/status/MAC with `secret` in the header (none when undefined), from `from`. */
  report(mac: string, body: unknown, secret?: string, from?: string): Promise<{ status: number; body: any }>;
}

const sha256 = (content: string): string => createHash('sha256').update(content).digest('hex');

/** Writes `content` to `file` (an object's file put there by hand, not uploaded): its size and checksum. */
async function putFile(file: string, content: string): Promise<{ size: number; checksum: string }> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return { size: Buffer.byteLength(content), checksum: `sha256:${sha256(content)}` };
}

/** Removes `file` and the blob it was linked as (content `content`): gone from the head node. */
async function dropFile(blobsDir: string, file: string, content: string): Promise<void> {
  await rm(file);
  await rm(path.join(blobsDir, sha256(content)), { force: true });
}

/** n0 (two MACs) with DefaultBoot (kernel, initramfs, DefaultImage with content) through DefaultAttribs. */
async function booting(t: Parameters<typeof session>[0], log?: (line: string) => void): Promise<Booting> {
  const clock = new FakeClock();
  const s = await session(t, { clock: clock.now, ...(log ? { log } : {}) });
  const { store } = s;
  const image = await store.create('images', { name: 'DefaultImage' });
  await store.setImageContent(image.uid, await putFile(path.join(store.paths.imagesDir, `${image.uid}.img`), 'img!'));
  const boot = await store.create('bootconfigs', { name: 'DefaultBoot', image: 'DefaultImage', cmdline: 'quiet' });
  for (const which of ['kernel', 'initramfs'] as const) {
    const put = await putFile(path.join(store.paths.bootDir, boot.uid, which), which);
    await store.attachBootFile(boot.uid, which, { filename: which, ...put, uploaded_at: new Date(clock.ms).toISOString() });
  }
  await store.update('attribs', 'DefaultAttribs', { attributes: { _boot_config: 'DefaultBoot' } });
  const node = await store.createNode({ mac: MAC0, macs: [MAC0_EXTRA], ip: '10.0.0.100' });
  return {
    ...s,
    clock,
    bootUid: boot.uid,
    imageUid: image.uid,
    nodeUid: node.uid,
    async script(mac, host = HOST, from = N0_IP) {
      const res = await s.api.inject({ method: 'GET', url: `/api/v1/boot/ipxe${mac === undefined ? '' : `/${mac}`}`, headers: { host }, remoteAddress: from });
      return { status: res.statusCode, type: String(res.headers['content-type']), text: res.body };
    },
    async boot() {
      const res = await s.api.inject({ method: 'GET', url: `/api/v1/boot/ipxe/${MAC0}`, headers: { host: HOST }, remoteAddress: N0_IP });
      const secret = SECRET_RE.exec(res.body)?.[1];
      if (!secret) throw new Error(`no secret in:\n${res.body}`);
      return secret;
    },
    async report(mac, body, secret, from = '10.0.0.66') {
      const headers: Record<string, string> = { host: HOST, ...(secret === undefined ? {} : { 'x-cw-node-secret': secret }) };
      const res = await s.api.inject({ method: 'POST', url: `/api/v1/boot/status/${mac}`, headers, payload: body as string, remoteAddress: from });
      return { status: res.statusCode, body: res.json() };
    },
  };
}

/** The lines every script ends with: DHCP again and ask the head node that answered for the script at `rest`. */
const failoverOf = (rest: string): string =>
  `:failover\necho cw-headnode: no script from ${HEAD}, asking DHCP for a head node that answers\n:failover_dhcp\ndhcp netX || goto failover_wait\n` +
  `echo cw-headnode: asking head node \${netX/next-server}\nchain --replace --autofree http://\${netX/next-server}:8080/api/v1/boot/ipxe${rest} || goto failover_wait\n` +
  ':failover_wait\necho cw-headnode: no script from any head node, asking DHCP again in 30 s\nsleep 30\ngoto failover_dhcp\n';

const retryOf = (reason: string, mac: string | null = MAC0): string => {
  const rest = mac === null ? '' : `/${mac}`;
  return `#!ipxe\necho cw-headnode: ${reason}\necho cw-headnode: asking again in 30 s\nsleep 30\nchain --replace --autofree ${HEAD}/api/v1/boot/ipxe${rest} || goto failover\n${failoverOf(rest)}`;
};

test('bootstrap: anonymous, text/plain, chains the script of the booting NIC on the host it was asked on', async (t) => {
  const b = await booting(t);
  const res = await b.script();
  t.is(res.status, 200);
  t.is(res.type, 'text/plain; charset=utf-8');
  t.is(
    res.text,
    `#!ipxe\necho cw-headnode: asking for the boot script of \${netX/mac}\nchain --replace --autofree ${HEAD}/api/v1/boot/ipxe/\${netX/mac} || goto failover\n${failoverOf('/${netX/mac}')}`,
  );
  const bad = await b.script(undefined, 'evil host');
  t.is(bad.status, 400);
  t.true(bad.text.startsWith('#!ipxe\necho cw-headnode: the request had no usable Host header'));
});

test('a known MAC gets its script (any of its MACs, any spelling) and records stage ipxe', async (t) => {
  const b = await booting(t);
  const res = await b.script('52-54-00-00-00-01');
  t.is(res.status, 200);
  t.is(res.type, 'text/plain; charset=utf-8');
  t.true(res.text.startsWith('#!ipxe\necho cw-headnode: n0 boots DefaultBoot (rwram)\n'), res.text);
  t.true(
    res.text.includes(
      `kernel --timeout 60000 ${HEAD}/blobs/${sha256('kernel')} initrd=initramfs cw.node=n0 cw.uid=${b.nodeUid} cw.mac=52:54:00:00:00:01 cw.head=${HEAD} ` +
        `cw.image=/blobs/${sha256('img!')} cw.sha256=${sha256('img!')} cw.style=rwram cw.rw=overlayfs cw.secret=`,
    ),
    res.text,
  );
  t.regex(res.text, / cw\.secret=[A-Za-z0-9_-]{43} console=tty0 console=ttyS0,115200 quiet \|\| goto failed\n/);
  t.true(res.text.includes(`initrd --name initramfs --timeout 60000 ${HEAD}/blobs/${sha256('initramfs')} || goto failed\n`));
  const node = (await b.call('GET', '/node/n0')).body.data;
  t.deepEqual(node.status, { stage: 'ipxe', state: 'booting:ipxe' });
  t.is(node.last_seen, new Date(b.clock.ms).toISOString());

  const other = await b.script(MAC0_EXTRA.toUpperCase());
  t.true(other.text.endsWith(`chain --replace --autofree ${HEAD}/api/v1/boot/ipxe/${MAC0_EXTRA} || goto failover\n${failoverOf(`/${MAC0_EXTRA}`)}`), 'retries ask with the same MAC');
});

test('unknown or malformed MACs get a retry script, never a 404 page, and nothing is recorded', async (t) => {
  const b = await booting(t);
  const unknown = await b.script('52:54:00:00:00:99');
  t.is(unknown.status, 200);
  t.is(unknown.text, retryOf('unknown MAC 52:54:00:00:00:99: add the node, e.g. cw-nodectl create mac=52:54:00:00:00:99', '52:54:00:00:00:99'));
  const junk = await b.script('not-a-mac');
  t.is(junk.status, 200);
  t.is(junk.text, retryOf('not-a-mac is not a MAC address', null));
  t.deepEqual((await b.call('GET', '/node/n0')).body.data.status, { state: 'new' });
});

test('what is missing is told to the node: boot config, its files, its image and the image file', async (t) => {
  const b = await booting(t);
  const { store } = b;
  const reasonOf = async (): Promise<string> => {
    const res = await b.script(MAC0);
    t.is(res.status, 200);
    return /^echo cw-headnode: (.*)$/m.exec(res.text)?.[1] ?? res.text;
  };

  await dropFile(store.paths.blobsDir, path.join(store.paths.imagesDir, `${b.imageUid}.img`), 'img!');
  t.is(await reasonOf(), 'n0: the file of image DefaultImage is missing on the head node (upload it again)');
  const status = (await b.call('GET', '/node/n0')).body.data.status;
  t.is(status.stage, 'ipxe');
  t.is(status.message, 'n0: the file of image DefaultImage is missing on the head node (upload it again)', 'the reason is in the node status too');

  await dropFile(store.paths.blobsDir, path.join(store.paths.bootDir, b.bootUid, 'kernel'), 'kernel');
  t.is(await reasonOf(), 'n0: the kernel file of boot config DefaultBoot is missing on the head node (upload it again)');

  await store.create('bootconfigs', { name: 'Empty' });
  await store.updateNode('n0', { attributes: { _boot_config: 'Empty' } });
  t.is(await reasonOf(), 'n0: boot config Empty has no kernel (cw-bootctl -i Empty update kernel=@FILE)');

  await store.update('attribs', 'DefaultAttribs', { attributes: { _boot_config: null } });
  await store.updateNode('n0', { attributes: { _boot_config: null } });
  t.is(await reasonOf(), 'n0 has no boot config: set one, e.g. cw-nodectl -i n0 set _boot_config=DefaultBoot');

  await store.updateNode('n0', { attributes: { _boot_config: 'Gone' } });
  t.is(await reasonOf(), 'n0: boot config Gone does not exist');

  const noImage = await store.create('bootconfigs', { name: 'NoImage' });
  for (const which of ['kernel', 'initramfs'] as const) {
    const put = await putFile(path.join(store.paths.bootDir, noImage.uid, which), which);
    await store.attachBootFile(noImage.uid, which, { filename: which, ...put, uploaded_at: new Date().toISOString() });
  }
  await store.updateNode('n0', { attributes: { _boot_config: 'NoImage' } });
  t.is(await reasonOf(), 'n0: boot config NoImage has no image (cw-bootctl -i NoImage update image=NAME)');
  await store.create('images', { name: 'Blank' });
  await store.update('bootconfigs', 'NoImage', { image: 'Blank' });
  t.is(await reasonOf(), 'n0: image Blank has no content yet (upload it, e.g. cw-modimg -i Blank --upload)');

  await store.updateNode('n0', { attributes: { _boot_config: 'DefaultBoot', _boot_style: 'iscsi' } });
  await writeFile(path.join(store.paths.bootDir, b.bootUid, 'kernel'), 'kernel');
  await writeFile(path.join(store.paths.imagesDir, `${b.imageUid}.img`), 'img!');
  t.is(await reasonOf(), 'n0: boot style iscsi is not yet supported');
  await store.updateNode('n0', { attributes: { _boot_style: 'roram' } });
  t.regex((await b.script(MAC0)).text, / cw\.style=roram cw\.rw=overlayfs /);
});

test('status reports: validated, stored with last_seen, shown as state; unknown MAC 404 and nothing changes', async (t) => {
  const b = await booting(t);
  const up = { stage: 'up', ip: '10.0.0.100', kernel: '6.1.0-18-cloud-amd64', uptime: 12.5, load: [0.1, 0.05, 0], ram_free: 1_000_000, ram_total: 4_000_000, extra: 'ignored' };
  const secret = await b.boot();
  const res = await b.report(MAC0, up, secret);
  t.is(res.status, 200);
  t.deepEqual(res.body, { success: true, data: { name: 'n0', state: 'up' } });
  let node = (await b.call('GET', '/node/n0')).body.data;
  const { extra: _extra, ...stored } = up;
  t.deepEqual(node.status, { ...stored, state: 'up' });
  t.is(node.last_seen, new Date(b.clock.ms).toISOString());

  // Another MAC of the same node, in any spelling.
  t.is((await b.report(MAC0_EXTRA.replaceAll(':', '-').toUpperCase(), { stage: 'up', load: 0.5 }, secret)).status, 200);

  b.clock.advance(30_000);
  t.is((await b.call('GET', '/node/n0')).body.data.status.state, 'up', 'three intervals: still up');
  b.clock.advance(1);
  t.is((await b.call('GET', '/nodes')).body.data[0].status.state, 'down');

  const before = (await b.call('GET', '/node/n0')).body.data;
  const unknown = await b.report('52:54:00:00:00:99', { stage: 'up' }, secret);
  t.is(unknown.status, 404);
  t.deepEqual(unknown.body, { success: false, error: 'no such node: 52:54:00:00:00:99' });

  const bad: Array<[unknown, RegExp]> = [
    [{}, /stage/],
    [{ stage: 'running' }, /stage must be one of/],
    [{ stage: 'up', ip: '10.0.0.300' }, /^ip: must be a dotted IPv4 address/],
    [{ stage: 'up', ip: 5 }, /ip must be a string/],
    [{ stage: 'up', kernel: '6.1; rm -rf /' }, /^kernel: must be a kernel release/],
    [{ stage: 'up', uptime: '12' }, /uptime must be a number/],
    [{ stage: 'up', uptime: -1 }, /uptime must be >= 0/],
    [{ stage: 'up', ram_free: 1.5 }, /ram_free must be an integer/],
    [{ stage: 'up', load: [1, 2, 3, 4] }, /load/],
    [{ stage: 'error', message: 'bad\nline' }, /^message: must be printable/],
    [{ stage: 'error', message: 'x'.repeat(301) }, /message/],
    [['up'], /body must be an object/],
  ];
  for (const [body, message] of bad) {
    const r = await b.report(MAC0, body, secret);
    t.is(r.status, 400, JSON.stringify(body));
    t.regex(r.body.error, message, JSON.stringify(body));
  }
  t.is((await b.report('zz:zz', { stage: 'up' }, secret)).status, 400);
  t.deepEqual((await b.call('GET', '/node/n0')).body.data, before, 'nothing changed');

  // Boot stages and errors.
  t.is((await b.report(MAC0, { stage: 'initramfs', ip: '10.0.0.100' }, secret)).body.data.state, 'booting:initramfs');
  t.is((await b.report(MAC0, { stage: 'error', message: 'roram with rwtab is not yet supported' }, secret)).body.data.state, 'error');
});

test('the boot routes need no credentials; the rest of the API still does', async (t) => {
  const b = await booting(t);
  t.is((await b.api.inject({ method: 'GET', url: '/api/v1/nodes' })).statusCode, 401);
  t.is((await b.api.inject({ method: 'GET', url: `/api/v1/boot/ipxe/${MAC0}` })).statusCode, 200);
  const doc = (await b.api.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
  for (const [p, m] of [['/boot/ipxe', 'get'], ['/boot/ipxe/{mac}', 'get'], ['/boot/status/{mac}', 'post'], ['/boot/secret/{mac}', 'post']] as const) {
    t.deepEqual(doc.paths[p]?.[m]?.security, [], `${m} ${p} is anonymous in the OpenAPI document`);
  }
});

test('a node secret only in a script asked for from the node\'s own address, new for every boot', async (t) => {
  const b = await booting(t);
  const elsewhere = await b.script(MAC0, HOST, '10.0.0.66');
  t.true(elsewhere.text.includes(' cw.sha256='), 'the image checksum is there for anyone');
  t.false(elsewhere.text.includes('cw.secret'), elsewhere.text);
  t.regex(elsewhere.text, /^echo cw-headnode: no node secret: this script was not asked for from the address of n0, so its reports will be refused$/m);
  t.deepEqual((await b.call('GET', '/node/n0')).body.data.status, { state: 'new' }, 'a script asked for elsewhere records nothing');

  const first = await b.boot();
  const second = await b.boot();
  t.not(first, second);
  t.is((await b.report(MAC0, { stage: 'up' }, first)).status, 403, 'the previous boot\'s secret is no longer valid');
  t.is((await b.report(MAC0, { stage: 'up' }, second)).status, 200);
  t.is((await b.script(MAC0, HOST, '10.0.0.66')).status, 200);
  t.is((await b.report(MAC0, { stage: 'up' }, second)).status, 200, 'a script asked for elsewhere does not replace the secret');

  // The stored form is the hash: nothing the API shows carries the secret.
  t.is(await b.store.nodeSecretHash('n0'), createHash('sha256').update(second).digest('hex'));
  for (const path of ['/nodes', '/node/n0', '/node/52:54:00:00:00:01']) {
    const text = JSON.stringify((await b.call('GET', path)).body);
    t.false(text.includes(second) || text.includes(createHash('sha256').update(second).digest('hex')), path);
  }

  // A node without an assigned address never gets one.
  await b.store.updateNode('n0', { ip: null });
  t.false((await b.script(MAC0, HOST, N0_IP)).text.includes('cw.secret'));
});

test('reports without the node secret are refused with 401/403, counted and logged, and change nothing', async (t) => {
  const lines: string[] = [];
  const b = await booting(t, (line) => lines.push(line));
  const n1 = await b.store.createNode({ mac: '52:54:00:00:00:02', ip: '10.0.0.101' });
  const n1Script = await b.api.inject({ method: 'GET', url: '/api/v1/boot/ipxe/52:54:00:00:00:02', headers: { host: HOST }, remoteAddress: '10.0.0.101' });
  const n1Secret = SECRET_RE.exec(n1Script.body)?.[1] ?? '';
  t.not(n1Secret, '');
  const secret = await b.boot();
  t.is((await b.report(MAC0, { stage: 'up' }, secret)).status, 200);
  const before = (await b.call('GET', '/node/n0')).body.data;

  const missing = await b.report(MAC0, { stage: 'error', message: 'forged' });
  t.is(missing.status, 401);
  t.deepEqual(missing.body, { success: false, error: 'node secret required: send the secret of this boot in the x-cw-node-secret header (docs/BOOT.md, "Node secrets")' });
  const wrong = await b.report(MAC0, { stage: 'error' }, 'A'.repeat(43));
  t.is(wrong.status, 403);
  t.deepEqual(wrong.body, { success: false, error: 'node secret not accepted for n0: not the secret of its current boot (reboot the node to get a new one)' });
  t.is((await b.report(MAC0, { stage: 'error' }, n1Secret)).status, 403, 'another node\'s secret');
  t.is((await b.report(MAC0, { stage: 'error' }, '')).status, 401);
  t.is((await b.report(MAC0, 'not json at all', 'x')).status, 403, 'refused before the body is looked at');
  t.is((await b.report(MAC0, { stage: 'up' }, `${secret}x`)).status, 403);
  const trade = await b.api.inject({ method: 'POST', url: `/api/v1/boot/secret/${MAC0}`, headers: { host: HOST, 'x-cw-node-secret': n1Secret } });
  t.is(trade.statusCode, 403, 'no new secret for a wrong one');
  t.deepEqual((await b.call('GET', '/node/n0')).body.data, before, 'nothing changed');
  t.is((await b.report('52:54:00:00:00:02', { stage: 'up' }, n1Secret)).status, 200);

  const stats = (await b.call('GET', '/boot/stats')).body.data.refused_reports;
  t.like(stats, { total: 7, missing: 2, wrong: 5 });
  t.like(stats.last, { source: '127.0.0.1', mac: MAC0, reason: 'wrong' });
  t.is((await b.api.inject({ method: 'GET', url: '/api/v1/boot/stats' })).statusCode, 401, 'admins only');
  const refusedLines = lines.filter((l) => l.startsWith('refused a status report') && l.includes('from 10.0.0.66'));
  t.deepEqual(refusedLines, ['refused a status report for 52:54:00:00:00:01 from 10.0.0.66 without a node secret'], 'one line per source and minute');
  t.false(lines.some((l) => l.includes(secret) || l.includes(n1Secret)), 'no secret in the log');
  t.false(lines.some((l) => l.startsWith('POST /api/v1/boot/')), 'refusals are not logged a second time by the request log');
  b.clock.advance(60_000);
  await b.report(MAC0, { stage: 'up' });
  t.is(lines.filter((l) => l.startsWith('refused a status report')).at(-1), 'refused a status report for 52:54:00:00:00:01 from 10.0.0.66 without a node secret (and 5 more from 10.0.0.66 since the last line)');
});

test('the boot secret of the command line is traded once for the one the node keeps', async (t) => {
  const b = await booting(t);
  const boot = await b.boot();
  const trade = async (secret: string) => b.api.inject({ method: 'POST', url: `/api/v1/boot/secret/${MAC0}`, headers: { host: HOST, 'x-cw-node-secret': secret } });
  const res = await trade(boot);
  t.is(res.statusCode, 200);
  t.is(res.headers['cache-control'], 'no-store');
  const kept = res.json().data.secret as string;
  t.regex(kept, /^[A-Za-z0-9_-]{43}$/);
  t.not(kept, boot);
  t.is((await trade(boot)).statusCode, 403, 'the command line\'s secret works once');
  t.is((await b.report(MAC0, { stage: 'up' }, boot)).status, 403);
  t.is((await b.report(MAC0, { stage: 'up' }, kept)).status, 200);
});

test('a head whose database takes no changes (etcd out of reach) still boots its nodes: the script without a secret, reports and trades refused with the reason', async (t) => {
  const lines: string[] = [];
  const b = await booting(t, (line) => lines.push(line));
  const secret = await b.boot();
  // What the etcd store answers on a head cut off from the others: reads from its copy, writes refused.
  const refusal = 'etcd unavailable (endpoints https://127.0.0.1:2379): no answer within 1000 ms; this head takes no changes until etcd answers again (it serves reads from the copy it has)';
  b.store.setNodeSecretHash = () => Promise.reject(new EtcdUnavailableError(refusal));
  let statusWrites = 0;
  b.store.setNodeStatus = () => {
    statusWrites++;
    return Promise.reject(new EtcdUnavailableError(refusal));
  };

  const script = await b.script(MAC0);
  t.is(script.status, 200);
  t.regex(script.text, /^kernel --timeout 60000 http:\/\/10\.0\.0\.1:8080\/blobs\/[0-9a-f]{64} initrd=initramfs cw\.node=n0 /m);
  t.false(script.text.includes('cw.secret'), script.text);
  t.regex(script.text, /^echo cw-headnode: no node secret: the head node could not store one \(its database takes no changes now\), so its reports will be refused$/m);
  t.true(lines.some((l) => l === `node secret of n0 not stored, script sent without one: ${refusal}`), lines.join('\n'));
  t.is(statusWrites, 0, 'no second wait for the same refusal: the boot stage is not tried');

  // The node keeps the secret it had: its reports and its trade are answered at once with the reason.
  const report = await b.report(MAC0, { stage: 'up' }, secret);
  t.is(report.status, 503);
  t.deepEqual(report.body, { success: false, error: refusal });
  const trade = await b.api.inject({ method: 'POST', url: `/api/v1/boot/secret/${MAC0}`, headers: { host: HOST, 'x-cw-node-secret': secret } });
  t.is(trade.statusCode, 503);
  t.is(trade.json().error, refusal);
});
