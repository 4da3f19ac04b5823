import test from 'ava';
import { session, type Session } from './helpers.js';

const MAC1 = '52:54:00:00:00:01';
const MAC2 = '52:54:00:00:00:02';

async function nodeCount(s: Session): Promise<number> {
  return (await s.call('GET', '/nodes')).body.data.length;
}

test('create a node, then address it by uid, name, MAC (any spelling) and IP', async (t) => {
  const s = await session(t);
  const created = await s.call('POST', '/nodes', { mac: '52-54-00-AB-CD-EF', ip: '10.0.0.5', attributes: { rack: 'r1' } });
  t.is(created.status, 201);
  const node = created.body.data;
  t.like(node, {
    name: 'n0',
    index: 0,
    mac: '52:54:00:ab:cd:ef',
    macs: [],
    ip: '10.0.0.5',
    type: 'compute',
    groups: [],
    attributes: { rack: 'r1' },
    power_uri: null,
    status: { state: 'new' },
    last_seen: null,
  });
  t.regex(node.uid, /^[0-9a-f]{32}$/);
  for (const id of [node.uid, node.uid.toUpperCase(), 'n0', '52:54:00:ab:cd:ef', '52-54-00-AB-CD-EF', '52:54:00:AB:CD:EF', '10.0.0.5']) {
    const res = await s.call('GET', `/node/${encodeURIComponent(id)}`);
    t.is(res.status, 200, id);
    t.is(res.body.data.uid, node.uid, id);
  }
  for (const id of ['n1', 'n00', '52:54:00:00:00:09', '10.0.0.6', '0'.repeat(32), 'nope']) {
    const res = await s.call('GET', `/node/${encodeURIComponent(id)}`);
    t.is(res.status, 404, id);
    t.deepEqual(res.body, { success: false, error: `no such node: ${id}` });
  }
});

test('indexes: the next free one by default, or chosen; a taken one is 409', async (t) => {
  const s = await session(t);
  t.is((await s.call('POST', '/nodes', {})).body.data.name, 'n0');
  t.is((await s.call('POST', '/nodes', { index: 10 })).body.data.name, 'n10');
  t.is((await s.call('POST', '/nodes', {})).body.data.name, 'n11');
  const taken = await s.call('POST', '/nodes', { index: 10 });
  t.is(taken.status, 409);
  t.is(taken.body.error, 'index: node n10 already exists');
  const renamed = await s.call('PATCH', '/node/n0', { index: 3 });
  t.is(renamed.body.data.name, 'n3');
  t.is((await s.call('GET', '/node/n0')).status, 404);
  t.deepEqual((await s.call('GET', '/nodes')).body.data.map((n: { name: string }) => n.name), ['n3', 'n10', 'n11']);
});

test('PUT replaces the writable fields, PATCH merges attributes and null deletes a key', async (t) => {
  const s = await session(t);
  await s.call('POST', '/attribs', { name: 'gpu' });
  await s.call('POST', '/nodes', { mac: MAC1, ip: '10.0.0.1', attributes: { a: '1', b: '2' }, groups: ['gpu'], power_uri: 'ipmi:///admin:pw@10.1.0.1' });
  const patched = await s.call('PATCH', '/node/n0', { attributes: { b: null, c: '3' }, power_uri: null });
  t.is(patched.status, 200);
  t.deepEqual(patched.body.data.attributes, { a: '1', c: '3' });
  t.is(patched.body.data.power_uri, null);
  t.deepEqual(patched.body.data.groups, ['gpu']);
  t.is(patched.body.data.mac, MAC1);

  const replaced = await s.call('PUT', '/node/n0', { mac: MAC2, attributes: { z: '9' } });
  t.is(replaced.status, 200);
  t.like(replaced.body.data, { name: 'n0', mac: MAC2, ip: null, groups: [], attributes: { z: '9' }, power_uri: null });
  t.is((await s.call('GET', `/node/${MAC1}`)).status, 404, 'the old MAC is free again');
  t.is((await s.call('POST', '/nodes', { mac: MAC1 })).status, 201);
});

