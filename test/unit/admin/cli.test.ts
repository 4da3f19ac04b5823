import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cwAppliance, type CliIo } from '../../../src/appliance/admin/cli.js';
import type { SupervisorHealth } from '../../../src/appliance/api/supervisor-client.js';
import { storagePaths, type StoragePaths } from '../../../src/lib/storage-layout.js';
import { hashPassword } from '../../../src/lib/password.js';
import { ExitError } from '../../../src/lib/errors.js';
import { fatalReport, healthyReport } from '../api/helpers.js';
import { generateKey, tempDir } from '../lib/keys.js';

const alice = generateKey('ed25519', { comment: 'alice@desk' });
const bob = generateKey('rsa', { bits: 2048, comment: 'bob@desk' });

interface Appliance {
  storage: string;
  /** The storage layout under `storage`, as the appliance defines it. */
  paths: StoragePaths;
  /** Runs cw-appliance in-process; resolves with stdout, rejects with the ExitError. */
  run(argv: string[], extra?: Partial<CliIo> & { env?: NodeJS.ProcessEnv }): Promise<string>;
  authorizedKeys(): string;
}

function appliance(t: { teardown(fn: () => void): void }): Appliance {
  const { dir, cleanup } = tempDir('cw-appliance-');
  t.teardown(cleanup);
  const storage = join(dir, 'storage');
  const paths = storagePaths(storage);
  return {
    storage,
    paths,
    async run(argv, extra = {}) {
      const lines: string[] = [];
      await cwAppliance(argv, {
        supervisorHealth: async () => healthyReport,
        ...extra,
        env: { CW_STORAGE: storage, ...extra.env },
        out: (line) => lines.push(line),
      });
      return lines.join('\n');
    },
    authorizedKeys: () => readFileSync(paths.authorizedKeysFile, 'utf8'),
  };
}

const modeOf = (path: string): number => statSync(path).mode & 0o777;

test('admin-add stores the admin and renders authorized_keys 0600', async (t) => {
  const a = appliance(t);
  const out = await a.run(['admin-add', 'alice', alice.publicLine]);
  t.is(out, `Added admin alice (ssh-ed25519 ${alice.fingerprint})`);
  t.is(a.authorizedKeys(), `# cw admin alice\n${alice.publicLine}\n`);
  t.is(modeOf(a.paths.authorizedKeysFile), 0o600);
  t.is(modeOf(a.paths.adminsDir), 0o700);
  t.deepEqual(readdirSync(a.paths.adminsDir), ['authorized_keys']);
});

test('authorized_keys lists every admin, by name, with normalized key lines', async (t) => {
  const a = appliance(t);
  const [type, blob, comment] = bob.publicLine.split(' ');
  await a.run(['admin-add', 'bob', `  ${type}\t${blob}  ${comment}\n`]);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  t.is(a.authorizedKeys(), `# cw admin alice\n${alice.publicLine}\n# cw admin bob\n${bob.publicLine}\n`);
});

test('admin-ls prints the admins as JSON without the key material', async (t) => {
  const a = appliance(t);
  t.deepEqual(JSON.parse(await a.run(['admin-ls'])), []);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  const listed = JSON.parse(await a.run(['admin-ls'])) as Array<Record<string, string>>;
  t.is(listed.length, 1);
  t.deepEqual(Object.keys(listed[0]!).sort(), ['addedAt', 'comment', 'fingerprint', 'keyType', 'name']);
  t.like(listed[0], { name: 'alice', keyType: 'ssh-ed25519', fingerprint: alice.fingerprint, comment: 'alice@desk' });
  t.false(Number.isNaN(Date.parse(listed[0]!.addedAt!)));
});

test('an invalid key is refused and nothing is written', async (t) => {
  const a = appliance(t);
  const refused = [
    'garbage',
    alice.privateText,
    `command="x" ${alice.publicLine}`,
    `${alice.publicLine}\n${bob.publicLine}`,
    generateKey('rsa', { bits: 1024 }).publicLine,
    generateKey('dsa').publicLine,
  ];
  for (const key of refused) {
    await t.throwsAsync(a.run(['admin-add', 'alice', key]), { instanceOf: ExitError, message: /^invalid ssh public key: / });
  }
  t.false(existsSync(a.storage), 'no storage file or directory was created');
});

