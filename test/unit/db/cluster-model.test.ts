import test from 'ava';
import Database from 'better-sqlite3';
import { COLLECTIONS } from '../../../src/appliance/db/collections.js';
import { MIGRATIONS } from '../../../src/appliance/db/migrations/index.js';
import { NODE_SPEC } from '../../../src/appliance/db/nodes.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { tempDir } from '../lib/keys.js';

// The model's behaviour on every backend is in store-contract.ts; here what is SQLite's own.

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