test('DELETE removes a node and answers it; a second delete is 404', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', { mac: MAC1, macs: [MAC2] });
  const removed = await s.call('DELETE', `/node/${MAC2}`);
  t.is(removed.status, 200);
  t.is(removed.body.data.name, 'n0');
  t.is((await s.call('DELETE', '/node/n0')).status, 404);
  t.is((await s.call('POST', '/nodes', { mac: MAC2 })).status, 201, 'its MACs are free again');
});

test('a MAC or IP can belong to one node only: 409 naming the holder, nothing written', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', { mac: MAC1, macs: ['52:54:00:00:00:0a'], ip: '10.0.0.1' });
  const cases: Array<[unknown, string]> = [
    [{ mac: MAC1 }, `mac: ${MAC1} already belongs to node n0`],
    [{ mac: '52-54-00-00-00-0A' }, 'mac: 52:54:00:00:00:0a already belongs to node n0'],
    [{ mac: MAC2, macs: [MAC1] }, `macs: ${MAC1} already belongs to node n0`],
    [{ ip: '10.0.0.1' }, 'ip: 10.0.0.1 already belongs to node n0'],
  ];
  for (const [body, error] of cases) {
    const res = await s.call('POST', '/nodes', body);
    t.is(res.status, 409, JSON.stringify(body));
    t.is(res.body.error, error);
  }
  await s.call('POST', '/nodes', { mac: MAC2 });
  const moved = await s.call('PATCH', '/node/n1', { ip: '10.0.0.1' });
  t.is(moved.status, 409);
  t.is(await nodeCount(s), 2);
  t.is((await s.call('GET', '/node/n1')).body.data.ip, null);
});

