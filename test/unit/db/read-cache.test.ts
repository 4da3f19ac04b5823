import test from 'ava';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import { ReadCache } from '../../../src/appliance/db/sqlite/read-cache.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { tempDir } from '../lib/keys.js';

function fakeCache(maxEntries = 10) {
  let version = 1;
  let clock = 0;
  let asked = 0;
  const cache = new ReadCache({ dataVersion: () => (asked++, version), maxEntries, foreignCheckMs: 5, now: () => clock });
  return {
    cache,
    commitElsewhere: () => version++,
    advance: (ms: number) => (clock += ms),
    asked: () => asked,
  };
}

test('a value is loaded once, then answered from the cache, frozen', (t) => {
  const { cache } = fakeCache();
  let loads = 0;
  const load = () => (loads++, { name: 'n0', macs: ['52:54:00:00:00:01'] });
  const first = cache.get('node', 'n0', load);
  const second = cache.get('node', 'n0', load);
  t.is(loads, 1);
  t.is(first, second);
  t.true(Object.isFrozen(first));
  t.true(Object.isFrozen(first.macs));
  t.throws(() => (first.macs as string[]).push('x'));
});

test('spaces keep keys apart; undefined (not found) is remembered too', (t) => {
  const { cache } = fakeCache();
  let loads = 0;
  t.is(cache.get('admin', 'x', () => (loads++, undefined)), undefined);
  t.is(cache.get('admin', 'x', () => (loads++, undefined)), undefined);
  t.is(cache.get('node', 'x', () => (loads++, 'node x')), 'node x');
  t.is(loads, 2);
});

test('invalidate forgets everything', (t) => {
  const { cache } = fakeCache();
  let loads = 0;
  cache.get('node', 'n0', () => ++loads);
  cache.invalidate();
  t.is(cache.get('node', 'n0', () => ++loads), 2);
});

test('another connection\'s commit is noticed at the next check, which runs at most every foreignCheckMs', (t) => {
  const { cache, commitElsewhere, advance, asked } = fakeCache();
  let loads = 0;
  cache.get('node', 'n0', () => ++loads);
  commitElsewhere();
  advance(4);
  t.is(cache.get('node', 'n0', () => ++loads), 1, 'within the window: not asked again');
  t.is(asked(), 1);
  advance(1);
  t.is(cache.get('node', 'n0', () => ++loads), 2, 'after the window: the new version clears the cache');
  t.is(asked(), 2);
});

test('a full cache starts over instead of growing', (t) => {
  const { cache } = fakeCache(3);
  let loads = 0;
  for (const k of ['a', 'b', 'c', 'd']) cache.get('node', k, () => ++loads);
  t.is(cache.get('node', 'd', () => ++loads), 4, 'the newest entry is kept');
  t.is(cache.get('node', 'a', () => ++loads), 5, 'the older ones were dropped');
});

test('forget drops one object under every key it was read by, and nothing else', (t) => {
  const { cache } = fakeCache();
  let loads = 0;
  const node = (uid: string) => () => (loads++, { uid });
  const uidOf = (v: { uid: string } | undefined) => v?.uid;
  cache.get('node', 'n0', node('u0'), uidOf);
  cache.get('node', '52:54:00:00:00:01', node('u0'), uidOf);
  cache.get('node', 'n1', node('u1'), uidOf);
  cache.get('node', 'n9', () => (loads++, undefined), uidOf);
  t.is(loads, 4);
  cache.forget('u0');
  cache.get('node', 'n1', node('u1'), uidOf);
  cache.get('node', 'n9', () => (loads++, undefined), uidOf);
  t.is(loads, 4, 'n1 and the miss for n9 are still known');
  cache.get('node', 'n0', node('u0'), uidOf);
  cache.get('node', '52:54:00:00:00:01', node('u0'), uidOf);
  t.is(loads, 6, 'u0 is read again under both keys');
});

function openStore(t: { teardown(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('cw-cache-');
  t.teardown(cleanup);
  const file = storagePaths(dir).dbFile;
  const store = openSqliteStore(file);
  t.teardown(() => void store.close());
  return { store, file };
}

test('store: a node read after a write through the store shows the write at once', async (t) => {
  const { store } = openStore(t);
  await store.createNode({ mac: '52:54:00:00:00:01' });
  t.deepEqual((await store.getNode('n0'))?.attributes, {});
  await store.updateNode('n0', { attributes: { rack: 'r1' } });
  t.deepEqual((await store.getNode('n0'))?.attributes, { rack: 'r1' });
  await store.removeNode('n0');
  t.is(await store.getNode('n0'), undefined);
  t.is(await store.getNode('52:54:00:00:00:01'), undefined);
});

test('store: a status report is seen at once under every id of the node; other nodes are unchanged', async (t) => {
  const { store } = openStore(t);
  await store.createNodes([{ mac: '52:54:00:00:00:01' }, { mac: '52:54:00:00:00:02' }]);
  const before = await store.getNode('n1');
  t.deepEqual((await store.getNode('52:54:00:00:00:01'))?.status, {});
  await store.setNodeStatus('n0', { state: 'up', kernel: '6.1.0' }, new Date('2026-01-01T00:00:00Z'));
  t.is((await store.getNode('n0'))?.status.kernel, '6.1.0');
  t.is((await store.getNode('52:54:00:00:00:01'))?.last_seen, '2026-01-01T00:00:00.000Z');
  t.deepEqual(await store.getNode('n1'), before);
});

test('store: a rolled-back transaction leaves nothing of itself in the cache', async (t) => {
  const { store } = openStore(t);
  await t.throwsAsync(
    store.transaction(async (tx) => {
      await tx.createNode({ mac: '52:54:00:00:00:01' });
      t.truthy(await tx.getNode('n0'));
      throw new Error('abandon');
    }),
    { message: 'abandon' },
  );
  t.is(await store.getNode('n0'), undefined);
});

test('store: an admin added by another process (its own connection) is seen, and so is its removal', async (t) => {
  const { store, file } = openStore(t);
  t.is(await store.getAdmin('bob'), undefined);
  const other = new Database(file);
  t.teardown(() => other.close());
  other
    .prepare('INSERT INTO admins (name, key_type, key_line, fingerprint, comment, added_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run('bob', 'ssh-ed25519', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbob bob@host', 'SHA256:bob', 'bob@host', new Date().toISOString());
  await new Promise((r) => setTimeout(r, 5));
  t.is((await store.getAdmin('bob'))?.name, 'bob');
  other.prepare('DELETE FROM admins WHERE name = ?').run('bob');
  await new Promise((r) => setTimeout(r, 5));
  t.is(await store.getAdmin('bob'), undefined);
});
