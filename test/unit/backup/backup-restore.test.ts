import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBackup } from '../../../src/appliance/backup/backup.js';
import { openStore } from '../../../src/appliance/db/index.js';
import { MIGRATIONS } from '../../../src/appliance/db/migrations/index.js';
import { openSnapshotter } from '../../../src/appliance/db/snapshot.js';
import { ensureSecrets } from '../../../src/appliance/storage.js';
import { BackupArchiveError, DATABASE_SCHEMA_VERSION, backupFileName, readBackupArchive } from '../../../src/lib/backup-archive.js';
import { ExitError } from '../../../src/lib/errors.js';
import { parseClusterConf, renderClusterConf } from '../../../src/lib/clusterconf.js';
import { prepareStorage, storagePaths } from '../../../src/lib/storage-layout.js';
import { restoreBackup, verifyBackup } from '../../../src/host/containerctl/restore/restore.js';
import { tempDir } from '../lib/keys.js';

const CONF = 'iprange 10.9.0.100/24\nnode 52:54:00:00:09:01\nnode 52:54:00:00:09:02\n';

/** A storage directory with a database (two nodes, a setting), secrets, a certificate and a template. */
async function source(t: { teardown(fn: () => void): void }, conf = CONF) {
  const { dir, cleanup } = tempDir('cw-backup-');
  t.teardown(cleanup);
  const root = join(dir, 'src');
  await prepareStorage(root);
  const paths = storagePaths(root);
  ensureSecrets(paths);
  const store = await openStore({ paths });
  await store.applyClusterConf(parseClusterConf(conf));
  await store.setSetting('domain', 'hpc.example.org');
  await store.close();
  writeFileSync(paths.tlsCertFile, 'CERT\n', { mode: 0o644 });
  writeFileSync(paths.tlsKeyFile, 'KEY\n', { mode: 0o600 });
  writeFileSync(join(paths.templatesDir, 'dhcpd.conf.template'), '# mine\n');
  writeFileSync(join(paths.imagesDir, 'u1.img'), 'not in backups');
  writeFileSync(paths.authorizedKeysFile, 'ssh-ed25519 AAAA alice\n', { mode: 0o600 });
  return { dir, root, paths };
}

async function backupOf(paths: ReturnType<typeof storagePaths>, name = 'b.tar.gz') {
  return makeBackup({ paths, snapshotter: openSnapshotter(paths), fileName: name, productVersion: '0.1.0', now: () => new Date('2026-12-06T10:15:00Z') });
}

async function savedConf(root: string): Promise<string> {
  const store = await openStore({ paths: storagePaths(root) });
  try {
    return renderClusterConf(await store.clusterConf());
  } finally {
    await store.close();
  }
}

test('the schema version the host checks against is the last migration', (t) => {
  t.is(DATABASE_SCHEMA_VERSION, MIGRATIONS.at(-1)!.version);
});

test('backupFileName is sortable UTC', (t) => {
  t.is(backupFileName(new Date('2026-12-06T10:15:00.123Z')), 'cw-backup-20261206T101500Z.tar.gz');
  t.is(backupFileName(new Date('2026-12-06T10:15:00Z'), 'auto'), 'cw-backup-auto-20261206T101500Z.tar.gz');
});

test('a backup holds the database, secrets, certificate and templates (not images), 0600, with a manifest', async (t) => {
  const { paths } = await source(t);
  const result = await backupOf(paths);
  t.is(statSync(result.file).mode & 0o777, 0o600);
  t.deepEqual(
    result.manifest.members.map((m) => m.path),
    ['admins/authorized_keys', 'db/cw.sqlite', 'etc/templates/dhcpd.conf.template', 'secrets/db-password', 'secrets/tls-server.key', 'tls/server.crt'],
  );
  t.is(result.manifest.schemaVersion, DATABASE_SCHEMA_VERSION);
  t.is(result.manifest.productVersion, '0.1.0');
  t.is(result.manifest.createdAt, '2026-12-06T10:15:00.000Z');
  // Only the archive is left in backup/: the staging directory is gone.
  t.deepEqual(readdirSync(paths.backupDir), ['b.tar.gz']);
  const manifest = await readBackupArchive(result.file);
  t.deepEqual(manifest, result.manifest);
});