test('a bulk create is one transaction: one bad entry and none is written', async (t) => {
  const s = await session(t);
  const list = Array.from({ length: 50 }, (_, i) => ({ mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}` }));
  const bad = await s.call('POST', '/nodes', [...list, { mac: '52:54:00:00:01:zz' }]);
  t.is(bad.status, 400);
  t.is(bad.body.error, '[50] mac: invalid MAC "52:54:00:00:01:zz": expected six hex pairs like 52:54:00:00:00:01');
  const dup = await s.call('POST', '/nodes', [...list, { mac: '52:54:00:00:01:05' }]);
  t.is(dup.status, 400);
  t.is(dup.body.error, '[50] mac: 52:54:00:00:01:05 is given twice (also in entry [5])');
  t.is(await nodeCount(s), 0);
  const good = await s.call('POST', '/nodes', list);
  t.is(good.status, 201);
  t.deepEqual(good.body.data.map((n: { name: string }) => n.name), list.map((_, i) => `n${i}`));
});

const hostile: Array<[string, unknown, RegExp]> = [
  ['attribute value with ;', { attributes: { a: 'x; reboot' } }, /attributes\.a: invalid value .*contains ";"/],
  ['attribute value with {', { attributes: { a: 'host x {' } }, /contains "\{"/],
  ['attribute value with }', { attributes: { a: '}' } }, /contains "\}"/],
  ['attribute value with "', { attributes: { a: 'say "hi"' } }, /contains '"'/],
  ['attribute value with \'', { attributes: { a: "it's" } }, /contains "'"/],
  ['attribute value with newline', { attributes: { a: 'x\nhost evil { }' } }, /attributes\.a: invalid value/],
  ['attribute value with NUL', { attributes: { a: 'x\u0000' } }, /NUL/],
  ['attribute name with ;', { attributes: { 'a;b': 'x' } }, /attributes: invalid attribute name "a;b"/],
  ['attribute name with space', { attributes: { 'a b': 'x' } }, /invalid attribute name/],
  ['attribute name with newline', { attributes: { 'a\nb': 'x' } }, /invalid attribute name/],
  ['attribute value not a string', { attributes: { a: 5 } }, /body\/attributes\/a must be a string or null/],
  ['reserved attribute with an unknown boot style', { attributes: { _boot_style: 'floppy' } }, /_boot_style: invalid value "floppy": expected one of rwram/],
  ['MAC with letters', { mac: '52:54:00:zz:00:01' }, /mac: invalid MAC "52:54:00:zz:00:01"/],
  ['MAC too short', { mac: '52:54:00:00:01' }, /mac: invalid MAC/],
  ['MAC with mixed separators', { mac: '52:54-00:00:00:01' }, /mac: invalid MAC/],
  ['multicast MAC', { mac: '01:00:5e:00:00:01' }, /multicast/],
  ['all-zero MAC', { mac: '00:00:00:00:00:00' }, /all-zero/],
  ['MAC with a newline', { mac: '52:54:00:00:00:01\n' }, /body\/mac must NOT have more than 17 characters/],
  ['MAC with a newline inside', { mac: '52:54:00\n:00:01' }, /mac: invalid MAC/],
  ['IP with a part above 255', { ip: '10.0.0.256' }, /ip: invalid IP address "10.0.0.256": part 256/],
  ['IP with leading zeros', { ip: '10.0.0.010' }, /ip: invalid IP address/],
  ['IP with three parts', { ip: '10.0.1' }, /ip: invalid IP address/],
  ['IP with a config tail', { ip: '10.0.0.1; }' }, /ip: invalid IP address/],
  ['power URI with shell syntax', { power_uri: 'ipmi:///admin:pw@10.0.0.1;reboot' }, /power_uri: invalid power URI: contains ";"/],
  ['power URI with spaces', { power_uri: 'ipmi:///a b' }, /power_uri: invalid power URI/],
  ['unknown field', { mac: MAC1, hostname: 'x' }, /body has unknown field "hostname"/],
  ['read-only field name', { name: 'n5' }, /body has unknown field "name"/],
  ['read-only field status', { status: { up: true } }, /body has unknown field "status"/],
  ['read-only field uid', { uid: '0'.repeat(32) }, /body has unknown field "uid"/],
  ['index as a string', { index: '3' }, /body\/index must be an integer/],
  ['negative index', { index: -1 }, /body\/index must be >= 0/],
  ['type other than compute', { type: 'login' }, /body\/type must be one of "compute"/],
  ['groups not a list', { groups: 'a,b' }, /body\/groups must be an array/],
  ['unknown group', { groups: ['nope'] }, /groups: no attribute group "nope"/],
  ['a list of MACs with the primary again', { mac: MAC1, macs: [MAC1] }, /macs: lists the primary mac/],
];

for (const [what, body, error] of hostile) {
  test(`refused with 400 and nothing written: ${what}`, async (t) => {
    const s = await session(t);
    const res = await s.call('POST', '/nodes', body);
    t.is(res.status, 400);
    t.is(res.body.success, false);
    t.regex(res.body.error, error);
    t.false(res.body.error.includes('\n'), 'one line');
    t.is(await nodeCount(s), 0);
    // The same through PATCH of an existing node leaves it unchanged.
    await s.call('POST', '/nodes', { index: 7 });
    const before = (await s.call('GET', '/node/n7')).body.data;
    const patch = await s.call('PATCH', '/node/n7', body);
    t.is(patch.status, 400, 'PATCH');
    t.deepEqual((await s.call('GET', '/node/n7')).body.data, before);
  });
}

test('non-JSON and non-object bodies are 400', async (t) => {
  const s = await session(t);
  const broken = await s.call('POST', '/nodes', '{"mac": ', { 'content-type': 'application/json' });
  t.is(broken.status, 400);
  t.is((await s.call('POST', '/nodes', '"n0"', { 'content-type': 'application/json' })).status, 400);
  t.is((await s.call('POST', '/nodes', [])).status, 400);
  t.is((await s.call('POST', '/nodes', 'mac=x', { 'content-type': 'text/plain' })).status, 400);
  t.is((await s.call('POST', '/nodes', '<mac/>', { 'content-type': 'application/xml' })).status, 415);
  t.is((await s.call('POST', '/nodes', Buffer.from('{}'), { 'content-type': 'application/octet-stream' })).status, 415);
});

test('with nets, a node IP must lie in a net range; without nets any valid IP goes', async (t) => {
  const s = await session(t);
  t.is((await s.call('POST', '/nodes', { ip: '172.16.0.9' })).status, 201);
  await s.call('DELETE', '/node/n0');
  t.is((await s.call('POST', '/nets', { name: 'cluster', first: '10.0.0.100', prefix: 24, last: '10.0.0.199' })).status, 201);
  for (const ip of ['10.0.0.99', '10.0.0.200', '10.0.1.150', '172.16.0.9']) {
    const res = await s.call('POST', '/nodes', { ip });
    t.is(res.status, 400, ip);
    t.is(res.body.error, `ip: ${ip} is outside every net's range (cluster 10.0.0.100-10.0.0.199)`);
  }
  t.is((await s.call('POST', '/nodes', { ip: '10.0.0.150' })).status, 201);
  t.is((await s.call('PATCH', '/node/n0', { ip: '10.0.0.250' })).status, 400);
  t.is(await nodeCount(s), 1);
});

test('with nets, a node created without an IP takes the lowest free address; a full range is 400', async (t) => {
  const s = await session(t);
  t.is((await s.call('POST', '/nets', { name: 'cluster', first: '10.0.0.100', prefix: 24, last: '10.0.0.103' })).status, 201);
  t.is((await s.call('POST', '/nodes', { mac: MAC1, ip: '10.0.0.101' })).status, 201);
  const a = await s.call('POST', '/nodes', { mac: MAC2 });
  t.is(a.status, 201);
  t.is(a.body.data.ip, '10.0.0.100');
  const bulk = await s.call('POST', '/nodes', [{}, {}]);
  t.is(bulk.status, 201);
  t.deepEqual(bulk.body.data.map((n: { ip: string }) => n.ip), ['10.0.0.102', '10.0.0.103']);
  const full = await s.call('POST', '/nodes', { mac: '52:54:00:00:00:07' });
  t.is(full.status, 400);
  t.regex(full.body.error, /^ip: no free address left in cluster/);
  t.is(await nodeCount(s), 4);
});

test('GET /nodes?ids= takes the noderange grammar; unknown ids are 404', async (t) => {
  const s = await session(t);
  await s.call('POST', '/attribs', { name: 'rack1' });
  await s.call('POST', '/nodes', Array.from({ length: 6 }, (_, i) => ({ mac: `52:54:00:00:00:1${i}`, groups: i < 2 ? ['rack1'] : [] })));
  const names = async (ids: string) => (await s.call('GET', `/nodes?ids=${encodeURIComponent(ids)}`)).body.data.map((n: { name: string }) => n.name);
  t.deepEqual(await names('n[1-3]'), ['n1', 'n2', 'n3']);
  t.deepEqual(await names('all,-n[0-3]'), ['n4', 'n5']);
  t.deepEqual(await names('@rack1'), ['n0', 'n1']);
  t.deepEqual(await names('52-54-00-00-00-15,n0'), ['n5', 'n0']);
  t.deepEqual(await names('/n[24]'), ['n2', 'n4']);
  const missing = await s.call('GET', '/nodes?ids=n[4-9]');
  t.is(missing.status, 404);
  t.is(missing.body.error, 'no such nodes: n[6-9]');
  t.is((await s.call('GET', '/nodes?ids=@nogroup')).status, 400);
  t.is((await s.call('GET', '/nodes?ids=n[0-')).status, 400);
});

test('PATCH /nodes sets and unsets attributes on many nodes at once, or on none', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', Array.from({ length: 4 }, () => ({ attributes: { old: 'x', keep: 'y' } })));
  const res = await s.call('PATCH', '/nodes', { ids: 'n[0-1]', set: { _boot_config: 'mpiBoot' }, unset: ['old'] });
  t.is(res.status, 200);
  t.deepEqual(res.body.data.map((n: { name: string }) => n.name), ['n0', 'n1']);
  for (const name of ['n0', 'n1']) t.deepEqual((await s.call('GET', `/node/${name}`)).body.data.attributes, { _boot_config: 'mpiBoot', keep: 'y' });
  t.deepEqual((await s.call('GET', '/node/n2')).body.data.attributes, { old: 'x', keep: 'y' });

  const partly = await s.call('PATCH', '/nodes', { ids: 'n[2-9]', set: { a: 'b' } });
  t.is(partly.status, 404);
  const hostileValue = await s.call('PATCH', '/nodes', { ids: ['n2', 'n3'], set: { a: 'b}' } });
  t.is(hostileValue.status, 400);
  t.regex(hostileValue.body.error, /^set\.a: invalid value/);
  const badKey = await s.call('PATCH', '/nodes', { ids: 'all', unset: ['x y'] });
  t.is(badKey.status, 400);
  for (const name of ['n2', 'n3']) t.deepEqual((await s.call('GET', `/node/${name}`)).body.data.attributes, { old: 'x', keep: 'y' });
  t.is((await s.call('PATCH', '/nodes', { ids: 'all', set: { a: 'b' }, extra: 1 })).status, 400);
});

