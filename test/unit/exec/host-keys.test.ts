// Pinned node host keys: the file's form, one write for pins that arrive together, and the ssh options
// that make the pin the only key accepted (before any other -o, since ssh keeps the first value).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePinnedHosts, PinnedHosts, pinnedHostsFile, renderPinnedHosts } from '../../../src/appliance/exec/host-keys.js';
import { masterArgv, masterKey } from '../../../src/appliance/exec/masters.js';
import { masterTarget, nodeSshArgv } from '../../../src/appliance/exec/remote.js';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKgf913NsQ6qJxb+F7VfFjukD6JNdAuHxR+tzhIXF6zA';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFEOQcEM8u6q0eUWx0S0y9gRSOMt7Sh4pT9ixmWcbZ1r';

test('render and parse: one sorted line per node; lines in another form are dropped', (t) => {
  const keys = new Map([
    ['n10', KEY_B],
    ['n2', KEY_A],
  ]);
  const text = renderPinnedHosts(keys);
  t.is(text, `n10 ${KEY_B}\nn2 ${KEY_A}\n`);
  t.deepEqual(parsePinnedHosts(`${text}# comment\nn3 ssh-rsa AAAA\n@cert-authority * ${KEY_A}\n`), keys);
});

test('pins made together all land in the file; it is 0600 and holds the newest key of each node', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-pins-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'known_hosts.nodes');
  const pins = new PinnedHosts(file);
  await Promise.all(Array.from({ length: 500 }, (_, i) => pins.pin(`n${i}`, i % 2 ? KEY_A : KEY_B)));
  const text = readFileSync(file, 'utf8');
  t.is(text.split('\n').filter(Boolean).length, 500);
  t.true(text.includes(`n7 ${KEY_A}\n`));
  t.is(statSync(file).mode & 0o777, 0o600);
  // A new boot's key replaces the old one; the same key again writes nothing.
  const before = statSync(file).mtimeMs;
  await pins.pin('n7', KEY_A);
  t.is(statSync(file).mtimeMs, before);
  await pins.pin('n7', KEY_B);
  t.true(readFileSync(file, 'utf8').includes(`n7 ${KEY_B}\n`));
  // Another process (a restarted API) reads what was pinned.
  const again = new PinnedHosts(file);
  await again.pin('n8', KEY_B);
  t.deepEqual(parsePinnedHosts(readFileSync(file, 'utf8')).get('n7'), KEY_B);
  t.is(parsePinnedHosts(readFileSync(file, 'utf8')).size, 500);
});

test('ssh to a node with a reported key accepts only that key, by the node name; without one, accept-new by address', (t) => {
  const identity = { keyFile: '/s/ssh/id_ed25519', knownHostsFile: '/s/ssh/known_hosts' };
  const pinned = nodeSshArgv({ name: 'n3', ip: '10.0.0.3', hostKey: KEY_A }, ['true'], identity, 5);
  t.deepEqual(pinned.slice(0, 6), ['-o', 'HostKeyAlias=n3', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${pinnedHostsFile(identity)}`]);
  t.is(pinnedHostsFile(identity), '/s/ssh/known_hosts.nodes');
  // ssh takes the first value of an option: the accept-new given later does not weaken the pin.
  t.true(pinned.indexOf('StrictHostKeyChecking=yes') < pinned.indexOf('StrictHostKeyChecking=accept-new'));
  const plain = nodeSshArgv({ name: 'n3', ip: '10.0.0.3' }, ['true'], identity, 5);
  t.false(plain.some((a) => a.startsWith('HostKeyAlias=')));
  t.true(plain.includes('StrictHostKeyChecking=accept-new'));
});

test('a kept-open connection to a node with a reported key is made with the pin, and is another connection than one without', (t) => {
  const identity = { keyFile: '/s/ssh/id_ed25519', knownHostsFile: '/s/ssh/known_hosts' };
  const pinnedTo = masterTarget({ name: 'n3', ip: '10.0.0.3', hostKey: KEY_A });
  t.is(pinnedTo.pinnedAs, 'n3');
  const argv = masterArgv(pinnedTo, identity, 5, '/s/ssh/mux/0123456789abcdef');
  t.deepEqual(argv.slice(0, 6), ['-o', 'HostKeyAlias=n3', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${pinnedHostsFile(identity)}`]);
  const plain = masterTarget({ name: 'n3', ip: '10.0.0.3' });
  t.false(masterArgv(plain, identity, 5, '/s/ssh/mux/0123456789abcdef').some((a) => a.startsWith('HostKeyAlias=')));
  t.not(masterKey(pinnedTo), masterKey(plain));
});
