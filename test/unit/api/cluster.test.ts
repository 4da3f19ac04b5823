import test from 'ava';
import { session, type Session } from './helpers.js';

// The example of seed 000: one iprange, two MACs.
const SEED = `iprange 192.168.122.100/24
node 52:54:00:00:00:01
node 52:54:00:00:00:02
`;

const summary = async (s: Session) =>
  (await s.call('GET', '/nodes')).body.data.map((n: { name: string; mac: string | null; ip: string | null }) => `${n.name} ${n.mac} ${n.ip}`);

test('cluster.conf of the seed gives n0 and n1 at .100 and .101, and a net', async (t) => {
  const s = await session(t);
  const res = await s.call('POST', '/cluster/conf', { text: SEED });
  t.is(res.status, 200, JSON.stringify(res.body));
  t.deepEqual(res.body.data.created, [
    { name: 'n0', mac: '52:54:00:00:00:01', ip: '192.168.122.100' },
    { name: 'n1', mac: '52:54:00:00:00:02', ip: '192.168.122.101' },
  ]);
  t.deepEqual(res.body.data.updated, []);
  t.false(res.body.data.dryRun);
  t.is(res.body.data.nets.length, 1);
  t.like(res.body.data.nets[0], { name: 'net0', first: '192.168.122.100', last: '192.168.122.254', prefix: 24, netmask: '255.255.255.0' });
  t.deepEqual(await summary(s), ['n0 52:54:00:00:00:01 192.168.122.100', 'n1 52:54:00:00:00:02 192.168.122.101']);
  t.deepEqual((await s.call('GET', '/nets')).body.data.map((n: { name: string }) => n.name), ['net0']);
});

test('loading the same file again changes nothing; GET /cluster/conf gives it back', async (t) => {
  const s = await session(t);
  await s.call('POST', '/cluster/conf', { text: SEED });
  const again = await s.call('POST', '/cluster/conf', { text: SEED });
  t.is(again.status, 200);
  t.deepEqual(again.body.data.created, []);
  t.deepEqual(again.body.data.updated, []);
  t.is(again.body.data.unchanged, 2);
  t.is((await s.call('GET', '/nets')).body.data.length, 1);
  const saved = await s.call('GET', '/cluster/conf');
  t.is(saved.body.data.text, 'iprange 192.168.122.100/24 192.168.122.254\nnode 52:54:00:00:00:01\nnode 52:54:00:00:00:02\n');
  const reloaded = await s.call('POST', '/cluster/conf', { text: saved.body.data.text });
  t.is(reloaded.body.data.unchanged, 2);
});

test('a dry run reports what would change and changes nothing', async (t) => {
  const s = await session(t);
  const dry = await s.call('POST', '/cluster/conf', { text: SEED, dryRun: true });
  t.is(dry.status, 200);
  t.true(dry.body.data.dryRun);
  t.is(dry.body.data.created.length, 2);
  t.deepEqual((await s.call('GET', '/nodes')).body.data, []);
  t.deepEqual((await s.call('GET', '/nets')).body.data, []);
  // A dry run that would fail fails the same way, and still writes nothing.
  await s.call('POST', '/nodes', { mac: '52:54:00:00:00:02' });
  const conflict = await s.call('POST', '/cluster/conf', { text: SEED, dryRun: true });
  t.is(conflict.status, 409);
  t.deepEqual(await summary(s), ['n0 52:54:00:00:00:02 null']);
});

test('MACs and IPs held by other nodes are refused, all of them, and nothing is written', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', [{ index: 5, mac: '52:54:00:00:00:02' }, { index: 6, ip: '192.168.122.100' }]);
  const res = await s.call('POST', '/cluster/conf', { text: SEED });
  t.is(res.status, 409);
  t.is(
    res.body.error,
    'cluster.conf conflicts with existing nodes: IP 192.168.122.100 belongs to n6, the file gives it to n0; ' +
      'MAC 52:54:00:00:00:02 belongs to n5, the file gives it to n1',
  );
  t.deepEqual(await summary(s), ['n5 52:54:00:00:00:02 null', 'n6 null 192.168.122.100']);
  t.deepEqual((await s.call('GET', '/nets')).body.data, []);
});