test('DELETE /nodes?ids= removes every named node, or none', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', [{}, {}, {}, {}]);
  t.is((await s.call('DELETE', '/nodes?ids=n[2-7]')).status, 404);
  t.is(await nodeCount(s), 4);
  const res = await s.call('DELETE', '/nodes?ids=n[1-2]');
  t.deepEqual(res.body.data.map((n: { name: string }) => n.name), ['n1', 'n2']);
  t.deepEqual((await s.call('GET', '/nodes')).body.data.map((n: { name: string }) => n.name), ['n0', 'n3']);
});

test('attribute inheritance: the node wins, then its groups in order, then DefaultAttribs', async (t) => {
  const s = await session(t);
  await s.call('PATCH', '/attrib/DefaultAttribs', { attributes: { _boot_config: 'DefaultBoot', a: 'default', b: 'default', c: 'default' } });
  await s.call('POST', '/attribs', { name: 'first', attributes: { a: 'first', b: 'first' } });
  await s.call('POST', '/attribs', { name: 'second', attributes: { a: 'second', d: 'second' } });
  await s.call('POST', '/nodes', { groups: ['first', 'second'], attributes: { a: 'node' } });
  const resolved = await s.call('GET', '/node/n0/attributes?resolved=1');
  t.deepEqual(resolved.body.data, {
    _boot_config: { value: 'DefaultBoot', from: 'group', group: 'DefaultAttribs' },
    a: { value: 'node', from: 'node' },
    b: { value: 'first', from: 'group', group: 'first' },
    c: { value: 'default', from: 'group', group: 'DefaultAttribs' },
    d: { value: 'second', from: 'group', group: 'second' },
  });
  t.deepEqual((await s.call('GET', '/node/n0/attributes')).body.data, { a: 'node' });

  await s.call('PATCH', '/node/n0', { groups: ['second', 'first'], attributes: { a: null } });
  const swapped = (await s.call('GET', '/node/n0/attributes?resolved=1')).body.data;
  t.deepEqual(swapped.a, { value: 'second', from: 'group', group: 'second' });
  t.deepEqual(swapped.b, { value: 'first', from: 'group', group: 'first' });

  // A group's change shows at once; a renamed group stays the node's group.
  await s.call('PATCH', '/attrib/first', { name: 'renamed', attributes: { b: 'changed' } });
  t.deepEqual((await s.call('GET', '/node/n0')).body.data.groups, ['second', 'renamed']);
  t.deepEqual((await s.call('GET', '/node/n0/attributes?resolved=1')).body.data.b, { value: 'changed', from: 'group', group: 'renamed' });
  t.is((await s.call('GET', '/node/n9/attributes?resolved=1')).status, 404);
});

