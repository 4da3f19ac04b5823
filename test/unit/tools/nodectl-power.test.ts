// cw-nodectl power against a real API that runs a real program: a stand-in `virsh` (a shell script
// keeping each domain's state in a file) first on PATH, reached through libvirt:///DOMAIN power URIs.
import test from 'ava';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { nodectl } from '../../../src/tools/nodectl/nodectl.js';
import { parseStagger } from '../../../src/tools/nodectl/power.js';
import { clusterFixture } from './harness.js';

const fixture = clusterFixture(test, 'p');

/** `virsh --connect URI VERB DOMAIN`: domstate prints the state; start/destroy change it; dom "dead" hangs. */
const FAKE_VIRSH = `#!/bin/sh
dir="$(dirname "$0")/state"
mkdir -p "$dir"
verb="$3"; dom="$4"
echo "$verb $dom" >> "$dir/calls"
[ "$dom" = dead ] && exec sleep 30
f="$dir/$dom"
case "$verb" in
  domstate) if [ -f "$f" ]; then cat "$f"; else echo "shut off"; fi ;;
  start) echo running > "$f" ;;
  destroy) echo "shut off" > "$f" ;;
  reset) ;;
  *) echo "error: unknown verb $verb" >&2; exit 1 ;;
esac
`;

let binDir = '';
test.before(() => {
  binDir = fixture.scratch.sub('bin');
  writeFileSync(join(binDir, 'virsh'), FAKE_VIRSH);
  chmodSync(join(binDir, 'virsh'), 0o755);
  // The API runs in this process: its plugins find the stand-in first.
  process.env.PATH = `${binDir}${delimiter}${process.env.PATH ?? ''}`;
});

test.serial('power status/on/boot/off: one line per node, --json, a failing node makes the exit status non-zero', async (t) => {
  const c = await fixture.start();
  const api = c.client();
  await api.post('/attribs', { name: 'vms', attributes: { _power_uri: 'libvirt:///shared' } });
  await api.post('/nodes', [
    { index: 0, power_uri: 'libvirt:///vm0' },
    { index: 1, power_uri: 'libvirt:///vm1' },
    { index: 2, groups: ['vms'] },
  ]);
  const lines = (out: string) => out.trim().split('\n').sort();

  t.deepEqual(lines(await c.ok(nodectl, ['-i', 'n[0-2]', 'power', 'status'])), ['n0: off', 'n1: off', 'n2: off']);
  t.deepEqual(lines(await c.ok(nodectl, ['-i', 'n0', 'power', 'on'])), ['n0: on']);
  t.is(readFileSync(join(binDir, 'state', 'vm0'), 'utf8'), 'running\n');
  t.deepEqual(lines(await c.ok(nodectl, ['-i', 'n[0-2]', 'power', 'boot'])), ['n0: reset', 'n1: on', 'n2: on']);
  t.true(existsSync(join(binDir, 'state', 'shared')), 'the inherited _power_uri was used');
  const json = JSON.parse(await c.ok(nodectl, ['-i', 'n[0-1]', 'power', 'status', '--json']));
  t.deepEqual(json, { n0: { ok: true, state: 'on', result: 'on' }, n1: { ok: true, state: 'on', result: 'on' } });

  await api.post('/nodes', [{ index: 3 }, { index: 7, power_uri: 'libvirt:///dead' }]);
  const started = Date.now();
  const r = await c.run(nodectl, ['-a', 'power', 'off', '--timeout', '1']);
  t.true(Date.now() - started < 5000, 'the hanging node costs its deadline only');
  t.is(r.exitCode, 1);
  t.deepEqual(lines(r.out), [
    'n0: off',
    'n1: off',
    'n2: off',
    'n3: ERROR: no power_uri (set one: cw-nodectl -i n3 update power_uri=ipmi:///USER:PASSWORD@BMC)',
    'n7: ERROR: libvirt did not answer within 1 s',
  ]);
  t.is(r.error, 'ERROR: power off failed on 2 of 5 nodes: n[3,7]');
});

test.serial('each line is printed as its node answers, a silent BMC last', async (t) => {
  const c = await fixture.start();
  await c.client().post('/nodes', [
    { index: 0, power_uri: 'libvirt:///dead' },
    { index: 1, power_uri: 'libvirt:///f1' },
    { index: 2, power_uri: 'libvirt:///f2' },
  ]);
  const r = await c.run(nodectl, ['-i', 'n[0-2]', 'power', 'status', '--timeout', '1.5']);
  t.is(r.exitCode, 1);
  const texts = r.outWrites.map((w) => w.text);
  t.deepEqual(texts.slice(0, 2).sort(), ['n1: off\n', 'n2: off\n']);
  t.deepEqual(texts.slice(2), ['n0: ERROR: libvirt did not answer within 1.5 s\n']);
  const fast = r.outWrites.filter((w) => !w.text.startsWith('n0'));
  const slow = r.outWrites.find((w) => w.text.startsWith('n0'));
  // The fast nodes were printed while the silent one was still pending.
  t.true(fast.every((w) => w.at < (slow?.at ?? 0) - 700), JSON.stringify(r.outWrites));
  t.true((slow?.at ?? 0) >= 1400, JSON.stringify(r.outWrites));
  t.is(r.error, 'ERROR: power status failed on 1 of 3 nodes: n0');
});

test.serial('--fanout, --stagger and the action are checked before anything runs; --stagger spaces the starts', async (t) => {
  const c = await fixture.start();
  await c.client().post('/nodes', Array.from({ length: 4 }, (_, i) => ({ index: i, power_uri: `libvirt:///s${i}` })));
  for (const [argv, message] of [
    [['-a', 'power'], /power needs one of status, on, off/],
    [['-a', 'power', 'explode'], /power needs one of/],
    [['-a', 'power', 'on', 'now'], /takes one action/],
    [['-a', 'power', 'on', '--fanout', '0'], /--fanout must be a whole number from 1 to 1024/],
    [['-a', 'power', 'on', '--fanout', '2.5'], /--fanout must be a whole number/],
    [['-a', 'power', 'on', '--stagger', '40'], /--stagger takes NODES\/SECONDS/],
    [['-a', 'power', 'on', '--timeout', '900'], /--timeout must be a number from/],
    [['power', 'on'], /-i|-a|nodes/],
  ] as const) {
    const r = await c.run(nodectl, [...argv]);
    t.is(r.exitCode, 1, argv.join(' '));
    t.regex(r.error ?? '', message, argv.join(' '));
  }
  t.deepEqual(parseStagger('40/2'), { count: 40, seconds: 2 });
  t.deepEqual(parseStagger('1/0.5'), { count: 1, seconds: 0.5 });
  const started = Date.now();
  const out = await c.ok(nodectl, ['-a', 'power', 'on', '--stagger', '2/0.4']);
  const elapsed = Date.now() - started;
  t.is(out.trim().split('\n').length, 4);
  t.true(elapsed >= 400, `4 nodes, 2 every 0.4 s: the second pair waits (${elapsed} ms)`);
});
