import test from 'ava';
import Database from 'better-sqlite3';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BusyError, ConflictError, openStore, ValidationError, type NewAdmin } from '../../../src/appliance/db/index.js';
import { MIGRATIONS, type Migration } from '../../../src/appliance/db/migrations/index.js';
import { checkMigrationOrder } from '../../../src/appliance/db/sqlite/migrate.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { tempDir } from '../lib/keys.js';

const fixedNow = () => new Date('2025-01-02T03:04:05.000Z');

function admin(name: string, n = name): NewAdmin {
  return {
    name,
    keyType: 'ssh-ed25519',
    keyLine: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${n} ${name}@host`,
    fingerprint: `SHA256:${n}`,
    comment: `${name}@host`,
  };
}

function setup(t: { teardown(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('cw-db-');
  t.teardown(cleanup);
  const paths = storagePaths(dir);
  return { dir, paths, file: paths.dbFile };
}

function migrationRows(file: string): Array<{ version: number; applied_at: string }> {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all() as Array<{
      version: number;
      applied_at: string;
    }>;
  } finally {
    db.close();
  }
}

test('opening creates the database 0600 in a 0700 directory, in WAL mode', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  await store.close();
  t.is(statSync(paths.dbFile).mode & 0o777, 0o600);
  t.is(statSync(paths.dbDir).mode & 0o777, 0o700);
  const db = new Database(paths.dbFile);
  t.is(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
});

test('migrations are applied once and reopening applies nothing again', async (t) => {
  const { file } = setup(t);
  const first = openSqliteStore(file, { now: fixedNow });
  await first.close();
  const rows = migrationRows(file);
  t.deepEqual(
    rows.map((r) => r.version),
    MIGRATIONS.map((m) => m.version),
  );
  t.true(rows.every((r) => r.applied_at === fixedNow().toISOString()));

  const second = openSqliteStore(file, { now: () => new Date('2030-01-01T00:00:00Z') });
  await second.addAdmin(admin('alice'));
  await second.close();
  t.deepEqual(migrationRows(file), rows);
});

test('a new migration is applied on the next open, and only then', async (t) => {
  const { file } = setup(t);
  await openSqliteStore(file).close();
  const extra: Migration = { version: 1000, name: 'test table', sql: 'CREATE TABLE extra (id INTEGER PRIMARY KEY)' };
  const withExtra = [...MIGRATIONS, extra];
  await openSqliteStore(file, { migrations: withExtra }).close();
  await openSqliteStore(file, { migrations: withExtra }).close();
  t.deepEqual(
    migrationRows(file).map((r) => r.version),
    [...MIGRATIONS.map((m) => m.version), 1000],
  );
});

test('a failing migration leaves no trace and names itself', async (t) => {
  const { file } = setup(t);
  await openSqliteStore(file).close();
  const broken: Migration = {
    version: 1000,
    name: 'half done',
    sql: 'CREATE TABLE half (id INTEGER); INSERT INTO nowhere VALUES (1);',
  };
  t.throws(() => openSqliteStore(file, { migrations: [...MIGRATIONS, broken] }), {
    message: /migration 1000 \(half done\) failed: no such table: nowhere/,
  });
  const db = new Database(file, { readonly: true });
  t.is(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'half'").pluck().get(), 0);
  db.close();
  t.false(migrationRows(file).some((r) => r.version === 1000));
});

test('a database from a newer release is refused', async (t) => {
  const { file } = setup(t);
  const newer: Migration = { version: 999, name: 'future', sql: 'SELECT 1' };
  await openSqliteStore(file, { migrations: [...MIGRATIONS, newer] }).close();
  t.throws(() => openSqliteStore(file), { message: /schema version 999 is newer than this cw-headnode knows/ });
});

test('migrations must be listed in increasing version order', (t) => {
  t.notThrows(() => checkMigrationOrder(MIGRATIONS));
  t.throws(() =>
    checkMigrationOrder([
      { version: 2, name: 'b', sql: '' },
      { version: 1, name: 'a', sql: '' },
    ]),
  );
  t.throws(() => checkMigrationOrder([{ version: 1.5, name: 'x', sql: '' }]));
});

test('a file that is not a database is reported with its path', (t) => {
  const { file, paths } = setup(t);
  mkdirSync(paths.dbDir);
  writeFileSync(file, 'this is not sqlite'.repeat(300));
  t.throws(() => openSqliteStore(file), { message: new RegExp(`^cannot open database ${file}: `) });
});

test('admins: add, get, list in name order, remove', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths, now: fixedNow });
  t.teardown(() => store.close());
  const bob = await store.addAdmin(admin('bob'));
  t.deepEqual(bob, { ...admin('bob'), addedAt: '2025-01-02T03:04:05.000Z' });
  await store.addAdmin(admin('alice'));
  t.deepEqual(
    (await store.listAdmins()).map((a) => a.name),
    ['alice', 'bob'],
  );
  t.deepEqual(await store.getAdmin('bob'), bob);
  t.is(await store.getAdmin('carol'), undefined);
  t.true(await store.removeAdmin('bob'));
  t.false(await store.removeAdmin('bob'));
  t.deepEqual(
    (await store.listAdmins()).map((a) => a.name),
    ['alice'],
  );
});

test('admins: a duplicate name is refused unless replacing', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  await store.addAdmin(admin('alice', 'one'));
  const err = await t.throwsAsync(store.addAdmin(admin('alice', 'two')), { message: 'admin alice already exists' });
  t.true(err instanceof ConflictError);
  t.is((await store.getAdmin('alice'))?.fingerprint, 'SHA256:one');
  await store.addAdmin(admin('alice', 'two'), { replace: true });
  t.is((await store.getAdmin('alice'))?.fingerprint, 'SHA256:two');
  t.is((await store.listAdmins()).length, 1);
});

test('admins: one key cannot belong to two admins', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  await store.addAdmin(admin('alice', 'k'));
  await t.throwsAsync(store.addAdmin(admin('bob', 'k')), {
    instanceOf: ConflictError,
    message: 'key SHA256:k is already registered for admin alice',
  });
  // Re-adding the same key under the same name with replace is fine.
  await t.notThrowsAsync(store.addAdmin(admin('alice', 'k'), { replace: true }));
});

test('admins: names and key fields that could break authorized_keys are refused', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  for (const name of ['Alice', '0day', 'a b', 'a\nb', '', 'x'.repeat(33), 'al;ce']) {
    await t.throwsAsync(store.addAdmin(admin(name, 'n')), { instanceOf: ValidationError }, JSON.stringify(name));
  }
  await t.throwsAsync(store.addAdmin({ ...admin('eve'), keyLine: 'ssh-ed25519 AAAA x\nssh-rsa BBBB' }), {
    instanceOf: ValidationError,
  });
  t.deepEqual(await store.listAdmins(), []);
});

test('settings: get, set, overwrite, delete', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  t.is(await store.getSetting('cluster_id'), undefined);
  await store.setSetting('cluster_id', 'first-token');
  await store.setSetting('cluster_id', 'second-token');
  t.is(await store.getSetting('cluster_id'), 'second-token');
  t.true(await store.deleteSetting('cluster_id'));
  t.false(await store.deleteSetting('cluster_id'));
  t.is(await store.getSetting('cluster_id'), undefined);
});

test('data survives closing and reopening', async (t) => {
  const { paths } = setup(t);
  const first = await openStore({ paths });
  await first.addAdmin(admin('alice'));
  await first.setSetting('cluster_id', 'persisted-token');
  await first.close();
  const second = await openStore({ paths });
  t.teardown(() => second.close());
  t.is((await second.getAdmin('alice'))?.name, 'alice');
  t.is(await second.getSetting('cluster_id'), 'persisted-token');
});

test('transaction: changes are committed together', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  const result = await store.transaction(async (tx) => {
    await tx.addAdmin(admin('alice'));
    await tx.setSetting('cluster_id', 'tx-token-1');
    return 'done';
  });
  t.is(result, 'done');
  t.is((await store.listAdmins()).length, 1);
  t.is(await store.getSetting('cluster_id'), 'tx-token-1');
});

test('transaction: a throw rolls everything back and is re-thrown', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  await store.setSetting('cluster_id', 'before');
  await t.throwsAsync(
    store.transaction(async (tx) => {
      await tx.addAdmin(admin('alice'));
      await tx.setSetting('cluster_id', 'during');
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('render failed');
    }),
    { message: 'render failed' },
  );
  t.deepEqual(await store.listAdmins(), []);
  t.is(await store.getSetting('cluster_id'), 'before');
  // The store is usable afterwards.
  await store.addAdmin(admin('bob'));
  t.is((await store.listAdmins()).length, 1);
});

test('transaction: a failed inner transaction is undone alone when caught', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  await store.transaction(async (tx) => {
    await tx.addAdmin(admin('alice'));
    await tx
      .transaction(async (inner) => {
        await inner.addAdmin(admin('bob'));
        throw new Error('inner');
      })
      .catch(() => undefined);
    await tx.addAdmin(admin('carol'));
  });
  t.deepEqual(
    (await store.listAdmins()).map((a) => a.name),
    ['alice', 'carol'],
  );
});

test('transaction: other callers wait until it is finished', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const tx = store.transaction(async (view) => {
    await view.addAdmin(admin('alice'));
    await gate;
  });
  const seen = store.listAdmins();
  await new Promise((r) => setTimeout(r, 10));
  release();
  await tx;
  // Queued behind the transaction, the read sees its committed result, never a half state.
  t.deepEqual(
    (await seen).map((a) => a.name),
    ['alice'],
  );
});

test('transaction: using the store instead of the transaction view is an error, not a deadlock', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  await t.throwsAsync(
    store.transaction(async () => {
      await store.listAdmins();
    }),
    { message: /use the transaction argument/ },
  );
  // A timer created inside a transaction may use the store once the transaction is over.
  let later: Promise<unknown> | undefined;
  await store.transaction(async () => {
    later = new Promise((resolve, reject) => setTimeout(() => store.listAdmins().then(resolve, reject), 10));
  });
  await t.notThrowsAsync(later!);
});

test('transaction: the view cannot be used after the transaction ended', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  t.teardown(() => store.close());
  const leaked = await store.transaction(async (tx) => tx);
  await t.throwsAsync(leaked.listAdmins(), { message: /transaction already finished/ });
});

test('another process cannot write while a transaction holds the database', async (t) => {
  const { file } = setup(t);
  const api = openSqliteStore(file);
  const admin2 = openSqliteStore(file, { busyTimeoutMs: 50 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const tx = api.transaction(async (view) => {
    await view.addAdmin(admin('alice'));
    await gate;
  });
  t.teardown(async () => {
    release();
    await tx;
    await api.close();
    await admin2.close();
  });
  await new Promise((r) => setTimeout(r, 5));
  await t.throwsAsync(admin2.addAdmin(admin('bob')), { instanceOf: BusyError, message: /database is busy/ });
  // Readers are not blocked (WAL) and do not see uncommitted rows.
  t.deepEqual(await admin2.listAdmins(), []);
  release();
  await tx;
  t.deepEqual(
    (await admin2.listAdmins()).map((a) => a.name),
    ['alice'],
  );
});

test('a closed store refuses further use', async (t) => {
  const { paths } = setup(t);
  const store = await openStore({ paths });
  await store.close();
  await store.close();
  await t.throwsAsync(store.listAdmins(), { message: /store is closed/ });
});

test('the db file is joined from the storage root', (t) => {
  t.is(storagePaths('/srv/cw').dbFile, join('/srv/cw', 'db', 'cw.sqlite'));
});
