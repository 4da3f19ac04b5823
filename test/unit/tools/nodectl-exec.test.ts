// cw-nodectl exec/reboot against a real API that runs a stand-in `ssh` first on PATH: it runs the
// remote command with a real `sh -c` (as sshd does), with a `hostname` that answers the node's name.
import test from 'ava';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { protectCommand, splitChain } from '../../../src/tools/common/args.js';
import { collate, renderCollated } from '../../../src/tools/nodectl/exec.js';
import { nodectl } from '../../../src/tools/nodectl/nodectl.js';
import { clusterFixture } from './harness.js';

const fixture = clusterFixture(test, 'x');

/** `ssh ... -- HOST COMMAND`: 10.9.0.3 refuses; others run COMMAND under sh with FAKE_NODE set. */
const FAKE_SSH = `#!/bin/sh
dir="$(dirname "$0")"
for last; do :; done
host=""; prev=""
for a; do [ "$prev" = "--" ] && host="$a"; prev="$a"; done
printf '%s\\n' "$host $last" >> "$dir/calls"
case "$host" in
  10.9.0.3) echo "ssh: connect to host 10.9.0.3 port 22: Connection refused" >&2; exit 255 ;;
esac
# reboot and shutdown are only recorded: never run here.
case "$last" in
  /usr/sbin/*) exit 0 ;;
esac
FAKE_NODE="n\${host##*.}" PATH="$dir/node:$PATH" exec sh -c "$last"
`;
const FAKE_HOSTNAME = '#!/bin/sh\necho "$FAKE_NODE"\n';

