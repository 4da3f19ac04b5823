import test from 'ava';
import Database from 'better-sqlite3';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, type CommitInfo, type NodeInput } from '../../../src/appliance/db/index.js';
import { COLLECTIONS } from '../../../src/appliance/db/collections.js';
import { MIGRATIONS } from '../../../src/appliance/db/migrations/index.js';
import { NODE_SPEC } from '../../../src/appliance/db/nodes.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { parseClusterConf } from '../../../src/lib/clusterconf.js';
import { tempDir } from '../lib/keys.js';

function setup(t: { teardown(fn: () => unknown): void }) {
  const { dir, cleanup } = tempDir('cw-model-');
  const file = storagePaths(dir).dbFile;
  const store = openSqliteStore(file);
  t.teardown(async () => {
    await store.close().catch(() => {});
    cleanup();
  });
  return { file, store };
}

const mac = (i: number) =>
  `52:54:03:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

test('a database of the first schema gains the cluster model and keeps its admins', async (t) => {
  const { dir, cleanup } = tempDir('cw-model-upgrade-');
  t.teardown(cleanup);
  const file = storagePaths(dir).dbFile;
  const v1 = openSqliteStore(file, { migrations: MIGRATIONS.filter((m) => m.version === 1) });
  await v1.addAdmin({ name: 'alice', keyType: 'ssh-ed25519', keyLine: 'ssh-ed25519 AAAA alice', fingerprint: 'SHA256:a', comment: 'alice' });
  await v1.close();
  const store = openSqliteStore(file);
  t.is((await store.getAdmin('alice'))?.name, 'alice');
  t.deepEqual((await store.list('attribs')).map((g) => g.name), ['DefaultAttribs']);
  t.deepEqual(await store.listNodes(), []);
  await store.close();
  const db = new Database(file, { readonly: true });
  t.is(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get(), MIGRATIONS.at(-1)?.version);
  db.close();
});

test('every field is stored in a column of the matching type', async (t) => {
  const { dir, cleanup } = tempDir('cw-model-columns-');
  t.teardown(cleanup);
  const file = storagePaths(dir).dbFile;
  await openSqliteStore(file).close();
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  for (const spec of [...Object.values(COLLECTIONS), NODE_SPEC]) {
    const columns = new Map(
      (db.prepare(`PRAGMA table_info(${spec.table})`).all() as Array<{ name: string; type: string }>).map((c) => [c.name, c.type]),
    );
    for (const [name, field] of Object.entries(spec.fields)) {
      if (spec.kind === 'nodes' && name === 'macs') continue;
      const want = field.storage === 'int' || field.storage === 'bool' ? 'INTEGER' : 'TEXT';
      t.is(columns.get(field.column ?? name), want, `${spec.table}.${name}`);
    }
  }
});

test('the model survives closing and reopening', async (t) => {
  const { file, store } = setup(t);
  await store.create('attribs', { name: 'gpu', attributes: { a: 'b' } });
  await store.create('images', { name: 'img' });
  await store.create('bootconfigs', { name: 'boot', image: 'img', frozen: true });
  await store.createNode({ mac: mac(1), groups: ['gpu'] });
  await store.close();
  const again = openSqliteStore(file);
  t.teardown(() => again.close());
  t.like(await again.getNode('n0'), { mac: mac(1), groups: ['gpu'] });
  t.like(await again.get('bootconfigs', 'boot'), { image: 'img', frozen: true });
});

test('the store checks every input itself, not only the API', async (t) => {
  const { store } = setup(t);
  const refused: Array<[NodeInput, RegExp]> = [
    [{ mac: 'zz' } as NodeInput, /^mac: invalid MAC/],
    [{ attributes: { a: 'x;y' } }, /^attributes\.a: invalid value/],
    [{ attributes: { a: 5 as unknown as string } }, /^attributes\.a: must be a string/],
    [{ name: 'n5' } as unknown as NodeInput, /unknown field "name" for node/],
    [{ status: {} } as unknown as NodeInput, /^status: read-only field of node/],
    [{ ip: '1.2.3.4.5' }, /^ip: invalid IP address/],
    [{ index: 1.5 }, /^index: must be an integer/],
    [{ groups: ['missing'] }, /^groups: no attribute group "missing"/],
  ];
  for (const [input, error] of refused) {
    await t.throwsAsync(store.createNode(input), { instanceOf: ValidationError, message: error }, JSON.stringify(input));
  }
  await t.throwsAsync(store.create('bootconfigs', { name: 'b', cmdline: 'x\ny' }), { instanceOf: ValidationError });
  await t.throwsAsync(store.create('repos', { name: 'r;m' }), { instanceOf: ValidationError });
  t.deepEqual(await store.listNodes(), []);
});

test('frozen objects refuse changes in the store; only {frozen} passes', async (t) => {
  const { store } = setup(t);
  await store.create('images', { name: 'img', frozen: true });
  await t.throwsAsync(store.update('images', 'img', { description: 'x' }), { instanceOf: ForbiddenError, message: 'image img is frozen; PATCH {"frozen": false} first' });
  await t.throwsAsync(store.replace('images', 'img', { name: 'img' }), { instanceOf: ForbiddenError });
  await t.throwsAsync(store.remove('images', 'img'), { instanceOf: ForbiddenError });
  await t.throwsAsync(store.setImageContent('img', { size: 1, checksum: `sha256:${'0'.repeat(64)}` }), { instanceOf: ForbiddenError });
  await store.update('images', 'img', { frozen: false });
  t.is((await store.remove('images', 'img')).name, 'img');
  await t.throwsAsync(store.remove('images', 'img'), { instanceOf: NotFoundError, message: 'no such image: img' });
});

test('inheritance: DefaultAttribs comes last, once, and may be absent', async (t) => {
  const { store } = setup(t);
  await store.update('attribs', 'DefaultAttribs', { attributes: { a: 'default', b: 'default' } });
  await store.create('attribs', { name: 'g', attributes: { a: 'g' } });
  await store.createNode({ groups: ['DefaultAttribs', 'g'] });
  t.deepEqual(await store.resolveAttributes('n0'), {
    a: { value: 'default', from: 'group', group: 'DefaultAttribs' },
    b: { value: 'default', from: 'group', group: 'DefaultAttribs' },
  });
  await store.createNode({ groups: ['g'] });
  const n1 = await store.getNode('n1');
  t.deepEqual(await store.resolveAttributes(n1!), {
    a: { value: 'g', from: 'group', group: 'g' },
    b: { value: 'default', from: 'group', group: 'DefaultAttribs' },
  });
  await store.remove('attribs', 'DefaultAttribs').catch(() => undefined);
  await store.updateNode('n0', { groups: ['g'] });
  await store.remove('attribs', 'DefaultAttribs');
  t.deepEqual(await store.resolveAttributes('n1'), { a: { value: 'g', from: 'group', group: 'g' } });
});

test('onCommit hears committed DHCP changes after the commit, once per transaction, never rolled-back ones', async (t) => {
  const { store } = setup(t);
  const heard: CommitInfo[] = [];
  let inside = false;
  const off = store.onCommit((change) => {
    t.false(inside, 'not inside the transaction');
    heard.push(change);
  });
  await store.transaction(async (tx) => {
    inside = true;
    await tx.createNode({ mac: mac(1) });
    await tx.createNode({ mac: mac(2) });
    await tx.create('nets', { name: 'n', first: '10.0.0.1', prefix: 24 });
    inside = false;
  });
  t.deepEqual(heard, [{ dhcp: true }]);
  await t.throwsAsync(
    store.transaction(async (tx) => {
      await tx.createNode({ mac: mac(3) });
      throw new Error('changed my mind');
    }),
  );
  await t.throwsAsync(store.createNodes([{ mac: mac(4) }, { mac: 'bad' }]));
  await store.create('attribs', { name: 'g' });
  await store.updateNode('n0', { attributes: { a: 'b' } });
  t.is(heard.length, 1, 'rollbacks and non-DHCP changes are silent');
  await store.removeNode('n1');
  t.is(heard.length, 2);
  off();
  await store.removeNode('n0');
  t.is(heard.length, 2, 'after unsubscribing');
});

test('10,000 nodes in one createNodes: all, or none when one is bad', async (t) => {
  const { store } = setup(t);
  const inputs: NodeInput[] = Array.from({ length: 10_000 }, (_, i) => ({ mac: mac(i), ip: `10.9.${i >> 8}.${i & 255}` }));
  await t.throwsAsync(store.createNodes([...inputs, { mac: mac(17) }]), { instanceOf: ValidationError, message: /^\[10000\] mac: .* is given twice \(also in entry \[17\]\)$/ });
  t.deepEqual(await store.listNodes(), []);
  const start = performance.now();
  const created = await store.createNodes(inputs);
  t.log(`store.createNodes of 10,000 nodes: ${(performance.now() - start).toFixed(0)} ms`);
  t.is(created.length, 10_000);
  await t.throwsAsync(store.createNodes([{ mac: mac(10_001) }, { mac: mac(5) }]), { instanceOf: ConflictError, message: `[1] mac: ${mac(5)} already belongs to node n5` });
  t.is((await store.listNodes()).length, 10_000);
});

test('a cluster.conf and other changes in one transaction are undone together', async (t) => {
  const { store } = setup(t);
  await t.throwsAsync(
    store.transaction(async (tx) => {
      await tx.applyClusterConf(parseClusterConf('iprange 10.1.0.10/24\nnodes 3\n'));
      t.is((await tx.listNodes()).length, 3);
      throw new Error('abort');
    }),
  );
  t.deepEqual(await store.listNodes(), []);
  t.deepEqual(await store.list('nets'), []);
});
