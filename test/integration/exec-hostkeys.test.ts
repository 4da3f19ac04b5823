// Pinned node host keys against a real sshd on a loopback address, through the exec runner the API uses
// (real ssh processes): the key the node reported is accepted; a machine answering with another key is
// refused with a clear error; a node that reported none is reached by the key first seen for its address.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pinnedHostsFile } from '../../src/appliance/exec/host-keys.js';
import { execNode } from '../../src/appliance/exec/run.js';
import { ensureSshKey } from '../../src/appliance/power/ssh.js';
import { writeTestSshd } from '../helpers/sshd.js';
import { findTool, requireTools } from '../helpers/tools.js';
import { tempDir, waitFor } from './helpers.js';

const sshTest = requireTools('sshd', 'ssh-keygen');
const ADDR = '127.0.23.1';
const PORT = 2223;
const dir = tempDir('cw-hostkeys');
const identity = { keyFile: join(dir, 'ssh', 'id_ed25519'), knownHostsFile: join(dir, 'ssh', 'known_hosts') };
let sshd: ResultPromise | undefined;

test.after.always(async () => {
  sshd?.kill('SIGTERM');
  await sshd?.catch(() => {});
  await execa('rm', ['-rf', dir], { reject: false });
});

/** Whether known_hosts (hashed or not) has an entry for the sshd's address. */
const known = async () =>
  existsSync(identity.knownHostsFile) && (await execa('ssh-keygen', ['-F', `[${ADDR}]:${PORT}`, '-f', identity.knownHostsFile], { reject: false })).exitCode === 0;
const keyOf = (file: string) => readFileSync(file, 'utf8').split(' ').slice(0, 2).join(' ');

sshTest.serial('the reported key is the only one accepted, by node name; another is refused; no report means accept-new by address', async (t) => {
  await ensureSshKey(identity);
  const sshdDir = join(dir, 'sshd');
  const config = await writeTestSshd(sshdDir, readFileSync(`${identity.keyFile}.pub`), [`ListenAddress ${ADDR}:${PORT}`, `PidFile ${join(sshdDir, 'sshd.pid')}`]);
  sshd = execa(findTool('sshd') ?? 'sshd', ['-D', '-e', '-f', config], { reject: false });
  await waitFor(async () => existsSync(join(sshdDir, 'sshd.pid')) || undefined, 10_000);
  const reported = keyOf(join(sshdDir, 'host_key.pub'));

  const ok = await execNode({ name: 'n0', ip: ADDR, port: PORT, hostKey: reported }, ['echo', 'pinned'], { identity, timeoutMs: 20_000 });
  t.true(ok.ok, JSON.stringify(ok));
  t.is(ok.stdout, 'pinned\n');
  const pins = pinnedHostsFile(identity);
  t.is(readFileSync(pins, 'utf8'), `n0 ${reported}\n`);
  t.is(statSync(pins).mode & 0o777, 0o600);
  t.false(await known(), 'the pinned path leaves known_hosts alone');

  // Another machine at the node's address (here: the node reported a key its sshd does not have).
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
  const other = keyOf(join(dir, 'other.pub'));
  const refused = await execNode({ name: 'n0', ip: ADDR, port: PORT, hostKey: other }, ['echo', 'should not run'], { identity, timeoutMs: 20_000 });
  t.false(refused.ok);
  t.regex(refused.error ?? '', /^ssh: refused: the host answering at 127\.0\.23\.1 does not have the key n0 reported at boot/);
  t.is(refused.stdout, '');

  // No key reported: the key first seen for the address is recorded and used.
  const plain = await execNode({ name: 'n1', ip: ADDR, port: PORT }, ['echo', 'accept-new'], { identity, timeoutMs: 20_000 });
  t.true(plain.ok, JSON.stringify(plain));
  t.true(await known());
});
