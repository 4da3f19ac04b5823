import test from 'ava';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backup } from '../../../src/host/containerctl/backup/backup.js';
import { tempDir } from '../lib/keys.js';
import { MemoryEngine, testContext } from './memory-engine.js';

/** An appliance whose `cw-appliance backup` writes a small file into STORAGE/backup/ like the real one. */
function setup(t: { teardown(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('cw-ctl-backup-');
  t.teardown(cleanup);
  const storage = join(dir, 'storage');
  mkdirSync(join(storage, 'backup'), { recursive: true });
  const engine = new MemoryEngine();
  engine.addContainer({ name: 'cw-headnode', labels: { 'io.cw-headnode.appliance': 'true', 'io.cw-headnode.storage': storage } });
  engine.onExec = (cmd) => {
    const output = cmd.includes('--output') ? cmd[cmd.indexOf('--output') + 1]! : 'cw-backup-20261206T101500Z.tar.gz';
    writeFileSync(join(storage, 'backup', output), 'ARCHIVE', { mode: 0o600 });
    return { exitCode: 0, stdout: `${JSON.stringify({ file: output, size: 7, schemaVersion: 3, productVersion: '0.1.0', members: ['db/cw.sqlite'] })}\n`, stderr: '' };
  };
  return { dir, storage, engine, ctx: testContext(engine) };
}

test('backup without FILE leaves the archive in STORAGE/backup/ and says how to restore it', async (t) => {
  const { storage, engine, ctx } = setup(t);
  await backup({}, ctx);
  t.deepEqual(engine.execs.map((e) => e.cmd), [['cw-appliance', 'backup']]);
  t.regex(ctx.out.text, new RegExp(`^Backup written to ${storage}/backup/cw-backup-20261206T101500Z\\.tar\\.gz \\(7 B, schema 3, cw-headnode 0\\.1\\.0\\)`, 'm'));
  t.regex(ctx.out.text, /cw-containerctl start --restore \S+ NEW_STORAGE/);
});

test('backup FILE elsewhere: copied out 0600 and the temporary archive in the storage removed', async (t) => {
  const { dir, storage, engine, ctx } = setup(t);
  const file = join(dir, 'head1.tar.gz');
  await backup({ file }, ctx);
  const cmd = engine.execs[0]!.cmd;
  t.deepEqual(cmd.slice(0, 3), ['cw-appliance', 'backup', '--output']);
  t.regex(cmd[3]!, /^cw-export-[0-9a-f]{12}\.tmp$/);
  t.is(readFileSync(file, 'utf8'), 'ARCHIVE');
  t.is(statSync(file).mode & 0o777, 0o600);
  t.deepEqual(readdirSync(join(storage, 'backup')), []);
  t.deepEqual(readdirSync(dir).sort(), ['head1.tar.gz', 'storage']);
});

test('backup FILE that exists, or in a missing directory, is refused before the appliance is asked', async (t) => {
  const { dir, engine, ctx } = setup(t);
  writeFileSync(join(dir, 'old.tar.gz'), 'x');
  await t.throwsAsync(backup({ file: join(dir, 'old.tar.gz') }, ctx), { message: /old\.tar\.gz exists; choose another file name/ });
  await t.throwsAsync(backup({ file: join(dir, 'nope', 'b.tar.gz') }, ctx), { message: /directory .*nope does not exist/ });
  t.is(engine.execs.length, 0);
  t.false(existsSync(join(dir, 'nope')));
});