test('an invalid admin name is refused before anything is written', async (t) => {
  const a = appliance(t);
  for (const name of ['Alice', '1admin', 'ali ce', 'al;ce', 'a\nb', 'x'.repeat(33), '']) {
    await t.throwsAsync(a.run(['admin-add', name, alice.publicLine]), { instanceOf: ExitError, message: /^invalid admin name/ });
  }
  t.false(existsSync(a.storage));
});

test('a duplicate admin is refused unless --replace, and authorized_keys follows', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  const before = a.authorizedKeys();
  await t.throwsAsync(a.run(['admin-add', 'alice', bob.publicLine]), { instanceOf: ExitError, message: 'admin alice already exists' });
  t.is(a.authorizedKeys(), before);
  t.is(await a.run(['admin-add', 'alice', bob.publicLine, '--replace']), `Added admin alice (ssh-rsa ${bob.fingerprint})`);
  t.is(a.authorizedKeys(), `# cw admin alice\n${bob.publicLine}\n`);
});

test('when authorized_keys cannot be written the admin is not added either', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  const file = a.paths.authorizedKeysFile;
  rmSync(file);
  mkdirSync(join(file, 'blocker'), { recursive: true });
  await t.throwsAsync(a.run(['admin-add', 'bob', bob.publicLine]));
  t.deepEqual(
    (JSON.parse(await a.run(['admin-ls'])) as Array<{ name: string }>).map((x) => x.name),
    ['alice'],
  );
  t.deepEqual(readdirSync(a.paths.adminsDir), ['authorized_keys'], 'no temporary file is left');
});

test('a key already registered for another admin is refused', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  await t.throwsAsync(a.run(['admin-add', 'mallory', alice.publicLine]), {
    instanceOf: ExitError,
    message: `key ${alice.fingerprint} is already registered for admin alice`,
  });
  t.is(JSON.parse(await a.run(['admin-ls'])).length, 1);
});

test('admin-rm removes the admin and its authorized_keys line; the others stay', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  await a.run(['admin-add', 'bob', bob.publicLine]);
  t.is(await a.run(['admin-rm', 'alice']), `Removed admin alice (ssh-ed25519 ${alice.fingerprint})`);
  t.is(a.authorizedKeys(), `# cw admin bob\n${bob.publicLine}\n`);
  t.is(modeOf(a.paths.authorizedKeysFile), 0o600);
  t.deepEqual((JSON.parse(await a.run(['admin-ls'])) as Array<{ name: string }>).map((x) => x.name), ['bob']);
  // The key is free again: another admin may register it.
  await a.run(['admin-add', 'carol', alice.publicLine]);
});

test('admin-rm of an unknown or invalid name is a clear error and changes nothing', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  const before = a.authorizedKeys();
  await t.throwsAsync(a.run(['admin-rm', 'bob']), { instanceOf: ExitError, message: 'no such admin: bob (cw-appliance admin-ls lists them)' });
  await t.throwsAsync(a.run(['admin-rm', '../alice']), { instanceOf: ExitError, message: /^invalid admin name "\.\.\/alice": / });
  await t.throwsAsync(a.run(['admin-rm']), { instanceOf: ExitError, message: 'wrong number of arguments (usage: cw-appliance admin-rm NAME)' });
  t.is(a.authorizedKeys(), before);
  t.is(JSON.parse(await a.run(['admin-ls'])).length, 1);
});

test('when authorized_keys cannot be written the admin is not removed either', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  const file = a.paths.authorizedKeysFile;
  rmSync(file);
  mkdirSync(join(file, 'blocker'), { recursive: true });
  await t.throwsAsync(a.run(['admin-rm', 'alice']));
  t.is(JSON.parse(await a.run(['admin-ls'])).length, 1);
});