test('ipranges of one subnet make one net spanning them; an existing net of the subnet is adjusted', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nets', { name: 'lab', first: '10.6.0.50', prefix: 24, last: '10.6.0.60', gateway: '10.6.0.1' });
  const res = await s.call('POST', '/cluster/conf', { text: 'iprange 10.6.0.100/24 10.6.0.101\nnodes 2\niprange 10.6.0.200/24 10.6.0.210\nnodes 1\n' });
  t.is(res.status, 200, JSON.stringify(res.body));
  t.deepEqual(res.body.data.nets.map((n: { name: string; first: string; last: string }) => `${n.name} ${n.first}-${n.last}`), ['lab 10.6.0.100-10.6.0.210']);
  t.like((await s.call('GET', '/net/lab')).body.data, { gateway: '10.6.0.1' });
  t.deepEqual(await summary(s), ['n0 null 10.6.0.100', 'n1 null 10.6.0.101', 'n2 null 10.6.0.200']);
});

test('an existing node of the same index gets the file\'s MAC and IP; placeholders keep MACs', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', [{ mac: '52:54:00:00:00:aa', attributes: { keep: 'me' } }, {}]);
  const res = await s.call('POST', '/cluster/conf', { text: 'iprange 10.5.0.10/24\nnodes 1\nnode 52:54:00:00:00:bb\n' });
  t.is(res.status, 200);
  t.deepEqual(res.body.data.updated, [
    { name: 'n0', mac: '52:54:00:00:00:aa', ip: '10.5.0.10' },
    { name: 'n1', mac: '52:54:00:00:00:bb', ip: '10.5.0.11' },
  ]);
  t.deepEqual(await summary(s), ['n0 52:54:00:00:00:aa 10.5.0.10', 'n1 52:54:00:00:00:bb 10.5.0.11']);
  t.deepEqual((await s.call('GET', '/node/n0')).body.data.attributes, { keep: 'me' });
});

test('a bad cluster.conf is 400 naming every bad line, and nothing is written', async (t) => {
  const s = await session(t);
  const text = 'iprange 192.168.122.100/24\nnode 52:54:00:zz:00:01\nnode 52:54:00:00:00:02\nnode 52:54:00:00:00:02\nfrobnicate\n';
  const res = await s.call('POST', '/cluster/conf', { text });
  t.is(res.status, 400);
  t.is(
    res.body.error,
    'cluster.conf:2: invalid MAC "52:54:00:zz:00:01": expected six hex pairs like 52:54:00:00:00:01; ' +
      'cluster.conf:4: duplicate MAC 52:54:00:00:00:02 (first on line 3); ' +
      'cluster.conf:5: unknown keyword "frobnicate" (expected iprange, nodes or node)',
  );
  const named = await s.call('POST', '/cluster/conf', { text: 'node 52:54:00:00:00:01\n', fileName: 'rack1.conf' });
  t.regex(named.body.error, /^rack1\.conf:1: node before any iprange/);
  const small = await s.call('POST', '/cluster/conf', { text: 'iprange 10.0.0.253/24\nnodes 5\n' });
  t.is(small.status, 400);
  t.regex(small.body.error, /holds 2 addresses, 5 nodes need addresses/);
  const binary = await s.call('POST', '/cluster/conf', { text: 'iprange 10.0.0.1/24\n\u0000\u0001' });
  t.is(binary.status, 400);
  t.regex(binary.body.error, /binary content/);
  const huge = await s.call('POST', '/cluster/conf', { text: `# ${'x'.repeat(5 * 1024 * 1024)}\n` });
  t.is(huge.status, 400);
  t.regex(huge.body.error, /larger than the 4 MiB limit/);
  t.is((await s.call('POST', '/cluster/conf', { text: SEED, dryrun: true })).status, 400, 'unknown field');
  t.deepEqual((await s.call('GET', '/nodes')).body.data, []);
});