test('restore into an empty storage directory gives the same cluster, settings and secrets', async (t) => {
  const { dir, root, paths } = await source(t);
  const { file } = await backupOf(paths);
  const target = join(dir, 'restored');
  const { keptAside } = await restoreBackup({ file, storageDir: target, force: false });
  t.deepEqual(keptAside, []);
  t.is(await savedConf(target), await savedConf(root));
  const restored = storagePaths(target);
  t.is(readFileSync(restored.dbPasswordFile, 'utf8'), readFileSync(paths.dbPasswordFile, 'utf8'));
  t.is(statSync(restored.dbPasswordFile).mode & 0o777, 0o600);
  t.is(statSync(restored.secretsDir).mode & 0o777, 0o700);
  t.is(statSync(restored.tlsCertFile).mode & 0o777, 0o644);
  t.is(readFileSync(join(restored.templatesDir, 'dhcpd.conf.template'), 'utf8'), '# mine\n');
  t.is(readFileSync(restored.authorizedKeysFile, 'utf8'), 'ssh-ed25519 AAAA alice\n');
  t.is(statSync(restored.authorizedKeysFile).mode & 0o777, 0o600);
  t.is(statSync(restored.adminsDir).mode & 0o777, 0o700);
  t.false(existsSync(join(restored.imagesDir, 'u1.img')));
  t.deepEqual(readdirSync(target).filter((n) => n.startsWith('.')), []);
  const store = await openStore({ paths: restored });
  t.is(await store.getSetting('domain'), 'hpc.example.org');
  await store.close();
});

test('restore over an existing database is refused without --force, and with it the old one is kept aside', async (t) => {
  const { dir, paths } = await source(t);
  const { file } = await backupOf(paths);
  const other = await source(t, 'iprange 10.9.1.100/24\nnode 52:54:00:00:09:99\n');
  const before = await savedConf(other.root);
  const err = await t.throwsAsync(restoreBackup({ file, storageDir: other.root, force: false }), { instanceOf: ExitError });
  t.regex(err.message, /already holds db\/cw\.sqlite.*--force.*nothing was changed/);
  t.is(await savedConf(other.root), before);

  const when = new Date('2026-12-06T11:00:00Z');
  const { keptAside } = await restoreBackup({ file, storageDir: other.root, force: true, now: () => when });
  t.true(keptAside.includes('db.before-restore-20261206T110000Z'));
  t.is(await savedConf(other.root), await savedConf(join(dir, 'src')));
  const aside = await openStore({ paths: { ...storagePaths(other.root), dbFile: join(other.root, 'db.before-restore-20261206T110000Z', 'cw.sqlite') } });
  t.is(renderClusterConf(await aside.clusterConf()), before);
  await aside.close();
});

/** Expects the archive to be refused with `pattern` and nothing written into a fresh storage directory. */
async function refused(t: import('ava').ExecutionContext, file: string, pattern: RegExp, dir: string) {
  const target = join(dir, `t-${Math.random().toString(16).slice(2)}`);
  const err = await t.throwsAsync(restoreBackup({ file, storageDir: target, force: false }), { instanceOf: ExitError });
  t.regex(err.message, pattern);
  t.regex(err.message, /nothing was changed/);
  t.false(existsSync(target));
}

test('a truncated, damaged or foreign archive is refused with nothing written', async (t) => {
  const { dir, paths } = await source(t);
  const { file } = await backupOf(paths);
  const bytes = readFileSync(file);

  const truncated = join(dir, 'truncated.tar.gz');
  writeFileSync(truncated, bytes);
  truncateSync(truncated, Math.floor(bytes.length / 2));
  await refused(t, truncated, /corrupt or truncated|lacks/, dir);

  // Uncompressed and cut inside a member: the checksums catch it even where gzip would not.
  execFileSync('sh', ['-c', `gzip -dc "$1" > "$2"`, 'sh', file, join(dir, 'plain.tar')]);
  const plain = readFileSync(join(dir, 'plain.tar'));
  const cut = join(dir, 'cut.tar');
  writeFileSync(cut, plain.subarray(0, 4096));
  await refused(t, cut, /truncated|lacks/, dir);

  const flipped = Buffer.from(plain);
  const at = plain.indexOf(Buffer.from('SQLite format 3'));
  flipped[at + 200] = flipped[at + 200]! ^ 0xff;
  const damaged = join(dir, 'damaged.tar');
  writeFileSync(damaged, flipped);
  await refused(t, damaged, /db\/cw\.sqlite does not match its checksum/, dir);

  const foreignDir = join(dir, 'foreign');
  mkdirSync(foreignDir);
  writeFileSync(join(foreignDir, 'notes.txt'), 'hello');
  const foreign = join(dir, 'foreign.tar.gz');
  execFileSync('tar', ['-czf', foreign, '-C', foreignDir, 'notes.txt']);
  await refused(t, foreign, /first member is "notes\.txt", not manifest\.json/, dir);

  const garbage = join(dir, 'garbage.tar.gz');
  writeFileSync(garbage, 'this is not an archive at all\n'.repeat(50));
  await refused(t, garbage, /corrupt or truncated|not a cw-headnode backup/, dir);
  await refused(t, join(dir, 'missing.tar.gz'), /cannot read it/, dir);
});

