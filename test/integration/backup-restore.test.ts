// Backup and restore against the real appliance: a backup taken while a 10,000-node `cw-cluster-conf load`
// runs holds the cluster from before or after the load, never half of it; restored into an empty storage
// directory for a second appliance it gives the same `cw-cluster-conf save`; a restore over an existing
// database is refused unless forced (the old one kept aside); an image exported from one head node and
// imported into the other keeps its content and metadata; the appliance keeps its own scheduled backups.
import test from 'ava';
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { ApiClient } from '../../src/tools/common/client/api-client.js';
import { requireTools } from '../helpers/tools.js';
import { AdminSession, ctl, sh, startOnTestBridge, tempDir, waitFor } from './helpers.js';

process.env.DOCKER_HOST = 'unix:///var/run/docker.sock';

const NET = 'cwbkp0';
const SUBNET = '10.226.12.0/24';
const A = { name: 'cwit-bkp-a', ip: '10.226.12.10' };
const B = { name: 'cwit-bkp-b', ip: '10.226.12.11' };
const BIG = 10_000;
// Root for the engine and the test bridge; curl fetches an image the way a node does.
const backupTest = requireTools('root', 'curl');

const work = tempDir('cwbkp');
const storageA = join(work, 'storage-a');
const storageB = join(work, 'storage-b');
const adminA = new AdminSession(tempDir('cwbkp-home-a'), `https://${A.ip}/api/v1`);
const adminB = new AdminSession(tempDir('cwbkp-home-b'), `https://${B.ip}/api/v1`, {}, 'bob');
let imageRef = '';

async function cleanup(): Promise<void> {
  for (const c of [A, B]) await sh('docker', ['rm', '-f', c.name], { reject: false });
  await sh('docker', ['network', 'rm', NET], { reject: false });
  adminA.close();
  adminB.close();
}

async function tool(admin: AdminSession, name: string, args: string[]) {
  const r = await admin.tool(name, args, 300_000);
  if (r.exitCode !== 0) throw new Error(`cw-${name} ${args.join(' ')} failed:\n${r.all}`);
  return r.stdout;
}

const save = (admin: AdminSession) => tool(admin, 'cluster-conf', ['save']);

