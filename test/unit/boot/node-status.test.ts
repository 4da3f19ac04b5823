// Node state derived from the last report and a clock; status reports validated field by field.
import test from 'ava';
import { ValidationError } from '../../../src/appliance/db/errors.js';
import { DOWN_AFTER_MS, nodeState, parseStatusReport, withNodeState } from '../../../src/appliance/db/node-status.js';
import type { Node } from '../../../src/appliance/db/nodes.js';

const T0 = Date.parse('2025-06-01T12:00:00Z');
const at = (ms: number): string => new Date(ms).toISOString();

test('state: new, up within three intervals, down after, booting:STAGE, error', (t) => {
  t.is(nodeState({}, null, T0), 'new');
  t.is(nodeState({ stage: 'up' }, at(T0), T0), 'up');
  t.is(nodeState({ stage: 'up' }, at(T0), T0 + DOWN_AFTER_MS), 'up');
  t.is(nodeState({ stage: 'up' }, at(T0), T0 + DOWN_AFTER_MS + 1), 'down');
  for (const stage of ['ipxe', 'initramfs', 'image']) {
    t.is(nodeState({ stage }, at(T0), T0 + 10_000) as string, `booting:${stage}`);
    t.is(nodeState({ stage }, at(T0), T0 + 31_000), 'down', 'a boot that went silent');
  }
  t.is(nodeState({ stage: 'error', message: 'x' }, at(T0), T0 + 5000), 'error');
  t.is(nodeState({ stage: 'weird' }, at(T0), T0), 'down', 'an unknown stored stage is not up');
  t.is(nodeState({ stage: 'up' }, 'not a date', T0), 'new');
  t.is(DOWN_AFTER_MS, 30_000);
});

test('the state is shown, never stored: a stored state is replaced by the derived one', (t) => {
  const node = { uid: 'a'.repeat(32), name: 'n0', status: { stage: 'up', state: 'up', ip: '10.0.0.5' }, last_seen: at(T0) } as unknown as Node;
  t.deepEqual(withNodeState(node, T0 + 60_000).status, { stage: 'up', ip: '10.0.0.5', state: 'down' });
  t.deepEqual(node.status, { stage: 'up', state: 'up', ip: '10.0.0.5' }, 'the input is not changed');
});

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKgf913NsQ6qJxb+F7VfFjukD6JNdAuHxR+tzhIXF6zA';
const RSA_HOST_KEY = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDdhRvzAfmRneicoOrmbPq4X3IdSBKlWtmeE1kcp3iT0rbFhEPxGlGTU/5jltuM8s6ohX1XNUxE7yTVMpyUulq/qhzOt55Gq5628W26U2CVigjYzBP9+KFwrJ/0vtpWlTMnJVhqPKf8a58V37EfRAHWeL+rGhbUkM09EdOCgbczqk5N/xd2hUBTSIkUuZMicjMji1Vg90wIzkP1bEGGG+5SzO+cvUrHQQfP62sPgKR2SAoQsaYrAEC9lz27t58s4hAV+m0elKyZZS/ZE7kgSKP5iixOrkhYAF5Lj6Wfj7u19CvIJ13hSamwS1/csfH8CzB2d0zVY6aup6e1mWb74zo5';

test('reports: the ed25519 host key is kept without its comment', (t) => {
  t.deepEqual(parseStatusReport({ stage: 'up', ssh_host_key: `${HOST_KEY} root@n0` }), { stage: 'up', ssh_host_key: HOST_KEY });
});

test('reports: known fields checked, unknown ones dropped', (t) => {
  t.deepEqual(parseStatusReport({ stage: 'up', ip: '10.0.0.5', kernel: '6.1.0-18-amd64', uptime: 1.5, load: 0.25, ram_free: 1, ram_total: 2, message: 'ok', agent: 'v2' }), {
    stage: 'up',
    ip: '10.0.0.5',
    kernel: '6.1.0-18-amd64',
    uptime: 1.5,
    load: 0.25,
    ram_free: 1,
    ram_total: 2,
    message: 'ok',
  });
  t.deepEqual(parseStatusReport({ stage: 'image', ip: null }), { stage: 'image' });
  const bad: Array<[unknown, RegExp]> = [
    [null, /^body must be a JSON object/],
    [[], /^body must be a JSON object/],
    [{}, /^stage is required/],
    [{ stage: 'UP' }, /^stage: must be one of ipxe, initramfs, image, up, error, not "UP"/],
    [{ stage: 'up', ip: '10.0.0.05' }, /^ip: /],
    [{ stage: 'up', kernel: '$(reboot)' }, /^kernel: /],
    [{ stage: 'up', uptime: Number.NaN }, /^uptime: /],
    [{ stage: 'up', ram_total: -1 }, /^ram_total: /],
    [{ stage: 'up', load: [] }, /^load: /],
    [{ stage: 'up', load: ['1'] }, /^load: /],
    [{ stage: 'up', message: '\u001b[2J' }, /^message: /],
    [{ stage: 'up', ssh_host_key: 'ssh-ed25519 AAAA' }, /^ssh_host_key: must be an ssh-ed25519 public key line/],
    [{ stage: 'up', ssh_host_key: 'ssh-ed25519 AAAA\nssh-ed25519 BBBB' }, /^ssh_host_key: /],
    [{ stage: 'up', ssh_host_key: `${RSA_HOST_KEY}` }, /^ssh_host_key: must be an ssh-ed25519 public key line/],
    [{ stage: 'up', ssh_host_key: 42 }, /^ssh_host_key: /],
  ];
  for (const [body, message] of bad) t.throws(() => parseStatusReport(body), { instanceOf: ValidationError, message }, JSON.stringify(body));
});