/** A copy of the good archive's members with one more entry made by GNU tar (`extra` below `root`). */
function hostile(dir: string, good: string, name: string, add: (root: string) => string[]): string {
  const root = join(dir, `h-${name}`);
  mkdirSync(root);
  execFileSync('tar', ['-xzf', good, '-C', root]);
  const extra = add(root);
  const out = join(dir, `${name}.tar`);
  execFileSync('tar', ['-cf', out, '-C', root, '--absolute-names', 'manifest.json', 'db/cw.sqlite', ...extra]);
  return out;
}

test('hostile members are refused: .., absolute paths, symlinks, devices, unlisted names', async (t) => {
  const { dir, paths } = await source(t);
  const { file } = await backupOf(paths);
  const dotdot = hostile(dir, file, 'dotdot', (root) => {
    writeFileSync(join(root, 'evil'), 'x');
    return ['secrets/../evil'];
  });
  await refused(t, dotdot, /not a path a backup may contain|only regular files/, dir);
  const abs = hostile(dir, file, 'abs', (root) => {
    writeFileSync(join(root, 'abs.txt'), 'x');
    return [join(root, 'abs.txt')];
  });
  await refused(t, abs, /not a path a backup may contain/, dir);
  const link = hostile(dir, file, 'link', (root) => {
    symlinkSync('/etc/passwd', join(root, 'secrets', 'evil'));
    return ['secrets/evil'];
  });
  await refused(t, link, /SymbolicLink entry: only regular files/, dir);
  const unlisted = hostile(dir, file, 'unlisted', (root) => {
    writeFileSync(join(root, 'secrets', 'extra'), 'x');
    return ['secrets/extra'];
  });
  await refused(t, unlisted, /secrets\/extra, which manifest\.json does not name/, dir);
  if (process.getuid?.() === 0) {
    const dev = hostile(dir, file, 'dev', (root) => {
      execFileSync('mknod', [join(root, 'secrets', 'null'), 'c', '1', '3']);
      return ['secrets/null'];
    });
    await refused(t, dev, /CharacterDevice entry: only regular files/, dir);
  }
});

test('a manifest from a newer release is refused before anything is written', async (t) => {
  const { dir, paths } = await source(t);
  const { file } = await backupOf(paths);
  const root = join(dir, 'newer');
  mkdirSync(root);
  execFileSync('tar', ['-xzf', file, '-C', root]);
  const manifest = JSON.parse(readFileSync(join(root, 'manifest.json'), 'utf8')) as { schemaVersion: number; productVersion: string };
  manifest.schemaVersion = DATABASE_SCHEMA_VERSION + 1;
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest));
  const out = join(dir, 'newer.tar.gz');
  const members = (manifest as unknown as { members: Array<{ path: string }> }).members.map((m) => m.path);
  execFileSync('tar', ['-czf', out, '-C', root, 'manifest.json', ...members]);
  await refused(t, out, /schema \d+, newer than this cw-containerctl knows/, dir);
  const err = await t.throwsAsync(verifyBackup(file, '0.0.9'));
  t.regex(err.message, /made by cw-headnode 0\.1\.0; the image is 0\.0\.9/);
  await t.notThrowsAsync(verifyBackup(file, '0.10.0'));
  t.true(new BackupArchiveError('x') instanceof Error);
});
