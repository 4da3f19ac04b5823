import test from 'ava';
import Database from 'better-sqlite3';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BusyError, openStore } from '../../../src/appliance/db/index.js';
import { MIGRATIONS, type Migration } from '../../../src/appliance/db/migrations/index.js';
import { checkMigrationOrder } from '../../../src/appliance/db/sqlite/migrate.js';
import { openSqliteStore } from '../../../src/appliance/db/sqlite/store.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { tempDir } from '../lib/keys.js';
import { admin, storeContract } from './store-contract.js';

const fixedNow = () => new Date('2025-01-02T03:04:05.000Z');

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

test('the db file is joined from the storage root', (t) => {
  t.is(storagePaths('/srv/cw').dbFile, join('/srv/cw', 'db', 'cw.sqlite'));
});
// The behaviour shared with the etcd backend (etcd-store.test.ts runs the same tests there).
storeContract(test, async (t) => {
  const { paths } = setup(t);
  return (options = {}) => openStore({ paths, now: options.now });
});