test('a 10,000-node cluster.conf is applied in one transaction', async (t) => {
  const s = await session(t);
  const lines = ['iprange 10.8.0.1/16'];
  for (let i = 0; i < 10_000; i++) lines.push(`node 52:54:02:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  const text = `${lines.join('\n')}\n`;
  const dryStart = performance.now();
  const dry = await s.call('POST', '/cluster/conf', { text, dryRun: true });
  t.log(`cluster.conf of 10,000 nodes, dry run: ${(performance.now() - dryStart).toFixed(0)} ms`);
  t.is(dry.body.data.created.length, 10_000);
  t.deepEqual((await s.call('GET', '/nodes')).body.data, []);
  const start = performance.now();
  const res = await s.call('POST', '/cluster/conf', { text });
  t.log(`cluster.conf of 10,000 nodes: ${(performance.now() - start).toFixed(0)} ms`);
  t.is(res.status, 200);
  t.is(res.body.data.created.length, 10_000);
  const last = (await s.call('GET', '/node/n9999')).body.data;
  t.is(last.ip, '10.8.39.16');
  // One MAC taken by a node outside the file: the whole file is refused, the 10,000 stay as they were.
  await s.call('POST', '/nodes', { index: 20_000, mac: '52:54:02:00:ff:ff' });
  const more = `${text}node 52:54:02:00:ff:ff\n`;
  t.is((await s.call('POST', '/cluster/conf', { text: more })).status, 409);
  t.is((await s.call('GET', '/nodes')).body.data.length, 10_001);
});

test('cluster settings: the cluster id is write-only, the default distro a distro name', async (t) => {
  const s = await session(t);
  t.deepEqual((await s.call('GET', '/cluster')).body.data, { cluster_id: { set: false }, default_distro: null, domain: 'cluster.internal', diskful_register: null, backup_interval: '24h', backup_keep: 7 });
  await s.call('POST', '/repos', { name: 'base', urls: ['http://x/'] });
  await s.call('POST', '/distros', { name: 'CentOS', release: '7', repos: ['base'] });
  const res = await s.call('PATCH', '/cluster', { cluster_id: 'abcDEF0123456789', default_distro: 'CentOS' });
  t.is(res.status, 200);
  t.deepEqual(res.body.data, { cluster_id: { set: true }, default_distro: 'CentOS', domain: 'cluster.internal', diskful_register: null, backup_interval: '24h', backup_keep: 7 });
  t.is(await s.store.getSetting('cluster_id'), 'abcDEF0123456789');
  t.is((await s.call('PATCH', '/cluster', { cluster_id: 'bad id;' })).status, 400);
  t.is((await s.call('PATCH', '/cluster', { default_distro: 'Nope' })).status, 400);
  t.is((await s.call('PATCH', '/cluster', { nodes: 1 })).status, 400);
  // The default follows a rename and cannot be deleted.
  await s.call('PATCH', '/distro/CentOS', { name: 'CentOS7' });
  t.is((await s.call('GET', '/cluster')).body.data.default_distro, 'CentOS7');
  const del = await s.call('DELETE', '/distro/CentOS7');
  t.is(del.status, 409);
  t.is(del.body.error, 'distro CentOS7 is the default distro; choose another default first');
  await s.call('PATCH', '/cluster', { default_distro: null });
  t.is((await s.call('DELETE', '/distro/CentOS7')).status, 200);
});

test('the domain is a cluster setting: validated, null restores the default, and a change is a DHCP change', async (t) => {
  const s = await session(t);
  let changes = 0;
  s.store.onCommit((c) => {
    if (c.dhcp) changes += 1;
  });
  const set = await s.call('PATCH', '/cluster', { domain: 'hpc.example.org' });
  t.is(set.status, 200);
  t.is(set.body.data.domain, 'hpc.example.org');
  t.is(await s.store.getSetting('domain'), 'hpc.example.org');
  t.is(changes, 1);
  // The same value again changes nothing.
  t.is((await s.call('PATCH', '/cluster', { domain: 'hpc.example.org' })).status, 200);
  t.is(changes, 1);
  for (const bad of ['Upper.case', 'a..b', '-x.org', 'x.org.', 'semi;colon', 'x.123', 'with space', `${'a'.repeat(64)}.org`, '']) {
    const r = await s.call('PATCH', '/cluster', { domain: bad });
    t.is(r.status, 400, bad);
    t.regex(r.body.error, /invalid domain|must NOT have fewer/, bad);
  }
  t.is(await s.store.getSetting('domain'), 'hpc.example.org');
  const reset = await s.call('PATCH', '/cluster', { domain: null });
  t.is(reset.body.data.domain, 'cluster.internal');
  t.is(await s.store.getSetting('domain'), undefined);
  t.is(changes, 2);
});

test('heads and admins', async (t) => {
  const s = await session(t, { headName: 'head1', version: '9.9.9' });
  t.deepEqual((await s.call('GET', '/heads')).body.data, [{ name: 'head1', version: '9.9.9', backend: 'sqlite', healthy: true, leader: true }]);
  const admins = (await s.call('GET', '/admins')).body.data;
  t.is(admins.length, 1);
  t.deepEqual(Object.keys(admins[0]).sort(), ['addedAt', 'comment', 'fingerprint', 'keyType', 'name']);
  t.like(admins[0], { name: 'tester', keyType: 'ssh-ed25519', comment: 'tester@test' });
  t.is((await s.call('GET', '/admin/tester')).body.data.name, 'tester');
  t.is((await s.call('GET', '/admin/nobody')).status, 404);
});

test('GET /openapi.json documents every route from the schemas that validate them', async (t) => {
  const s = await session(t);
  const res = await s.api.inject('/api/v1/openapi.json');
  t.is(res.statusCode, 200);
  const doc = res.json();
  t.is(doc.openapi, '3.1.0');
  t.deepEqual(doc.servers, [{ url: '/api/v1' }]);
  for (const path of ['/nodes', '/node/{id}', '/node/{id}/attributes', '/attribs', '/attrib/{id}', '/nets', '/net/{id}', '/bootconfigs',
    '/bootconfig/{id}', '/bootconfig/{id}/kernel', '/bootconfig/{id}/initramfs', '/images', '/image/{id}', '/distros', '/distro/{id}',
    '/repos', '/repo/{id}', '/admins', '/admin/{name}', '/cluster', '/cluster/conf', '/heads', '/auth/challenge', '/auth/token',
    '/health', '/version', '/openapi.json']) {
    t.truthy(doc.paths[path], path);
  }
  const post = doc.paths['/nodes'].post;
  const nodeBody = post.requestBody.content['application/json'].schema.else;
  t.false(nodeBody.additionalProperties);
  t.truthy(nodeBody.properties.mac);
  t.falsy(nodeBody.properties.name, 'read-only fields are not in write bodies');
  t.truthy(post.responses['201']);
  t.deepEqual(doc.paths['/node/{id}'].get.parameters[0], {
    name: 'id',
    in: 'path',
    required: true,
    description: 'uid or name (nodes: also MAC or IP)',
    schema: { type: 'string', minLength: 1, maxLength: 128, description: 'uid or name (nodes: also MAC or IP)' },
  });
  t.deepEqual(doc.paths['/auth/token'].post.security, [], 'anonymous routes say so');
  t.is(doc.paths['/nodes'].get.security, undefined, 'others use the global bearer/basic requirement');
  t.truthy(doc.paths['/bootconfig/{id}/kernel'].put.requestBody.content['application/octet-stream']);
  t.deepEqual(doc.paths['/bootconfig/{id}'].patch.requestBody.content['application/json'].schema.properties.boot_style.enum, [
    'rwram', 'roram', 'iscsi', 'disked', 'live', 'next', 'sanboot',
  ]);
});

test('the backup schedule is a cluster setting: validated, null restores the default, a change is announced', async (t) => {
  let pokes = 0;
  const s = await session(t, { onBackupSettings: () => pokes++ });
  const set = await s.call('PATCH', '/cluster', { backup_interval: '12h', backup_keep: 14 });
  t.is(set.status, 200);
  t.like(set.body.data, { backup_interval: '12h', backup_keep: 14 });
  t.is(await s.store.getSetting('backup_interval'), '43200');
  t.is(pokes, 1);
  t.like((await s.call('PATCH', '/cluster', { backup_interval: 'off' })).body.data, { backup_interval: 'off' });
  const bad = await s.call('PATCH', '/cluster', { backup_interval: '5s' });
  t.is(bad.status, 400);
  t.regex(bad.body.error, /^backup_interval: backup interval must be between 1m and 366d/);
  t.is((await s.call('PATCH', '/cluster', { backup_keep: 0 })).status, 400);
  await s.call('PATCH', '/cluster', { backup_interval: null, backup_keep: null });
  t.like((await s.call('GET', '/cluster')).body.data, { backup_interval: '24h', backup_keep: 7 });
  t.is(pokes, 3);
  // Other settings do not disturb the schedule.
  await s.call('PATCH', '/cluster', { domain: 'hpc.example.org' });
  t.is(pokes, 3);
});
