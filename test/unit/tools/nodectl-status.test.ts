// cw-nodectl status, ls -l and waitfor against a real in-process API, with nodes reporting through the
// boot status endpoint as the initramfs and the node agent do (with the node secret of their boot).
import test from 'ava';
import { hashNodeSecret, newNodeSecret } from '../../../src/appliance/boot/node-secret.js';
import { nodectl } from '../../../src/tools/nodectl/nodectl.js';
import { duration } from '../../../src/tools/nodectl/status.js';
import { clusterFixture, type Cluster } from './harness.js';

const { seeded } = clusterFixture(test, 's');

/** The node secret of each MAC's node in each cluster, issued (stored hashed) on first use. */
const secrets = new WeakMap<Cluster, Map<string, string>>();

async function secretOf(c: Cluster, mac: string): Promise<string> {
  const known = secrets.get(c) ?? new Map<string, string>();
  secrets.set(c, known);
  let secret = known.get(mac);
  if (secret === undefined) {
    secret = newNodeSecret();
    if (await c.store.getNode(mac)) await c.store.setNodeSecretHash(mac, hashNodeSecret(secret), new Date());
    known.set(mac, secret);
  }
  return secret;
}

/** A report as a node sends it: no admin credentials, the node secret of its boot. */
async function report(c: Cluster, mac: string, body: Record<string, unknown>): Promise<number> {
  const headers = { 'content-type': 'application/json', 'x-cw-node-secret': await secretOf(c, mac) };
  const res = await fetch(`${c.baseUrl}/boot/status/${mac}`, { method: 'POST', headers, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

const UP = { stage: 'up', ip: '192.168.122.100', kernel: '6.1.0-18-cloud-amd64', uptime: 3725, load: [0.5, 0.25, 0], ram_free: 1024, ram_total: 4096 };

test('status: a table of state, stage, ip, kernel, uptime and last seen; JSON and -l carry the reported fields', async (t) => {
  const c = await seeded();
  t.is(await report(c, '52:54:00:00:00:01', UP), 200);
  t.is(await report(c, '52:54:00:00:00:02', { stage: 'initramfs' }), 200);
  const table = await c.ok(nodectl, ['status']);
  const lines = table.split('\n');
  t.is(lines[0], 'NAME  STATE              STAGE      IP               KERNEL                UPTIME  LAST SEEN');
  t.regex(lines[1] ?? '', /^n0 {4}up {17}up {9}192\.168\.122\.100 {2}6\.1\.0-18-cloud-amd64 {2}62 min  [01] s ago$/);
  t.regex(lines[2] ?? '', /^n1 {4}booting:initramfs  initramfs  192\.168\.122\.101  - {21}- {7}[01] s ago$/);

  const json = JSON.parse(await c.ok(nodectl, ['-i', 'n0', 'status', '--json']));
  t.like(json.n0, { state: 'up', stage: 'up', ip: '192.168.122.100', kernel: '6.1.0-18-cloud-amd64', uptime: 3725, load: [0.5, 0.25, 0], ram_free: 1024, ram_total: 4096 });
  t.regex(json.n0.last_seen, /^\d{4}-\d\d-\d\dT/);

  const long = await c.ok(nodectl, ['-i', 'n0', 'ls', '-l']);
  t.true(long.includes('    state: up\n'), long);
  t.regex(long, /^ {4}last_seen: \d{4}-\d\d-\d\dT/m);
  t.true((await c.ok(nodectl, ['-i', 'n0', 'status', '-l'])).includes('    kernel: 6.1.0-18-cloud-amd64\n'));

  // An unknown MAC changes nothing.
  t.is(await report(c, '52:54:00:00:00:99', UP), 404);
  t.is((await c.ok(nodectl, ['status'])).split('\n').length, 4);
});

test('waitfor up returns once every selected node reports up', async (t) => {
  const c = await seeded();
  const reporter = setTimeout(() => {
    void report(c, '52:54:00:00:00:01', UP).then(() => report(c, '52:54:00:00:00:02', { stage: 'up' }));
  }, 700);
  t.teardown(() => clearTimeout(reporter));
  const started = Date.now();
  t.is(await c.ok(nodectl, ['-i', 'n[0-1]', 'waitfor', 'up', '--timeout', '20']), '2 nodes are up: n[0-1]\n');
  const took = Date.now() - started;
  t.true(took >= 700 && took < 6000, `took ${took} ms`);
  t.is(await c.ok(nodectl, ['-i', 'n0', 'waitfor', 'up']), 'n0 is up\n', 'already up: at once');
});

test('waitfor times out with the state it saw; bad arguments are one line', async (t) => {
  const c = await seeded();
  const started = Date.now();
  const r = await c.run(nodectl, ['-i', 'n0', 'waitfor', 'up', '--timeout', '1']);
  t.is(r.error, 'ERROR: timed out after 1 s waiting for n0 to be up (state: new)');
  t.is(r.exitCode, 1);
  t.true(Date.now() - started < 4000);

  await report(c, '52:54:00:00:00:02', { stage: 'image' });
  const both = await c.run(nodectl, ['-i', 'n[0-1]', 'waitfor', 'up', '--timeout', '0.2']);
  t.is(both.error, 'ERROR: timed out after 0.2 s waiting for n[0-1] to be up (states: n0 new, n1 booting:image)');
  t.is((await c.ok(nodectl, ['-i', 'n1', 'waitfor', 'booting', '--timeout', '1'])), 'n1 is booting\n');

  t.is((await c.run(nodectl, ['waitfor', 'up'])).error, 'ERROR: waitfor needs the nodes to wait for: -i IDS or -a/--all');
  t.is((await c.run(nodectl, ['-i', 'n0', 'waitfor', 'running'])).error, 'ERROR: waitfor needs the state to wait for: up, down, new, error, booting (e.g. waitfor up --timeout 300)');
  t.is((await c.run(nodectl, ['-i', 'n0', 'waitfor', 'up', '--timeout', 'soon'])).error, 'ERROR: --timeout must be a number of seconds greater than 0, not "soon"');
  t.regex((await c.run(nodectl, ['-i', 'n7', 'waitfor', 'up'])).error ?? '', /^ERROR: .*n7/);
});

test('uptime in the table reads like a duration', (t) => {
  t.is(duration(42.9), '42 s');
  t.is(duration(3725), '62 min');
  t.is(duration(7200), '2 h 0 min');
  t.is(duration(200_000), '2 d 7 h');
});
