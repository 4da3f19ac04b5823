// The Redfish plugin against a small Redfish service on loopback (test/helpers/redfish-responder.ts),
// first checked with a Redfish client no one here wrote (Debian's redfishtool) where it is installed.
import test from 'ava';
import { redfishPlugin } from '../../../src/appliance/power/redfish.js';
import { powerNode } from '../../../src/appliance/power/run.js';
import { parsePowerTarget, type RedfishTarget } from '../../../src/appliance/power/uri.js';
import { redfishBmc } from '../../helpers/redfish-responder.js';
import { makeCertificate } from '../../helpers/tls.js';
import { requireTools, toolPath } from '../../helpers/tools.js';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const identity = { keyFile: '/nonexistent/id_ed25519', knownHostsFile: '/nonexistent/known_hosts' };
const signal = () => new AbortController().signal;
const target = (uri: string) => parsePowerTarget(uri).target as RedfishTarget;

test('PowerState and every ResetType, on the only system or a named one', async (t) => {
  const bmc = await redfishBmc({ '437XR1138R2': 'Off' });
  t.teardown(() => bmc.close());
  const plugin = redfishPlugin(target(`redfish+http://root:calvin@127.0.0.1:${bmc.port}`));
  t.is(await plugin.status(signal(), 10), 'off');
  await plugin.act('on', signal(), 10);
  t.is(await plugin.status(signal(), 10), 'on');
  for (const action of ['reset', 'cycle', 'restart', 'soft', 'off'] as const) await plugin.act(action, signal(), 10);
  t.deepEqual(
    bmc.resets.map((r) => r.type),
    ['On', 'ForceRestart', 'PowerCycle', 'GracefulRestart', 'GracefulShutdown', 'ForceOff'],
  );
  t.is(bmc.states.get('437XR1138R2'), 'Off');
  t.true(bmc.auths.every((a) => a.startsWith('Basic ')));

  const named = redfishPlugin(target(`redfish+http://root:calvin@127.0.0.1:${bmc.port}/redfish/v1/Systems/437XR1138R2`));
  t.is(await named.status(signal(), 10), 'off');
  // boot through the runner: off -> On.
  const booted = await powerNode({ name: 'n5', powerUri: `redfish+http://root:calvin@127.0.0.1:${bmc.port}` }, 'boot', { identity });
  t.deepEqual(booted, { name: 'n5', ok: true, state: 'off', result: 'on' });
});

test('refusals are one line: wrong password, several systems, a ResetType not offered, an unknown system', async (t) => {
  const bmc = await redfishBmc({ '1': 'On', '2': 'Off' }, { allowed: ['On', 'ForceOff'] });
  t.teardown(() => bmc.close());
  const base = `redfish+http://root:calvin@127.0.0.1:${bmc.port}`;
  const run = (uri: string, action: 'status' | 'cycle') => powerNode({ name: 'n1', powerUri: uri }, action, { identity });
  t.is((await run(`redfish+http://root:wrong@127.0.0.1:${bmc.port}/redfish/v1/Systems/1`, 'status')).error, 'BMC 127.0.0.1 refused the credentials (HTTP 401)');
  t.is((await run(base, 'status')).error, 'BMC 127.0.0.1 has 2 systems; name one in the power_uri (.../redfish/v1/Systems/ID)');
  t.is((await run(`${base}/redfish/v1/Systems/2`, 'cycle')).error, 'BMC 127.0.0.1 does not offer ResetType PowerCycle (offers On, ForceOff)');
  t.is(
    (await run(`${base}/redfish/v1/Systems/9`, 'status')).error,
    'BMC 127.0.0.1 answered HTTP 404 to GET /redfish/v1/Systems/9: no resource /redfish/v1/Systems/9',
  );
  t.is((await run(`${base}/redfish/v1/Systems/1`, 'status')).result, 'on');
});

test('a Redfish service that never answers costs the deadline', async (t) => {
  const bmc = await redfishBmc({ '1': 'On' }, { silent: true });
  t.teardown(() => bmc.close());
  const started = Date.now();
  const r = await powerNode({ name: 'n2', powerUri: `redfish+http://root:calvin@127.0.0.1:${bmc.port}` }, 'status', { identity, timeoutMs: 300 });
  t.deepEqual(r, { name: 'n2', ok: false, error: 'BMC 127.0.0.1 did not answer within 0.3 s' });
  t.true(Date.now() - started < 1500);
  // Nothing listens: one line naming the refusal.
  const closed = await powerNode({ name: 'n3', powerUri: 'redfish+http://root:calvin@127.0.0.1:1' }, 'status', { identity });
  t.is(closed.error, 'BMC 127.0.0.1: connection refused (ECONNREFUSED)');
});

const redfishtoolTest = requireTools('redfishtool', 'openssl');

redfishtoolTest('over HTTPS with a self-signed certificate: redfishtool and the plugin see and change the same PowerState', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cw-redfish-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cert = makeCertificate(dir, 'bmc');
  const bmc = await redfishBmc({ '437XR1138R2': 'Off' }, { tls: { cert: cert.certPem, key: cert.keyPem } });
  t.teardown(() => bmc.close());
  const redfishtool = (args: string[]) =>
    execa(toolPath('redfishtool'), ['-r', `127.0.0.1:${bmc.port}`, '-u', 'root', '-p', 'calvin', '-S', 'Always', '-T', '5', 'Systems', '-I', '437XR1138R2', ...args], {
      reject: false,
      stdin: 'ignore',
      timeout: 30_000,
    });
  // First the responder is checked by a client written elsewhere.
  const got = await redfishtool(['get']);
  t.is(got.exitCode, 0, got.stderr);
  t.is(JSON.parse(got.stdout).PowerState, 'Off');
  const reset = await redfishtool(['reset', 'On']);
  t.is(reset.exitCode, 0, reset.stderr);
  t.is(bmc.states.get('437XR1138R2'), 'On');

  // Then the plugin, through redfish:// (HTTPS, the BMC's own certificate not verified).
  const node = { name: 'n0', powerUri: `redfish://root:calvin@127.0.0.1:${bmc.port}` };
  t.deepEqual(await powerNode(node, 'status', { identity }), { name: 'n0', ok: true, state: 'on', result: 'on' });
  t.deepEqual(await powerNode(node, 'off', { identity }), { name: 'n0', ok: true, result: 'off' });
  t.is(JSON.parse((await redfishtool(['get'])).stdout).PowerState, 'Off');
  t.deepEqual(bmc.resets.map((r) => r.type), ['On', 'ForceOff']);
});