test('root-pass stores a hash from CW_ROOT_HASH and keeps the database password to itself', async (t) => {
  const a = appliance(t);
  t.deepEqual(JSON.parse(await a.run(['root-status'])), { set: false, scheme: 'scrypt' });
  const hash = await hashPassword('a good root password');
  const out = await a.run(['root-pass'], { env: { CW_ROOT_HASH: hash } });
  // The file is still made (for the monitoring login), but its secret is never printed.
  const secret = readFileSync(a.paths.dbPasswordFile, 'utf8').trim();
  t.is(out, 'Root password set');
  t.false(out.includes(secret));
  t.false(/database password/i.test(out));
  t.is(modeOf(a.paths.dbPasswordFile), 0o600);
  t.is(modeOf(a.paths.secretsDir), 0o700);
  const status = await a.run(['root-status']);
  t.deepEqual(JSON.parse(status), { set: true, scheme: 'scrypt' });
  t.false(status.includes('$scrypt$'), 'the hash is never shown');
  // A second root-pass keeps the same database password and still does not print it.
  t.is(await a.run(['root-pass'], { env: { CW_ROOT_HASH: await hashPassword('another one') } }), 'Root password set');
  t.is(readFileSync(a.paths.dbPasswordFile, 'utf8').trim(), secret);
});

test('root-pass refuses a missing, empty or clear-text CW_ROOT_HASH without echoing it', async (t) => {
  const a = appliance(t);
  await t.throwsAsync(a.run(['root-pass']), { instanceOf: ExitError, message: /CW_ROOT_HASH is empty/ });
  await t.throwsAsync(a.run(['root-pass'], { env: { CW_ROOT_HASH: '' } }), { message: /CW_ROOT_HASH is empty/ });
  const err = await t.throwsAsync(a.run(['root-pass'], { env: { CW_ROOT_HASH: 'hunter2-clear-text' } }), {
    instanceOf: ExitError,
    message: /CW_ROOT_HASH is not a password hash/,
  });
  t.false(err.message.includes('hunter2'));
  t.false(existsSync(a.storage), 'nothing was written');
  t.deepEqual(JSON.parse(await a.run(['root-status'])), { set: false, scheme: 'scrypt' });
});

test('cluster-id stores a valid token and prints it back', async (t) => {
  const a = appliance(t);
  await t.throwsAsync(a.run(['cluster-id']), { instanceOf: ExitError, message: 'no cluster id set' });
  const token = 'abcDEF012._~+/=-xyz';
  t.is(await a.run(['cluster-id', token]), 'Cluster ID set');
  t.is(await a.run(['cluster-id']), token);
  t.is(await a.run(['cluster-id', '--', '-starts-with-dash']), 'Cluster ID set');
  t.is(await a.run(['cluster-id']), '-starts-with-dash');
});

test('cluster-id refuses spaces, newlines, semicolons and bad lengths', async (t) => {
  const a = appliance(t);
  for (const token of ['has space-123', 'line1234\nline2', 'abcdefgh;reboot', 'short', 'x'.repeat(513), 'quote"12345678', '']) {
    await t.throwsAsync(a.run(['cluster-id', token]), { instanceOf: ExitError, message: /^invalid cluster id/ }, JSON.stringify(token));
  }
  t.false(existsSync(a.storage));
});

test('cluster-id takes the token from env CW_CLUSTER_ID (how cw-containerctl passes it, off the argv)', async (t) => {
  const a = appliance(t);
  const token = 'tok_from_the_environment';
  t.is(await a.run(['cluster-id'], { env: { CW_CLUSTER_ID: token } }), 'Cluster ID set');
  t.is(await a.run(['cluster-id']), token);
  await t.throwsAsync(a.run(['cluster-id'], { env: { CW_CLUSTER_ID: '' } }), { instanceOf: ExitError, message: 'CW_CLUSTER_ID is empty, nothing changed' });
  await t.throwsAsync(a.run(['cluster-id', 'tok_on_the_argv'], { env: { CW_CLUSTER_ID: 'tok_in_the_env' } }), { message: /either in CW_CLUSTER_ID or as TOKEN, not both/ });
  await t.throwsAsync(a.run(['cluster-id'], { env: { CW_CLUSTER_ID: 'bad token;reboot' } }), { message: /^invalid cluster id/ });
  t.is(await a.run(['cluster-id']), token, 'nothing changed');
});