function mac(prefix: string, i: number): string {
  return `52:54:${prefix}:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
}

/** Starts appliance B on `storageB` (optionally restoring `restore`), with admin bob configured for it. */
async function startB(extra: string[]) {
  const r = await ctl(['start', storageB, imageRef, '--name', B.name, '--network', NET, '--ip', B.ip, '--ssh-port', '22', ...extra]);
  if (r.exitCode !== 0) return r;
  const add = await ctl(['add-admin', adminB.user, `@${adminB.keyFile}.pub`, '--name', B.name]);
  if (add.exitCode !== 0) throw new Error(add.all);
  await adminB.adopt(B.name);
  return r;
}

/** The image's record as the API gives it to `admin`. */
async function imageRecord(admin: AdminSession, name: string): Promise<Record<string, unknown>> {
  const api = new ApiClient({ baseUrl: admin.baseUrl, user: admin.user, sslVerify: admin.sslVerify, env: { SSH_AUTH_SOCK: admin.agentSock } });
  try {
    return await api.get<Record<string, unknown>>(`/image/${name}`);
  } finally {
    await api.close();
  }
}

/** The number of nodes in a backup's database (read here with SQLite, from a copy). */
function nodesIn(file: string): number {
  const dir = tempDir('cwbkp-db');
  try {
    execFileSync('tar', ['-xzf', file, '-C', dir, 'db/cw.sqlite']);
    const db = new Database(join(dir, 'db', 'cw.sqlite'), { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM nodes').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function manifestOf(file: string): { schemaVersion: number; productVersion: string; members: Array<{ path: string }> } {
  return JSON.parse(execFileSync('tar', ['-xzOf', file, 'manifest.json'], { encoding: 'utf8' })) as never;
}

backupTest.before(async () => {
  await cleanup();
  imageRef = await startOnTestBridge({ name: A.name, net: NET, subnet: SUBNET, headIp: A.ip, storage: storageA, admin: adminA });
  await adminB.open();
});

test.after.always(async () => {
  await cleanup();
  rmSync(work, { recursive: true, force: true });
  for (const admin of [adminA, adminB]) rmSync(admin.home, { recursive: true, force: true });
});

backupTest.serial('a backup taken during a 10,000-node load restores to the state before or after it; one after it exactly', async (t) => {
  // A cluster of 120 nodes first, then a load that adds 10,000 more (data only: a subnet off the test bridge).
  const small = ['iprange 10.60.0.1/16', ...Array.from({ length: 120 }, (_, i) => `node ${mac('0c', i)}`)];
  writeFileSync(join(work, 'small.conf'), `${small.join('\n')}\n`);
  await tool(adminA, 'cluster-conf', ['load', join(work, 'small.conf')]);
  await tool(adminA, 'clusterctl', ['--set-domain', 'backup.example.org']);
  const big = [...small, ...Array.from({ length: BIG }, (_, i) => `node ${mac('0d', i)}`)];
  writeFileSync(join(work, 'big.conf'), `${big.join('\n')}\n`);
  const before = await save(adminA);

  // Backups back to back for as long as the load runs: each one must hold all of the load or none of it.
  const during = join(work, 'during.tar.gz');
  const began = Date.now();
  let loading = true;
  const load = tool(adminA, 'cluster-conf', ['load', join(work, 'big.conf')]).finally(() => (loading = false));
  const taken: Array<{ file: string; from: number; to: number }> = [];
  do {
    const file = taken.length === 0 ? during : join(work, `during-${taken.length}.tar.gz`);
    const from = Date.now() - began;
    const backup = await ctl(['backup', file, '--name', A.name]);
    t.is(backup.exitCode, 0, backup.all);
    t.regex(backup.stdout, /^Backup written to .*during(-\d+)?\.tar\.gz \(.*schema \d+, cw-headnode /m);
    taken.push({ file, from, to: Date.now() - began });
  } while (loading);
  await load;
  const loadMs = Date.now() - began;
  const counts = taken.map(({ file }) => nodesIn(file));
  t.log(`load ran 0..${loadMs} ms; backups ${taken.map((b, i) => `${b.from}..${b.to} ms: ${counts[i]} nodes`).join(', ')}`);
  for (const n of counts) t.true(n === 120 || n === 120 + BIG, `a backup holds ${n} nodes: half a load`);
  const after = await save(adminA);
  t.not(after, before);
  t.is(after.split('\n').filter((l) => l.startsWith('node ')).length, 120 + BIG);

  t.is(statSync(during).mode & 0o777, 0o600);
  const manifest = manifestOf(during);
  const members = manifest.members.map((m) => m.path);
  for (const wanted of ['db/cw.sqlite', 'secrets/db-password', 'secrets/tls-server.key', 'admins/authorized_keys', 'tls/server.crt']) t.true(members.includes(wanted), wanted);
  t.deepEqual(members.filter((p) => !/^(db|secrets|admins|tls|ssh|etc\/templates)\//.test(p)), [], 'no images, boot files or logs');

  // Restored into an empty storage directory, a second appliance has the state of one side of the load.
  const restore = await startB(['--restore', during]);
  t.is(restore.exitCode, 0, restore.all);
  t.regex(restore.stdout, /^Restored .*during\.tar\.gz \(made .* by cw-headnode .*, schema \d+\) into /m);
  const restored = await save(adminB);
  t.true(restored === before || restored === after, 'the restored cluster is neither the one before the load nor the one after it');
  t.log(`the backup taken during the load holds the cluster ${restored === after ? 'after' : 'before'} it`);
  t.regex(await tool(adminB, 'clusterctl', ['--get-domain']), /backup\.example\.org/);
  // The secrets came along: the HTTPS key, hence the certificate's fingerprint, is A's.
  t.is(readFileSync(join(storageB, 'secrets', 'tls-server.key'), 'utf8'), readFileSync(join(storageA, 'secrets', 'tls-server.key'), 'utf8'));
  t.is(statSync(join(storageB, 'secrets', 'tls-server.key')).mode & 0o777, 0o600);
  // And the admins' ssh keys (sshd's authorized_keys is rewritten only when admins change).
  const alice = readFileSync(`${adminA.keyFile}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  t.true(execFileSync('tar', ['-xzOf', during, 'admins/authorized_keys'], { encoding: 'utf8' }).includes(alice));
  t.true(readFileSync(join(storageB, 'admins', 'authorized_keys'), 'utf8').includes(alice));

  // A backup after the load, in the default place, restores exactly; over B's database only with --force.
  const second = await ctl(['backup', '--name', A.name]);
  t.is(second.exitCode, 0, second.all);
  const inStorage = /^Backup written to (\S+)/m.exec(second.stdout)?.[1] ?? '';
  t.regex(inStorage, new RegExp(`^${storageA}/backup/cw-backup-\\d{8}T\\d{6}Z\\.tar\\.gz$`));
  t.is((await ctl(['stop', '--name', B.name])).exitCode, 0);
  const refused = await startB(['--restore', inStorage]);
  t.not(refused.exitCode, 0);
  t.regex(refused.all, /ERROR: storage .* already holds db\/cw\.sqlite.*--force.*nothing was changed/);
  t.deepEqual(readdirSync(storageB).filter((n) => n.includes('before-restore')), []);
  const forced = await startB(['--restore', inStorage, '--force']);
  t.is(forced.exitCode, 0, forced.all);
  t.regex(forced.stdout, /Kept the old db aside as .*db\.before-restore-\d{8}T\d{6}Z/);
  t.is(await save(adminB), after);
  const aside = readdirSync(storageB).find((n) => /^db\.before-restore-/.test(n));
  t.truthy(aside && existsSync(join(storageB, aside, 'cw.sqlite')), 'the old database is kept aside');

  // A damaged archive is refused before anything is written.
  const damaged = join(work, 'damaged.tar.gz');
  writeFileSync(damaged, readFileSync(inStorage).subarray(0, 2000));
  const fresh = join(work, 'storage-c');
  const bad = await ctl(['start', fresh, imageRef, '--name', 'cwit-bkp-c', '--network', NET, '--ip', '10.226.12.12', '--restore', damaged]);
  t.not(bad.exitCode, 0);
  t.regex(bad.all, /ERROR: .*damaged\.tar\.gz cannot be restored: .*nothing was changed/);
  t.false(existsSync(fresh));
});

