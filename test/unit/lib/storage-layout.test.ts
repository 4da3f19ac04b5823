import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start } from '../../../src/host/containerctl/start/start.js';
import { prepareStorage, PRIVATE_DIR_MODE, STORAGE_DIRS, storagePaths } from '../../../src/lib/storage-layout.js';
import { MemoryEngine, testContext } from '../containerctl/memory-engine.js';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cw-storage-layout-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every directory of the layout with the mode it has now. */
function modes(storage: string): Record<string, number> {
  return Object.fromEntries(STORAGE_DIRS.map(({ dir }) => [dir, modeOf(join(storage, dir))]));
}

const WANTED = Object.fromEntries(STORAGE_DIRS.map(({ dir, mode }) => [dir, mode]));

/** What an older version left: the private directories db/, ssh/ and admins/ 0755. */
function olderStorage(storage: string): void {
  for (const dir of ['db', 'ssh', 'admins', 'secrets', 'boot']) mkdirSync(join(storage, dir), { recursive: true });
  for (const dir of ['.', 'db', 'ssh', 'admins', 'boot']) chmodSync(join(storage, dir), 0o755);
  writeFileSync(join(storage, 'db', 'cw.sqlite'), 'kept');
}

test('storagePaths follows the documented layout', (t) => {
  const p = storagePaths('/var/lib/cw');
  t.is(p.dbFile, '/var/lib/cw/db/cw.sqlite');
  t.is(p.dbPasswordFile, '/var/lib/cw/secrets/db-password');
  t.is(p.authorizedKeysFile, '/var/lib/cw/admins/authorized_keys');
  t.is(p.templatesDir, '/var/lib/cw/etc/templates');
  t.is(p.generatedDir, '/var/lib/cw/etc/generated');
  t.is(p.dhcpLeasesFile, '/var/lib/cw/dhcp/dhcpd.leases');
  for (const dir of [p.sshDir, p.bootDir, p.imagesDir, p.clientPkgsDir, p.logsDir]) t.true(dir.startsWith('/var/lib/cw/'));
});

test('db, secrets, ssh, admins, logs/consoles and backup are the private directories (0700); the rest 0755', (t) => {
  const priv = STORAGE_DIRS.filter((d) => d.mode === PRIVATE_DIR_MODE).map((d) => d.dir);
  t.deepEqual(priv, ['db', 'secrets', 'ssh', 'admins', 'logs/consoles', 'backup']);
  t.true(STORAGE_DIRS.every((d) => d.mode === PRIVATE_DIR_MODE || d.mode === 0o755));
});

test('prepareStorage creates the layout with private directories 0700', async (t) => {
  const paths = storagePaths(join(scratch(t), 'storage'));
  await prepareStorage(paths.root);
  for (const d of [paths.dbDir, paths.secretsDir, paths.sshDir, paths.adminsDir]) t.is(modeOf(d), 0o700, d);
  for (const d of [paths.templatesDir, paths.generatedDir, paths.bootDir, paths.imagesDir, paths.clientPkgsDir, paths.dhcpDir, paths.logsDir]) {
    t.true(statSync(d).isDirectory(), d);
  }
});

test('the storage layout is created with its modes, and tightened when it exists', async (t) => {
  const dir = scratch(t);
  const storage = join(dir, 'storage');
  const created = await prepareStorage(storage);
  t.deepEqual(created, STORAGE_DIRS.map((d) => d.dir));
  t.is(modeOf(join(storage, 'secrets')), 0o700);
  t.is(modeOf(join(storage, 'boot')), 0o755);
  chmodSync(join(storage, 'secrets'), 0o777);
  t.deepEqual(await prepareStorage(storage), []);
  t.is(modeOf(join(storage, 'secrets')), 0o700);
  const file = join(dir, 'file');
  writeFileSync(file, '');
  await t.throwsAsync(prepareStorage(file), { message: `storage ${file} is not a directory` });
});

test("the appliance's preparation tightens an older version's 0755 db/, ssh/ and admins/, keeping their content", async (t) => {
  const storage = scratch(t);
  olderStorage(storage);
  const created = await prepareStorage(storage);
  t.false(created.includes('db'));
  t.deepEqual(modes(storage), WANTED);
  t.is(statSync(join(storage, 'db', 'cw.sqlite')).size, 4);
});

test("the host's start prepares the same layout and modes, and tightens an older version's storage", async (t) => {
  const dir = scratch(t);
  const engine = new MemoryEngine();
  engine.addImage('cw-headnode:0.2.0', 2000);
  await start({ storageDir: 'fresh' }, testContext(engine), { cwd: dir, findPortInUse: async () => undefined });
  t.deepEqual(modes(join(dir, 'fresh')), WANTED);

  const older = join(dir, 'older');
  mkdirSync(older);
  olderStorage(older);
  const engine2 = new MemoryEngine();
  engine2.addImage('cw-headnode:0.2.0', 2000);
  await start({ storageDir: older }, testContext(engine2), { cwd: dir, findPortInUse: async () => undefined });
  t.deepEqual(modes(older), WANTED);
  t.is(statSync(join(older, 'db', 'cw.sqlite')).size, 4);
});