test('a group a node uses cannot be deleted', async (t) => {
  const s = await session(t);
  await s.call('POST', '/attribs', { name: 'gpu' });
  await s.call('POST', '/nodes', [{ groups: ['gpu'] }, { groups: ['gpu'] }, {}]);
  const res = await s.call('DELETE', '/attrib/gpu');
  t.is(res.status, 409);
  t.is(res.body.error, 'attrib gpu is used by nodes n[0-1] (groups); change those first');
  await s.call('PATCH', '/nodes', { ids: 'n[0-1]', set: {} });
  await s.call('PUT', '/node/n0', {});
  await s.call('PUT', '/node/n1', {});
  t.is((await s.call('DELETE', '/attrib/gpu')).status, 200);
});

test('onDhcpChange is called after commits that change MACs, IPs, indexes or nets, and only then', async (t) => {
  const calls: string[] = [];
  let s: Session | undefined;
  s = await session(t, {
    onDhcpChange: () => {
      calls.push('dhcp');
    },
  });
  const expectCalls = async (n: number, what: string, request: () => Promise<unknown>) => {
    calls.length = 0;
    await request();
    t.is(calls.length, n, what);
  };
  await expectCalls(1, 'create with a MAC', () => s!.call('POST', '/nodes', { mac: MAC1 }));
  await expectCalls(0, 'create without MAC or IP', () => s!.call('POST', '/nodes', {}));
  await expectCalls(0, 'attributes only', () => s!.call('PATCH', '/node/n0', { attributes: { a: 'b' } }));
  await expectCalls(0, 'bulk attributes', () => s!.call('PATCH', '/nodes', { ids: 'all', set: { a: 'c' } }));
  await expectCalls(1, 'IP change', () => s!.call('PATCH', '/node/n0', { ip: '10.0.0.1' }));
  await expectCalls(1, 'index change', () => s!.call('PATCH', '/node/n0', { index: 5 }));
  await expectCalls(0, 'refused change', () => s!.call('POST', '/nodes', { mac: MAC1 }));
  await expectCalls(0, 'invalid bulk', () => s!.call('POST', '/nodes', [{ mac: MAC2 }, { mac: 'x' }]));
  await expectCalls(1, 'a bulk create is one change', () => s!.call('POST', '/nodes', [{ mac: MAC2 }, { mac: '52:54:00:00:00:03' }]));
  await expectCalls(1, 'net create', () => s!.call('POST', '/nets', { name: 'n', first: '10.0.0.1', prefix: 24 }));
  await expectCalls(0, 'attribute group', () => s!.call('POST', '/attribs', { name: 'g' }));
  await expectCalls(1, 'delete', () => s!.call('DELETE', '/node/n5'));
  await expectCalls(0, 'dry run', () => s!.call('POST', '/cluster/conf', { text: 'iprange 10.0.0.50/24 10.0.0.60\nnode 52:54:00:00:00:09\n', dryRun: true }));
});

