// The remote command of exec: what a real POSIX shell (the node's login shell runs `sh -c STRING`) makes
// of the quoted words must be exactly the words, however hostile.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSshArgv, remoteCommand } from '../../../src/appliance/exec/remote.js';
import { requireTools, toolPath } from '../../helpers/tools.js';

const HOSTILE = [
  '$(touch PWNED)',
  '`touch PWNED`',
  '; touch PWNED',
  '&& touch PWNED',
  '| touch PWNED',
  "it's",
  "'; touch PWNED; '",
  '"; touch PWNED; "',
  '\\',
  "\\'",
  'a\nb; touch PWNED',
  '$HOME ${PATH} $0 $@',
  '*',
  '~',
  '',
  ' ',
  '-n',
  '--',
  '> PWNED',
  '!',
  '#not a comment',
  'ünïcödé ✓',
  "''",
  '\t',
];

const shTest = requireTools('busybox');

for (const shell of ['/bin/sh', 'busybox']) {
  shTest(`${shell} -c gives back exactly the words, however hostile, and runs nothing else`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cw-quote-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const words = ['printf', '%s\\0', ...HOSTILE];
    const argv = shell === 'busybox' ? [toolPath('busybox'), 'sh'] : [shell];
    const r = await execa(argv[0] as string, [...argv.slice(1), '-c', remoteCommand(words)], { cwd: dir, encoding: 'utf8' });
    t.deepEqual(r.stdout.split('\0').slice(0, -1), HOSTILE);
    t.false(existsSync(join(dir, 'PWNED')));
  });
}

test('safe words stay readable; every other word is single-quoted', (t) => {
  t.is(remoteCommand(['uname', '-r']), 'uname -r');
  t.is(remoteCommand(['/usr/sbin/shutdown', '-h', 'now']), '/usr/sbin/shutdown -h now');
  t.is(remoteCommand(['echo', "it's", '$HOME']), "echo 'it'\\''s' '$HOME'");
  t.is(remoteCommand(['echo', '']), "echo ''");
  t.throws(() => remoteCommand([]));
});

test('ssh gets the command as ONE argument after the host and `--`; the login is root with the appliance key', (t) => {
  const id = { keyFile: '/s/ssh/id_ed25519', knownHostsFile: '/s/ssh/known_hosts' };
  const args = nodeSshArgv({ name: 'n3', ip: '10.0.0.3' }, ['sh', '-c', 'uptime; df'], id, 5);
  t.deepEqual(args.slice(-3), ['--', '10.0.0.3', "sh -c 'uptime; df'"]);
  t.deepEqual(args.slice(0, 2), ['-i', '/s/ssh/id_ed25519']);
  t.true(args.includes('BatchMode=yes'));
  t.is(args[args.indexOf('-l') + 1], 'root');
  t.deepEqual(nodeSshArgv({ name: 'n3', ip: '10.0.0.3', port: 2222 }, ['true'], id, 5).slice(0, 2), ['-p', '2222']);
  t.throws(() => nodeSshArgv({ name: 'n3', ip: null }, ['true'], id, 5), { message: /no IP/ });
});