backupTest.serial('an image exported from one head node is imported into another with its checksum and metadata', async (t) => {
  const content = randomBytes(3 * 1024 * 1024);
  const sum = `sha256:${createHash('sha256').update(content).digest('hex')}`;
  writeFileSync(join(work, 'content.img'), content);
  await tool(adminA, 'imgctl', ['create', 'name=carried', 'description=moved between heads', `content=@${join(work, 'content.img')}`]);
  const file = join(work, 'carried.cwimage');
  t.regex(await tool(adminA, 'imgctl', ['-i', 'carried', 'export', file]), /^Exported image carried \(3\.0 MiB, sha256:[0-9a-f]{64}\) to /);
  t.regex(await tool(adminB, 'imgctl', ['import', file]), /^Imported image carried /);
  const onA = await imageRecord(adminA, 'carried');
  const onB = await imageRecord(adminB, 'carried');
  t.like(onB, { name: 'carried', description: 'moved between heads', size: content.length, checksum: sum });
  t.is(onB.checksum, onA.checksum);
  t.not(onB.uid, onA.uid);
  // The head node serves exactly those bytes.
  const served = execFileSync('curl', ['-sf', `http://${B.ip}/images/${String(onB.uid)}.img`], { maxBuffer: 64 << 20 });
  t.is(`sha256:${createHash('sha256').update(served).digest('hex')}`, sum);

  const clash = await adminB.tool('imgctl', ['import', file]);
  t.not(clash.exitCode, 0);
  t.regex(clash.all, /ERROR: an image named carried already exists on the head node; import it under another name with --name NEW/);
  t.regex(await tool(adminB, 'imgctl', ['import', file, '--name', 'carried2']), /^Imported image carried2 /);
});

backupTest.serial('the appliance keeps its own scheduled backups in STORAGE/backup/', async (t) => {
  t.regex(await tool(adminA, 'clusterctl', ['--set-backup-interval', '1m', '--set-backup-keep', '2']), /every 1m, newest 2 kept/);
  // The first one is due at once: there is none yet.
  const { value } = await waitFor(async () => readdirSync(join(storageA, 'backup')).find((n) => /^cw-backup-auto-\d{8}T\d{6}Z\.tar\.gz$/.test(n)), 30_000, 200);
  const file = join(storageA, 'backup', value);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.true(manifestOf(file).members.some((m) => m.path === 'db/cw.sqlite'));
  t.deepEqual(readdirSync(join(storageA, 'backup')).filter((n) => n.startsWith('.')), [], 'no temporary file is left');
  await tool(adminA, 'clusterctl', ['--set-backup-interval', 'off']);
});
