import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installNodeFiles } from '../../../src/images/node-files.js';

test('the agent and the host-key unit are installed and enabled; host keys baked into the image are removed, other ssh files kept', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'cw-nodefiles-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'etc/ssh'), { recursive: true });
  for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub', 'sshd_config', 'moduli']) {
    writeFileSync(join(root, 'etc/ssh', f), 'x\n');
  }
  const result = await installNodeFiles(root);
  t.deepEqual(result.removedHostKeys.sort(), [
    '/etc/ssh/ssh_host_ed25519_key',
    '/etc/ssh/ssh_host_ed25519_key.pub',
    '/etc/ssh/ssh_host_rsa_key',
    '/etc/ssh/ssh_host_rsa_key.pub',
  ]);
  t.true(existsSync(join(root, 'etc/ssh/sshd_config')));
  t.true(existsSync(join(root, 'etc/ssh/moduli')));
  t.false(existsSync(join(root, 'etc/ssh/ssh_host_ed25519_key')));
  for (const unit of ['cw-node-agent.service', 'cw-ssh-host-keys.service']) {
    t.true(existsSync(join(root, 'etc/systemd/system', unit)));
    t.is(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants', unit)), `/etc/systemd/system/${unit}`);
  }
  // Again: nothing left to remove, the links stay.
  t.deepEqual((await installNodeFiles(root)).removedHostKeys, []);
});
