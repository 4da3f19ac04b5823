import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { writeFileAtomic, writeFileAtomicSync, writeStreamAtomic } from '../../../src/lib/atomic-write.js';
import { tempDir } from './keys.js';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

function setup(t: { teardown(fn: () => void): void }): string {
  const { dir, cleanup } = tempDir('cw-atomic-');
  t.teardown(cleanup);
  return dir;
}

/** Runs `fn` under umask 077 where the umask can be changed (not in a worker thread); the umask is the
 * whole process's, so the tests that change it run serially. */
async function underUmask077(fn: () => unknown): Promise<void> {
  const old = isMainThread ? process.umask(0o077) : undefined;
  try {
    await fn();
  } finally {
    if (old !== undefined) process.umask(old);
  }
}

test.serial('writeFileAtomic sets the mode whatever the umask and leaves no temporary file', async (t) => {
  const dir = setup(t);
  const file = join(dir, 'conf');
  // process.umask cannot be changed from a worker thread; the mode is still checked there.
  await underUmask077(() => writeFileAtomicSync(file, 'one\n', { mode: 0o644 }));
  t.is(modeOf(file), 0o644);
  writeFileAtomicSync(file, 'two\n', { mode: 0o600 });
  t.is(readFileSync(file, 'utf8'), 'two\n');
  t.is(modeOf(file), 0o600);
  t.deepEqual(readdirSync(dir), ['conf']);
});

test('writeFileAtomic fails cleanly when the directory is missing', async (t) => {
  const dir = setup(t);
  t.throws(() => writeFileAtomicSync(join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
  await t.throwsAsync(writeFileAtomic(join(dir, 'missing', 'f'), 'x'), { code: 'ENOENT' });
});

test.serial('the asynchronous writeFileAtomic replaces the content with the exact mode and leaves nothing else', async (t) => {
  const dir = setup(t);
  const file = join(dir, 'model.json');
  await underUmask077(() => writeFileAtomic(file, 'one\n'));
  t.is(modeOf(file), 0o644);
  await writeFileAtomic(file, Buffer.from('two\n'), { mode: 0o600 });
  t.is(readFileSync(file, 'utf8'), 'two\n');
  t.is(modeOf(file), 0o600);
  t.deepEqual(readdirSync(dir), ['model.json']);
});

test.serial('with umask: true the umask reduces the mode, as for a plain writeFile', async (t) => {
  const dir = setup(t);
  const file = join(dir, 'cluster.conf');
  await underUmask077(() => writeFileAtomic(file, 'nodes 1\n', { mode: 0o644, umask: true }));
  t.is(modeOf(file), 0o600);
  t.is(readFileSync(file, 'utf8'), 'nodes 1\n');
  t.deepEqual(readdirSync(dir), ['cluster.conf']);
});

test('writeStreamAtomic: the file appears whole with its mode; a failing stream leaves nothing', async (t) => {
  const dir = setup(t);
  const file = join(dir, 'archive.tar.gz');
  async function* chunks(fail: boolean) {
    for (let i = 0; i < 64; i++) yield Buffer.alloc(64 * 1024, i);
    if (fail) throw new Error('source broke');
  }
  await writeStreamAtomic(file, chunks(false), { mode: 0o600 });
  t.is(readFileSync(file).length, 64 * 64 * 1024);
  t.is(modeOf(file), 0o600);
  const other = join(dir, 'broken.tar.gz');
  await t.throwsAsync(writeStreamAtomic(other, chunks(true)), { message: 'source broke' });
  t.deepEqual(readdirSync(dir), ['archive.tar.gz']);
});