let binDir = '';
test.before(() => {
  binDir = fixture.scratch.sub('bin');
  const nodeBin = join(binDir, 'node');
  void nodeBin;
  fixture.scratch.sub(join("bin", "node"));
  writeFileSync(join(binDir, 'ssh'), FAKE_SSH);
  chmodSync(join(binDir, 'ssh'), 0o755);
  writeFileSync(join(nodeBin, 'hostname'), FAKE_HOSTNAME);
  chmodSync(join(nodeBin, 'hostname'), 0o755);
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH ?? ''}`;
});


async function cluster() {
  const c = await fixture.start();
  await c.client().post('/nodes', [0, 1, 2, 3, 4].map((i) => ({ index: i, ip: `10.9.0.${i}`, mac: `52:54:00:00:09:0${i}` })));
  return c;
}

test.serial('exec: every line prefixed n3:, stdout and stderr apart, a failing node named on the last line and in the exit status', async (t) => {
  const c = await cluster();
  const r = await c.run(nodectl, ['-i', 'n[0-2,4]', 'exec', 'sh', '-c', 'hostname; echo "warn $(hostname)" >&2']);
  t.is(r.exitCode, 0, r.error);
  t.deepEqual(r.out.trim().split('\n').sort(), ['n0: n0', 'n1: n1', 'n2: n2', 'n4: n4']);
  t.deepEqual(r.err.trim().split('\n').sort(), ['n0: warn n0', 'n1: warn n1', 'n2: warn n2', 'n4: warn n4']);

  const bad = await c.run(nodectl, ['-i', 'n[0-4]', 'exec', 'hostname']);
  t.not(bad.exitCode, 0);
  t.is(bad.error, 'ERROR: exec failed on 1 of 5 nodes: n3');
  t.regex(bad.err, /^n3: ERROR: ssh: connect to host 10\.9\.0\.3 port 22: Connection refused$/m);
  const exit2 = await c.run(nodectl, ['-i', 'n[0-1]', 'exec', 'sh', '-c', 'exit 2']);
  t.is(exit2.error, 'ERROR: exec failed on 2 of 2 nodes: n[0-1]');
  t.regex(exit2.err, /^n0: ERROR: exit status 2$/m);
});

test.serial('exec --collate folds identical output under a node range; the command\'s own options are its own', async (t) => {
  const c = await cluster();
  const r = await c.run(nodectl, ['-i', 'n[0-4]', 'exec', '--collate', 'uname', '-s']);
  t.is(r.out, 'n[0-2,4]: Linux\n');
  t.is(r.err, 'n3: ERROR: ssh: connect to host 10.9.0.3 port 22: Connection refused\n');
  t.is(r.error, 'ERROR: exec failed on 1 of 5 nodes: n3');
  const mixed = await c.run(nodectl, ['-i', 'n[0-2]', '--collate', 'exec', 'sh', '-c', 'case $(hostname) in n1) echo odd;; *) echo even; echo line2;; esac']);
  t.is(mixed.out, 'n[0,2]: even\nn[0,2]: line2\nn1: odd\n');
  // -l after the command is ls's, not the tool's.
  const ls = await c.run(nodectl, ['-i', 'n0', 'exec', 'ls', '-ld', '/']);
  t.regex(ls.out, /^n0: d.* \/$/m);
});

test.serial('exec --stdin @FILE gives the file to the command; hostile words reach the node as plain words', async (t) => {
  const c = await cluster();
  writeFileSync(join(c.cwd, 'job.txt'), 'line one\nline $(two)\n');
  const r = await c.run(nodectl, ['-i', 'n0', 'exec', '--stdin', '@job.txt', 'cat']);
  t.is(r.out, 'n0: line one\nn0: line $(two)\n');
  const hostile = await c.run(nodectl, ['-i', 'n1', 'exec', 'echo', '$(hostname)', '`id`', "it's; true"]);
  t.is(hostile.out, "n1: $(hostname) `id` it's; true\n");
  const missing = await c.run(nodectl, ['-i', 'n0', 'exec', '--stdin', '@nope.txt', 'cat']);
  t.regex(missing.error ?? '', /nope\.txt/);
  t.is((await c.run(nodectl, ['-i', 'n0', 'exec'])).error, 'ERROR: exec needs a command, e.g. cw-nodectl -i n[0-3] exec uname -r');
});

test.serial('reboot --soft runs /usr/sbin/reboot on the node; shutdown --soft shutdown -h now; no flag on a node that is not up goes hard', async (t) => {
  const c = await cluster();
  writeFileSync(join(binDir, 'calls'), '');
  t.is(await c.ok(nodectl, ['-i', 'n1', 'reboot', '--soft']), 'n1: soft reboot\n');
  t.is(await c.ok(nodectl, ['-i', 'n2', 'shutdown', '--soft']), 'n2: soft shutdown\n');
  const calls = readFileSync(join(binDir, 'calls'), 'utf8');
  t.regex(calls, /^10\.9\.0\.1 \/usr\/sbin\/reboot$/m);
  t.regex(calls, /^10\.9\.0\.2 \/usr\/sbin\/shutdown -h now$/m);
  const hard = await c.run(nodectl, ['-i', 'n0', 'reboot']);
  t.regex(hard.out, /^n0: ERROR: not up; hard reboot \(power reset\): no power_uri/m);
  t.is(hard.error, 'ERROR: reboot failed on 1 of 1 node: n0');
  t.is((await c.run(nodectl, ['-i', 'n0', 'reboot', '--soft', '--hard'])).error, 'ERROR: use either --soft or --hard, not both');
});

test('collate keeps first-seen order and leaves out empty output', (t) => {
  t.deepEqual(collate([{ name: 'n0', text: 'x' }, { name: 'n1', text: 'y' }, { name: 'n2', text: 'x' }, { name: 'n3', text: '' }]), [
    { names: ['n0', 'n2'], text: 'x' },
    { names: ['n1'], text: 'y' },
  ]);
  const many = Array.from({ length: 10 }, (_, i) => ({ name: `n${i}`, text: i === 8 ? 'other\n' : 'Linux 6.1.0\n' }));
  t.is(renderCollated(many), 'n[0-7,9]: Linux 6.1.0\nn8: other\n');
});

test('protectCommand puts -- before the command of exec only', (t) => {
  const specs = [{ long: 'collate', help: '' }, { long: 'stdin', value: true, help: '' }];
  t.deepEqual(protectCommand(['-i', 'n0', 'exec', '--collate', 'uname', '-r'], specs, ['exec']), ['-i', 'n0', 'exec', '--collate', '--', 'uname', '-r']);
  t.deepEqual(protectCommand(['exec', '--stdin', '@f', '-in0', 'cat', '-l'], specs, ['exec']), ['exec', '--stdin', '@f', '-in0', '--', 'cat', '-l']);
  t.deepEqual(protectCommand(['-i', 'exec', 'ls', '-l'], specs, ['exec']), ['-i', 'exec', 'ls', '-l']);
  t.deepEqual(protectCommand(['exec', '--', 'ls', '-l'], specs, ['exec']), ['exec', '--', 'ls', '-l']);
  t.deepEqual(protectCommand(['ls', '-l'], specs, ['exec']), ['ls', '-l']);
});

test('protectCommand in a chain: exec after then keeps its words', (t) => {
  const specs = [{ long: 'collate', help: '' }, { long: 'timeout', value: true, help: '' }];
  t.deepEqual(protectCommand(['-i', 'n0', 'reboot', 'then', 'waitfor', 'up', 'then', 'exec', 'uname', '-r'], specs, ['exec'], true), [
    '-i', 'n0', 'reboot', 'then', 'waitfor', 'up', 'then', 'exec', '--', 'uname', '-r',
  ]);
  // `exec` as an argument of another action is not the action.
  t.deepEqual(protectCommand(['ls', 'exec', '-l'], specs, ['exec'], true), ['ls', 'exec', '-l']);
  t.deepEqual(splitChain(['reboot', 'then', 'waitfor', 'up', 'then', 'exec', 'echo', 'then', 'x'], ['exec']), [['reboot'], ['waitfor', 'up'], ['exec', 'echo', 'then', 'x']]);
});

test.serial('chains: actions run one after another on the same nodes; a failure stops the chain; exec takes the rest', async (t) => {
  const c = await cluster();
  const r = await c.run(nodectl, ['-i', 'n[0-1]', 'set', '_rack=r1', 'then', 'exec', 'sh', '-c', 'hostname', 'then', 'ignored']);
  t.is(r.exitCode, 0, r.error);
  const lines = r.out.trim().split('\n');
  t.regex(lines[0] ?? '', /^Set _rack on/);
  // The words after exec, `then` included, are the command's (`sh -c hostname then ignored`: $0 and $1).
  t.deepEqual(lines.slice(1).sort(), ['n0: n0', 'n1: n1']);
  const calls = () => readFileSync(join(binDir, 'calls'), 'utf8');
  const before = calls();
  const stopped = await c.run(nodectl, ['-i', 'n9', 'set', '_rack=r2', 'then', 'exec', 'hostname']);
  t.not(stopped.exitCode, 0);
  t.is(calls(), before, 'exec never ran after the failed step');
  const empty = await c.run(nodectl, ['-i', 'n0', 'ls', 'then']);
  t.is(empty.error, 'ERROR: no action after "then"');
  const unknown = await c.run(nodectl, ['-i', 'n0', 'set', '_rack=r3', 'then', 'bogus']);
  t.regex(unknown.error ?? '', /unknown action "bogus"/);
  t.is(calls(), before);
});
