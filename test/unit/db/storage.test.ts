import test from 'ava';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ensureSecrets,
  runtimePaths,
} from '../../../src/appliance/storage.js';
import { storagePaths } from '../../../src/lib/storage-layout.js';
import { tempDir } from '../lib/keys.js';

const modeOf = (path: string): number => statSync(path).mode & 0o777;

function setup(t: { teardown(fn: () => void): void }) {
  const { dir, cleanup } = tempDir('cw-storage-');
  t.teardown(cleanup);
  return { dir, paths: storagePaths(dir) };
}

test('runtimePaths honours the socket overrides', (t) => {
  t.is(runtimePaths({}).apiSocket, '/run/cw/api.sock');
  t.is(runtimePaths({}).supervisorSocket, '/run/cw/supervisor.sock');
  t.is(runtimePaths({ CW_API_SOCKET: '/tmp/a.sock' }).apiSocket, '/tmp/a.sock');
  t.is(runtimePaths({ CW_SUPERVISOR_SOCKET: '/tmp/s.sock' }).supervisorSocket, '/tmp/s.sock');
});

test('ensureSecrets creates a 0700 directory and a 0600 database password', (t) => {
  const { paths } = setup(t);
  const { dbPassword } = ensureSecrets(paths);
  t.regex(dbPassword, /^[A-Za-z0-9_-]{43}$/);
  t.is(modeOf(paths.secretsDir), 0o700);
  t.is(modeOf(paths.dbPasswordFile), 0o600);
  t.is(readFileSync(paths.dbPasswordFile, 'utf8'), `${dbPassword}\n`);
  t.deepEqual(readdirSync(paths.secretsDir), ['db-password']);
});

test('ensureSecrets returns the same password on every call', (t) => {
  const { paths } = setup(t);
  const first = ensureSecrets(paths).dbPassword;
  t.is(ensureSecrets(paths).dbPassword, first);
  t.is(ensureSecrets(storagePaths(paths.root)).dbPassword, first);
  t.not(ensureSecrets(storagePaths(`${paths.root}/other`)).dbPassword, first);
});

test('ensureSecrets tightens loose permissions on existing files', (t) => {
  const { paths } = setup(t);
  ensureSecrets(paths);
  chmodSync(paths.secretsDir, 0o755);
  chmodSync(paths.dbPasswordFile, 0o644);
  ensureSecrets(paths);
  t.is(modeOf(paths.secretsDir), 0o700);
  t.is(modeOf(paths.dbPasswordFile), 0o600);
});

test('ensureSecrets refuses a corrupt password file rather than replacing it', (t) => {
  const { paths } = setup(t);
  mkdirSync(paths.secretsDir, { recursive: true });
  writeFileSync(paths.dbPasswordFile, 'bad value with spaces\n');
  t.throws(() => ensureSecrets(paths), { message: /db-password is corrupt/ });
  t.is(readFileSync(paths.dbPasswordFile, 'utf8'), 'bad value with spaces\n');
});

test('processes racing on first start all get the one password that was written', async (t) => {
  const { paths } = setup(t);
  const storage = new URL('../../../src/appliance/storage.ts', import.meta.url).href;
  const layout = new URL('../../../src/lib/storage-layout.ts', import.meta.url).href;
  const script = `import { ensureSecrets } from ${JSON.stringify(storage)};
import { storagePaths } from ${JSON.stringify(layout)};
process.stdout.write(ensureSecrets(storagePaths(${JSON.stringify(paths.root)})).dbPassword);`;
  const run = () => promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  const results = await Promise.all([run(), run(), run(), run()]);
  const values = new Set(results.map((r) => r.stdout));
  t.is(values.size, 1);
  t.is(readFileSync(paths.dbPasswordFile, 'utf8').trim(), [...values][0]!);
  t.deepEqual(readdirSync(paths.secretsDir), ['db-password']);
});
