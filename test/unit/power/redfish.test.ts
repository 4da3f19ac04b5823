// The Redfish plugin against a small Redfish service on loopback, shaped like DMTF's public mockups
// (ServiceRoot -> Systems collection -> ComputerSystem with PowerState and #ComputerSystem.Reset).
import test from 'ava';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { redfishPlugin } from '../../../src/appliance/power/redfish.js';
import { powerNode } from '../../../src/appliance/power/run.js';
import { parsePowerTarget, type RedfishTarget } from '../../../src/appliance/power/uri.js';

interface Bmc {
  port: number;
  states: Map<string, string>;
  resets: Array<{ system: string; type: string }>;
  auths: string[];
  close(): Promise<void>;
}

const ALLOWED = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle'];

/** A Redfish service with `systems` (id -> PowerState); user root, password `calvin`. */
async function redfishBmc(systems: Record<string, string>, opts: { allowed?: string[]; silent?: boolean } = {}): Promise<Bmc> {
  const states = new Map(Object.entries(systems));
  const resets: Bmc['resets'] = [];
  const auths: string[] = [];
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (opts.silent) return; // never answers
    auths.push(req.headers.authorization ?? '');
    if (req.headers.authorization !== `Basic ${Buffer.from('root:calvin').toString('base64')}`) {
      send(res, 401, { error: { code: 'Base.1.0.GeneralError', message: 'unauthorized' } });
      return;
    }
    const url = req.url ?? '';
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (req.method === 'GET' && url === '/redfish/v1/Systems') {
        send(res, 200, { Members: [...states.keys()].map((id) => ({ '@odata.id': `/redfish/v1/Systems/${id}` })), 'Members@odata.count': states.size });
        return;
      }
      const m = /^\/redfish\/v1\/Systems\/([^/]+)(\/Actions\/ComputerSystem\.Reset)?$/.exec(url);
      const id = m?.[1];
      if (!m || id === undefined || !states.has(id)) {
        send(res, 404, { error: { '@Message.ExtendedInfo': [{ Message: `no resource ${url}` }] } });
        return;
      }
      if (req.method === 'GET' && !m[2]) {
        send(res, 200, {
          '@odata.id': `/redfish/v1/Systems/${id}`,
          Id: id,
          PowerState: states.get(id),
          Actions: {
            '#ComputerSystem.Reset': {
              target: `/redfish/v1/Systems/${id}/Actions/ComputerSystem.Reset`,
              'ResetType@Redfish.AllowableValues': opts.allowed ?? ALLOWED,
            },
          },
        });
        return;
      }
      if (req.method === 'POST' && m[2]) {
        const type = (JSON.parse(body) as { ResetType: string }).ResetType;
        resets.push({ system: id, type });
        if (type === 'On' || type === 'ForceRestart' || type === 'PowerCycle' || type === 'GracefulRestart') states.set(id, 'On');
        if (type === 'ForceOff' || type === 'GracefulShutdown') states.set(id, 'Off');
        res.writeHead(204);
        res.end();
        return;
      }
      send(res, 405, { error: { message: 'method not allowed' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    states,
    resets,
    auths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

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