test('health prints the report and succeeds only when healthy', async (t) => {
  const a = appliance(t);
  const healthy = await a.run(['health']);
  t.deepEqual(JSON.parse(healthy), healthyReport);

  const lines: string[] = [];
  await t.throwsAsync(
    cwAppliance(['health'], { env: {}, out: (l) => lines.push(l), supervisorHealth: async () => fatalReport }),
    { instanceOf: ExitError, message: 'appliance is unhealthy (tftpd fatal)' },
  );
  t.deepEqual(JSON.parse(lines.join('\n')), fatalReport);

  const down: SupervisorHealth = async () => {
    throw new Error('supervisor not reachable at /run/cw/supervisor.sock: ENOENT');
  };
  await t.throwsAsync(a.run(['health'], { supervisorHealth: down }), { message: /supervisor not reachable/ });
});

test('usage errors are one-line ExitErrors', async (t) => {
  const a = appliance(t);
  await t.throwsAsync(a.run([]), { instanceOf: ExitError, message: /no command given/ });
  await t.throwsAsync(a.run(['frobnicate']), { instanceOf: ExitError, message: 'unknown command "frobnicate" (cw-appliance --help lists them)' });
  await t.throwsAsync(a.run(['admin-add', 'alice']), { message: /wrong number of arguments \(usage: cw-appliance admin-add NAME KEY/ });
  await t.throwsAsync(a.run(['admin-ls', '--long']), { message: /unknown option --long/ });
  await t.throwsAsync(a.run(['cluster-id', 'a-token-1', 'b-token-2']), { message: /wrong number of arguments/ });
  t.regex(await a.run(['--help']), /^usage: cw-appliance COMMAND/);
});

test('the real command prints one ERROR line on stderr and exits 1', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const main = new URL('../../../src/appliance/admin/main.ts', import.meta.url).pathname;
  const env = { ...process.env, CW_STORAGE: dir, CW_SUPERVISOR_SOCKET: join(dir, 'none.sock') };
  const run = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', main, ...args], { env }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
  const missing = await run('cluster-id');
  t.is(missing.code, 1);
  t.is(missing.stderr, 'ERROR: no cluster id set\n');
  t.is(missing.stdout, '');

  const rm = await run('admin-rm', 'nobody');
  t.is(rm.code, 1);
  t.is(rm.stderr, 'ERROR: no such admin: nobody (cw-appliance admin-ls lists them)\n');

  const set = await run('cluster-id', 'cluster-token-42');
  t.is(set.code, 0);
  t.is(set.stdout, 'Cluster ID set\n');

  const health = await run('health');
  t.is(health.code, 1);
  t.deepEqual(JSON.parse(health.stdout), { status: 'unknown', services: {} });
  t.regex(health.stderr, /^ERROR: supervisor not reachable at .*none\.sock: ENOENT\n$/);
});

test('options before or after the arguments, "--" ends them, and only option-shaped words are options', async (t) => {
  const a = appliance(t);
  await a.run(['admin-add', 'alice', alice.publicLine]);
  t.is(await a.run(['admin-add', '--replace', 'alice', bob.publicLine]), `Added admin alice (ssh-rsa ${bob.fingerprint})`);
  t.is(await a.run(['cluster-id', '--', '--token-like-an-option']), 'Cluster ID set');
  t.is(await a.run(['cluster-id']), '--token-like-an-option');
  await t.throwsAsync(a.run(['health', '--help']), { message: 'unknown option --help (usage: cw-appliance health)' });
  await t.throwsAsync(a.run(['--replace', 'admin-add', 'a', 'b']), { message: 'unknown command "--replace" (cw-appliance --help lists them)' });
  // A pasted private key is an argument refused by the key check, not an option echoed back.
  const err = await t.throwsAsync(a.run(['admin-add', 'bob', alice.privateText]), { message: /^invalid ssh public key: / });
  t.false(err.message.includes('PRIVATE'));
  for (const help of ['help', '-h', '--help']) t.regex(await a.run([help]), /^usage: cw-appliance COMMAND/);
  t.regex(await a.run(['-h', 'health']), /^usage: cw-appliance COMMAND/);
});