test('onDhcpChange runs after the commit: the change is visible to a reader', async (t) => {
  let seen: Promise<unknown> | undefined;
  const s: Session = await session(t, {
    onDhcpChange: () => {
      seen = s.store.getNode(MAC1);
    },
  });
  await s.store.transaction(async (tx) => {
    await tx.createNode({ mac: MAC1 });
    t.is(seen, undefined, 'not inside the transaction');
  });
  t.truthy(seen);
  t.like(await seen, { name: 'n0', mac: MAC1 });
});

test('10,000 nodes in one bulk request, in one transaction', async (t) => {
  const s = await session(t);
  const mac = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const list = Array.from({ length: 10_000 }, (_, i) => ({ mac: mac(i), ip: `10.1.${i >> 8}.${i & 255}` }));
  const start = performance.now();
  const res = await s.call('POST', '/nodes', list);
  const ms = performance.now() - start;
  t.is(res.status, 201);
  t.is(res.body.data.length, 10_000);
  t.log(`bulk create of 10,000 nodes through the API: ${ms.toFixed(0)} ms`);
  const listStart = performance.now();
  const all = await s.call('GET', '/nodes');
  t.log(`GET /nodes of 10,000 nodes: ${(performance.now() - listStart).toFixed(0)} ms`);
  t.is(all.body.data.length, 10_000);
  t.is(all.body.data[9999].name, 'n9999');
  t.is((await s.call('GET', `/node/${mac(4242)}`)).body.data.name, 'n4242');
});

test('a node-range regex that would backtrack for long is a fast 400, not a stalled API', async (t) => {
  const s = await session(t);
  await s.call('POST', '/nodes', [{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }]);
  const started = Date.now();
  const res = await s.call('GET', `/nodes?ids=${encodeURIComponent('/(a+)+$')}`);
  t.is(res.status, 400);
  t.regex(res.body.error, /repeats a group that holds a quantifier or "\|" \(nested quantifiers backtrack exponentially\); not allowed here/);
  t.true(Date.now() - started < 1000);
  t.deepEqual((await s.call('GET', `/nodes?ids=${encodeURIComponent('/n[0-9]+')}`)).body.data.map((n: { name: string }) => n.name), ['n0', 'n1']);
});
